//! The native runner: one job is one program run under bubblewrap (`bwrap`), supervised by
//! the calling thread, for work that cannot be WebAssembly (an ONNX worker, Blender).
//!
//! # The sandbox
//!
//! `bwrap --unshare-all --unshare-user --disable-userns --cap-drop ALL --die-with-parent
//! --new-session --clearenv`: new user, PID, network, IPC, UTS and cgroup namespaces (the
//! network namespace holds only a downed `lo`, so every connection fails), no capabilities, no
//! further user namespaces, no controlling terminal, and only the environment the job names.
//! The file system is built from nothing: `/usr` read-only (with `/bin`, `/lib`, `/lib64`
//! and `/sbin` as symlinks into it), a fresh `/proc` and `/dev`, a `/tmp` tmpfs no larger than
//! the memory limit, the input directory read-only at `/in`, the output directory writable at
//! `/out`, and [`NativeRun::read_only_binds`]; then the root itself is made read-only. No
//! `/etc`, no home, no `/sys`. The job starts in `/tmp`.
//!
//! # The limits, and who enforces them
//!
//! - **CPU time: `RLIMIT_CPU`**, per process: `SIGXCPU` at [`NativeLimits::cpu_seconds`],
//!   `SIGKILL` one second later ([`SandboxError::CpuLimit`]).
//! - **Wall clock: the supervisor.** At [`NativeLimits::wall_clock`] it kills bwrap's process
//!   group and every process of the job's cgroup; bwrap's `--die-with-parent` and the PID
//!   namespace take the rest down with it ([`SandboxError::DeadlineExceeded`]). bwrap itself
//!   dies with the thread that started it (`PR_SET_PDEATHSIG`), so a job never outlives its
//!   node.
//! - **Memory: a cgroup** (v1 `memory.limit_in_bytes`, v2 `memory.max`, swap off), a child of
//!   this process's own cgroup; the kernel's OOM killer ends the job
//!   ([`SandboxError::CgroupMemoryLimit`]).
//! - **Processes: a `pids` cgroup** (`pids.max`); without one, `RLIMIT_NPROC` for an
//!   unprivileged node (it counts every process of the node's user), nothing for root.
//! - **CPU rate: a `cpu` cgroup** (v1 CFS quota, v2 `cpu.max`), when
//!   [`NativeLimits::cpu_millicores`] asks for one.
//! - **Files: `RLIMIT_NOFILE`** (open descriptors), **`RLIMIT_FSIZE`** (one byte over
//!   [`NativeLimits::output_bytes`], so a file that reaches it fails the output check), no core
//!   dumps, and the output check of both runners after the run (bytes, entries, only regular
//!   files and directories).
//! - **Logs:** stdout and stderr are pipes read to the end; the first
//!   [`NativeLimits::log_bytes`] of each are kept.
//!
//! What this machine cannot enforce, [`NativeSandbox::probe`] says at start
//! ([`NativeCapabilities::unenforced`]) and every report repeats ([`NativeReport::unenforced`]).
//!
//! # Trust
//!
//! A node running as root runs its jobs as root outside their user namespace: a file a job
//! writes to `/out` is owned by root on the host. Run the node as a dedicated user where
//! unprivileged user namespaces are allowed. The caller (the node) is trusted; the job is not.

mod bwrap;
mod cgroup;
mod hierarchy;
mod probe;
mod spawn;
mod supervise;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{OutputUsage, SandboxError};

pub use hierarchy::CgroupVersion;
pub use probe::{Limit, NativeCapabilities, Unenforced};

/// Where [`NativeSandbox::probe`] looks for bubblewrap, in order.
pub const BWRAP_PATHS: &[&str] = &["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"];

/// One job for [`NativeSandbox::run`].
#[derive(Debug, Clone)]
pub struct NativeRun<'a> {
    /// The program, as the sandbox sees it (`/usr/bin/python3`), or a name looked up in the
    /// job's `PATH` (`/bin:/usr/bin` when [`NativeRun::env`] sets none).
    pub program: &'a str,
    /// Its arguments, after the program.
    pub args: Vec<String>,
    /// The job's whole environment, with `PWD=/tmp` added by bubblewrap; nothing is inherited.
    pub env: Vec<(String, String)>,
    /// Host directory the job reads as `/in`.
    pub input_dir: &'a Path,
    /// Host directory the job reads and writes as `/out`.
    pub output_dir: &'a Path,
    /// More host paths the job may read, each at a path of its own (a runtime's libraries, a
    /// model). Both paths are absolute.
    pub read_only_binds: Vec<ReadOnlyBind>,
    /// What the run may use.
    pub limits: NativeLimits,
}

/// A host path the job sees, read-only, at `sandbox_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyBind {
    /// The host path (a file or a directory).
    pub host_path: PathBuf,
    /// Where the job sees it; absolute.
    pub sandbox_path: PathBuf,
}

/// What one native run may use. See the module documentation for how each is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeLimits {
    /// Most memory of all the job's processes together (cgroup), `/tmp` included.
    pub memory_bytes: u64,
    /// Most CPU time of any one process, in seconds (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Longest the job may run, by the wall clock.
    pub wall_clock: Duration,
    /// Most processes (and threads) at once.
    pub pids: u64,
    /// Most open file descriptors per process.
    pub open_files: u64,
    /// A CPU rate cap in thousandths of a core (1000: one core), or none.
    pub cpu_millicores: Option<u32>,
    /// Most bytes the output directory may hold after the run.
    pub output_bytes: u64,
    /// Most files and directories the output directory may hold after the run.
    pub output_files: u64,
    /// Most bytes kept of each of stdout and stderr.
    pub log_bytes: usize,
}

impl Default for NativeLimits {
    /// 1 GiB of memory, 60 s of CPU, 120 s of wall clock, 64 processes, 256 open files, no CPU
    /// rate cap, an output of at most 1 GiB in 4096 entries, 64 KiB of each log.
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            cpu_seconds: 60,
            wall_clock: Duration::from_secs(120),
            pids: 64,
            open_files: 256,
            cpu_millicores: None,
            output_bytes: 1 << 30,
            output_files: 4096,
            log_bytes: 64 << 10,
        }
    }
}

/// How a figure in a [`NativeReport`] was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// By the job's cgroup: every process of the job, together.
    Cgroup,
    /// By `wait4`'s resource usage of bwrap and the processes it waited for: CPU time summed,
    /// memory the largest single process's peak resident set.
    Rusage,
}

/// A native run that ended with the job exiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeReport {
    /// The job's exit code; 128 + the signal's number when a signal ended it.
    pub exit_code: i32,
    /// CPU time used.
    pub cpu_time: Duration,
    /// How [`NativeReport::cpu_time`] was measured.
    pub cpu_measured_by: Measured,
    /// Peak memory, in bytes.
    pub peak_memory_bytes: u64,
    /// How [`NativeReport::peak_memory_bytes`] was measured.
    pub peak_memory_measured_by: Measured,
    /// From start to exit.
    pub wall_time: Duration,
    /// What the job wrote to stdout, at most [`NativeLimits::log_bytes`].
    pub stdout: Vec<u8>,
    /// What the job wrote to stderr, at most [`NativeLimits::log_bytes`].
    pub stderr: Vec<u8>,
    /// The job wrote more to stdout than was kept.
    pub stdout_truncated: bool,
    /// The job wrote more to stderr than was kept.
    pub stderr_truncated: bool,
    /// What the job left in the output directory.
    pub output: OutputUsage,
    /// The limits of this run that were not enforced, and why.
    pub unenforced: Vec<Unenforced>,
}

/// bubblewrap and the cgroups found on this machine; runs any number of jobs, one per call,
/// from any thread.
#[derive(Debug)]
pub struct NativeSandbox {
    capabilities: NativeCapabilities,
    parents: cgroup::CgroupParents,
}

impl NativeSandbox {
    /// Finds bubblewrap at the first of [`BWRAP_PATHS`] and probes the machine.
    pub fn probe() -> Result<Self, SandboxError> {
        let found = BWRAP_PATHS.iter().map(Path::new).find(|path| path.is_file());
        let Some(bwrap) = found else {
            return Err(SandboxError::BwrapMissing { searched: BWRAP_PATHS.iter().map(PathBuf::from).collect() });
        };
        Self::probe_with(bwrap)
    }

    /// Probes the machine with the bubblewrap binary at `bwrap`: that it builds a sandbox
    /// here, and which cgroup controllers this process can give its jobs.
    pub fn probe_with(bwrap: &Path) -> Result<Self, SandboxError> {
        let (capabilities, parents) = probe::probe(bwrap)?;
        Ok(Self { capabilities, parents })
    }

    /// What was found, and what will not be enforced.
    pub fn capabilities(&self) -> &NativeCapabilities {
        &self.capabilities
    }

    /// Runs one job to its end, blocking the calling thread. `Ok` whenever the job exited
    /// within its limits, whatever its exit code.
    pub fn run(&self, run: &NativeRun<'_>) -> Result<NativeReport, SandboxError> {
        supervise::run(&self.capabilities, &self.parents, run)
    }
}
