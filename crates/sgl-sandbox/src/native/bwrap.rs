//! bubblewrap's command line for a job: the isolation flags, a root built from `/usr` alone,
//! the job's directories, binds and environment, then the program. Pure: it only builds
//! arguments.

#[cfg(test)]
mod tests;

use std::ffi::OsString;

use super::NativeRun;

/// Guest path of the read-only input directory.
pub(crate) const INPUT_DIR: &str = "/in";
/// Guest path of the writable output directory.
pub(crate) const OUTPUT_DIR: &str = "/out";
/// Makes the sandbox's root (a tmpfs bwrap builds) read-only, once every mount point on it
/// exists: the last step of building the file system.
pub(crate) const ROOT_READ_ONLY: [&str; 2] = ["--remount-ro", "/"];

/// The sandbox every job shares: new namespaces of every kind (so no network but a downed
/// loopback), no capabilities, no nested user namespaces, killed with bwrap, a session of its
/// own, an empty environment, and a root file system of `/usr` (read-only) with the usual
/// symlinks into it, a fresh `/proc` and a minimal `/dev`.
pub(crate) fn base_args() -> Vec<OsString> {
    let args: &[&str] = &[
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ];
    args.iter().map(OsString::from).collect()
}

/// The whole command line after `bwrap` for `run`.
pub(crate) fn job_args(run: &NativeRun<'_>) -> Vec<OsString> {
    let mut args = base_args();
    let mut push = |items: &[&std::ffi::OsStr]| args.extend(items.iter().map(OsString::from));
    // The tmpfs is charged to the job's memory cgroup anyway; its size cap also holds where
    // there is no memory cgroup.
    let tmp_size = run.limits.memory_bytes.to_string();
    push(&["--size".as_ref(), tmp_size.as_ref(), "--tmpfs".as_ref(), "/tmp".as_ref()]);
    push(&["--ro-bind".as_ref(), run.input_dir.as_os_str(), INPUT_DIR.as_ref()]);
    push(&["--bind".as_ref(), run.output_dir.as_os_str(), OUTPUT_DIR.as_ref()]);
    for bind in &run.read_only_binds {
        push(&["--ro-bind".as_ref(), bind.host_path.as_os_str(), bind.sandbox_path.as_os_str()]);
    }
    push(&[ROOT_READ_ONLY[0].as_ref(), ROOT_READ_ONLY[1].as_ref()]);
    for (name, value) in &run.env {
        push(&["--setenv".as_ref(), name.as_ref(), value.as_ref()]);
    }
    push(&["--chdir".as_ref(), "/tmp".as_ref(), "--".as_ref(), run.program.as_ref()]);
    args.extend(run.args.iter().map(OsString::from));
    args
}
