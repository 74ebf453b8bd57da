//! A machine's id on the grid's own host, as both host backends (containers and QEMU) use it: it
//! names a folder, a hostname and a process, so it is checked once here.

use crate::backend::LocalError;

/// The longest machine id: `sgl-` and the id must fit a 64-character hostname.
const MAX_ID_LEN: usize = 60;

/// A checked id: 1 to 60 ASCII letters, digits, `_` or `-`, starting with a letter or a digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MachineId(String);

impl MachineId {
    /// `id`, if it can name a machine ([`LocalError::InvalidMachineId`] otherwise).
    pub(crate) fn new(id: &str) -> Result<Self, LocalError> {
        let valid = !id.is_empty()
            && id.len() <= MAX_ID_LEN
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(LocalError::InvalidMachineId(id.to_owned()));
        }
        Ok(Self(id.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The machine's hostname: the id as a valid hostname (`vm_ab12` → `vm-ab12`).
    pub(crate) fn hostname(&self) -> String {
        self.0.replace('_', "-").to_ascii_lowercase()
    }

    /// The name its process (systemd-nspawn's `--machine=`, QEMU's `-name`) and cgroups carry:
    /// `sgl-` and the hostname.
    pub(crate) fn name(&self) -> String {
        format!("sgl-{}", self.hostname())
    }
}
