//! A machine's disk: an ext4 image file made by `mke2fs -d` from the VM image's root, with what
//! makes the machine its own (fresh SSH host keys, its hostname, and for a machine without a
//! key its root password and an sshd that accepts it) put together first on a copy-on-write
//! overlay of the root. The overlay is mounted inside a mount namespace of its own (`unshare
//! --mount`) that ends with the script, so no mount of it is ever left on the host, and the
//! image's root is never written to. Growing a disk (`resize2fs`) cannot be undone.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::path::Path;

use super::steps;
use super::vm::Vm;
use crate::backend::{LocalError, Password};

/// Bytes in the GiB a plan's disk is counted in.
const GIB: u64 = 1 << 30;

/// Mounts the overlay of the root (`$1`) in `$2/root`, makes the host keys and writes the
/// hostname (`$5`), sets root's password from stdin when `$6` is `password`, then makes the disk
/// `$3` of size `$4` from it.
const STAGE_AND_MAKE: &str = r#"set -eu
rootfs=$1 staging=$2 disk=$3 size=$4 hostname=$5 login=$6
root=$staging/root
mkdir -p "$staging/upper" "$staging/work" "$root"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$staging/upper,workdir=$staging/work" "$root"
chroot "$root" ssh-keygen -A >/dev/null
printf '%s\n' "$hostname" >"$root/etc/hostname"
if [ "$login" = password ]; then
    chroot "$root" chpasswd
    printf '# Written by the grid: this machine was made without an SSH key.\nPermitRootLogin yes\nPasswordAuthentication yes\n' \
        >"$root/etc/ssh/sshd_config.d/50-grid.conf"
fi
mke2fs -q -t ext4 -d "$root" "$disk" "$size"
"#;

/// Makes `vm`'s disk of `size_gb` GiB (a sparse file) from `rootfs`, with root's `password` if
/// it has one. The staging folder is removed whatever happens.
pub(crate) async fn make(rootfs: &Path, vm: &Vm, size_gb: u32, password: Option<&Password>) -> Result<(), LocalError> {
    let (staging, disk) = (vm.staging(), vm.disk());
    let size = format!("{size_gb}G");
    let hostname = vm.hostname();
    let login = if password.is_some() { "password" } else { "key" };
    let line = password.map(|password| zeroize::Zeroizing::new(format!("root:{}\n", password.expose())));
    let args = [
        OsStr::new("--mount"),
        "--propagation".as_ref(),
        "private".as_ref(),
        "sh".as_ref(),
        "-c".as_ref(),
        STAGE_AND_MAKE.as_ref(),
        "sh".as_ref(),
        rootfs.as_os_str(),
        staging.as_os_str(),
        disk.as_os_str(),
        size.as_ref(),
        hostname.as_ref(),
        login.as_ref(),
    ];
    let made = steps::run("make the disk", "unshare", args, line.as_ref().map(|line| line.as_bytes())).await;
    // Only the namespace that just ended ever had the overlay mounted: this removes files.
    let removed = match tokio::fs::remove_dir_all(&staging).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    };
    made.and(removed)
}

/// Grows `vm`'s disk (the file and its file system) to `size_gb` GiB; the machine is off.
pub(crate) async fn grow(vm: &Vm, size_gb: u32) -> Result<(), LocalError> {
    let disk = vm.disk();
    OpenOptions::new().write(true).open(&disk)?.set_len(u64::from(size_gb) * GIB)?;
    // resize2fs works on a file system only after a full check; 1 is "errors corrected".
    let checked = steps::output("e2fsck", "e2fsck", ["-f".as_ref(), "-p".as_ref(), disk.as_os_str()], None).await?;
    if !matches!(checked.status.code(), Some(0 | 1)) {
        return Err(steps::failed("e2fsck", &checked));
    }
    steps::run("resize2fs", "resize2fs", [disk.as_os_str()], None).await
}
