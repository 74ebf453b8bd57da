//! The QEMU machine backend on this host, for real: a machine boots from the VM image
//! `.ci/install-machine-image --with-vm-kernel` builds (`SGL_TEST_MACHINE_VM`), answers SSH with
//! the renter's key on the port QEMU forwards, powers off over QMP, boots again on the same port,
//! is resized while running (two vCPUs, more memory, a grown disk) and back down while stopped
//! (it stays stopped, its disk stays grown), and leaves nothing behind.
//! A machine without a key gets its password on its disk and takes it over SSH; a machine
//! destroyed while it boots and creates that cannot finish leave nothing. Under KVM where the host has real VT-x/AMD-V, TCG otherwise (as on this project's
//! machines, whose /dev/kvm is PVM): boots are slow, so the whole life is one test.
//!
//! Needs root, qemu-system-x86_64 and the VM image: without them each test says why and passes,
//! except under `CI=true`, where that is a failure. In the nextest `model` group, so it never
//! runs beside another heavy test.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use sgl_machines::backend::{BackendError, CreateSpec, LocalError, MachineBackend, ResizeSpec, Status};
use sgl_machines::kvm::Kvm;
use sgl_machines::qemu::{Accel, QemuBackend, QemuConfig, TcgPolicy};
use sgl_machines::ssh_probe;
use tempfile::TempDir;
use tokio::process::Command;

/// How long a machine may take from a boot to answering SSH: about 35 s under TCG on this
/// project's 2-core machines when they are quiet, much more beside a build.
const BOOT_DEADLINE: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_with_a_key_boots_stops_starts_resizes_and_leaves_nothing() {
    let Some(vm_dir) = vm_dir() else { return };
    let scratch = TempDir::new().unwrap();
    cleaning_up(&vm_dir, scratch.path(), whole_life(&vm_dir, scratch.path())).await;
}

async fn whole_life(vm_dir: &Path, scratch: &Path) {
    let (key, public_key) = key_pair(scratch).await;
    let data_dir = scratch.join("data");
    let backend = QemuBackend::new(config(vm_dir, &data_dir, 23100));
    let id = machine_id();

    let started = Instant::now();
    let created = backend.create(&spec(&backend, &id, "local-vm:1c-1gb", Some(public_key)).await).await.unwrap();
    let booting = Instant::now();
    assert_eq!(created.provider_id, id);
    assert!(created.password.is_none(), "a machine with a key gets no password");
    let ssh = wait_for_ssh(&backend, &id).await;
    eprintln!(
        "qemu machine {id} ({:?}): create {:.1} s (disk, and the boot's first second), then SSH answering \
         {:.1} s later: {:.1} s from create to SSH",
        accel(),
        (booting - started).as_secs_f64(),
        booting.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ssh.ip().to_string(), "127.0.0.1");
    let disk = data_dir.join("vms").join(&id).join("disk.img");
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 4 << 30, "the plan's 4 GiB, sparse");
    assert_eq!(ssh_run(ssh, &key, "echo ok; hostname; nproc").await, format!("ok\n{}\n1\n", hostname(&id)));

    let stopping = Instant::now();
    backend.stop(&id).await.unwrap();
    eprintln!("qemu machine {id}: powered off over QMP in {:.1} s", stopping.elapsed().as_secs_f64());
    assert_eq!(backend.status(&id).await.unwrap(), Status::Stopped);
    assert!(!ssh_probe::answers(ssh, Duration::from_secs(1)).await, "a stopped machine answers no SSH");
    assert_eq!(process_named(&id).await, "", "QEMU is gone");

    let starting = Instant::now();
    backend.start(&id).await.unwrap();
    assert_eq!(wait_for_ssh(&backend, &id).await, ssh, "the SSH port is kept across a stop");
    eprintln!("qemu machine {id}: start to SSH {:.1} s", starting.elapsed().as_secs_f64());
    assert_eq!(ssh_run(ssh, &key, "hostname").await.trim(), hostname(&id));

    // Resized while running, as the grid does it: off, the new plan's CPUs and memory and,
    // confirmed, the bigger disk for good, on again.
    let resizing = Instant::now();
    backend.resize(&id, &resize_to(&backend, "local-vm:2c-2gb", true).await).await.unwrap();
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 8 << 30);
    assert_eq!(wait_for_ssh(&backend, &id).await, ssh);
    eprintln!("qemu machine {id}: resize to SSH {:.1} s", resizing.elapsed().as_secs_f64());
    let facts = ssh_run(ssh, &key, "hostname; nproc; df --output=size -B1G / | tail -n 1").await;
    let facts: Vec<&str> = facts.split_whitespace().collect();
    assert_eq!(facts[..2], [hostname(&id).as_str(), "2"], "{facts:?}");
    assert!(facts[2].parse::<u32>().unwrap() >= 7, "the root file system grew to about 8 GiB: {facts:?}");

    // Back down while stopped: it stays stopped, and its disk stays grown.
    backend.stop(&id).await.unwrap();
    backend.resize(&id, &resize_to(&backend, "local-vm:1c-1gb", false).await).await.unwrap();
    assert_eq!(backend.status(&id).await.unwrap(), Status::Stopped);
    assert_eq!(process_named(&id).await, "");
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 8 << 30, "a disk never shrinks");

    backend.destroy(&id).await.unwrap();
    assert_eq!(backend.leftovers(&id).await.unwrap(), vec![]);
    assert_eq!(process_named(&id).await, "", "a QEMU of the machine is left");
    assert!(!data_dir.join("vms").join(&id).exists(), "the machine's folder is left");
    assert_eq!(backend.status(&id).await.unwrap(), Status::Gone);
    backend.destroy(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_without_a_key_gets_a_password_on_its_disk_and_takes_it() {
    let Some(vm_dir) = vm_dir() else { return };
    let scratch = TempDir::new().unwrap();
    cleaning_up(&vm_dir, scratch.path(), without_a_key(&vm_dir, scratch.path())).await;
}

async fn without_a_key(vm_dir: &Path, scratch: &Path) {
    let data_dir = scratch.join("data");
    let backend = QemuBackend::new(config(vm_dir, &data_dir, 23200));
    let id = machine_id();
    let created = backend.create(&spec(&backend, &id, "local-vm:1c-1gb", None).await).await.unwrap();
    let password = created.password.expect("a machine without a key gets a password");
    assert_eq!(password.expose().len(), 24);

    // Read from the disk itself while the machine boots: a root password hash, an sshd that takes
    // it, the machine's hostname and host keys of its own; no credential for a key.
    let dir = data_dir.join("vms").join(&id);
    assert!(!dir.join("credential").exists());
    let disk = dir.join("disk.img");
    let shadow = debugfs_cat(&disk, "/etc/shadow").await;
    let root_hash = shadow.lines().find_map(|line| line.strip_prefix("root:")).unwrap();
    assert!(root_hash.starts_with('$'), "root has a password hash, not {root_hash:?}");
    let sshd = debugfs_cat(&disk, "/etc/ssh/sshd_config.d/50-grid.conf").await;
    assert!(sshd.contains("PermitRootLogin yes") && sshd.contains("PasswordAuthentication yes"));
    assert_eq!(debugfs_cat(&disk, "/etc/hostname").await.trim(), hostname(&id));
    let host_key = debugfs_cat(&disk, "/etc/ssh/ssh_host_ed25519_key.pub").await;
    assert!(host_key.starts_with("ssh-ed25519 "), "{host_key:?}");
    let image_keys = std::fs::read_dir(vm_dir.join("rootfs/etc/ssh")).unwrap().flatten();
    assert!(!image_keys.into_iter().any(|entry| entry.file_name().to_string_lossy().starts_with("ssh_host_")));

    // And root logs in with it.
    let ssh = wait_for_ssh(&backend, &id).await;
    let output = Command::new("sshpass")
        .arg("-e")
        .args(["ssh", "-p", &ssh.port().to_string()])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=30"])
        .args(["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no", "-o", "LogLevel=ERROR"])
        .arg(format!("root@{}", ssh.ip()))
        .arg("echo ok; hostname")
        .env("SSHPASS", password.expose())
        .output()
        .await
        .expect("sshpass is installed (.ci/run installs it)");
    assert!(output.status.success(), "password login failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("ok\n{}\n", hostname(&id)));

    backend.destroy(&id).await.unwrap();
    assert_eq!(backend.leftovers(&id).await.unwrap(), vec![]);
    assert_eq!(process_named(&id).await, "");
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_cannot_finish_leaves_nothing() {
    let Some(vm_dir) = vm_dir() else { return };
    let scratch = TempDir::new().unwrap();
    cleaning_up(&vm_dir, scratch.path(), refused_and_failed(&vm_dir, scratch.path())).await;
}

async fn refused_and_failed(vm_dir: &Path, scratch: &Path) {
    // A plan it does not sell, a name that cannot be a folder, no room, a folder QEMU's
    // options would misread: refused up front.
    let backend = QemuBackend::new(config(vm_dir, &scratch.join("data"), 23300));
    let mut unsold = spec(&backend, &machine_id(), "local-vm:1c-1gb", None).await;
    unsold.plan.id = "local-vm:64c-1tb".to_owned();
    assert!(matches!(backend.create(&unsold).await, Err(BackendError::Unsupported(_))));
    let bad_id = spec(&backend, "../etc", "local-vm:1c-1gb", None).await;
    assert!(matches!(backend.create(&bad_id).await, Err(BackendError::Local(LocalError::InvalidMachineId(_)))));
    let mut no_room = config(vm_dir, &scratch.join("data"), 23300);
    no_room.max_machines = 0;
    let full = QemuBackend::new(no_room);
    let id = machine_id();
    let result = full.create(&spec(&full, &id, "local-vm:1c-1gb", None).await).await;
    assert!(matches!(result, Err(BackendError::Local(LocalError::NoFreeSlot))), "{result:?}");
    assert_eq!(full.leftovers(&id).await.unwrap(), vec![]);
    let colon = QemuBackend::new(config(vm_dir, &scratch.join("with:colon"), 23300));
    let result = colon.create(&spec(&colon, &id, "local-vm:1c-1gb", None).await).await;
    assert!(matches!(result, Err(BackendError::Local(LocalError::UnusablePath(_)))), "{result:?}");

    // A machine destroyed while it boots.
    let backend = QemuBackend::new(config(vm_dir, &scratch.join("data"), 23300));
    let booting = machine_id();
    backend.create(&spec(&backend, &booting, "local-vm:1c-1gb", None).await).await.unwrap();
    assert!(matches!(backend.status(&booting).await.unwrap(), Status::Running { .. }));
    backend.destroy(&booting).await.unwrap();
    assert_eq!(backend.leftovers(&booting).await.unwrap(), vec![]);
    assert_eq!(process_named(&booting).await, "");
    assert!(!scratch.join("data/vms").join(&booting).exists());

    // A kernel QEMU cannot load: the disk is made, QEMU fails at once, and everything goes.
    let broken = scratch.join("broken-vm");
    std::fs::create_dir(&broken).unwrap();
    std::os::unix::fs::symlink(vm_dir.join("rootfs"), broken.join("rootfs")).unwrap();
    std::os::unix::fs::symlink(vm_dir.join("initrd.img"), broken.join("initrd.img")).unwrap();
    std::fs::write(broken.join("vmlinuz"), "not a kernel").unwrap();
    let data_dir = scratch.join("broken-data");
    let backend = QemuBackend::new(config(&broken, &data_dir, 23300));
    let result = backend.create(&spec(&backend, &id, "local-vm:1c-1gb", None).await).await;
    let Err(BackendError::Local(LocalError::Step { step, stderr_tail, .. })) = result else { panic!("{result:?}") };
    assert_eq!(step, "qemu-system-x86_64", "{stderr_tail}");
    assert!(!stderr_tail.is_empty(), "QEMU's own words are in the error");
    assert_eq!(backend.leftovers(&id).await.unwrap(), vec![]);
    assert!(!data_dir.join("vms").join(&id).exists());
    assert_eq!(backend.status(&id).await.unwrap(), Status::Gone);
}

/// KVM where the host has real VT-x/AMD-V, TCG otherwise: the tests opt in to TCG.
fn accel() -> Accel {
    Accel::choose(Kvm::detect(Path::new("/")), TcgPolicy::Allowed).unwrap()
}

/// The backend's configuration for a test: its own data directory and its own 100 SSH ports
/// from `first_port`, apart from the default range a grid on this host may be using.
fn config(vm_dir: &Path, data_dir: &Path, first_port: u16) -> QemuConfig {
    let mut config = QemuConfig::new(vm_dir.to_owned(), data_dir.to_owned(), accel());
    config.ssh_ports = first_port..=first_port + 99;
    config
}

/// Runs a test's `body`, then destroys every machine left in the data directories under
/// `scratch` (a failed assertion must not leave a machine running), after printing the end of
/// its console and of QEMU's own output when the body failed, then fails as the body did.
/// The tests take turns under `cargo test` too, as nextest's `model` group makes them do.
async fn cleaning_up(vm_dir: &Path, scratch: &Path, body: impl Future<Output = ()>) {
    static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = TURNS.lock().await;
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    for data_dir in std::fs::read_dir(scratch).unwrap().flatten().map(|entry| entry.path()) {
        let Ok(machines) = std::fs::read_dir(data_dir.join("vms")) else { continue };
        let backend = QemuBackend::new(config(vm_dir, &data_dir, 23900));
        for id in machines.flatten().filter_map(|entry| entry.file_name().into_string().ok()) {
            if outcome.is_err() {
                for log in ["console.log", "qemu.log"] {
                    let text = std::fs::read_to_string(data_dir.join("vms").join(&id).join(log)).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("{id} {log}, last lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                }
            }
            if let Err(error) = backend.destroy(&id).await {
                eprintln!("cleaning up after the test: {id}: {error}");
            }
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The VM image, or `None` (after saying why) when the tests cannot run here; under `CI=true`
/// that is a failure instead.
fn vm_dir() -> Option<PathBuf> {
    let vm_dir = std::env::var_os("SGL_TEST_MACHINE_VM").map(PathBuf::from);
    let reason = match &vm_dir {
        None => "SGL_TEST_MACHINE_VM is not set (.ci/install-machine-image --with-vm-kernel builds it)".to_owned(),
        Some(vm_dir) => match QemuBackend::new(config(vm_dir, &std::env::temp_dir(), 23900)).probe() {
            Ok(()) => return Some(vm_dir.clone()),
            Err(error) => error.to_string(),
        },
    };
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true, but the QEMU backend cannot run: {reason}");
    eprintln!("skipped: the QEMU machine backend cannot run here: {reason}");
    None
}

/// A fresh grid-style machine id, `vm_` and 32 hex digits.
fn machine_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("vm_{:032x}", nanos ^ (u128::from(std::process::id()) << 64))
}

fn hostname(id: &str) -> String {
    id.replace('_', "-")
}

async fn spec(backend: &QemuBackend, id: &str, plan: &str, key: Option<String>) -> CreateSpec {
    let plan = backend.plans().await.unwrap().into_iter().find(|p| p.id == plan).unwrap();
    CreateSpec {
        machine_id: id.to_owned(),
        plan,
        region: "local".to_owned(),
        os_id: None,
        label: None,
        ssh_public_key: key,
    }
}

async fn resize_to(backend: &QemuBackend, plan: &str, grow_disk: bool) -> ResizeSpec {
    let plan = backend.plans().await.unwrap().into_iter().find(|p| p.id == plan).unwrap();
    ResizeSpec { plan, grow_disk }
}

/// An ed25519 key pair made by `ssh-keygen`: the private key's path and the public key's line.
async fn key_pair(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "sgl-test", "-f"])
        .arg(&key)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public_key.trim().to_owned())
}

/// Waits for `Running` and then for an SSH banner at its address.
async fn wait_for_ssh(backend: &QemuBackend, id: &str) -> SocketAddr {
    let give_up = Instant::now() + BOOT_DEADLINE;
    loop {
        assert!(Instant::now() < give_up, "machine {id} not reachable by SSH in {BOOT_DEADLINE:?}");
        if let Status::Running { ssh } = backend.status(id).await.unwrap()
            && ssh_probe::answers(ssh, Duration::from_secs(2)).await
        {
            return ssh;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs `command` on the machine over SSH with the key and returns its stdout; it must succeed.
async fn ssh_run(ssh: SocketAddr, key: &Path, command: &str) -> String {
    let output = ssh_output(ssh, key, command).await;
    assert!(output.status.success(), "ssh {command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn ssh_output(ssh: SocketAddr, key: &Path, command: &str) -> Output {
    Command::new("ssh")
        .arg("-i")
        .arg(key)
        .args(["-p", &ssh.port().to_string()])
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "ConnectTimeout=30", "-o", "LogLevel=ERROR"])
        .arg(format!("root@{}", ssh.ip()))
        .arg(command)
        .output()
        .await
        .unwrap()
}

/// A file of an ext4 image, read by `debugfs` without mounting it.
async fn debugfs_cat(disk: &Path, file: &str) -> String {
    let output = Command::new("debugfs").args(["-R", &format!("cat {file}")]).arg(disk).output().await.unwrap();
    assert!(output.status.success(), "debugfs cat {file}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The pids whose command line names the machine's QEMU, by `pgrep`.
async fn process_named(id: &str) -> String {
    let pattern = format!("-name sgl-{}( |$)", hostname(id));
    let output = Command::new("pgrep").args(["-f", "--", &pattern]).output().await.unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
