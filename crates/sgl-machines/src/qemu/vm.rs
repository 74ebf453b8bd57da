//! One QEMU machine on the host: its names and its folder `<data_dir>/vms/{id}`, which holds its
//! disk (`disk.img`), QMP socket (`qmp.sock`), console (`console.log`), what QEMU itself printed
//! (`qemu.log`), the renter's key as an SMBIOS credential (`credential`), and the small records
//! that let a restarted grid find everything of it again (`pid`, `port`, `shape`, `stopped`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::backend::LocalError;
use crate::machine_id::MachineId;

/// A machine's names and folder.
#[derive(Debug, Clone)]
pub(crate) struct Vm {
    id: MachineId,
    dir: PathBuf,
}

/// A machine's virtual hardware: what QEMU is given at each boot, and the disk's size now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) vcpus: u32,
    pub(crate) memory_mb: u32,
    pub(crate) disk_gb: u32,
}

impl Vm {
    /// The machine `id` under `data_dir`, if `id` can name one: 1 to 60 ASCII letters, digits,
    /// `_` or `-`, starting with a letter or a digit (it names a folder and the guest's hostname).
    pub(crate) fn new(data_dir: &Path, id: &str) -> Result<Self, LocalError> {
        let id = MachineId::new(id)?;
        Ok(Self { dir: vms_dir(data_dir).join(id.as_str()), id })
    }

    pub(crate) fn id(&self) -> &str {
        self.id.as_str()
    }

    /// The guest's hostname: the id as a valid hostname (`vm_ab12` → `vm-ab12`).
    pub(crate) fn hostname(&self) -> String {
        self.id.hostname()
    }

    /// QEMU's `-name`, by which its process is found: `sgl-` and the hostname.
    pub(crate) fn name(&self) -> String {
        self.id.name()
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn disk(&self) -> PathBuf {
        self.dir.join("disk.img")
    }

    /// Where the disk's contents are put together before `mke2fs` copies them in; removed after.
    pub(crate) fn staging(&self) -> PathBuf {
        self.dir.join("staging")
    }

    pub(crate) fn qmp_socket(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }

    /// The guest's serial console, rewritten at each boot.
    pub(crate) fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// QEMU's own stdout and stderr, rewritten at each boot.
    pub(crate) fn qemu_log(&self) -> PathBuf {
        self.dir.join("qemu.log")
    }

    /// The renter's key as the SMBIOS OEM string systemd reads credentials from.
    pub(crate) fn credential(&self) -> PathBuf {
        self.dir.join("credential")
    }

    pub(crate) fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// The pid QEMU had when it was last started.
    pub(crate) fn pid(&self) -> Option<i32> {
        self.read_number("pid")
    }

    pub(crate) fn set_pid(&self, pid: u32) -> Result<(), LocalError> {
        self.write_file("pid", &pid.to_string())
    }

    /// The host port QEMU forwards to the guest's sshd (kept across stops when free).
    pub(crate) fn port(&self) -> Option<u16> {
        self.read_number("port")
    }

    pub(crate) fn set_port(&self, port: u16) -> Result<(), LocalError> {
        self.write_file("port", &port.to_string())
    }

    pub(crate) fn shape(&self) -> Option<Shape> {
        let text = fs::read_to_string(self.dir.join("shape")).ok()?;
        let mut numbers = text.split_whitespace().map(str::parse::<u32>);
        let (vcpus, memory_mb, disk_gb) = (numbers.next()?.ok()?, numbers.next()?.ok()?, numbers.next()?.ok()?);
        Some(Shape { vcpus, memory_mb, disk_gb })
    }

    pub(crate) fn set_shape(&self, shape: Shape) -> Result<(), LocalError> {
        self.write_file("shape", &format!("{} {} {}", shape.vcpus, shape.memory_mb, shape.disk_gb))
    }

    /// Stopped on purpose (by `stop`), as opposed to powered off from inside or by a host reboot.
    pub(crate) fn is_stopped(&self) -> bool {
        self.dir.join("stopped").is_file()
    }

    pub(crate) fn set_stopped(&self, stopped: bool) -> Result<(), LocalError> {
        if stopped {
            return self.write_file("stopped", "");
        }
        match fs::remove_file(self.dir.join("stopped")) {
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
pub(crate) fn vms_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("vms")
}

/// The machines with a folder under `data_dir`.
pub(crate) fn all(data_dir: &Path) -> Vec<Vm> {
    let Ok(entries) = fs::read_dir(vms_dir(data_dir)) else { return Vec::new() };
    let ids = entries.flatten().filter_map(|entry| entry.file_name().into_string().ok());
    ids.filter_map(|id| Vm::new(data_dir, &id).ok()).collect()
}
