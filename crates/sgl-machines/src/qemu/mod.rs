//! The QEMU machine backend: machines are virtual machines on the grid's own host, each with
//! its own kernel and an ext4 disk image of its own made from the VM image
//! `.ci/install-machine-image --with-vm-kernel` builds (the local backend's Debian 12 with
//! Debian's cloud kernel). Plans `local-vm:…`, region `local`.
//!
//! A machine boots with `-kernel`/`-initrd` from the image, gets the renter's key as the systemd
//! credential `ssh.authorized_keys.root` (an SMBIOS OEM string read from a file, so the key stays
//! out of process listings) or a root password written into its disk, and is reached by SSH on
//! a port of the host that QEMU's user-mode network forwards to its sshd. The guest has no
//! other way out (`restrict=on`): like a local container, it has no internet access. QEMU is
//! controlled over QMP (`system_powerdown`).
//!
//! Acceleration is chosen by the grid ([`Accel::choose`]): KVM only where `/dev/kvm` is real
//! VT-x/AMD-V ([`Kvm::Hardware`]); TCG (software emulation, about 30-40 s from start to SSH on
//! this project's 2-core machines) only when the operator opts in; otherwise the backend is off,
//! with [`Kvm::why_not`]'s reason.
//!
//! Everything of a machine lives in its folder `<data_dir>/vms/{id}` (disk, records, QMP socket,
//! console) and in its QEMU process, whose command line carries `-name sgl-{hostname}`.
//! Machines keep running while the grid is down; their SSH port is QEMU's own, so they stay
//! reachable, and a new backend finds them from their folders.

mod disk;
mod leftovers;
mod ops;
mod qmp;
mod steps;
#[cfg(test)]
mod tests;
mod vm;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::BoxFuture;
use tokio::process::Child;

use crate::backend::{
    BackendError, BackendName, BackendPlan, BackendRegion, Capabilities, CreateSpec, Created, Leftover, LocalError,
    MachineBackend, ResizeSpec, Status,
};
use crate::kvm::Kvm;

/// The id of the QEMU backend's one region (the same host as the local backend's).
pub const REGION: &str = "local";

/// Where the programs the backend runs are looked for by [`QemuBackend::probe`].
const TOOL_DIRS: [&str; 6] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
/// The programs the backend runs on the host.
const TOOLS: [&str; 8] = ["qemu-system-x86_64", "mke2fs", "e2fsck", "resize2fs", "unshare", "mount", "chroot", "sh"];

/// How the QEMU backend is set up.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The VM image: the folder `.ci/install-machine-image --with-vm-kernel` prints, holding
    /// `rootfs`, `vmlinuz` and `initrd.img`; never written to.
    pub vm_dir: PathBuf,
    /// Where machines keep their files (`vms/{id}` below it), their disks among them.
    pub data_dir: PathBuf,
    /// The plans it sells ([`QemuPlan::defaults`] unless configured).
    pub plans: Vec<QemuPlan>,
    /// How many machines may exist at once, running or stopped (2 unless configured).
    pub max_machines: u32,
    /// The host ports machines' SSH is forwarded from (23000-23999 unless configured).
    pub ssh_ports: RangeInclusive<u16>,
    /// The host address those ports listen on (127.0.0.1 unless configured).
    pub public_host: IpAddr,
    /// How QEMU runs the machines' CPUs ([`Accel::choose`]).
    pub accel: Accel,
}

impl QemuConfig {
    /// The defaults, for `vm_dir`, `data_dir` and `accel`.
    pub fn new(vm_dir: PathBuf, data_dir: PathBuf, accel: Accel) -> Self {
        Self {
            vm_dir,
            data_dir,
            plans: QemuPlan::defaults(),
            max_machines: 2,
            ssh_ports: 23000..=23999,
            public_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            accel,
        }
    }
}

/// How QEMU runs the machines' CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation (`-accel kvm -cpu host,-arch-capabilities`): needs real VT-x or
    /// AMD-V behind `/dev/kvm`.
    Kvm,
    /// Software emulation (`-accel tcg -cpu max`): works everywhere, boots in tens of seconds and
    /// runs many times slower.
    Tcg,
}

/// Whether the operator accepts software emulation where KVM cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcgPolicy {
    /// Fall back to TCG.
    Allowed,
    /// No QEMU machines without KVM.
    Refused,
}

impl Accel {
    /// The acceleration for a host whose KVM is `kvm`: KVM on [`Kvm::Hardware`], else TCG when
    /// the operator allows it, else the reason the backend is off.
    pub fn choose(kvm: Kvm, tcg: TcgPolicy) -> Result<Self, &'static str> {
        match (kvm.why_not(), tcg) {
            (None, _) => Ok(Self::Kvm),
            (Some(_), TcgPolicy::Allowed) => Ok(Self::Tcg),
            (Some(reason), TcgPolicy::Refused) => Err(reason),
        }
    }
}

/// A plan of the QEMU backend: the machine's virtual hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuPlan {
    /// Its id, starting with `local-vm:`.
    pub id: String,
    /// Virtual CPUs (`-smp`).
    pub vcpus: u32,
    /// Memory in MiB (`-m`).
    pub memory_mb: u32,
    /// Disk in GiB: the size of the machine's ext4 image (a sparse file).
    pub disk_gb: u32,
}

impl QemuPlan {
    /// `local-vm:1c-1gb` (1 vCPU, 1024 MiB, 4 GiB) and `local-vm:2c-2gb` (2 vCPUs, 2048 MiB,
    /// 8 GiB).
    pub fn defaults() -> Vec<Self> {
        vec![
            Self { id: "local-vm:1c-1gb".to_owned(), vcpus: 1, memory_mb: 1024, disk_gb: 4 },
            Self { id: "local-vm:2c-2gb".to_owned(), vcpus: 2, memory_mb: 2048, disk_gb: 8 },
        ]
    }
}

/// Machines as QEMU virtual machines on this host.
#[derive(Debug)]
pub struct QemuBackend {
    config: QemuConfig,
    /// The QEMU processes this backend started, kept to reap them.
    children: Mutex<HashMap<String, Child>>,
    /// Held while a create claims its folder or a boot picks its port, so that two never pick
    /// the same.
    claims: tokio::sync::Mutex<()>,
    /// One lock per machine: its operations never overlap.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl QemuBackend {
    /// A backend with `config`. Nothing is checked or touched yet: see [`QemuBackend::probe`].
    pub fn new(config: QemuConfig) -> Self {
        Self {
            config,
            children: Mutex::new(HashMap::new()),
            claims: tokio::sync::Mutex::new(()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Why this backend cannot run on this host, if it cannot: not root, a program missing, no
    /// VM image, or KVM asked for where it cannot boot a stock kernel.
    pub fn probe(&self) -> Result<(), LocalError> {
        if !rustix::process::geteuid().is_root() {
            return Err(LocalError::NotRoot);
        }
        if let Some(tool) =
            TOOLS.into_iter().find(|tool| !TOOL_DIRS.iter().any(|dir| Path::new(dir).join(tool).is_file()))
        {
            return Err(LocalError::MissingVmTool(tool));
        }
        let vm_dir = &self.config.vm_dir;
        let files = ["vmlinuz", "initrd.img", "rootfs/usr/lib/systemd/systemd", "rootfs/usr/sbin/sshd"];
        if !files.iter().all(|file| vm_dir.join(file).is_file()) {
            return Err(LocalError::NoVmImage(vm_dir.clone()));
        }
        if self.config.accel == Accel::Kvm
            && let Some(reason) = Kvm::detect(Path::new("/")).why_not()
        {
            return Err(LocalError::NoAcceleration(reason));
        }
        Ok(())
    }

    fn plan(&self, id: &str) -> Result<&QemuPlan, BackendError> {
        let plan = self.config.plans.iter().find(|plan| plan.id == id);
        plan.ok_or(BackendError::Unsupported("a plan the QEMU backend does not sell"))
    }

    fn children(&self) -> MutexGuard<'_, HashMap<String, Child>> {
        // A panic while holding the lock leaves a map that is still consistent entry by entry.
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(locks.entry(id.to_owned()).or_default())
        };
        lock.lock_owned().await
    }
}

impl MachineBackend for QemuBackend {
    fn name(&self) -> BackendName {
        BackendName::LocalVm
    }

    fn capabilities(&self) -> Capabilities {
        // CPUs and memory go down as well as up; a disk only grows, and stays grown.
        Capabilities { password_login: true, downgrade: true, disk_growth_permanent: true }
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
