//! A job's cgroup: made under this process's own cgroup (a directory on each v1 hierarchy the
//! probe found usable, or one v2 directory), given the run's limits, joined by the job's first
//! process before it becomes bwrap, read after the run, and removed, every process still in it
//! killed first. The directory is removed whatever happened: by [`JobCgroup::remove`] on the
//! normal path, by `Drop` on every other.

#[cfg(test)]
mod tests;

use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use super::NativeLimits;
use super::hierarchy::{CgroupVersion, Controller, OwnCgroup};
use crate::SandboxError;

/// The CFS period a CPU rate cap is expressed in: 100 ms, the kernel's default.
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts, in microseconds per period.
const MIN_CPU_QUOTA_US: u64 = 1_000;
/// How long removal waits for the killed processes to leave the cgroup.
const REMOVAL_PATIENCE: Duration = Duration::from_secs(5);

/// Numbers the job cgroups of this process, so that concurrent runs never share one.
static NEXT_JOB: AtomicU64 = AtomicU64::new(0);

/// This process's own cgroup for each controller the probe found usable (`None`: not usable).
#[derive(Debug, Clone, Default)]
pub(crate) struct CgroupParents {
    pub(crate) memory: Option<OwnCgroup>,
    pub(crate) pids: Option<OwnCgroup>,
    pub(crate) cpu: Option<OwnCgroup>,
    pub(crate) cpu_usage: Option<OwnCgroup>,
}

impl CgroupParents {
    fn each(&self) -> impl Iterator<Item = (Controller, &OwnCgroup)> {
        [
            (Controller::Memory, &self.memory),
            (Controller::Pids, &self.pids),
            (Controller::Cpu, &self.cpu),
            (Controller::CpuUsage, &self.cpu_usage),
        ]
        .into_iter()
        .filter_map(|(controller, parent)| parent.as_ref().map(|parent| (controller, parent)))
    }
}

/// One controller's directory of a job's cgroup.
#[derive(Debug)]
struct Member {
    controller: Controller,
    version: CgroupVersion,
    dir: PathBuf,
}

/// What a job's cgroup measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CgroupUsage {
    pub(crate) peak_memory_bytes: Option<u64>,
    pub(crate) cpu_time: Option<Duration>,
    /// Processes the out-of-memory killer ended.
    pub(crate) oom_kills: u64,
}

/// A job's cgroup directories (one per v1 hierarchy, or one in v2), removed on drop.
#[derive(Debug)]
pub(crate) struct JobCgroup {
    members: Vec<Member>,
    /// The distinct directories made and not yet removed.
    dirs: Vec<PathBuf>,
}

impl JobCgroup {
    /// A new cgroup with `limits`, or `None` when no controller is usable.
    pub(crate) fn create(parents: &CgroupParents, limits: &NativeLimits) -> Result<Option<Self>, SandboxError> {
        let name = format!("sgl-job-{}-{}", std::process::id(), NEXT_JOB.fetch_add(1, Ordering::Relaxed));
        let mut cgroup = Self { members: Vec::new(), dirs: Vec::new() };
        for (controller, parent) in parents.each() {
            let dir = parent.dir.join(&name);
            if !cgroup.dirs.contains(&dir) {
                make_dir(&dir)?;
                cgroup.dirs.push(dir.clone());
            }
            cgroup.members.push(Member { controller, version: parent.version, dir });
        }
        if cgroup.members.is_empty() {
            return Ok(None);
        }
        for member in &cgroup.members {
            member.apply(limits)?;
        }
        Ok(Some(cgroup))
    }

    /// Each directory's `cgroup.procs`, open for writing: the job's first process writes `0`
    /// to each to join the cgroup before it execs bwrap.
    pub(crate) fn procs_files(&self) -> Result<Vec<OwnedFd>, SandboxError> {
        self.dirs
            .iter()
            .map(|dir| {
                let path = dir.join("cgroup.procs");
                let file = fs::OpenOptions::new().write(true).open(&path);
                file.map(OwnedFd::from).map_err(|source| SandboxError::Cgroup { path, source })
            })
            .collect()
    }

    /// Kills every process in the cgroup (v2's `cgroup.kill` where there is one, and a
    /// `SIGKILL` to each listed process everywhere).
    pub(crate) fn kill_all(&self) {
        for dir in &self.dirs {
            // Best effort: a process that is already gone is fine, and removal retries.
            let _ = write_if_present(&dir.join("cgroup.kill"), "1");
            for pid in read_pids(dir) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }

    /// What the cgroup measured; a figure its controllers do not offer is `None`.
    pub(crate) fn usage(&self) -> CgroupUsage {
        let mut usage = CgroupUsage::default();
        for member in &self.members {
            match (member.controller, member.version) {
                (Controller::Memory, CgroupVersion::V1) => {
                    usage.peak_memory_bytes = read_number(&member.dir.join("memory.max_usage_in_bytes"));
                    usage.oom_kills = read_key(&member.dir.join("memory.oom_control"), "oom_kill").unwrap_or(0);
                }
                (Controller::Memory, CgroupVersion::V2) => {
                    usage.peak_memory_bytes = read_number(&member.dir.join("memory.peak"));
                    usage.oom_kills = read_key(&member.dir.join("memory.events"), "oom_kill").unwrap_or(0);
                }
                (Controller::CpuUsage, CgroupVersion::V1) => {
                    usage.cpu_time = read_number(&member.dir.join("cpuacct.usage")).map(Duration::from_nanos);
                }
                (Controller::CpuUsage, CgroupVersion::V2) => {
                    usage.cpu_time = read_key(&member.dir.join("cpu.stat"), "usage_usec").map(Duration::from_micros);
                }
                (Controller::Pids | Controller::Cpu, _) => {}
            }
        }
        usage
    }

    /// Kills what is left in the cgroup and removes its directories, waiting a few seconds for
    /// the killed processes to leave.
    pub(crate) fn remove(mut self) -> Result<(), SandboxError> {
        self.remove_dirs()
    }

    fn remove_dirs(&mut self) -> Result<(), SandboxError> {
        let give_up = Instant::now() + REMOVAL_PATIENCE;
        loop {
            self.kill_all();
            let mut busy = None;
            self.dirs.retain(|dir| match fs::remove_dir(dir) {
                Ok(()) => false,
                Err(error) if error.kind() == io::ErrorKind::NotFound => false,
                Err(error) => {
                    busy = Some((dir.clone(), error));
                    true
                }
            });
            match busy {
                None => return Ok(()),
                Some((path, source)) if Instant::now() >= give_up => return Err(SandboxError::Cgroup { path, source }),
                Some(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

impl Drop for JobCgroup {
    fn drop(&mut self) {
        // The error path: the run already failed, and a directory that cannot be removed has
        // nothing left to say beyond the run's own error.
        let _ = self.remove_dirs();
    }
}

impl Member {
    /// Writes this controller's share of `limits`.
    fn apply(&self, limits: &NativeLimits) -> Result<(), SandboxError> {
        let dir = &self.dir;
        match (self.controller, self.version) {
            (Controller::Memory, CgroupVersion::V1) => {
                write(&dir.join("memory.limit_in_bytes"), &limits.memory_bytes.to_string())?;
                // Memory plus swap, where swap is accounted: the same figure, so no swap.
                write_if_present(&dir.join("memory.memsw.limit_in_bytes"), &limits.memory_bytes.to_string())
            }
            (Controller::Memory, CgroupVersion::V2) => {
                write(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
                write_if_present(&dir.join("memory.swap.max"), "0")?;
                // One OOM kill ends the whole job, not just its largest process.
                write_if_present(&dir.join("memory.oom.group"), "1")
            }
            (Controller::Pids, _) => write(&dir.join("pids.max"), &limits.pids.to_string()),
            (Controller::Cpu, version) => match limits.cpu_millicores {
                None => Ok(()),
                Some(millicores) => {
                    let quota_us = (u64::from(millicores) * CPU_PERIOD_US / 1000).max(MIN_CPU_QUOTA_US);
                    if version == CgroupVersion::V1 {
                        write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                        write(&dir.join("cpu.cfs_quota_us"), &quota_us.to_string())
                    } else {
                        write(&dir.join("cpu.max"), &format!("{quota_us} {CPU_PERIOD_US}"))
                    }
                }
            },
            (Controller::CpuUsage, _) => Ok(()),
        }
    }
}

fn make_dir(dir: &Path) -> Result<(), SandboxError> {
    match fs::create_dir(dir) {
        // A directory left by a dead process of the same id: reused, with fresh limits.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        result => result.map_err(|source| SandboxError::Cgroup { path: dir.to_owned(), source }),
    }
}

/// Writes a file every cgroup of its kind has.
fn write(path: &Path, value: &str) -> Result<(), SandboxError> {
    fs::write(path, value).map_err(|source| SandboxError::Cgroup { path: path.to_owned(), source })
}

/// Writes a file that only some kernels or configurations have; never creates it.
fn write_if_present(path: &Path, value: &str) -> Result<(), SandboxError> {
    let written = fs::OpenOptions::new().write(true).open(path).and_then(|mut file| file.write_all(value.as_bytes()));
    match written {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        result => result.map_err(|source| SandboxError::Cgroup { path: path.to_owned(), source }),
    }
}

/// The processes listed in `dir/cgroup.procs`.
fn read_pids(dir: &Path) -> Vec<Pid> {
    let text = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    text.lines().filter_map(|line| line.trim().parse().ok()).filter_map(Pid::from_raw).collect()
}

/// A file holding one number.
fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a file of `key value` lines (`memory.events`, `cpu.stat`).
fn read_key(path: &Path, key: &str) -> Option<u64> {
    parse_key(&fs::read_to_string(path).ok()?, key)
}

fn parse_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}
