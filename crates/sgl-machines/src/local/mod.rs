//! The local machine backend: machines are systemd-nspawn containers on the grid's own host,
//! each booting a full systemd and sshd from one shared read-only image through an overlay of
//! its own, in its own network namespace, with CPU and memory limits in cgroups, and reachable
//! by SSH on a port of the host that the backend forwards to the container.
//!
//! It needs root (mounts, network namespaces, cgroups, chroot, nspawn), systemd-nspawn
//! (Debian's `systemd-container`), iproute2, and an image built by
//! `.ci/install-machine-image`; [`LocalBackend::probe`] says which of these is missing. It
//! works on a host without systemd as PID 1: the cgroups are made by hand.
//!
//! A machine's folder (`<data_dir>/machines/{id}`) records everything needed to find its
//! processes, mounts, namespace and cgroups again, so a grid that restarts finds its slots taken
//! and [`LocalBackend::recover`] gives running machines their SSH ports back. Machines keep
//! running while the grid is down, but cannot be reached by SSH until it is back.

mod cgroup;
mod forward;
mod leftovers;
mod machine;
pub(crate) mod ops;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::BoxFuture;
use tokio::process::Child;

use self::cgroup::CgroupDir;
use self::forward::Forwarder;
use self::machine::Slot;
use crate::backend::{
    BackendError, BackendName, BackendPlan, BackendRegion, Capabilities, CreateSpec, Created, Leftover, LocalError,
    MachineBackend, ResizeSpec, Status,
};

/// The id of the local backend's one region.
pub const REGION: &str = "local";

/// Where the programs the backend runs are looked for by [`LocalBackend::probe`].
const TOOL_DIRS: [&str; 6] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
/// The programs the backend runs on the host.
const TOOLS: [&str; 6] = ["systemd-nspawn", "ip", "mount", "umount", "chroot", "sh"];

/// How the local backend is set up.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The machine image: a root file system with systemd and sshd, never written to (the
    /// folder `.ci/install-machine-image` prints).
    pub image: PathBuf,
    /// Where machines keep their files (`machines/{id}` below it): their disks' changes live
    /// here.
    pub data_dir: PathBuf,
    /// The plans it sells ([`LocalPlan::defaults`] unless configured).
    pub plans: Vec<LocalPlan>,
    /// How many machines may exist at once (4 unless configured).
    pub max_machines: u32,
    /// The host ports machines' SSH is forwarded from (22000-22999 unless configured).
    pub ssh_ports: RangeInclusive<u16>,
    /// The host address those ports listen on, which renters connect to (127.0.0.1 unless
    /// configured; a public address makes machines reachable from outside).
    pub public_host: IpAddr,
    /// The first address of the machines' private /30 networks (10.231.0.0 unless configured):
    /// machine `n` gets `base + 4n`, the host `+1` and the machine `+2`.
    pub subnet_base: Ipv4Addr,
}

impl LocalConfig {
    /// The defaults, for `image` and `data_dir`.
    pub fn new(image: PathBuf, data_dir: PathBuf) -> Self {
        Self {
            image,
            data_dir,
            plans: LocalPlan::defaults(),
            max_machines: 4,
            ssh_ports: 22000..=22999,
            public_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            subnet_base: Ipv4Addr::new(10, 231, 0, 0),
        }
    }
}

/// A plan of the local backend: what a machine's cgroup allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPlan {
    /// Its id, starting with `local:`.
    pub id: String,
    /// CPUs' worth of time per period (the CFS quota), not pinned cores.
    pub vcpus: u32,
    /// Memory, swap included, in MiB.
    pub memory_mb: u32,
    /// Disk in GB: advisory, the overlay is not limited.
    pub disk_gb: u32,
}

impl LocalPlan {
    /// `local:1c-512mb` (1 vCPU, 512 MiB, 5 GB) and `local:2c-1gb` (2 vCPUs, 1024 MiB, 10 GB).
    pub fn defaults() -> Vec<Self> {
        vec![
            Self { id: "local:1c-512mb".to_owned(), vcpus: 1, memory_mb: 512, disk_gb: 5 },
            Self { id: "local:2c-1gb".to_owned(), vcpus: 2, memory_mb: 1024, disk_gb: 10 },
        ]
    }
}

/// Machines as systemd-nspawn containers on this host.
#[derive(Debug)]
pub struct LocalBackend {
    config: LocalConfig,
    state: Mutex<State>,
    /// Held while a create picks its slot, so two creates of this backend never pick the same.
    claims: tokio::sync::Mutex<()>,
    /// One lock per machine: its operations never overlap.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What the backend holds for its machines besides their folders.
#[derive(Debug, Default)]
struct State {
    /// The SSH forwarders of running machines.
    forwarders: HashMap<String, Forwarder>,
    /// The systemd-nspawn processes this backend started, kept to reap them.
    children: HashMap<String, Child>,
    /// Slots and cgroups of machines seen, kept after their folder is gone so that
    /// [`LocalBackend::leftovers`] can still look for them.
    known: HashMap<String, Known>,
}

#[derive(Debug, Clone, Default)]
struct Known {
    slot: Option<Slot>,
    cgroups: Vec<CgroupDir>,
}

impl LocalBackend {
    /// A backend with `config`. Nothing is checked or touched yet: see [`LocalBackend::probe`]
    /// and [`LocalBackend::recover`].
    pub fn new(config: LocalConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
            claims: tokio::sync::Mutex::new(()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Why this backend cannot run on this host, if it cannot: not root, a program missing, or
    /// no image (a folder without systemd and sshd is no image).
    pub fn probe(&self) -> Result<(), LocalError> {
        if !rustix::process::geteuid().is_root() {
            return Err(LocalError::NotRoot);
        }
        if let Some(tool) =
            TOOLS.into_iter().find(|tool| !TOOL_DIRS.iter().any(|dir| Path::new(dir).join(tool).is_file()))
        {
            return Err(LocalError::MissingTool(tool));
        }
        let image = &self.config.image;
        if !image.join("usr/lib/systemd/systemd").is_file() || !image.join("usr/sbin/sshd").is_file() {
            return Err(LocalError::NoImage(image.clone()));
        }
        Ok(())
    }

    /// After a restart: gives every machine that is still running its SSH forwarder back (on
    /// the port it had, when that is free). Returns the ids of the machines it found running.
    pub async fn recover(&self) -> Result<Vec<String>, LocalError> {
        let mut running = Vec::new();
        for machine in machine::all(&self.config.data_dir) {
            let _guard = self.lock(machine.id()).await;
            if machine.is_stopped() || !self.is_alive(&machine) {
                continue;
            }
            if let Some(slot) = machine.slot() {
                self.open_forwarder(&machine, Slot(slot)).await?;
                running.push(machine.id().to_owned());
            }
        }
        Ok(running)
    }

    /// Stops every SSH forwarder and waits until their ports are free, for a grid that shuts
    /// down: the machines keep running, and [`LocalBackend::recover`] in the next process gives
    /// them their ports back.
    pub async fn shutdown(&self) {
        let forwarders: Vec<Forwarder> = self.state().forwarders.drain().map(|(_, forwarder)| forwarder).collect();
        for forwarder in forwarders {
            forwarder.close().await;
        }
    }

    fn plan(&self, id: &str) -> Result<&LocalPlan, BackendError> {
        let plan = self.config.plans.iter().find(|plan| plan.id == id);
        plan.ok_or(BackendError::Unsupported("a plan the local backend does not sell"))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still consistent entry by entry.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(id.to_owned()).or_default())
        };
        lock.lock_owned().await
    }
}

impl MachineBackend for LocalBackend {
    fn name(&self) -> BackendName {
        BackendName::Local
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { password_login: true, downgrade: true, disk_growth_permanent: false }
    }

    fn plans(&self) -> BoxFuture<'_, Result<Vec<BackendPlan>, BackendError>> {
        let plans = self.config.plans.iter().map(|plan| BackendPlan {
            id: plan.id.clone(),
            vcpus: plan.vcpus,
            memory_mb: plan.memory_mb,
            disk_gb: plan.disk_gb,
            gpu: None,
            monthly_micros: 0,
            regions: vec![REGION.to_owned()],
        });
        let plans = plans.collect();
        Box::pin(async move { Ok(plans) })
    }

    fn regions(&self) -> BoxFuture<'_, Result<Vec<BackendRegion>, BackendError>> {
        let region = BackendRegion { id: REGION.to_owned(), city: "this host".to_owned(), country: String::new() };
        Box::pin(async move { Ok(vec![region]) })
    }

    fn create<'a>(&'a self, spec: &'a CreateSpec) -> BoxFuture<'a, Result<Created, BackendError>> {
        Box::pin(self.create_machine(spec))
    }

    fn status<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<Status, BackendError>> {
        Box::pin(async move { self.machine_status(provider_id) })
    }

    fn stop<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.stop_machine(provider_id))
    }

    fn start<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.start_machine(provider_id))
    }

    fn resize<'a>(&'a self, provider_id: &'a str, to: &'a ResizeSpec) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.resize_machine(provider_id, to))
    }

    fn destroy<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.destroy_machine(provider_id))
    }

    fn leftovers<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<Vec<Leftover>, BackendError>> {
        Box::pin(async move { self.machine_leftovers(provider_id) })
    }
}
