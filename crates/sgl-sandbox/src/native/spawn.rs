//! Starting bwrap with its limits in place, and reaping it with its resource usage.
//!
//! The limits must hold from bwrap's first instruction: a cgroup joined or an rlimit set after
//! the fork (from the parent, by pid) would miss whatever the child had already forked. So the
//! child sets them itself between fork and exec (`pre_exec`). `wait4` is the one call that
//! returns a child's resource usage, which `std::process` does not expose.

// These are the crate's only `unsafe`: `pre_exec` and `wait4` (with its zeroed out-parameter),
// each with its invariant written next to it.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use rustix::process::{Resource, Rlimit, Signal, getpid, getppid, set_parent_process_death_signal, setrlimit};

/// One resource limit for the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RlimitSetting {
    pub(crate) resource: Resource,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

/// What the child does before it execs bwrap.
#[derive(Debug)]
pub(crate) struct ChildSetup {
    /// `cgroup.procs` of each of the job's cgroup directories, open for writing.
    pub(crate) cgroup_procs: Vec<OwnedFd>,
    pub(crate) rlimits: Vec<RlimitSetting>,
}

/// Has the child that `command` starts, in order: die with the thread that spawned it
/// (`PR_SET_PDEATHSIG`, refusing to start if this process is already gone), join the job's
/// cgroups, and set its rlimits. A failure of any step fails the spawn.
pub(crate) fn arm(command: &mut Command, setup: ChildSetup) {
    let parent = getpid();
    let in_child = move || -> io::Result<()> {
        set_parent_process_death_signal(Some(Signal::KILL))?;
        // The parent may have died between the fork and the prctl, before the signal was
        // armed: this process is then someone else's child, and must not start the job.
        if getppid() != Some(parent) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        for procs in &setup.cgroup_procs {
            // `0` is the writing process: the child joins, and everything it starts follows.
            rustix::io::write(procs, b"0")?;
        }
        for limit in &setup.rlimits {
            setrlimit(limit.resource, Rlimit { current: Some(limit.soft), maximum: Some(limit.hard) })?;
        }
        Ok(())
    };
    // SAFETY: `in_child` runs in the forked child before exec, where only async-signal-safe
    // calls are allowed. It makes system calls only (prctl, getppid, write, prlimit64) through
    // rustix, which calls the kernel directly; it takes no lock and allocates nothing (its
    // errors are plain error codes, and the descriptors and limits were built before the fork).
    unsafe {
        command.pre_exec(in_child);
    }
}

/// How a reaped child ended and what it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reaped {
    /// Its exit code, or 128 + the signal that killed it.
    pub(crate) exit_code: i32,
    /// User and system CPU time of the child and every descendant it (transitively) waited for.
    pub(crate) cpu_time: Duration,
    /// The largest peak resident set of the child and those descendants, in bytes.
    pub(crate) max_rss_bytes: u64,
}

/// Waits for the child `pid` to end and reaps it.
pub(crate) fn reap(pid: u32) -> io::Result<Reaped> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a C struct of integers and `timeval`s, for which all zeroes is a
    // valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types, written by the kernel
        // before it returns, and not kept after.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let exit_code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    let cpu_time = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    // Linux counts `ru_maxrss` in KiB.
    let max_rss_bytes = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    Ok(Reaped { exit_code, cpu_time, max_rss_bytes })
}

fn timeval(value: libc::timeval) -> Duration {
    let seconds = u64::try_from(value.tv_sec).unwrap_or(0);
    let micros = u32::try_from(value.tv_usec).unwrap_or(0);
    Duration::from_secs(seconds) + Duration::from_micros(u64::from(micros))
}
