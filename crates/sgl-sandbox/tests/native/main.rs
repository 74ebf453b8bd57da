//! The native runner against real processes under real bubblewrap: one test binary, one
//! probed [`NativeSandbox`], a fresh pair of directories per test. Tests of a limit this
//! machine cannot enforce check that the probe says so and why, then stop; under `CI=true`
//! every limit must be enforced (CI machines are root on cgroup v1 or v2, like the project's).

mod isolation;
mod jobs;
mod limits;
mod output;
mod probe;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sgl_sandbox::native::{Limit, NativeLimits, NativeRun, NativeSandbox};
use tempfile::TempDir;

/// The sandbox all tests share, as the node will.
fn sandbox() -> &'static NativeSandbox {
    static SANDBOX: OnceLock<NativeSandbox> = OnceLock::new();
    SANDBOX
        .get_or_init(|| NativeSandbox::probe().expect("bubblewrap is installed and works (apt-get install bubblewrap)"))
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| value == "true")
}

/// Whether this machine enforces `limit`. When it does not, the probe must have said why; that
/// is checked, and the caller returns early. Under `CI=true` it must be enforced.
fn enforced(limit: Limit) -> bool {
    let Some(unenforced) = sandbox().capabilities().unenforced.iter().find(|unenforced| unenforced.limit == limit)
    else {
        return true;
    };
    assert!(!in_ci(), "CI must enforce {limit:?}, but: {}", unenforced.reason);
    assert!(!unenforced.reason.trim().is_empty(), "the probe gives a reason for {limit:?}");
    eprintln!("not tested here: {limit:?} is not enforced: {}", unenforced.reason);
    false
}

/// A job's directories: `root/in` and `root/out`, siblings, so that `root` holds a file the job
/// must not see.
struct JobDirs {
    root: TempDir,
}

impl JobDirs {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(root.path().join("in")).expect("create in");
        std::fs::create_dir(root.path().join("out")).expect("create out");
        Self { root }
    }

    fn input(&self) -> PathBuf {
        self.root.path().join("in")
    }

    fn output(&self) -> PathBuf {
        self.root.path().join("out")
    }
}

/// A run of `program` with `args` over `input` and `output`, `PATH` set, default limits.
fn job<'a>(program: &'a str, args: &[&str], input: &'a Path, output: &'a Path) -> NativeRun<'a> {
    NativeRun {
        program,
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        env: vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())],
        input_dir: input,
        output_dir: output,
        read_only_binds: Vec::new(),
        limits: NativeLimits::default(),
    }
}

/// A shell job: `sh -c script`.
fn shell<'a>(script: &'a str, input: &'a Path, output: &'a Path) -> NativeRun<'a> {
    job("/usr/bin/sh", &["-c", script], input, output)
}

/// Python 3, which every Debian has in `/usr`: `python3 -c script`.
fn python<'a>(script: &'a str, input: &'a Path, output: &'a Path) -> NativeRun<'a> {
    job("/usr/bin/python3", &["-c", script], input, output)
}
