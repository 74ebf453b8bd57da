//! Child processes that die with the grid: `sgl-grid up`'s nodes must not outlive it, even
//! when it is killed with SIGKILL and no clean-up code runs (they would heartbeat a dead grid
//! forever, holding their model in memory and their node identity).

// The module's only `unsafe` is `pre_exec` and the one `prctl` call it makes, each with its
// invariant written next to it.
#![allow(unsafe_code)]

use tokio::process::Command;

/// Has the child that `command` starts killed (SIGKILL) when this process dies, however it
/// dies: Linux's `PR_SET_PDEATHSIG`, armed in the child between fork and exec. Elsewhere a
/// no-op.
///
/// The kernel sends the signal when the *thread* that forked the child exits, so spawn from a
/// thread that lives as long as the process (`main`'s `block_on`, a runtime worker), never
/// from a blocking-pool thread, which exits when idle.
#[cfg(target_os = "linux")]
pub fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    let arm = move || {
        // SAFETY: PR_SET_PDEATHSIG takes one integer argument (the signal) and touches no
        // memory of ours; prctl is a plain system call, safe between fork and exec.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent may have died between the fork and the prctl, before the signal was
        // armed: this process is then someone else's child already, and must not start.
        if std::os::unix::process::parent_id() != parent {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: `arm` runs in the forked child before exec, where only async-signal-safe calls
    // are allowed: it makes two system calls (prctl, getppid), takes no lock and allocates
    // nothing (an `io::Error` from an OS error code is not boxed).
    unsafe {
        command.pre_exec(arm);
    }
}

/// No parent-death signal outside Linux: the grid's shutdown path stops its nodes there.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_command: &mut Command) {}
