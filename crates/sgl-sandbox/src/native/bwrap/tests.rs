//! The exact command line a job gets.

use std::path::{Path, PathBuf};

use super::*;
use crate::native::{NativeLimits, ReadOnlyBind};

#[test]
fn a_job_gets_the_base_sandbox_then_its_directories_binds_environment_and_program() {
    let run = NativeRun {
        program: "/usr/bin/python3",
        args: vec!["-c".to_owned(), "print(1)".to_owned()],
        env: vec![("PATH".to_owned(), "/usr/bin".to_owned()), ("LANG".to_owned(), "C.UTF-8".to_owned())],
        input_dir: Path::new("/jobs/7/in"),
        output_dir: Path::new("/jobs/7/out"),
        read_only_binds: vec![ReadOnlyBind {
            host_path: PathBuf::from("/opt/models"),
            sandbox_path: PathBuf::from("/models"),
        }],
        limits: NativeLimits { memory_bytes: 1 << 20, ..NativeLimits::default() },
    };
    let args = job_args(&run);
    let base = base_args();
    assert_eq!(args[..base.len()], base[..]);
    let rest: Vec<&str> = args[base.len()..].iter().map(|arg| arg.to_str().expect("utf-8")).collect();
    assert_eq!(
        rest,
        [
            "--size",
            "1048576",
            "--tmpfs",
            "/tmp", // /tmp, capped at the memory limit
            "--ro-bind",
            "/jobs/7/in",
            "/in", //
            "--bind",
            "/jobs/7/out",
            "/out", //
            "--ro-bind",
            "/opt/models",
            "/models", //
            "--remount-ro",
            "/", // the root itself, last
            "--setenv",
            "PATH",
            "/usr/bin",
            "--setenv",
            "LANG",
            "C.UTF-8", //
            "--chdir",
            "/tmp",
            "--",
            "/usr/bin/python3",
            "-c",
            "print(1)",
        ]
    );
}

#[test]
fn the_base_sandbox_unshares_everything_and_binds_only_usr() {
    let base: Vec<String> = base_args().into_iter().map(|arg| arg.into_string().expect("utf-8")).collect();
    for flag in
        ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session", "--clearenv"]
    {
        assert!(base.iter().any(|arg| arg == flag), "{flag} missing from {base:?}");
    }
    assert!(base.windows(2).any(|pair| pair == ["--cap-drop", "ALL"]));
    assert!(!base.iter().any(|arg| arg == "--share-net"));
    let binds: Vec<&[String]> = base.windows(3).filter(|triple| triple[0].ends_with("bind")).collect();
    assert_eq!(binds, [&["--ro-bind".to_owned(), "/usr".to_owned(), "/usr".to_owned()][..]], "only /usr, read-only");
}
