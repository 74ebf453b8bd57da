//! A machine's cgroups, made by hand because the host may have no systemd as PID 1 to delegate
//! them: one directory per hierarchy, named after the machine, under this process's own cgroup
//! (found in `/proc/self/mountinfo` and `/proc/self/cgroup`, as `sgl-sandbox` does).
//!
//! The memory and CPU limits live on the hierarchy that has each controller: its own v1
//! hierarchy on a v1 or "hybrid" host, else the unified v2 one. systemd-nspawn also needs a
//! cgroup of its own on the `name=systemd` v1 hierarchy and on the unified one where they exist:
//! it makes its `payload` and `supervisor` groups under the cgroup it starts in, and two machines
//! started in the same one would share them. The machine's first process joins every directory
//! before it becomes systemd-nspawn (see `steps::boot`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use rustix::process::{Pid, Signal, kill_process};

use crate::backend::LocalError;

/// The CFS period CPU limits are expressed in: 100 ms, the kernel's default.
const CPU_PERIOD_US: u64 = 100_000;
/// How long removal waits for killed processes to leave.
const REMOVAL_PATIENCE: Duration = Duration::from_secs(5);

/// Which cgroup interface a directory belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// A v1 hierarchy (`/sys/fs/cgroup/memory/…`).
    V1,
    /// The unified v2 hierarchy.
    V2,
}

/// One cgroup directory of a machine and the limits it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupDir {
    pub(crate) version: Version,
    /// It holds the memory limit.
    pub(crate) memory: bool,
    /// It holds the CPU limit.
    pub(crate) cpu: bool,
    pub(crate) path: PathBuf,
}

/// A machine's CPU and memory limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) vcpus: u32,
    pub(crate) memory_mb: u32,
}

impl Limits {
    pub(crate) fn memory_bytes(self) -> u64 {
        u64::from(self.memory_mb) * 1024 * 1024
    }

    /// The CFS quota per [`CPU_PERIOD_US`]: one period per virtual CPU.
    pub(crate) fn cpu_quota_us(self) -> u64 {
        u64::from(self.vcpus.max(1)) * CPU_PERIOD_US
    }
}

/// The directories a machine named `name` gets on this host, from the texts of
/// `/proc/self/mountinfo` and `/proc/self/cgroup`. Empty when the host mounts no cgroups.
pub(crate) fn plan_dirs(mountinfo: &str, proc_cgroup: &str, name: &str) -> Vec<CgroupDir> {
    let mounts: Vec<Mount<'_>> = mountinfo.lines().filter_map(parse_mount).collect();
    let v1 = |item: &str| mounts.iter().find(|m| m.version == Version::V1 && has_item(m.options, item));
    let v2 = mounts.iter().find(|m| m.version == Version::V2);
    let own_v1 = |item: &str| own_path(proc_cgroup, |_, controllers| has_item(controllers, item));
    let own_v2 = || own_path(proc_cgroup, |id, controllers| id == "0" && controllers.is_empty());
    let mut dirs: Vec<CgroupDir> = Vec::new();
    let mut add = |mount: &Mount<'_>, own: Option<&str>, memory: bool, cpu: bool| {
        let Some(path) = own.and_then(|own| join(mount, own, name)) else { return };
        match dirs.iter_mut().find(|dir| dir.path == path) {
            Some(dir) => {
                dir.memory |= memory;
                dir.cpu |= cpu;
            }
            None => dirs.push(CgroupDir { version: mount.version, memory, cpu, path }),
        }
    };
    for (controller, is_memory) in [("memory", true), ("cpu", false)] {
        match (v1(controller), v2) {
            (Some(mount), _) => add(mount, own_v1(controller), is_memory, !is_memory),
            (None, Some(mount)) => add(mount, own_v2(), is_memory, !is_memory),
            (None, None) => {}
        }
    }
    if let Some(mount) = v1("name=systemd") {
        add(mount, own_v1("name=systemd"), false, false);
    }
    if let Some(mount) = v2 {
        add(mount, own_v2(), false, false);
    }
    dirs
}

/// Makes the directories (a v2 one after asking its parent to pass the controllers it needs
/// down) and writes the limits.
pub(crate) fn create(dirs: &[CgroupDir], limits: Limits) -> Result<(), LocalError> {
    for dir in dirs {
        if dir.version == Version::V2 && (dir.memory || dir.cpu) {
            enable_v2_controllers(dir);
        }
        match fs::create_dir(&dir.path) {
            Err(error) if error.kind() != io::ErrorKind::AlreadyExists => {
                return Err(cgroup_error("make cgroup", &dir.path, &error));
            }
            _ => {}
        }
    }
    apply(dirs, limits)
}

/// Writes `limits` into the directories that carry them; live, for a running machine too.
pub(crate) fn apply(dirs: &[CgroupDir], limits: Limits) -> Result<(), LocalError> {
    for dir in dirs {
        if dir.memory {
            apply_memory(dir, limits.memory_bytes())?;
        }
        if dir.cpu {
            apply_cpu(dir, limits.cpu_quota_us())?;
        }
    }
    Ok(())
}

/// Sends SIGKILL to every process in the directories and the groups below them.
pub(crate) fn kill_all(dirs: &[CgroupDir]) {
    for dir in dirs {
        for group in subtree(&dir.path) {
            for pid in read_pids(&group) {
                // Best effort: a process that already left is fine, and removal checks again.
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

/// Kills what is left and removes the directories, and the groups systemd-nspawn and the
/// machine's systemd made below them, deepest first; waits a few seconds for killed
/// processes to leave. Missing directories are fine.
pub(crate) async fn remove(dirs: &[CgroupDir]) -> Result<(), LocalError> {
    let give_up = Instant::now() + REMOVAL_PATIENCE;
    loop {
        kill_all(dirs);
        let mut busy = None;
        for dir in dirs {
            for group in subtree(&dir.path).into_iter().rev() {
                match fs::remove_dir(&group) {
                    Err(error) if error.kind() != io::ErrorKind::NotFound => busy = Some((group, error)),
                    _ => {}
                }
            }
        }
        match busy {
            None => return Ok(()),
            Some((path, error)) if Instant::now() >= give_up => {
                return Err(cgroup_error("remove cgroup", &path, &error));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The record of a machine's directories kept in its folder: one `ROLES VERSION PATH` line
/// each, roles `memory`, `cpu`, both (`memory,cpu`) or `-`.
pub(crate) fn to_record(dirs: &[CgroupDir]) -> String {
    dirs.iter()
        .map(|dir| {
            let roles = match (dir.memory, dir.cpu) {
                (true, true) => "memory,cpu",
                (true, false) => "memory",
                (false, true) => "cpu",
                (false, false) => "-",
            };
            let version = if dir.version == Version::V1 { "v1" } else { "v2" };
            format!("{roles} {version} {}\n", dir.path.display())
        })
        .collect()
}

/// The directories of a record written by [`to_record`]; malformed lines are skipped.
pub(crate) fn from_record(text: &str) -> Vec<CgroupDir> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (roles, version, path) = (parts.next()?, parts.next()?, parts.next()?);
            let version = match version {
                "v1" => Version::V1,
                "v2" => Version::V2,
                _ => return None,
            };
            let (memory, cpu) = (has_item(roles, "memory"), has_item(roles, "cpu"));
            Some(CgroupDir { version, memory, cpu, path: PathBuf::from(path) })
        })
        .collect()
}

fn apply_memory(dir: &CgroupDir, bytes: u64) -> Result<(), LocalError> {
    let path = &dir.path;
    if dir.version == Version::V2 {
        write(&path.join("memory.max"), &bytes.to_string())?;
        return write_if_present(&path.join("memory.swap.max"), "0");
    }
    // v1: memory plus swap (where swap is accounted) gets the same figure, so no swap. The
    // kernel refuses a memory+swap limit below the memory limit, so the order depends on the
    // direction of the change.
    let memory = path.join("memory.limit_in_bytes");
    let memsw = path.join("memory.memsw.limit_in_bytes");
    let current = fs::read_to_string(&memory).ok().and_then(|text| text.trim().parse::<u64>().ok());
    if current.is_some_and(|current| bytes > current) {
        write_if_present(&memsw, &bytes.to_string())?;
        write(&memory, &bytes.to_string())
    } else {
        write(&memory, &bytes.to_string())?;
        write_if_present(&memsw, &bytes.to_string())
    }
}

fn apply_cpu(dir: &CgroupDir, quota_us: u64) -> Result<(), LocalError> {
    if dir.version == Version::V2 {
        return write(&dir.path.join("cpu.max"), &format!("{quota_us} {CPU_PERIOD_US}"));
    }
    write(&dir.path.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
    write(&dir.path.join("cpu.cfs_quota_us"), &quota_us.to_string())
}

/// Asks the parent of a v2 directory to pass `memory` and `cpu` down. Best effort: it fails
/// where the parent holds processes itself, and the limit files are then missing, which
/// [`apply`] reports.
fn enable_v2_controllers(dir: &CgroupDir) {
    let Some(parent) = dir.path.parent() else { return };
    let offered = fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
    for (wanted, controller) in [(dir.memory, "memory"), (dir.cpu, "cpu")] {
        if wanted && offered.split_whitespace().any(|c| c == controller) {
            let _ = write_if_present(&parent.join("cgroup.subtree_control"), &format!("+{controller}"));
        }
    }
}

/// `dir` and every directory below it, parents before children.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut next = vec![dir.to_owned()];
    while let Some(group) = next.pop() {
        let Ok(entries) = fs::read_dir(&group) else { continue };
        next.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        found.push(group);
    }
    found.sort_by_key(|path| path.components().count());
    found
}

/// The processes listed in `dir/cgroup.procs`.
fn read_pids(dir: &Path) -> Vec<Pid> {
    let text = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    text.lines().filter_map(|line| line.trim().parse().ok()).filter_map(Pid::from_raw).collect()
}

fn write(path: &Path, value: &str) -> Result<(), LocalError> {
    fs::write(path, value).map_err(|error| cgroup_error("write cgroup limit", path, &error))
}

/// Writes a file only some kernels or configurations have; never creates it.
fn write_if_present(path: &Path, value: &str) -> Result<(), LocalError> {
    let written = fs::OpenOptions::new().write(true).open(path).and_then(|mut file| file.write_all(value.as_bytes()));
    match written {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        result => result.map_err(|error| cgroup_error("write cgroup limit", path, &error)),
    }
}

fn cgroup_error(step: &'static str, path: &Path, error: &io::Error) -> LocalError {
    LocalError::Step { step, status: None, stderr_tail: format!("{}: {error}", path.display()) }
}

/// One cgroup or cgroup2 mount of `/proc/self/mountinfo`.
#[derive(Debug)]
struct Mount<'a> {
    /// The cgroup path mounted there, usually `/`.
    root: &'a str,
    mount_point: &'a str,
    version: Version,
    /// v1: the hierarchy's super options, which name its controllers.
    options: &'a str,
}

/// A mountinfo line: `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE
/// SUPER_OPTIONS`. Cgroup mount points are `/sys/fs/cgroup/…` and never need unescaping.
fn parse_mount(line: &str) -> Option<Mount<'_>> {
    let (before, after) = line.split_once(" - ")?;
    let mut fields = before.split(' ');
    let mut after = after.split(' ');
    let version = match after.next()? {
        "cgroup" => Version::V1,
        "cgroup2" => Version::V2,
        _ => return None,
    };
    let options = after.nth(1).unwrap_or_default();
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    Some(Mount { root, mount_point, version, options })
}

/// `mount_point/<own path below the mount's root>/name`.
fn join(mount: &Mount<'_>, own: &str, name: &str) -> Option<PathBuf> {
    let relative = own.strip_prefix(mount.root)?.trim_start_matches('/');
    let base = Path::new(mount.mount_point);
    let own_dir = if relative.is_empty() { base.to_owned() } else { base.join(relative) };
    Some(own_dir.join(name))
}

/// The path of the first `/proc/self/cgroup` line (`ID:CONTROLLERS:PATH`) `wanted` accepts.
fn own_path(proc_cgroup: &str, wanted: impl Fn(&str, &str) -> bool) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        wanted(id, controllers).then_some(path)
    })
}

/// Whether the comma-separated `list` holds `item`.
fn has_item(list: &str, item: &str) -> bool {
    list.split(',').any(|entry| entry == item)
}
