//! The local machine backend on this host, for real: machines boot from the image
//! `.ci/install-machine-image` builds (`SGL_TEST_MACHINE_IMAGE`), answer SSH through the
//! backend's forwarder, take a password when made without a key, get their cgroup limits
//! rewritten live, stop and start (also after losing their mount, network and cgroups, as in a
//! host reboot), are found again by a new backend, and leave nothing behind, even when their
//! systemd-nspawn was killed.
//!
//! Needs root and the image: without them each test says why and passes, except under
//! `CI=true`, where that is a failure. In the nextest `model` group, so it never runs beside
//! another heavy test.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;
use sgl_machines::backend::{BackendError, CreateSpec, LocalError, MachineBackend, ResizeSpec, Status};
use sgl_machines::local::{LocalBackend, LocalConfig};
use sgl_machines::ssh_probe;
use tempfile::TempDir;
use tokio::process::Command;

/// How long a machine may take from create to answering SSH on this busy 2-core host.
const BOOT_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_with_a_key_boots_resizes_stops_starts_is_recovered_and_leaves_nothing() {
    let Some(image) = image() else { return };
    let scratch = TempDir::new().unwrap();
    cleaning_up(&image, scratch.path(), with_a_key(&image, scratch.path())).await;
}

async fn with_a_key(image: &Path, scratch: &Path) {
    let (key, public_key) = key_pair(scratch).await;
    let data_dir = scratch.join("data");
    let backend = LocalBackend::new(config(image, &data_dir, 22100));
    let id = machine_id();

    let started = Instant::now();
    let created = backend.create(&spec(&backend, &id, "local:1c-512mb", Some(public_key)).await).await.unwrap();
    let booting = Instant::now();
    assert_eq!(created.provider_id, id);
    assert!(created.password.is_none(), "a machine with a key gets no password");
    let ssh = wait_for_ssh(&backend, &id).await;
    eprintln!(
        "local machine {id}: create {:.2} s (overlay, host keys, network, cgroups, and the boot's first \
         0.3 s), then SSH answering {:.2} s later",
        (booting - started).as_secs_f64(),
        booting.elapsed().as_secs_f64()
    );
    assert_eq!(ssh.ip().to_string(), "127.0.0.1");
    assert_booted(ssh, &key, &id).await;

    let pid = nspawn_pid(&data_dir, &id);
    assert_eq!(cgroup_limits(pid), (512 << 20, 100_000), "memory bytes and CPU quota per 100 ms");
    backend.resize(&id, &resize_to(&backend, "local:2c-1gb").await).await.unwrap();
    assert_eq!(cgroup_limits(pid), (1024 << 20, 200_000));
    backend.resize(&id, &resize_to(&backend, "local:1c-512mb").await).await.unwrap();
    assert_eq!(cgroup_limits(pid), (512 << 20, 100_000));

    let stopping = Instant::now();
    backend.stop(&id).await.unwrap();
    eprintln!("local machine {id}: stopped in {:.2} s", stopping.elapsed().as_secs_f64());
    assert_eq!(backend.status(&id).await.unwrap(), Status::Stopped);
    assert!(!ssh_probe::answers(ssh, Duration::from_secs(1)).await, "a stopped machine answers no SSH");
    assert!(process_named(&id).await.is_empty());

    // As after a host reboot: no mount, no network namespace, no cgroups. Start makes them again.
    forget_like_a_reboot(&data_dir, &id).await;
    backend.start(&id).await.unwrap();
    assert_eq!(wait_for_ssh(&backend, &id).await, ssh, "the SSH port is kept across a stop");
    assert_eq!(cgroup_limits(nspawn_pid(&data_dir, &id)), (512 << 20, 100_000));
    assert_eq!(ssh_run(ssh, &key, "cat /etc/hostname").await.trim(), hostname(&id));

    // A grid that restarts finds the running machine and gives it its SSH port back.
    backend.shutdown().await;
    drop(backend);
    let backend = LocalBackend::new(config(image, &data_dir, 22100));
    assert_eq!(backend.status(&id).await.unwrap(), Status::Provisioning, "running, but no forwarder yet");
    assert_eq!(backend.recover().await.unwrap(), vec![id.clone()]);
    assert_eq!(wait_for_ssh(&backend, &id).await, ssh);
    assert_eq!(ssh_run(ssh, &key, "echo again").await.trim(), "again");

    let slot = slot_of(&data_dir, &id);
    backend.destroy(&id).await.unwrap();
    assert_eq!(backend.leftovers(&id).await.unwrap(), vec![]);
    assert_nothing_left(&data_dir, &id, slot).await;
    assert_eq!(backend.status(&id).await.unwrap(), Status::Gone);
    backend.destroy(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_without_a_key_takes_its_password() {
    let Some(image) = image() else { return };
    let scratch = TempDir::new().unwrap();
    cleaning_up(&image, scratch.path(), without_a_key(&image, scratch.path())).await;
}

async fn without_a_key(image: &Path, scratch: &Path) {
    let data_dir = scratch.join("data");
    let backend = LocalBackend::new(config(image, &data_dir, 22200));
    let id = machine_id();

    let created = backend.create(&spec(&backend, &id, "local:1c-512mb", None).await).await.unwrap();
    let password = created.password.expect("a machine without a key gets a password");
    assert_eq!(password.expose().len(), 24);
    let dir = data_dir.join("machines").join(&id);
    let shadow = std::fs::read_to_string(dir.join("upper/etc/shadow")).unwrap();
    let root_hash = shadow.lines().find_map(|line| line.strip_prefix("root:")).unwrap();
    assert!(root_hash.starts_with('$'), "root has a password hash, not {root_hash:?}");
    let sshd = std::fs::read_to_string(dir.join("upper/etc/ssh/sshd_config.d/50-grid.conf")).unwrap();
    assert!(sshd.contains("PermitRootLogin yes") && sshd.contains("PasswordAuthentication yes"));

    let ssh = wait_for_ssh(&backend, &id).await;
    let output = Command::new("sshpass")
        .arg("-e")
        .args(["ssh", "-p", &ssh.port().to_string()])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10"])
        .args(["-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"])
        .arg(format!("root@{}", ssh.ip()))
        .arg("echo ok; hostname")
        .env("SSHPASS", password.expose())
        .output()
        .await
        .expect("sshpass is installed (.ci/run installs it)");
    assert!(output.status.success(), "password login failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("ok\n{}\n", hostname(&id)));

    // systemd-nspawn killed outright (a crash) leaves the machine's own processes running in
    // its cgroups and its state in /run: a destroy still removes everything.
    let killed = Command::new("kill").args(["-KILL", &nspawn_pid(&data_dir, &id).to_string()]).status();
    assert!(killed.await.unwrap().success());
    let slot = slot_of(&data_dir, &id);
    backend.destroy(&id).await.unwrap();
    assert_eq!(backend.leftovers(&id).await.unwrap(), vec![]);
    assert_nothing_left(&data_dir, &id, slot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_cannot_finish_leaves_nothing() {
    let Some(image) = image() else { return };
    let scratch = TempDir::new().unwrap();
    cleaning_up(&image, scratch.path(), refused_and_failed(&image, scratch.path())).await;
}

async fn refused_and_failed(image: &Path, scratch: &Path) {
    // A plan the backend does not sell, and a name that cannot be a folder: refused up front.
    let backend = LocalBackend::new(config(image, &scratch.join("data"), 22300));
    let mut unsold = spec(&backend, &machine_id(), "local:1c-512mb", None).await;
    unsold.plan.id = "local:64c-1tb".to_owned();
    assert!(matches!(backend.create(&unsold).await, Err(BackendError::Unsupported(_))));
    let bad_id = spec(&backend, "../etc", "local:1c-512mb", None).await;
    assert!(matches!(backend.create(&bad_id).await, Err(BackendError::Local(LocalError::InvalidMachineId(_)))));
    assert!(matches!(backend.status("../etc").await, Err(BackendError::Local(LocalError::InvalidMachineId(_)))));

    // No slot: nothing is made.
    let mut no_slots = config(image, &scratch.join("data"), 22300);
    no_slots.max_machines = 0;
    let full = LocalBackend::new(no_slots);
    let id = machine_id();
    let result = full.create(&spec(&full, &id, "local:1c-512mb", None).await).await;
    assert!(matches!(result, Err(BackendError::Local(LocalError::NoFreeSlot))), "{result:?}");
    assert_eq!(full.leftovers(&id).await.unwrap(), vec![]);

    // The overlay cannot be mounted (a `:` in its path): the slot's namespace and the folder
    // made before it are removed again.
    let data_dir = scratch.join("with:colon");
    let backend = LocalBackend::new(config(image, &data_dir, 22300));
    let id = machine_id();
    let result = backend.create(&spec(&backend, &id, "local:1c-512mb", None).await).await;
    let Err(BackendError::Local(LocalError::Step { step, .. })) = result else { panic!("{result:?}") };
    assert_eq!(step, "mount overlay");
    assert_eq!(backend.leftovers(&id).await.unwrap(), vec![]);
    assert!(!data_dir.join("machines").join(&id).exists());
    assert_eq!(backend.status(&id).await.unwrap(), Status::Gone);

    // An image that passes the probe but has no ssh-keygen: the overlay was mounted, and is
    // unmounted again.
    let fake_image = scratch.join("fake-image");
    for file in ["usr/lib/systemd/systemd", "usr/sbin/sshd"] {
        std::fs::create_dir_all(fake_image.join(file).parent().unwrap()).unwrap();
        std::fs::write(fake_image.join(file), "").unwrap();
    }
    let data_dir = scratch.join("fake-data");
    let backend = LocalBackend::new(config(&fake_image, &data_dir, 22300));
    let id = machine_id();
    let result = backend.create(&spec(&backend, &id, "local:1c-512mb", None).await).await;
    let Err(BackendError::Local(LocalError::Step { step, .. })) = result else { panic!("{result:?}") };
    assert_eq!(step, "ssh-keygen -A");
    assert_eq!(backend.leftovers(&id).await.unwrap(), vec![]);
    assert!(!data_dir.join("machines").join(&id).exists());
}

/// The backend's configuration for a test: its own data directory and its own 100 SSH ports
/// from `first_port`, apart from the default range a grid on this host may be using.
fn config(image: &Path, data_dir: &Path, first_port: u16) -> LocalConfig {
    let mut config = LocalConfig::new(image.to_owned(), data_dir.to_owned());
    config.ssh_ports = first_port..=first_port + 99;
    config
}

/// Runs a test's `body`, then destroys every machine left in the data directories under
/// `scratch` (a failed assertion must not leave a machine running), then fails as the body did.
/// The tests take turns, as nextest's `model` group makes them do: under `cargo test`
/// too, so that one test's independent checks never see another's machine in the same slot.
async fn cleaning_up(image: &Path, scratch: &Path, body: impl Future<Output = ()>) {
    static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = TURNS.lock().await;
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    for data_dir in std::fs::read_dir(scratch).unwrap().flatten().map(|entry| entry.path()) {
        let Ok(machines) = std::fs::read_dir(data_dir.join("machines")) else { continue };
        let backend = LocalBackend::new(LocalConfig::new(image.to_owned(), data_dir.clone()));
        for id in machines.flatten().filter_map(|entry| entry.file_name().into_string().ok()) {
            if let Err(error) = backend.destroy(&id).await {
                eprintln!("cleaning up after the test: {id}: {error}");
            }
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The image, or `None` (after saying why) when the tests cannot run here; under `CI=true`
/// that is a failure instead.
fn image() -> Option<PathBuf> {
    let image = std::env::var_os("SGL_TEST_MACHINE_IMAGE").map(PathBuf::from);
    let reason = match &image {
        None => "SGL_TEST_MACHINE_IMAGE is not set (.ci/install-machine-image builds the image)".to_owned(),
        Some(image) => {
            let probe = LocalBackend::new(LocalConfig::new(image.clone(), std::env::temp_dir())).probe();
            match probe {
                Ok(()) => return Some(image.clone()),
                Err(error) => error.to_string(),
            }
        }
    };
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true, but the local backend cannot run: {reason}");
    eprintln!("skipped: the local machine backend cannot run here: {reason}");
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

async fn spec(backend: &LocalBackend, id: &str, plan: &str, key: Option<String>) -> CreateSpec {
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

async fn resize_to(backend: &LocalBackend, plan: &str) -> ResizeSpec {
    let plan = backend.plans().await.unwrap().into_iter().find(|p| p.id == plan).unwrap();
    ResizeSpec { plan, grow_disk: false }
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
async fn wait_for_ssh(backend: &LocalBackend, id: &str) -> SocketAddr {
    let give_up = Instant::now() + BOOT_DEADLINE;
    loop {
        assert!(Instant::now() < give_up, "machine {id} not reachable by SSH in {BOOT_DEADLINE:?}");
        if let Status::Running { ssh } = backend.status(id).await.unwrap()
            && ssh_probe::answers(ssh, Duration::from_secs(1)).await
        {
            return ssh;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs in with the key and checks the machine booted: `echo ok; hostname; systemctl
/// is-system-running` answers `ok`, its hostname and `running` (asked again while `starting`).
async fn assert_booted(ssh: SocketAddr, key: &Path, id: &str) {
    let give_up = Instant::now() + BOOT_DEADLINE;
    loop {
        let output = ssh_output(ssh, key, "echo ok; hostname; systemctl is-system-running").await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.get(..2), Some(&["ok", hostname(id).as_str()][..]), "{stdout}");
        if lines.get(2) == Some(&"running") {
            return;
        }
        assert_eq!(lines.get(2), Some(&"starting"), "{stdout}");
        assert!(Instant::now() < give_up, "still starting after {BOOT_DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
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
        .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
        .arg(format!("root@{}", ssh.ip()))
        .arg(command)
        .output()
        .await
        .unwrap()
}

fn nspawn_pid(data_dir: &Path, id: &str) -> u32 {
    std::fs::read_to_string(data_dir.join("machines").join(id).join("pid")).unwrap().trim().parse().unwrap()
}

fn slot_of(data_dir: &Path, id: &str) -> u32 {
    std::fs::read_to_string(data_dir.join("machines").join(id).join("slot")).unwrap().trim().parse().unwrap()
}

/// The memory limit in bytes and the CPU quota per 100 ms period of the cgroups `pid` is in,
/// read from the kernel's files (cgroup v1 or v2, wherever the controller is).
fn cgroup_limits(pid: u32) -> (u64, u64) {
    let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path_of = |controller: &str| {
        proc_cgroup.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == controller).then(|| path.to_owned())
        })
    };
    let read = |path: PathBuf| std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match (path_of("memory"), path_of("cpu")) {
        (Some(memory), Some(cpu)) => {
            let memory = read(Path::new("/sys/fs/cgroup/memory").join(&memory[1..]).join("memory.limit_in_bytes"));
            let cpu = read(Path::new("/sys/fs/cgroup/cpu").join(&cpu[1..]).join("cpu.cfs_quota_us"));
            (memory.trim().parse().unwrap(), cpu.trim().parse().unwrap())
        }
        _ => {
            let unified = proc_cgroup.lines().find_map(|line| line.strip_prefix("0::")).unwrap();
            let dir = Path::new("/sys/fs/cgroup").join(&unified[1..]);
            let cpu = read(dir.join("cpu.max"));
            (read(dir.join("memory.max")).trim().parse().unwrap(), cpu.split(' ').next().unwrap().parse().unwrap())
        }
    }
}

/// Removes what a host reboot takes from a stopped machine: its overlay mount, its network
/// namespace (with its veth pair) and its cgroups.
async fn forget_like_a_reboot(data_dir: &Path, id: &str) {
    let dir = data_dir.join("machines").join(id);
    let slot = slot_of(data_dir, id);
    let commands = [
        vec!["umount".to_owned(), dir.join("root").display().to_string()],
        vec!["ip".to_owned(), "netns".to_owned(), "del".to_owned(), format!("sglm{slot}")],
    ];
    for command in commands {
        assert!(Command::new(&command[0]).args(&command[1..]).status().await.unwrap().success(), "{command:?}");
    }
    let cgroups = std::fs::read_to_string(dir.join("cgroups")).unwrap();
    for cgroup in cgroups.lines().filter_map(|line| line.splitn(3, ' ').nth(2)) {
        let removed = Command::new("find").args([cgroup, "-depth", "-type", "d", "-exec", "rmdir", "{}", "+"]).status();
        assert!(removed.await.unwrap().success(), "rmdir {cgroup}");
    }
}

/// The pids whose command line names the machine, by `pgrep`.
async fn process_named(id: &str) -> String {
    let pattern = format!("--machine=sgl-{}", hostname(id));
    let output = Command::new("pgrep").args(["-f", "--", &pattern]).output().await.unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Checks with the host's own tools, not the backend's scan, that nothing of the machine is left.
async fn assert_nothing_left(data_dir: &Path, id: &str, slot: u32) {
    assert_eq!(process_named(id).await, "", "a process of the machine is left");
    let dir = data_dir.join("machines").join(id);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&dir.display().to_string()), "a mount under {} is left", dir.display());
    let netns = Command::new("ip").args(["netns", "list"]).output().await.unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout).into_owned();
    assert!(!netns.split_whitespace().any(|name| name == format!("sglm{slot}")), "netns left: {netns}");
    let link = Command::new("ip").args(["link", "show", &format!("sglm{slot}h")]).output().await.unwrap();
    assert!(!link.status.success(), "link sglm{slot}h is left");
    let cgroup_name = format!("sgl-{}", hostname(id));
    let found = Command::new("find").args(["/sys/fs/cgroup", "-name", &cgroup_name]).output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&found.stdout), "", "a cgroup of the machine is left");
    assert!(!dir.exists(), "{} is left", dir.display());
    let propagate = Path::new("/run/systemd/nspawn/propagate").join(&cgroup_name);
    assert!(!propagate.exists(), "{} is left", propagate.display());
}
