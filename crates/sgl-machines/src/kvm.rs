//! Whether this host can run virtual machines with hardware acceleration. QEMU/KVM machines need
//! a real KVM: `/dev/kvm` backed by Intel VT-x or AMD-V. Some cloud VMs offer a `/dev/kvm` that
//! is PVM (a paravirtual KVM, `/sys/module/kvm_pvm`): it creates VMs, but a stock Linux kernel
//! does not boot in one (only kernels built with `CONFIG_PVM_GUEST` do, and Debian ships none),
//! so QEMU machines must not be offered there. Read from the files, never guessed.

use std::path::Path;

/// What this host's KVM can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kvm {
    /// `/dev/kvm` on VT-x or AMD-V: stock guests boot.
    Hardware,
    /// `/dev/kvm` is PVM: stock Linux guests cannot boot.
    Pvm,
    /// No `/dev/kvm`.
    Absent,
    /// `/dev/kvm` exists but neither VT-x/AMD-V nor PVM is seen.
    Unknown,
}

impl Kvm {
    /// Reads the host's KVM under `root` (`/` on a real host).
    pub fn detect(root: &Path) -> Self {
        if !root.join("dev/kvm").exists() {
            return Self::Absent;
        }
        if root.join("sys/module/kvm_pvm").exists() {
            return Self::Pvm;
        }
        let cpuinfo = std::fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
        let flags = cpuinfo.lines().filter(|line| line.starts_with("flags"));
        let hardware = flags.flat_map(str::split_whitespace).any(|flag| flag == "vmx" || flag == "svm");
        if hardware || root.join("sys/module/kvm_intel").exists() || root.join("sys/module/kvm_amd").exists() {
            Self::Hardware
        } else {
            Self::Unknown
        }
    }

    /// Why QEMU/KVM machines are not offered on this host, or `None` when they could be.
    pub fn why_not(self) -> Option<&'static str> {
        match self {
            Self::Hardware => None,
            Self::Pvm => Some(
                "/dev/kvm here is PVM (/sys/module/kvm_pvm): a stock Linux kernel does not boot in it, \
                 so no QEMU/KVM machines; containers (local:*) only",
            ),
            Self::Absent => Some("no /dev/kvm: no QEMU/KVM machines; containers (local:*) only"),
            Self::Unknown => {
                Some("/dev/kvm without VT-x or AMD-V in /proc/cpuinfo: no QEMU/KVM machines; containers (local:*) only")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Each kind of host, laid out in a temporary directory.

    use super::*;

    fn host(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    fn kvm_is_read_from_the_host() {
        let intel = host(&[("dev/kvm", ""), ("proc/cpuinfo", "processor : 0\nflags : fpu vme vmx sse\n")]);
        assert_eq!(Kvm::detect(intel.path()), Kvm::Hardware);
        assert_eq!(Kvm::Hardware.why_not(), None);
        let pvm = host(&[("dev/kvm", ""), ("sys/module/kvm_pvm/parameters", ""), ("proc/cpuinfo", "flags : fpu\n")]);
        assert_eq!(Kvm::detect(pvm.path()), Kvm::Pvm);
        assert!(Kvm::Pvm.why_not().unwrap().contains("PVM"));
        let none = host(&[("proc/cpuinfo", "flags : vmx\n")]);
        assert_eq!(Kvm::detect(none.path()), Kvm::Absent);
        let odd = host(&[("dev/kvm", ""), ("proc/cpuinfo", "flags : fpu\n")]);
        assert_eq!(Kvm::detect(odd.path()), Kvm::Unknown);
    }
}
