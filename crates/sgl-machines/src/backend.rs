//! The one trait every place machines come from implements: the local host (systemd-nspawn
//! containers, or QEMU virtual machines), Vultr and DigitalOcean. The grid's service drives a machine's life through it and never
//! knows which backend it talks to; a backend knows nothing of money or accounts.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use futures_util::future::BoxFuture;
use zeroize::Zeroizing;

/// Which backend a plan and its machines belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendName {
    /// Containers on the grid's own host (systemd-nspawn).
    Local,
    /// Virtual machines on the grid's own host (QEMU), plans `local-vm:…`.
    LocalVm,
    /// Vultr's v2 API.
    Vultr,
    /// DigitalOcean's v2 API.
    DigitalOcean,
}

impl BackendName {
    /// The backend's name on the wire, in the store and in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::LocalVm => "local-vm",
            Self::Vultr => "vultr",
            Self::DigitalOcean => "digitalocean",
        }
    }

    /// The backend a name stands for, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Local, Self::LocalVm, Self::Vultr, Self::DigitalOcean].into_iter().find(|b| b.as_str() == name)
    }

    /// The backend a plan id belongs to: `local-vm:`, `local:` and `do:` prefixes, Vultr's ids
    /// otherwise.
    pub fn of_plan(plan: &str) -> Self {
        if plan.starts_with("local-vm:") {
            Self::LocalVm
        } else if plan.starts_with("local:") {
            Self::Local
        } else if plan.starts_with("do:") {
            Self::DigitalOcean
        } else {
            Self::Vultr
        }
    }
}

/// What a backend can and cannot do, which the grid's checks follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// A machine made without an SSH key gets a root password the renter can read once.
    pub password_login: bool,
    /// A machine can move to a smaller plan.
    pub downgrade: bool,
    /// Growing the disk in a resize cannot be undone (the renter must confirm it).
    pub disk_growth_permanent: bool,
}

/// A plan as the backend sells it, before the grid's markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendPlan {
    /// The plan's id as the grid shows it (`local:1c-512mb`, `local-vm:1c-1gb`, `vc2-1c-1gb`,
    /// `do:s-1vcpu-1gb`).
    pub id: String,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// Disk in GB (advisory on the local backend: the overlay is not limited).
    pub disk_gb: u32,
    /// The GPU, if the plan has one.
    pub gpu: Option<Gpu>,
    /// What the provider charges per month of 672 hours, in micro-USD (0 on the local backend,
    /// whose rates come from configuration).
    pub monthly_micros: i64,
    /// The regions the plan can be made in.
    pub regions: Vec<String>,
}

/// A plan's GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// The model (`NVIDIA_A100`).
    pub model: String,
    /// How many.
    pub count: u32,
    /// Video memory in GB.
    pub vram_gb: u32,
}

/// A region as the backend lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRegion {
    /// Its id as the grid shows it (`local`, `ewr`, `do:nyc3`).
    pub id: String,
    /// City.
    pub city: String,
    /// Country code.
    pub country: String,
}

/// What the grid asks a backend to make.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    /// The grid's id of the machine (`vm_…`), used to name and tag it at the provider.
    pub machine_id: String,
    /// The plan (an id of [`BackendPlan::id`]).
    pub plan: BackendPlan,
    /// The region.
    pub region: String,
    /// The provider's operating system id, where it has one.
    pub os_id: Option<u32>,
    /// The renter's label.
    pub label: Option<String>,
    /// The renter's SSH public key (one line, already checked), or none for a password.
    pub ssh_public_key: Option<String>,
}

/// What a create answered: the provider's id and, for a machine without a key, its root
/// password (Vultr shows it in this answer only).
#[derive(Debug)]
pub struct Created {
    /// The provider's id of the machine.
    pub provider_id: String,
    /// The one-time root password, if the backend made one.
    pub password: Option<Password>,
}

/// A root password, wiped from memory when dropped and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: String) -> Self {
        Self(Zeroizing::new(password))
    }

    /// The password itself, to store (encrypted) or show once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Where a machine stands at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Being made or booting; not reachable yet.
    Provisioning,
    /// Running, with the address its SSH server listens on.
    Running {
        /// Host and port to SSH to.
        ssh: SocketAddr,
    },
    /// Stopped (powered off), its disk kept.
    Stopped,
    /// Gone at the provider.
    Gone,
}

/// A resize as the backend carries it out.
#[derive(Debug, Clone)]
pub struct ResizeSpec {
    /// The new plan.
    pub plan: BackendPlan,
    /// Grow the disk too (permanent where [`Capabilities::disk_growth_permanent`]).
    pub grow_disk: bool,
}

/// Something of a machine still on the host or at the provider after a destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// What kind of thing (`process`, `mount`, `netns`, `link`, `cgroup`, `directory`, `instance`).
    pub kind: &'static str,
    /// Which one.
    pub what: String,
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.what)
    }
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The provider refused the request (a 4xx other than 404 and 429); retrying will not help.
    #[error("the provider refused: {message} (HTTP {status})")]
    Rejected {
        /// The provider's HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The provider kept answering 429 after the client's retries.
    #[error("the provider's rate limit held after retries")]
    RateLimited,
    /// The provider failed or could not be reached (5xx, timeouts, an errored action).
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The machine is not at the provider.
    #[error("no such machine at the provider")]
    NotFound,
    /// The backend cannot do this (a Vultr downgrade, a password on DigitalOcean).
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// The local backend failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// Why the local backend failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The local backend needs root (mounts, network namespaces, cgroups).
    #[error("the local machine backend needs root")]
    NotRoot,
    /// A program it runs is not installed.
    #[error("`{0}` is not installed (Debian: apt-get install systemd-container iproute2 openssh-client)")]
    MissingTool(&'static str),
    /// The machine image is not there.
    #[error("no machine image at {0} (build one with .ci/install-machine-image)")]
    NoImage(PathBuf),
    /// A program the QEMU backend runs is not installed.
    #[error("`{0}` is not installed (Debian: apt-get install qemu-system-x86 e2fsprogs util-linux)")]
    MissingVmTool(&'static str),
    /// The QEMU backend's image (`rootfs`, `vmlinuz`, `initrd.img`) is not there.
    #[error("no VM image at {0} (build one with .ci/install-machine-image --with-vm-kernel)")]
    NoVmImage(PathBuf),
    /// The QEMU backend is set to use KVM, and this host's KVM cannot boot its machines.
    #[error("{0}")]
    NoAcceleration(&'static str),
    /// A folder the QEMU backend cannot use: QEMU's option syntax would misread its path.
    #[error("{0}: the QEMU backend needs a UTF-8 path without `,` or `:`")]
    UnusablePath(PathBuf),
    /// Every slot (address, port) is taken.
    #[error("no free machine slot on this host")]
    NoFreeSlot,
    /// A machine id the local backend cannot use as a name on the host (it names a directory, a
    /// cgroup and the container's hostname): 1 to 60 ASCII letters, digits, `_` or `-`, starting
    /// with a letter or a digit.
    #[error("`{0}` cannot name a local machine (1-60 letters, digits, `_` or `-`)")]
    InvalidMachineId(String),
    /// A machine with this id is already on the host.
    #[error("a local machine `{0}` already exists")]
    AlreadyExists(String),
    /// A destroy left these things of the machine on the host.
    #[error("the machine is not completely removed: {}", list_leftovers(.0))]
    Leftovers(Vec<Leftover>),
    /// A step of making or removing a machine failed.
    #[error("{step} failed (exit {status:?}): {stderr_tail}")]
    Step {
        /// The step (`mount overlay`, `ip netns add`, …).
        step: &'static str,
        /// Its exit status, if it ran.
        status: Option<i32>,
        /// The end of what it wrote to stderr.
        stderr_tail: String,
    },
    /// An I/O error on the host.
    #[error("local machine I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn list_leftovers(leftovers: &[Leftover]) -> String {
    leftovers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// A place machines come from. Every method is idempotent where the provider allows it:
/// destroying a machine that is gone is `Ok`.
pub trait MachineBackend: Send + Sync + fmt::Debug {
    /// Which backend this is.
    fn name(&self) -> BackendName;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// The plans it sells now.
    fn plans(&self) -> BoxFuture<'_, Result<Vec<BackendPlan>, BackendError>>;

    /// The regions it has.
    fn regions(&self) -> BoxFuture<'_, Result<Vec<BackendRegion>, BackendError>>;

    /// Makes a machine; it is reachable later (see [`MachineBackend::status`]).
    fn create<'a>(&'a self, spec: &'a CreateSpec) -> BoxFuture<'a, Result<Created, BackendError>>;

    /// Where the machine stands.
    fn status<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<Status, BackendError>>;

    /// Stops (powers off) a machine, keeping its disk.
    fn stop<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Starts a stopped machine again.
    fn start<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Moves a machine to another plan, keeping its disk.
    fn resize<'a>(&'a self, provider_id: &'a str, to: &'a ResizeSpec) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Removes a machine and everything of it; `Ok` only when nothing is left.
    fn destroy<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;

    /// What of a machine is still there: empty after a successful destroy.
    fn leftovers<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<Vec<Leftover>, BackendError>>;
}

#[cfg(test)]
mod tests {
    //! Backend names and plan prefixes; a password never prints.

    use super::*;

    #[test]
    fn a_plan_id_names_its_backend() {
        assert_eq!(BackendName::of_plan("local:1c-512mb"), BackendName::Local);
        assert_eq!(BackendName::of_plan("local-vm:1c-1gb"), BackendName::LocalVm);
        assert_eq!(BackendName::of_plan("local-vmx:1c"), BackendName::Vultr);
        assert_eq!(BackendName::of_plan("do:s-1vcpu-1gb"), BackendName::DigitalOcean);
        assert_eq!(BackendName::of_plan("vc2-1c-1gb"), BackendName::Vultr);
        assert_eq!(BackendName::of_plan("vcg-a100-1c-6g-4vram"), BackendName::Vultr);
        for name in [BackendName::Local, BackendName::LocalVm, BackendName::Vultr, BackendName::DigitalOcean] {
            assert_eq!(BackendName::from_name(name.as_str()), Some(name));
        }
        assert_eq!(BackendName::from_name("aws"), None);
    }

    #[test]
    fn a_password_never_prints() {
        let password = Password::new("hunter2-secret".into());
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        let created = Created { provider_id: "x".into(), password: Some(password) };
        assert!(!format!("{created:?}").contains("hunter2"));
    }
}
