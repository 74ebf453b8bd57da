//! One local machine on the host: its names, its slot's addresses, and its folder
//! `<data_dir>/machines/{id}` with the small files that let a restarted grid find everything of
//! it again (`slot`, `pid`, `port`, `limits`, `cgroups`, `authorized_key`, `stopped`) beside the
//! overlay's `upper`, `work` and `root`.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::cgroup::{self, CgroupDir, Limits};
use crate::backend::LocalError;
use crate::machine_id::MachineId;

/// A machine's names and folder.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    id: MachineId,
    dir: PathBuf,
}

impl Machine {
    /// The machine `id` under `data_dir`, if `id` can name one (see
    /// [`LocalError::InvalidMachineId`]).
    pub(crate) fn new(data_dir: &Path, id: &str) -> Result<Self, LocalError> {
        let id = MachineId::new(id)?;
        Ok(Self { dir: machines_dir(data_dir).join(id.as_str()), id })
    }

    pub(crate) fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The container's hostname: the id as a valid hostname (`vm_ab12` → `vm-ab12`).
    pub(crate) fn hostname(&self) -> String {
        self.id.hostname()
    }

    /// systemd-nspawn's `--machine=` name, also the name of its cgroups: `sgl-` and the hostname.
    pub(crate) fn name(&self) -> String {
        self.id.name()
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub(crate) fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// The overlay's mount point, systemd-nspawn's `-D`.
    pub(crate) fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The renter's public key, given to each boot as a systemd credential.
    pub(crate) fn key_file(&self) -> PathBuf {
        self.dir.join("authorized_key")
    }

    /// What systemd-nspawn prints: the machine's console, rewritten at each boot.
    pub(crate) fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    pub(crate) fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    pub(crate) fn slot(&self) -> Option<u32> {
        self.read_number("slot")
    }

    pub(crate) fn set_slot(&self, slot: u32) -> Result<(), LocalError> {
        self.write_file("slot", &slot.to_string())
    }

    /// The pid systemd-nspawn had when it was last started.
    pub(crate) fn pid(&self) -> Option<i32> {
        self.read_number("pid")
    }

    pub(crate) fn set_pid(&self, pid: u32) -> Result<(), LocalError> {
        self.write_file("pid", &pid.to_string())
    }

    /// The host port its SSH forwarder listens on (kept across stops and restarts).
    pub(crate) fn port(&self) -> Option<u16> {
        self.read_number("port")
    }

    pub(crate) fn set_port(&self, port: u16) -> Result<(), LocalError> {
        self.write_file("port", &port.to_string())
    }

    pub(crate) fn limits(&self) -> Option<Limits> {
        let text = fs::read_to_string(self.dir.join("limits")).ok()?;
        let (vcpus, memory_mb) = text.trim().split_once(' ')?;
        Some(Limits { vcpus: vcpus.parse().ok()?, memory_mb: memory_mb.parse().ok()? })
    }

    pub(crate) fn set_limits(&self, limits: Limits) -> Result<(), LocalError> {
        self.write_file("limits", &format!("{} {}", limits.vcpus, limits.memory_mb))
    }

    /// The cgroup directories it was given (none recorded: none made yet).
    pub(crate) fn cgroups(&self) -> Vec<CgroupDir> {
        fs::read_to_string(self.dir.join("cgroups")).map(|text| cgroup::from_record(&text)).unwrap_or_default()
    }

    pub(crate) fn set_cgroups(&self, dirs: &[CgroupDir]) -> Result<(), LocalError> {
        self.write_file("cgroups", &cgroup::to_record(dirs))
    }

    /// Stopped on purpose (by `stop`), as opposed to booting or powered off from inside.
    pub(crate) fn is_stopped(&self) -> bool {
        self.dir.join("stopped").is_file()
    }

    pub(crate) fn set_stopped(&self, stopped: bool) -> Result<(), LocalError> {
        let marker = self.dir.join("stopped");
        if stopped {
            return self.write_file("stopped", "");
        }
        match fs::remove_file(marker) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    fn read_number<T: std::str::FromStr>(&self, file: &str) -> Option<T> {
        fs::read_to_string(self.dir.join(file)).ok()?.trim().parse().ok()
    }

    fn write_file(&self, file: &str, text: &str) -> Result<(), LocalError> {
        Ok(fs::write(self.dir.join(file), text)?)
    }
}

/// Where the machines' folders are.
pub(crate) fn machines_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("machines")
}

/// The machines with a folder under `data_dir`.
pub(crate) fn all(data_dir: &Path) -> Vec<Machine> {
    let Ok(entries) = fs::read_dir(machines_dir(data_dir)) else { return Vec::new() };
    let ids = entries.flatten().filter_map(|entry| entry.file_name().into_string().ok());
    ids.filter_map(|id| Machine::new(data_dir, &id).ok()).collect()
}

/// A machine's slot: its network namespace, veth pair and /30 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(pub(crate) u32);

impl Slot {
    /// The network namespace, `sglm{n}` (in `/run/netns`).
    pub(crate) fn netns(self) -> String {
        format!("sglm{}", self.0)
    }

    /// The host's end of the veth pair (link names stay under 15 characters).
    pub(crate) fn host_link(self) -> String {
        format!("sglm{}h", self.0)
    }

    /// The container's end, moved into the namespace.
    pub(crate) fn guest_link(self) -> String {
        format!("sglm{}c", self.0)
    }

    /// The slot's /30 network: `base + 4·n`, or `None` past the end of the address space.
    fn network(self, base: Ipv4Addr) -> Option<u32> {
        u32::from(base).checked_add(self.0.checked_mul(4)?).filter(|network| network.checked_add(3).is_some())
    }

    /// The host's address in the /30.
    pub(crate) fn host_addr(self, base: Ipv4Addr) -> Option<Ipv4Addr> {
        self.network(base).map(|network| Ipv4Addr::from(network + 1))
    }

    /// The container's address in the /30, where its sshd listens.
    pub(crate) fn guest_addr(self, base: Ipv4Addr) -> Option<Ipv4Addr> {
        self.network(base).map(|network| Ipv4Addr::from(network + 2))
    }

    /// Whether the host has this slot's namespace or link, whoever made them.
    pub(crate) fn taken_on_host(self) -> bool {
        Path::new("/run/netns").join(self.netns()).exists()
            || Path::new("/sys/class/net").join(self.host_link()).exists()
    }
}
