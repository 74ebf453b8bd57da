//! The host-side steps of a QEMU machine's life that run programs: QEMU's command line and its
//! start, signals to it, and the helper every other program (`unshare`, `e2fsck`, `resize2fs`)
//! runs through, which turns a failure into [`LocalError::Step`] with the end of its stderr.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Output, Stdio};

use rustix::process::{Pid, Signal, kill_process};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::Accel;
use super::leftovers;
use super::vm::{Shape, Vm};
use crate::backend::LocalError;

/// How much of a failed program's stderr an error keeps.
const STDERR_TAIL: usize = 400;
/// The SSH port inside the machine.
const GUEST_SSH_PORT: u16 = 22;

/// Everything one boot of a machine is made from besides its folder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Boot<'a> {
    pub(crate) vm_dir: &'a Path,
    pub(crate) accel: Accel,
    pub(crate) shape: Shape,
    pub(crate) host: IpAddr,
    pub(crate) port: u16,
}

/// QEMU's arguments for one boot of `vm`: the kernel and initramfs of the VM image, the
/// machine's own disk, user-mode networking that only forwards `host:port` to the guest's sshd,
/// the renter's key as a credential when the machine has one, QMP on a socket in its folder,
/// and the serial console to `console.log`. Paths go in as they are: [`super::QemuBackend`]
/// refuses folders whose paths QEMU's option syntax would misread (see [`usable_path`]).
pub(crate) fn qemu_args(vm: &Vm, boot: &Boot<'_>) -> Vec<String> {
    let (accel, cpu) = match boot.accel {
        // `arch-capabilities` is an MSR some KVM hosts refuse to set ("failed to set MSR 0x10a").
        Accel::Kvm => ("kvm", "host,-arch-capabilities"),
        Accel::Tcg => ("tcg", "max"),
    };
    let host = match boot.host {
        IpAddr::V4(address) => address.to_string(),
        IpAddr::V6(address) => format!("[{address}]"),
    };
    let path = |path: &Path| path.display().to_string();
    let mut args = vec![
        "-name".to_owned(),
        vm.name(),
        "-machine".to_owned(),
        "q35".to_owned(),
        "-accel".to_owned(),
        accel.to_owned(),
        "-cpu".to_owned(),
        cpu.to_owned(),
        "-m".to_owned(),
        boot.shape.memory_mb.to_string(),
        "-smp".to_owned(),
        boot.shape.vcpus.to_string(),
        "-nographic".to_owned(),
        "-nodefaults".to_owned(),
        "-serial".to_owned(),
        format!("file:{}", path(&vm.console_log())),
        "-kernel".to_owned(),
        path(&boot.vm_dir.join("vmlinuz")),
        "-initrd".to_owned(),
        path(&boot.vm_dir.join("initrd.img")),
        "-append".to_owned(),
        "root=/dev/vda rw console=ttyS0 quiet".to_owned(),
        "-drive".to_owned(),
        format!("file={},format=raw,if=virtio", path(&vm.disk())),
        "-netdev".to_owned(),
        format!("user,id=n0,restrict=on,hostfwd=tcp:{host}:{}-:{GUEST_SSH_PORT}", boot.port),
        "-device".to_owned(),
        "virtio-net-pci,netdev=n0".to_owned(),
        "-qmp".to_owned(),
        format!("unix:{},server=on,wait=off", path(&vm.qmp_socket())),
    ];
    if vm.credential().is_file() {
        args.extend(["-smbios".to_owned(), format!("type=11,path={}", path(&vm.credential()))]);
    }
    args
}

/// Whether QEMU's options (`file=…,format=raw`, `file:…`) and the staging overlay's options
/// (`lowerdir=…:…`) can take `path` as it is: UTF-8, without `,` or `:`.
pub(crate) fn usable_path(path: &Path) -> bool {
    path.to_str().is_some_and(|text| !text.contains([',', ':']))
}

/// Starts QEMU for `vm` in its own process group (so a Ctrl-C aimed at the grid does not reach
/// it, and it outlives the grid), with its own output in `qemu.log`.
pub(crate) fn spawn_qemu(vm: &Vm, boot: &Boot<'_>) -> Result<Child, LocalError> {
    let log = fs::File::create(vm.qemu_log())?;
    let mut command = Command::new("qemu-system-x86_64");
    command.args(qemu_args(vm, boot));
    command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).process_group(0);
    command.spawn().map_err(|error| spawn_error("qemu-system-x86_64", "qemu-system-x86_64", &error))
}

/// The last lines of what QEMU printed, for an error about a boot that failed at once.
pub(crate) fn qemu_log_tail(vm: &Vm) -> String {
    let log = fs::read_to_string(vm.qemu_log()).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(5).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Whether `pid` is the machine's QEMU: its command line holds `-name NAME`, which also guards
/// against a reused pid.
pub(crate) fn is_vm_process(pid: i32, name: &str) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    leftovers::names_vm(&cmdline, name)
}

/// Sends `signal` to `pid`; a process that is already gone is fine.
pub(crate) fn signal(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        // Best effort: the caller checks whether the process is still there.
        let _ = kill_process(pid, signal);
    }
}

/// Runs `program` with `args` (and `stdin`) as the step called `step`; it must succeed.
pub(crate) async fn run<I, S>(
    step: &'static str,
    program: &'static str,
    args: I,
    stdin: Option<&[u8]>,
) -> Result<(), LocalError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = output(step, program, args, stdin).await?;
    if output.status.success() { Ok(()) } else { Err(failed(step, &output)) }
}

/// Runs `program` with `args` (and `stdin`) and returns how it ended, whatever its exit status.
pub(crate) async fn output<I, S>(
    step: &'static str,
    program: &'static str,
    args: I,
    stdin: Option<&[u8]>,
) -> Result<Output, LocalError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(program);
    command.args(args).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = command.spawn().map_err(|error| spawn_error(step, program, &error))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).await?;
    }
    Ok(child.wait_with_output().await?)
}

/// The error for a program that ended with `output`.
pub(crate) fn failed(step: &'static str, output: &Output) -> LocalError {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let tail_start = stderr.char_indices().rev().nth(STDERR_TAIL).map_or(0, |(idx, _)| idx);
    LocalError::Step { step, status: output.status.code(), stderr_tail: stderr[tail_start..].to_owned() }
}

fn spawn_error(step: &'static str, program: &'static str, error: &io::Error) -> LocalError {
    if error.kind() == io::ErrorKind::NotFound {
        return LocalError::MissingVmTool(program);
    }
    LocalError::Step { step, status: None, stderr_tail: format!("could not start {program}: {error}") }
}
