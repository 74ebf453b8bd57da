//! The host-side steps of a local machine's life, one function each, in the order of the recipe
//! in `shared/reference/machines.md` §2a: the overlay, the root's host keys, hostname and
//! password, the network namespace and veth pair, the boot under systemd-nspawn, and their
//! undoing. Each runs a program (`mount`, `chroot`, `ip`, `systemd-nspawn`) and turns a failure
//! into [`LocalError::Step`] with the end of what it wrote to stderr.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use rustix::process::{Pid, Signal, kill_process};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::cgroup::CgroupDir;
use super::leftovers;
use super::machine::{Machine, Slot};
use crate::backend::LocalError;

/// Where systemd-nspawn keeps its runtime state on the host.
const NSPAWN_RUN: &str = "/run/systemd/nspawn";
/// How much of a failed program's stderr an error keeps.
const STDERR_TAIL: usize = 400;

/// Makes the machine's `upper`, `work` and `root` and mounts the overlay of `image` on `root`.
pub(crate) async fn mount_overlay(image: &Path, machine: &Machine) -> Result<(), LocalError> {
    let (upper, work, root) = (machine.upper(), machine.work(), machine.root());
    for dir in [&upper, &work, &root] {
        fs::create_dir_all(dir)?;
    }
    let paths = [image, upper.as_path(), work.as_path()];
    if paths.iter().any(|path| path.to_string_lossy().contains([',', ':'])) {
        let stderr_tail = "a path of the image or the data directory holds `,` or `:`".to_owned();
        return Err(LocalError::Step { step: "mount overlay", status: None, stderr_tail });
    }
    let options = format!("lowerdir={},upperdir={},workdir={}", image.display(), upper.display(), work.display());
    let args =
        [OsStr::new("-t"), "overlay".as_ref(), "overlay".as_ref(), "-o".as_ref(), options.as_ref(), root.as_ref()];
    run("mount overlay", "mount", args, None).await
}

/// Unmounts the overlay if it is mounted.
pub(crate) async fn unmount_overlay(machine: &Machine) -> Result<(), LocalError> {
    let root = machine.root();
    if !leftovers::mounts_under(&root).is_empty() {
        run("umount overlay", "umount", [root.as_os_str()], None).await?;
    }
    Ok(())
}

/// Gives the root fresh host keys (the image has none, so no two machines share them) and the
/// machine's hostname.
pub(crate) async fn prepare_root(machine: &Machine) -> Result<(), LocalError> {
    let root = machine.root();
    run("ssh-keygen -A", "chroot", [root.as_os_str(), "ssh-keygen".as_ref(), "-A".as_ref()], None).await?;
    fs::write(root.join("etc/hostname"), format!("{}\n", machine.hostname()))?;
    Ok(())
}

/// Sets root's password (with the image's `chpasswd`, in a chroot) and lets sshd accept it:
/// Debian's default is `PermitRootLogin prohibit-password`.
pub(crate) async fn set_password(machine: &Machine, password: &str) -> Result<(), LocalError> {
    let root = machine.root();
    let line = zeroize::Zeroizing::new(format!("root:{password}\n"));
    run("chpasswd", "chroot", [root.as_os_str(), "chpasswd".as_ref()], Some(line.as_bytes())).await?;
    let config = "# Written by the grid: this machine was made without an SSH key.\n\
                  PermitRootLogin yes\nPasswordAuthentication yes\n";
    fs::write(root.join("etc/ssh/sshd_config.d/50-grid.conf"), config)?;
    Ok(())
}

/// Claims a slot by making its network namespace: `ip netns add` fails when the name is taken,
/// by this grid or any other process, so two grids never share a slot. `Ok(false)`: taken.
pub(crate) async fn claim_netns(slot: Slot) -> Result<bool, LocalError> {
    match run("ip netns add", "ip", ["netns", "add", &slot.netns()], None).await {
        Ok(()) => Ok(true),
        Err(_) if Path::new("/run/netns").join(slot.netns()).exists() => Ok(false),
        Err(error) => Err(error),
    }
}

/// The veth pair between the host and the slot's namespace, with the slot's /30 on both ends.
pub(crate) async fn make_veth(slot: Slot, host: Ipv4Addr, guest: Ipv4Addr) -> Result<(), LocalError> {
    let (netns, host_link, guest_link) = (slot.netns(), slot.host_link(), slot.guest_link());
    let (host_cidr, guest_cidr) = (format!("{host}/30"), format!("{guest}/30"));
    let commands: [(&'static str, Vec<&str>); 7] = [
        ("ip link add", vec!["link", "add", &host_link, "type", "veth", "peer", "name", &guest_link]),
        ("ip link set netns", vec!["link", "set", &guest_link, "netns", &netns]),
        ("ip addr add (host)", vec!["addr", "add", &host_cidr, "dev", &host_link]),
        ("ip link set up (host)", vec!["link", "set", &host_link, "up"]),
        ("ip addr add (machine)", vec!["-n", &netns, "addr", "add", &guest_cidr, "dev", &guest_link]),
        ("ip link set up (machine)", vec!["-n", &netns, "link", "set", &guest_link, "up"]),
        ("ip link set lo up", vec!["-n", &netns, "link", "set", "lo", "up"]),
    ];
    for (step, args) in commands {
        run(step, "ip", args, None).await?;
    }
    Ok(())
}

/// Removes the slot's namespace (which takes the veth pair with it) and the host's link if it
/// is somehow still there.
pub(crate) async fn delete_net(slot: Slot) -> Result<(), LocalError> {
    if Path::new("/run/netns").join(slot.netns()).exists() {
        run("ip netns del", "ip", ["netns", "del", &slot.netns()], None).await?;
    }
    if Path::new("/sys/class/net").join(slot.host_link()).exists() {
        run("ip link del", "ip", ["link", "del", &slot.host_link()], None).await?;
    }
    Ok(())
}

/// Boots the machine: `sh` joins the machine's cgroups and becomes systemd-nspawn (so no
/// `pre_exec` is needed), in its own process group so that a Ctrl-C aimed at the grid does not
/// reach it. Its console goes to `console.log`. The returned child is systemd-nspawn itself.
pub(crate) fn boot(machine: &Machine, cgroups: &[CgroupDir], slot: Slot) -> Result<Child, LocalError> {
    // `$1` is how many cgroup directories follow; the rest is systemd-nspawn's command line.
    const JOIN_AND_EXEC: &str = r#"n=$1; shift
while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; n=$((n - 1)); done
exec "$@""#;
    let console = fs::File::create(machine.console_log())?;
    let mut command = Command::new("sh");
    command.args(["-c", JOIN_AND_EXEC, "sh", &cgroups.len().to_string()]);
    command.args(cgroups.iter().map(|dir| dir.path.as_os_str()));
    command.arg("systemd-nspawn").arg("-D").arg(machine.root());
    command.arg(format!("--machine={}", machine.name()));
    command.args(["--boot", "--register=no", "--keep-unit", "--console=read-only"]);
    command.arg(format!("--network-namespace-path=/run/netns/{}", slot.netns()));
    if machine.key_file().is_file() {
        // From a file rather than `--set-credential=…:KEY`: no quoting rules, and the key stays
        // out of every process listing.
        let mut credential = std::ffi::OsString::from("--load-credential=ssh.authorized_keys.root:");
        credential.push(machine.key_file());
        command.arg(credential);
    }
    command.stdin(Stdio::null()).stdout(console.try_clone()?).stderr(console).process_group(0);
    command.spawn().map_err(|error| spawn_error("systemd-nspawn", "sh", &error))
}

/// Removes what systemd-nspawn keeps in `/run` for a running machine and removes itself on a
/// clean exit, but leaves behind when killed: the machine's mount propagation folder and the
/// lock on its root (named after the root's device and inode, so it is found while the
/// overlay is still mounted).
pub(crate) fn remove_nspawn_state(machine: &Machine) -> Result<(), LocalError> {
    if let Ok(root) = fs::metadata(machine.root()) {
        let lock = format!("{NSPAWN_RUN}/locks/inode-{}:{}", root.dev(), root.ino());
        remove_if_present(fs::remove_file(lock))?;
    }
    remove_if_present(fs::remove_dir_all(propagate_dir(&machine.name())))
}

/// systemd-nspawn's mount propagation folder for the machine `name`.
pub(crate) fn propagate_dir(name: &str) -> PathBuf {
    Path::new(NSPAWN_RUN).join("propagate").join(name)
}

fn remove_if_present(result: io::Result<()>) -> Result<(), LocalError> {
    match result {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}

/// Whether `pid` is the machine's systemd-nspawn (or the `sh` about to become it): its command
/// line holds `--machine=NAME`, which also guards against a reused pid.
pub(crate) fn is_machine_process(pid: i32, name: &str) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    leftovers::names_machine(&cmdline, name)
}

/// Sends `signal` to `pid`; a process that is already gone is fine.
pub(crate) fn signal(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        // Best effort: the caller checks whether the process is still there.
        let _ = kill_process(pid, signal);
    }
}

/// Runs `program` with `args` (and `stdin`), as the step called `step`.
async fn run<I, S>(step: &'static str, program: &'static str, args: I, stdin: Option<&[u8]>) -> Result<(), LocalError>
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
    let output = child.wait_with_output().await?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let tail_start = stderr.char_indices().rev().nth(STDERR_TAIL).map_or(0, |(idx, _)| idx);
    Err(LocalError::Step { step, status: output.status.code(), stderr_tail: stderr[tail_start..].to_owned() })
}

fn spawn_error(step: &'static str, program: &'static str, error: &io::Error) -> LocalError {
    if error.kind() == io::ErrorKind::NotFound {
        return LocalError::MissingTool(program);
    }
    LocalError::Step { step, status: None, stderr_tail: format!("could not start {program}: {error}") }
}
