//! The proof that a local machine is gone: everything of it the host could still hold, each
//! looked up where the kernel shows it rather than in the backend's own records. A process
//! whose command line names the machine (`/proc/*/cmdline`), a mount under its folder
//! (`/proc/self/mountinfo`), its network namespace (`/run/netns`), its veth link
//! (`/sys/class/net`), its cgroup directories, the folder itself, and systemd-nspawn's
//! mount propagation folder for it (`/run/systemd/nspawn/propagate`).

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::cgroup::CgroupDir;
use super::machine::Slot;
use super::steps;
use crate::backend::Leftover;

/// What the scan looks for: the machine's folder and name, its slot if known, its cgroups.
#[derive(Debug)]
pub(crate) struct Traces<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) name: &'a str,
    pub(crate) slot: Option<Slot>,
    pub(crate) cgroups: &'a [CgroupDir],
}

/// Everything of the machine still on the host.
pub(crate) fn scan(traces: &Traces<'_>) -> Vec<Leftover> {
    let mut found = Vec::new();
    for pid in processes_named(traces.name) {
        found.push(Leftover { kind: "process", what: format!("{pid} (--machine={})", traces.name) });
    }
    for mount in mounts_under(traces.dir) {
        found.push(Leftover { kind: "mount", what: mount.display().to_string() });
    }
    if let Some(slot) = traces.slot {
        let netns = Path::new("/run/netns").join(slot.netns());
        if netns.exists() {
            found.push(Leftover { kind: "netns", what: netns.display().to_string() });
        }
        if Path::new("/sys/class/net").join(slot.host_link()).exists() {
            found.push(Leftover { kind: "link", what: slot.host_link() });
        }
    }
    for cgroup in traces.cgroups.iter().filter(|cgroup| cgroup.path.exists()) {
        found.push(Leftover { kind: "cgroup", what: cgroup.path.display().to_string() });
    }
    for dir in [traces.dir.to_owned(), steps::propagate_dir(traces.name)] {
        if dir.exists() {
            found.push(Leftover { kind: "directory", what: dir.display().to_string() });
        }
    }
    found
}

/// The processes whose command line has the argument `--machine=NAME`: the machine's
/// systemd-nspawn, or the `sh` about to become it.
pub(crate) fn processes_named(name: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let pids = entries.flatten().filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok());
    pids.filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| names_machine(&cmdline, name)))
        .collect()
}

/// Whether a NUL-separated command line has the argument `--machine=NAME`.
pub(crate) fn names_machine(cmdline: &[u8], name: &str) -> bool {
    let wanted = format!("--machine={name}");
    cmdline.split(|byte| *byte == 0).any(|arg| arg == wanted.as_bytes())
}

/// The mount points at or below `dir` in this process's mount namespace.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mount_points(&mountinfo).into_iter().filter(|point| point.starts_with(dir)).collect()
}

/// The mount points of a `/proc/self/mountinfo` text (its fifth field, unescaped).
pub(crate) fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo.lines().filter_map(|line| line.split(' ').nth(4)).map(unescape).collect()
}

/// A mountinfo path with its octal escapes (`\040` for a space) decoded.
fn unescape(text: &str) -> PathBuf {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let digits = bytes.get(idx + 1..idx + 4).filter(|d| bytes[idx] == b'\\' && d.iter().all(u8::is_ascii_digit));
        match digits {
            Some(digits) => {
                decoded.push(digits.iter().fold(0u8, |value, digit| value.wrapping_mul(8).wrapping_add(digit - b'0')));
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
