//! One native run from start to report: the job's cgroup, bwrap started with its limits, its
//! logs drained, the wall clock watched (a pidfd polled until the exit or the deadline, then a
//! kill of everything), bwrap reaped, the cgroup read and removed, the ending classified, and
//! the output checked.

#[cfg(test)]
mod tests;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, Resource, Signal, kill_process_group, pidfd_open};

use super::cgroup::{CgroupParents, JobCgroup};
use super::spawn::{self, ChildSetup, Reaped, RlimitSetting};
use super::{Limit, Measured, NativeCapabilities, NativeLimits, NativeReport, NativeRun, bwrap};
use crate::SandboxError;
use crate::output::{OutputLimits, check_output};

/// The signals `RLIMIT_CPU` ends a process with: `SIGXCPU` at the soft limit, `SIGKILL` at the
/// hard one, as exit codes (128 + the signal).
const CPU_LIMIT_EXIT_CODES: [i32; 2] = [128 + libc::SIGXCPU, 128 + libc::SIGKILL];

/// How a job ended, before the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ending {
    /// The supervisor killed it at its deadline.
    timed_out: bool,
    exit_code: i32,
    cpu_time: Duration,
    oom_kills: u64,
}

/// Runs `run` to its end.
pub(crate) fn run(
    capabilities: &NativeCapabilities,
    parents: &CgroupParents,
    run: &NativeRun<'_>,
) -> Result<NativeReport, SandboxError> {
    check_paths(run)?;
    let limits = run.limits;
    let cgroup = JobCgroup::create(parents, &limits)?;
    let started = Instant::now();
    let child = start(capabilities, parents, run, cgroup.as_ref())?;
    let (waited, stdout, stderr) = supervise(child, started + limits.wall_clock, cgroup.as_ref(), limits.log_bytes);
    let wall_time = started.elapsed();
    let (reaped, timed_out) = waited?;
    let usage = cgroup.as_ref().map(JobCgroup::usage).unwrap_or_default();
    if let Some(cgroup) = cgroup {
        cgroup.remove()?;
    }
    let cpu_time = usage.cpu_time.unwrap_or(reaped.cpu_time);
    classify(&Ending { timed_out, exit_code: reaped.exit_code, cpu_time, oom_kills: usage.oom_kills }, &limits)?;
    let output_limits = OutputLimits { bytes: limits.output_bytes, files: limits.output_files };
    let output = check_output(run.output_dir, output_limits)?;
    let measured = |cgroup: bool| if cgroup { Measured::Cgroup } else { Measured::Rusage };
    Ok(NativeReport {
        exit_code: reaped.exit_code,
        cpu_time,
        cpu_measured_by: measured(usage.cpu_time.is_some()),
        peak_memory_bytes: usage.peak_memory_bytes.unwrap_or(reaped.max_rss_bytes),
        peak_memory_measured_by: measured(usage.peak_memory_bytes.is_some()),
        wall_time,
        stdout: stdout.0,
        stderr: stderr.0,
        stdout_truncated: stdout.1,
        stderr_truncated: stderr.1,
        output,
        unenforced: capabilities
            .unenforced
            .iter()
            .filter(|unenforced| unenforced.limit != Limit::CpuRate || limits.cpu_millicores.is_some())
            .cloned()
            .collect(),
    })
}

/// Starts bwrap for `run`: no environment, no stdin, piped logs, a process group of its own,
/// and (set in the child before exec) the job's cgroup and rlimits.
fn start(
    capabilities: &NativeCapabilities,
    parents: &CgroupParents,
    run: &NativeRun<'_>,
    cgroup: Option<&JobCgroup>,
) -> Result<Child, SandboxError> {
    let cgroup_procs = cgroup.map(JobCgroup::procs_files).transpose()?.unwrap_or_default();
    let mut command = Command::new(&capabilities.bwrap);
    command
        .args(bwrap::job_args(run))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let use_nproc = parents.pids.is_none() && !capabilities.runs_as_root;
    spawn::arm(&mut command, ChildSetup { cgroup_procs, rlimits: rlimits(&run.limits, use_nproc) });
    // Dropping `command` on return closes this process's copies of the cgroup.procs descriptors.
    command.spawn().map_err(|source| SandboxError::Io { path: capabilities.bwrap.clone(), source })
}

/// The job's directories and binds exist, and the binds' sandbox paths are absolute.
fn check_paths(run: &NativeRun<'_>) -> Result<(), SandboxError> {
    let io_error = |path: &Path, source| SandboxError::Io { path: path.to_owned(), source };
    for dir in [run.input_dir, run.output_dir] {
        let metadata = std::fs::metadata(dir).map_err(|source| io_error(dir, source))?;
        if !metadata.is_dir() {
            return Err(io_error(dir, std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory")));
        }
    }
    for bind in &run.read_only_binds {
        std::fs::metadata(&bind.host_path).map_err(|source| io_error(&bind.host_path, source))?;
        if !bind.sandbox_path.is_absolute() {
            let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "the sandbox path is not absolute");
            return Err(io_error(&bind.sandbox_path, source));
        }
    }
    Ok(())
}

/// The child's rlimits: CPU time (`SIGXCPU`, then `SIGKILL` a second later), open files,
/// file size (one byte past the output limit, so a file that reaches it also fails the output
/// check), no core dumps, and processes when no pids cgroup stands in. Each is clamped to this
/// process's hard limit, which an unprivileged process cannot raise.
fn rlimits(limits: &NativeLimits, use_nproc: bool) -> Vec<RlimitSetting> {
    let mut wanted = vec![
        (Resource::Cpu, limits.cpu_seconds, limits.cpu_seconds.saturating_add(1)),
        (Resource::Nofile, limits.open_files, limits.open_files),
        (Resource::Fsize, limits.output_bytes.saturating_add(1), limits.output_bytes.saturating_add(1)),
        (Resource::Core, 0, 0),
    ];
    if use_nproc {
        wanted.push((Resource::Nproc, limits.pids, limits.pids));
    }
    wanted
        .into_iter()
        .map(|(resource, soft, hard)| {
            let ceiling = rustix::process::getrlimit(resource).maximum.unwrap_or(u64::MAX);
            RlimitSetting { resource, soft: soft.min(ceiling), hard: hard.min(ceiling) }
        })
        .collect()
}

type Log = (Vec<u8>, bool);

/// Drains the child's logs while waiting for it (killing it at `deadline`), and reaps it.
fn supervise(
    mut child: Child,
    deadline: Instant,
    cgroup: Option<&JobCgroup>,
    log_bytes: usize,
) -> (Result<(Reaped, bool), SandboxError>, Log, Log) {
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    thread::scope(|scope| {
        let stdout = scope.spawn(move || read_capped(stdout, log_bytes));
        let stderr = scope.spawn(move || read_capped(stderr, log_bytes));
        let waited = wait(&child, deadline, cgroup);
        // Anything left (nothing, normally: the PID namespace ended with bwrap) would hold the
        // pipes open.
        if let Some(cgroup) = cgroup {
            cgroup.kill_all();
        }
        let join = |reader: thread::ScopedJoinHandle<'_, Log>| {
            reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        };
        (waited, join(stdout), join(stderr))
    })
}

/// Waits for the child until `deadline`, kills it and its cgroup then, and reaps it; `true`
/// with the result if it was killed.
fn wait(child: &Child, deadline: Instant, cgroup: Option<&JobCgroup>) -> Result<(Reaped, bool), SandboxError> {
    let pid = Pid::from_child(child);
    let kill = || {
        // bwrap is not reaped yet, so its pid (the group's id) cannot have been reused.
        let _ = kill_process_group(pid, Signal::KILL);
        if let Some(cgroup) = cgroup {
            cgroup.kill_all();
        }
    };
    let host_error = |what: &str, error: std::io::Error| SandboxError::Host { message: format!("{what}: {error}") };
    let exited = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => wait_for_exit(&pidfd, deadline).map_err(|error| host_error("cannot wait for bwrap", error.into())),
        Err(error) => Err(host_error("pidfd_open (Linux 5.3 or later) failed", error.into())),
    };
    let timed_out = !matches!(exited, Ok(true));
    if timed_out {
        kill();
    }
    let reaped = spawn::reap(child.id()).map_err(|error| host_error("cannot reap bwrap", error))?;
    exited.map(|_| (reaped, timed_out))
}

/// Polls `pidfd` until the process exits (`true`) or `deadline` passes (`false`).
fn wait_for_exit(pidfd: &std::os::fd::OwnedFd, deadline: Instant) -> rustix::io::Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let timeout =
            rustix::event::Timespec::try_from(left).unwrap_or(rustix::event::Timespec { tv_sec: i64::MAX, tv_nsec: 0 });
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => return Ok(true),
            Err(error) => return Err(error),
        }
    }
}

/// Reads `pipe` to its end, keeping the first `cap` bytes; `true` if more were dropped.
fn read_capped(pipe: Option<impl Read>, cap: usize) -> Log {
    let Some(mut pipe) = pipe else { return (Vec::new(), false) };
    let (mut kept, mut truncated) = (Vec::new(), false);
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&buffer[..room]);
                truncated |= room < n;
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            // A broken pipe ends the log like an end of file.
            Err(_) => break,
        }
    }
    (kept, truncated)
}

/// The error a job's ending means, if any, in order: the deadline, memory, CPU time.
fn classify(ending: &Ending, limits: &NativeLimits) -> Result<(), SandboxError> {
    if ending.timed_out {
        return Err(SandboxError::DeadlineExceeded { wall_clock: limits.wall_clock });
    }
    if ending.oom_kills > 0 {
        return Err(SandboxError::CgroupMemoryLimit { limit_bytes: limits.memory_bytes });
    }
    // The kernel counts RLIMIT_CPU per process in scheduler ticks, the measurement is the
    // precise run time of every process: a job the limit ended measured 985 ms of a 1 s limit
    // on the project's machine. A tenth of slack covers the ticks; a job that exits with this
    // code by itself after using that much CPU is counted as stopped by the limit.
    let nearly_the_limit = Duration::from_secs(limits.cpu_seconds) * 9 / 10;
    if CPU_LIMIT_EXIT_CODES.contains(&ending.exit_code) && ending.cpu_time >= nearly_the_limit {
        return Err(SandboxError::CpuLimit { cpu_seconds: limits.cpu_seconds });
    }
    Ok(())
}
