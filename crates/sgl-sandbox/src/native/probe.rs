//! What this machine lets the native runner enforce: bubblewrap must start and build a sandbox
//! (else the probe fails), and each cgroup controller is tried for real (a child cgroup made,
//! its limit file written, removed). Whatever cannot be enforced goes into
//! [`NativeCapabilities::unenforced`] with the reason, for the node to log at start.

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use super::bwrap;
use super::cgroup::CgroupParents;
use super::hierarchy::{self, CgroupVersion, Controller, OwnCgroup};
use crate::SandboxError;

/// Numbers the probe cgroups of this process.
static NEXT_PROBE: AtomicU64 = AtomicU64::new(0);

/// A limit that depends on the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// [`super::NativeLimits::memory_bytes`].
    Memory,
    /// [`super::NativeLimits::pids`].
    Pids,
    /// [`super::NativeLimits::cpu_millicores`].
    CpuRate,
}

/// A limit that will not be enforced (or only loosely), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unenforced {
    /// The limit.
    pub limit: Limit,
    /// Why, for a person reading the node's log.
    pub reason: String,
}

/// What [`super::NativeSandbox::probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeCapabilities {
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// What `bwrap --version` printed.
    pub bwrap_version: String,
    /// The memory cgroup jobs get, if usable.
    pub memory_cgroup: Option<CgroupVersion>,
    /// The pids cgroup jobs get, if usable.
    pub pids_cgroup: Option<CgroupVersion>,
    /// The cpu (rate) cgroup jobs get, if usable.
    pub cpu_cgroup: Option<CgroupVersion>,
    /// Where a job's CPU time is read (v1 `cpuacct`, v2 `cpu.stat`), if anywhere; else from
    /// `wait4`.
    pub cpu_usage_cgroup: Option<CgroupVersion>,
    /// This process runs as root: jobs run as root outside their user namespace, and
    /// `RLIMIT_NPROC` binds nothing.
    pub runs_as_root: bool,
    /// The limits that will not be enforced, with the reason for each.
    pub unenforced: Vec<Unenforced>,
}

/// Probes bubblewrap at `bwrap` and this process's cgroups.
pub(crate) fn probe(bwrap: &Path) -> Result<(NativeCapabilities, CgroupParents), SandboxError> {
    let bwrap_version = check_bwrap(bwrap)?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let proc_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let usable = |controller: Controller| {
        let own = hierarchy::locate(&mountinfo, &proc_cgroup, controller)
            .ok_or(Refusal::NotMounted { controller: controller.v1_name() })?;
        try_controller(&own, controller).map(|()| own)
    };
    let (memory, pids, cpu, cpu_usage) =
        (usable(Controller::Memory), usable(Controller::Pids), usable(Controller::Cpu), usable(Controller::CpuUsage));
    let runs_as_root = rustix::process::geteuid().is_root();
    let mut unenforced = Vec::new();
    if let Err(reason) = &memory {
        unenforced.push(Unenforced { limit: Limit::Memory, reason: format!("no usable memory cgroup: {reason}") });
    }
    if let Err(reason) = &pids {
        unenforced.push(Unenforced { limit: Limit::Pids, reason: pids_fallback(reason, runs_as_root) });
    }
    if let Err(reason) = &cpu {
        unenforced.push(Unenforced { limit: Limit::CpuRate, reason: format!("no usable cpu cgroup: {reason}") });
    }
    let parents = CgroupParents { memory: memory.ok(), pids: pids.ok(), cpu: cpu.ok(), cpu_usage: cpu_usage.ok() };
    let version = |own: &Option<OwnCgroup>| own.as_ref().map(|own| own.version);
    let capabilities = NativeCapabilities {
        bwrap: bwrap.to_owned(),
        bwrap_version,
        memory_cgroup: version(&parents.memory),
        pids_cgroup: version(&parents.pids),
        cpu_cgroup: version(&parents.cpu),
        cpu_usage_cgroup: version(&parents.cpu_usage),
        runs_as_root,
        unenforced,
    };
    Ok((capabilities, parents))
}

/// What stands in for a pids cgroup: `RLIMIT_NPROC` for an unprivileged node, nothing for root.
fn pids_fallback(reason: &Refusal, runs_as_root: bool) -> String {
    if runs_as_root {
        format!("no usable pids cgroup ({reason}), and RLIMIT_NPROC does not bind root")
    } else {
        format!(
            "no usable pids cgroup ({reason}); RLIMIT_NPROC is set instead, which counts every process and \
             thread of this user, the node's own included, not the job's alone"
        )
    }
}

/// `bwrap --version`, then the base sandbox running `/usr/bin/true`: bubblewrap is there and
/// can build namespaces here.
fn check_bwrap(bwrap: &Path) -> Result<String, SandboxError> {
    let unusable = |message: String| SandboxError::BwrapUnusable { bwrap: bwrap.to_owned(), message };
    let version = Command::new(bwrap).arg("--version").env_clear().stdin(Stdio::null()).output();
    let version = match version {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(SandboxError::BwrapMissing { searched: vec![bwrap.to_owned()] });
        }
        Err(error) => return Err(unusable(format!("it does not start: {error}"))),
        Ok(output) if !output.status.success() => return Err(unusable(lossy(&output.stderr))),
        Ok(output) => lossy(&output.stdout),
    };
    let mut trial = Command::new(bwrap);
    trial.args(bwrap::base_args()).args(bwrap::ROOT_READ_ONLY).args(["--", "/usr/bin/true"]);
    trial.env_clear().stdin(Stdio::null());
    let output = trial.output().map_err(|error| unusable(format!("it does not start: {error}")))?;
    if !output.status.success() {
        return Err(unusable(format!("a trial sandbox failed ({}): {}", output.status, lossy(&output.stderr))));
    }
    Ok(version)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

/// Why jobs cannot get a controller; its text is an [`Unenforced::reason`].
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("no cgroup hierarchy has the {controller} controller")]
    NotMounted { controller: &'static str },
    #[error("{} does not offer {controller} (not in its cgroup.controllers)", dir.display())]
    NotOffered { dir: PathBuf, controller: &'static str },
    #[error(
        "cannot enable {controller} for the children of {} ({source}); start the node in a delegated cgroup \
         whose cgroup.subtree_control enables it, with the node's own process in a leaf below",
        dir.display()
    )]
    CannotEnable { dir: PathBuf, controller: &'static str, source: std::io::Error },
    #[error("cannot make a child of {} ({source})", dir.display())]
    CannotMake { dir: PathBuf, source: std::io::Error },
    #[error("cannot write {file} in a child of {} ({source})", dir.display())]
    CannotWrite { dir: PathBuf, file: &'static str, source: std::io::Error },
    #[error("cannot remove the probe cgroup {} ({source})", dir.display())]
    CannotRemove { dir: PathBuf, source: std::io::Error },
}

/// Makes a child cgroup of `own`, writes the "no limit" value to the controller's limit file,
/// and removes it: `Ok` if jobs can get this controller.
fn try_controller(own: &OwnCgroup, controller: Controller) -> Result<(), Refusal> {
    if own.version == CgroupVersion::V2 {
        offer_to_children(&own.dir, controller)?;
    }
    let Some(file) = limit_file(own.version, controller) else { return Ok(()) };
    let name = format!("sgl-probe-{}-{}", std::process::id(), NEXT_PROBE.fetch_add(1, Ordering::Relaxed));
    let child = own.dir.join(name);
    fs::create_dir(&child).map_err(|source| Refusal::CannotMake { dir: own.dir.clone(), source })?;
    let written = fs::write(child.join(file), unlimited(own.version, controller))
        .map_err(|source| Refusal::CannotWrite { dir: own.dir.clone(), file, source });
    let removed = fs::remove_dir(&child).map_err(|source| Refusal::CannotRemove { dir: child, source });
    written.and(removed)
}

/// v2: the controller must be in `own`'s `cgroup.controllers`, and is enabled for its children
/// if it is not yet (which the kernel refuses while `own` holds processes, unless it is the
/// root: v2 keeps processes and controlled children apart).
fn offer_to_children(dir: &Path, controller: Controller) -> Result<(), Refusal> {
    let Some(name) = controller.v2_name() else { return Ok(()) };
    if !hierarchy::v2_offers(dir, name) {
        return Err(Refusal::NotOffered { dir: dir.to_owned(), controller: name });
    }
    let subtree = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&subtree).unwrap_or_default();
    if enabled.split_whitespace().any(|controller| controller == name) {
        return Ok(());
    }
    fs::write(&subtree, format!("+{name}")).map_err(|source| Refusal::CannotEnable {
        dir: dir.to_owned(),
        controller: name,
        source,
    })
}

/// The file a job's limit for `controller` is written to (`None`: no limit, only measuring).
fn limit_file(version: CgroupVersion, controller: Controller) -> Option<&'static str> {
    match (version, controller) {
        (CgroupVersion::V1, Controller::Memory) => Some("memory.limit_in_bytes"),
        (CgroupVersion::V2, Controller::Memory) => Some("memory.max"),
        (_, Controller::Pids) => Some("pids.max"),
        (CgroupVersion::V1, Controller::Cpu) => Some("cpu.cfs_quota_us"),
        (CgroupVersion::V2, Controller::Cpu) => Some("cpu.max"),
        (CgroupVersion::V1, Controller::CpuUsage) => Some("cpuacct.usage"),
        (CgroupVersion::V2, Controller::CpuUsage) => None,
    }
}

/// What each limit file takes for "no limit" (for `cpuacct.usage`: a reset to zero).
fn unlimited(version: CgroupVersion, controller: Controller) -> &'static str {
    match (version, controller) {
        (CgroupVersion::V1, Controller::Memory | Controller::Cpu) => "-1",
        (CgroupVersion::V1, Controller::CpuUsage) => "0",
        _ => "max",
    }
}
