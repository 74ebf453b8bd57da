//! Why a run failed: [`SandboxError`], one variant per limit, so callers can tell a job that
//! ran out of fuel from one that was too slow, asked for too much memory or wrote too much.
//! Both runners (Wasm and native) share it; each variant says which runner returns it.

use std::path::PathBuf;
use std::time::Duration;

/// A run that did not end with the job exiting (normally, with any exit code), or whose output
/// broke the output limits.
///
/// Wasmtime's own errors are kept as their rendered text: they are not `std::error::Error`
/// values, and a caller acts on the variant, not on the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The host could not set up the engine, the linker or the deadline timer.
    #[error("the sandbox host failed: {message}")]
    Host {
        /// What failed, as wasmtime or the operating system put it.
        message: String,
    },
    /// The bytes are neither a valid Wasm module nor valid WAT text, the module imports
    /// something the sandbox does not offer, or it has no `_start` export.
    #[error("invalid guest module: {message}")]
    ModuleInvalid {
        /// Why the module was refused.
        message: String,
    },
    /// The guest used its whole fuel budget.
    #[error("the guest ran out of fuel ({fuel} units)")]
    OutOfFuel {
        /// The budget it had.
        fuel: u64,
    },
    /// The guest asked for more linear memory than its limit, at instantiation or through
    /// `memory.grow`.
    #[error("the guest asked for {requested_bytes} bytes of memory; the limit is {limit_bytes}")]
    MemoryLimit {
        /// The limit.
        limit_bytes: usize,
        /// The size the memory would have had.
        requested_bytes: usize,
    },
    /// The job was still running when its wall-clock limit passed (both runners; the native
    /// runner killed every process of the job).
    ///
    /// No fuel count comes with it (nor with [`SandboxError::GuestTrap`]): wasmtime keeps the
    /// running function's fuel in a register and writes it back only at calls and returns, so
    /// after an interrupt or a trap the store's count misses the last stretch of work.
    #[error("the guest was still running after {wall_clock:?}")]
    DeadlineExceeded {
        /// The limit.
        wall_clock: Duration,
    },
    /// The guest trapped (`unreachable`, an out-of-bounds access, a division by zero...) or a
    /// host call it made failed in a way that ends the guest.
    #[error("the guest trapped: {message}")]
    GuestTrap {
        /// Wasmtime's description of the trap.
        message: String,
    },
    /// A directory to be given to the job (or, for the native runner, bubblewrap itself) is
    /// missing or unusable.
    #[error("cannot give the job {path:?}")]
    Io {
        /// The host directory.
        path: PathBuf,
        /// Why it could not be opened.
        #[source]
        source: std::io::Error,
    },
    /// The output directory holds more bytes (the sum of its regular files' sizes) than the
    /// limit.
    #[error("the job's output is at least {found_bytes} bytes; the limit is {limit_bytes}")]
    OutputTooLarge {
        /// The limit.
        limit_bytes: u64,
        /// The bytes counted when the check stopped (at least this many).
        found_bytes: u64,
    },
    /// The output directory holds more entries (files and directories) than the limit.
    #[error("the job's output has more than {limit} files and directories")]
    TooManyOutputFiles {
        /// The limit.
        limit: u64,
    },
    /// The output directory holds something other than a regular file or a directory: a
    /// symlink, a FIFO, a socket or a device, any of which could lead whoever reads the output
    /// elsewhere or block it.
    #[error("the job's output {path:?} is not a regular file or a directory")]
    OutputNotRegularFile {
        /// Its path, relative to the output directory.
        path: PathBuf,
    },
    /// Native runner: bubblewrap (`bwrap`) is not installed where the sandbox looked.
    #[error("bubblewrap (bwrap) is not installed; looked at {searched:?} (Debian: apt-get install bubblewrap)")]
    BwrapMissing {
        /// The paths tried.
        searched: Vec<PathBuf>,
    },
    /// Native runner: `bwrap` is there but cannot build a sandbox on this machine (often: user
    /// namespaces are disabled for this user).
    #[error("bubblewrap at {bwrap:?} cannot create a sandbox here: {message}")]
    BwrapUnusable {
        /// The binary.
        bwrap: PathBuf,
        /// What it printed, or why it did not start.
        message: String,
    },
    /// Native runner: the job's processes used all the memory of their cgroup and the kernel's
    /// out-of-memory killer ended at least one of them.
    #[error("the job used its whole memory limit of {limit_bytes} bytes and was killed")]
    CgroupMemoryLimit {
        /// The limit.
        limit_bytes: u64,
    },
    /// Native runner: a process of the job used its CPU-time limit (`RLIMIT_CPU`) and was
    /// killed.
    #[error("the job used its CPU-time limit of {cpu_seconds} s and was killed")]
    CpuLimit {
        /// The limit, per process.
        cpu_seconds: u64,
    },
    /// Native runner: the job's cgroup could not be made, joined, read or removed.
    #[error("the job's cgroup {path:?} failed")]
    Cgroup {
        /// The cgroup file or directory.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
}
