//! Where this process's own cgroup is, for each controller the native runner uses: on a cgroup
//! v1 hierarchy that has the controller, else on the v2 (unified) hierarchy. Read from
//! `/proc/self/mountinfo` and `/proc/self/cgroup`; a machine may mix both (a "hybrid" layout:
//! v1 controllers and an empty unified hierarchy beside them).

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Which cgroup interface a controller is used through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// A v1 hierarchy of its own (`/sys/fs/cgroup/memory/...`).
    V1,
    /// The unified v2 hierarchy (`/sys/fs/cgroup/...`).
    V2,
}

/// A cgroup controller the native runner uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Memory,
    Pids,
    /// CPU rate (CFS quota).
    Cpu,
    /// CPU time used: v1's `cpuacct`; in v2, `cpu.stat`, which every cgroup has.
    CpuUsage,
}

impl Controller {
    /// Its name in `/proc/self/cgroup` and in a v1 mount's options.
    pub(crate) fn v1_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::CpuUsage => "cpuacct",
        }
    }

    /// Its name in a v2 `cgroup.controllers`, or `None` for what every v2 cgroup has.
    pub(crate) fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Memory => Some("memory"),
            Controller::Pids => Some("pids"),
            Controller::Cpu => Some("cpu"),
            Controller::CpuUsage => None,
        }
    }
}

/// This process's cgroup directory for one controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnCgroup {
    pub(crate) version: CgroupVersion,
    pub(crate) dir: PathBuf,
}

/// One cgroup mount from `/proc/self/mountinfo`.
struct CgroupMount<'a> {
    /// The cgroup path mounted (the mount's root), usually `/`.
    root: &'a str,
    mount_point: PathBuf,
    version: CgroupVersion,
    /// v1: the controllers of this hierarchy.
    options: &'a str,
}

/// Where `controller` is, given the texts of `/proc/self/mountinfo` and `/proc/self/cgroup`;
/// `None` when no hierarchy has it mounted (a v2 hierarchy is returned without checking that
/// it enables the controller: that is the caller's probe).
pub(crate) fn locate(mountinfo: &str, proc_cgroup: &str, controller: Controller) -> Option<OwnCgroup> {
    let mounts: Vec<CgroupMount<'_>> = mountinfo.lines().filter_map(parse_mount).collect();
    let name = controller.v1_name();
    let v1 = mounts.iter().find(|mount| mount.version == CgroupVersion::V1 && has_item(mount.options, name));
    let (mount, path) = match v1 {
        Some(mount) => (mount, own_path(proc_cgroup, |_, controllers| has_item(controllers, name))?),
        None => {
            let mount = mounts.iter().find(|mount| mount.version == CgroupVersion::V2)?;
            (mount, own_path(proc_cgroup, |id, controllers| id == "0" && controllers.is_empty())?)
        }
    };
    let relative = path.strip_prefix(mount.root)?;
    let relative = relative.trim_start_matches('/');
    let dir = if relative.is_empty() { mount.mount_point.clone() } else { mount.mount_point.join(relative) };
    Some(OwnCgroup { version: mount.version, dir })
}

/// A mountinfo line of a cgroup or cgroup2 file system:
/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`.
fn parse_mount(line: &str) -> Option<CgroupMount<'_>> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let mut after = after.split(' ');
    let version = match after.next()? {
        "cgroup" => CgroupVersion::V1,
        "cgroup2" => CgroupVersion::V2,
        _ => return None,
    };
    let options = after.nth(1).unwrap_or_default();
    Some(CgroupMount { root: fields.get(3)?, mount_point: unescape(fields.get(4)?), version, options })
}

/// The path of the first `/proc/self/cgroup` line (`ID:CONTROLLERS:PATH`) that `wanted`
/// accepts.
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

/// A mountinfo path with its octal escapes (`\040` for a space) decoded.
fn unescape(text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let escape = bytes.get(idx + 1..idx + 4).filter(|digits| bytes[idx] == b'\\' && is_octal(digits));
        match escape {
            Some(digits) => {
                decoded.push(digits.iter().fold(0u8, |value, digit| value.wrapping_mul(8) + (digit - b'0')));
                idx += 4;
            }
            None => {
                decoded.push(bytes[idx]);
                idx += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(decoded))
}

fn is_octal(digits: &[u8]) -> bool {
    digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
}

/// Whether `dir` is a cgroup v2 directory that offers `name` to its children's
/// `cgroup.subtree_control` (its `cgroup.controllers` lists it).
pub(crate) fn v2_offers(dir: &Path, name: &str) -> bool {
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .is_ok_and(|text| text.split_whitespace().any(|controller| controller == name))
}
