//! The `[machines]` section: which backends sell machines, what local machines cost, the
//! markup on cloud prices, the readiness deadline and the grace period after expiry.
//!
//! ```toml
//! [machines]
//! backends = ["local"]             # local, local-vm, vultr, digitalocean; none: none sold
//! grace_hours = 24                 # an expired machine is stopped, then destroyed this much later
//! ready_deadline_secs = 600        # not reachable by SSH by then: destroyed and refunded
//! webhook_allow_private = false    # webhooks only to https and public hosts
//!
//! [machines.local]
//! image = "/var/lib/sgl-grid/machine-image/rootfs"   # built by .ci/install-machine-image
//! max_machines = 4
//! ssh_ports = [22000, 22999]
//! public_host = "127.0.0.1"        # the address renters SSH to
//! rates = { "local:1c-512mb" = 5000, "local:2c-1gb" = 10000 }   # micro-USD per hour
//!
//! [machines.vultr]                 # the token from SGL_MACHINES_VULTR_API_KEY or api_key_file
//! api_key_file = "/etc/sgl-grid/vultr.token"
//! markup_bps = 1000                # 10 % over the provider's price
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use sgl_machines::backend::BackendName;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MachinesFile {
    backends: Option<Vec<String>>,
    grace_hours: Option<u32>,
    ready_deadline_secs: Option<u64>,
    webhook_allow_private: Option<bool>,
    local: Option<LocalFile>,
    vultr: Option<CloudFile>,
    digitalocean: Option<CloudFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalFile {
    image: Option<PathBuf>,
    vm_image: Option<PathBuf>,
    vm_software_emulation: Option<bool>,
    vm_ssh_ports: Option<(u16, u16)>,
    max_machines: Option<u32>,
    ssh_ports: Option<(u16, u16)>,
    public_host: Option<IpAddr>,
    rates: Option<BTreeMap<String, i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudFile {
    api_url: Option<String>,
    api_key_file: Option<PathBuf>,
    markup_bps: Option<u32>,
}

/// The local backend's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalMachines {
    /// The Debian root file system machines boot from (none: the newest one
    /// `.ci/install-machine-image` built).
    pub image: Option<PathBuf>,
    /// The QEMU machines' image directory (`rootfs`, `vmlinuz`, `initrd.img`; none: the newest
    /// `.ci/install-machine-image --with-vm-kernel` built).
    pub vm_image: Option<PathBuf>,
    /// Offer QEMU machines under software emulation (TCG) where the host has no usable KVM: they
    /// boot in tens of seconds and run many times slower. Off: QEMU machines need real KVM.
    pub vm_software_emulation: bool,
    /// The host ports QEMU machines' SSH is forwarded from.
    pub vm_ssh_ports: (u16, u16),
    /// At most this many machines at once.
    pub max_machines: u32,
    /// The host ports SSH is forwarded from.
    pub ssh_ports: (u16, u16),
    /// The address renters SSH to.
    pub public_host: IpAddr,
    /// Each local plan's price, micro-USD per hour.
    pub rates: BTreeMap<String, i64>,
}

impl Default for LocalMachines {
    fn default() -> Self {
        Self {
            image: None,
            vm_image: None,
            vm_software_emulation: false,
            vm_ssh_ports: (23_000, 23_999),
            max_machines: 4,
            ssh_ports: (22_000, 22_999),
            public_host: IpAddr::from([127, 0, 0, 1]),
            rates: BTreeMap::from([
                ("local:1c-512mb".to_owned(), 5_000),
                ("local:2c-1gb".to_owned(), 10_000),
                ("local-vm:1c-1gb".to_owned(), 8_000),
                ("local-vm:2c-2gb".to_owned(), 16_000),
            ]),
        }
    }
}

/// A cloud backend's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloudMachines {
    /// The API's base URL (none: the provider's own).
    pub api_url: Option<String>,
    /// A file holding the API token (the environment's `SGL_MACHINES_{VULTR,DIGITALOCEAN}_API_KEY`
    /// wins); never logged.
    pub api_key_file: Option<PathBuf>,
    /// The grid's markup over the provider's price, basis points.
    pub markup_bps: u32,
}

/// Machines' settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MachinesConfig {
    /// The backends that sell machines; empty: none are sold.
    pub backends: Vec<BackendName>,
    /// Between expiry (the machine stopped) and destruction.
    pub grace_hours: u32,
    /// A machine not reachable by SSH this long after it was asked for is destroyed and refunded.
    pub ready_deadline_secs: u64,
    /// Webhook URLs may be `http` and name loopback or private addresses (for tests and private
    /// networks; off: only `https` to a public host name or address).
    pub webhook_allow_private: bool,
    /// `[machines.local]`.
    pub local: LocalMachines,
    /// `[machines.vultr]`.
    pub vultr: CloudMachines,
    /// `[machines.digitalocean]`.
    pub digitalocean: CloudMachines,
}

impl Default for MachinesConfig {
    fn default() -> Self {
        Self {
            backends: Vec::new(),
            grace_hours: 24,
            ready_deadline_secs: 600,
            webhook_allow_private: false,
            local: LocalMachines::default(),
            vultr: CloudMachines { markup_bps: 1_000, ..CloudMachines::default() },
            digitalocean: CloudMachines { markup_bps: 1_000, ..CloudMachines::default() },
        }
    }
}

impl MachinesConfig {
    /// The file's section over the defaults; `SGL_MACHINES_BACKENDS` (comma-separated, empty for
    /// none) over both.
    pub(super) fn from_sources(
        file: Option<MachinesFile>,
        env: &BTreeMap<String, String>,
        problems: &mut Vec<String>,
    ) -> Self {
        let defaults = Self::default();
        let file = file.unwrap_or_default();
        let names = match env.get("SGL_MACHINES_BACKENDS") {
            Some(text) => Some(text.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect()),
            None => file.backends,
        };
        let mut backends = Vec::new();
        for name in names.unwrap_or_default() {
            match BackendName::from_name(&name) {
                Some(backend) if !backends.contains(&backend) => backends.push(backend),
                Some(_) => {}
                None => {
                    problems.push(format!("machines.backends: unknown backend {name:?} (local, vultr, digitalocean)"))
                }
            }
        }
        let local = file.local.unwrap_or_default();
        let local = LocalMachines {
            image: local.image,
            vm_image: local.vm_image,
            vm_software_emulation: local.vm_software_emulation.unwrap_or(defaults.local.vm_software_emulation),
            vm_ssh_ports: local.vm_ssh_ports.unwrap_or(defaults.local.vm_ssh_ports),
            max_machines: local.max_machines.unwrap_or(defaults.local.max_machines),
            ssh_ports: local.ssh_ports.unwrap_or(defaults.local.ssh_ports),
            public_host: local.public_host.unwrap_or(defaults.local.public_host),
            rates: local.rates.unwrap_or(defaults.local.rates),
        };
        if local.ssh_ports.0 == 0 || local.ssh_ports.0 > local.ssh_ports.1 {
            problems.push("machines.local.ssh_ports: give [first, last] with 0 < first <= last".to_owned());
        }
        for (plan, rate) in &local.rates {
            let local_id = plan.starts_with("local:") || plan.starts_with("local-vm:");
            if !local_id || *rate <= 0 {
                problems.push(format!(
                    "machines.local.rates: {plan:?} needs a local: or local-vm: id and a rate above zero"
                ));
            }
        }
        let cloud = |file: Option<CloudFile>, default: &CloudMachines| {
            let file = file.unwrap_or_default();
            CloudMachines {
                api_url: file.api_url,
                api_key_file: file.api_key_file,
                markup_bps: file.markup_bps.unwrap_or(default.markup_bps),
            }
        };
        Self {
            backends,
            grace_hours: file.grace_hours.unwrap_or(defaults.grace_hours),
            ready_deadline_secs: file.ready_deadline_secs.unwrap_or(defaults.ready_deadline_secs).max(1),
            webhook_allow_private: file.webhook_allow_private.unwrap_or(defaults.webhook_allow_private),
            local,
            vultr: cloud(file.vultr, &defaults.vultr),
            digitalocean: cloud(file.digitalocean, &defaults.digitalocean),
        }
    }

    /// The grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        i64::from(self.grace_hours) * 3_600_000
    }
}
