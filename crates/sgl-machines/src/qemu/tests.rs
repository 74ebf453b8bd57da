//! The QEMU backend's parts that need no root and no image: the acceleration grid, QEMU's
//! command line, the records in a machine's folder, the leftover scan's parsing, port choice,
//! QMP against a scripted socket, and growing an ext4 image (where e2fsprogs is installed).
//! The machines themselves are in `tests/qemu.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use super::steps::{self, Boot};
use super::vm::{Shape, Vm};
use super::{Accel, QemuBackend, QemuConfig, TcgPolicy, disk, leftovers, qmp};
use crate::backend::{BackendName, LocalError, MachineBackend};
use crate::kvm::Kvm;

const SHAPE: Shape = Shape { vcpus: 2, memory_mb: 2048, disk_gb: 8 };

#[test]
fn kvm_only_on_hardware_tcg_only_when_allowed_else_off_with_the_reason() {
    for tcg in [TcgPolicy::Allowed, TcgPolicy::Refused] {
        assert_eq!(Accel::choose(Kvm::Hardware, tcg), Ok(Accel::Kvm));
    }
    for kvm in [Kvm::Pvm, Kvm::Absent, Kvm::Unknown] {
        assert_eq!(Accel::choose(kvm, TcgPolicy::Allowed), Ok(Accel::Tcg));
        assert_eq!(Accel::choose(kvm, TcgPolicy::Refused), Err(kvm.why_not().unwrap()));
    }
}

#[test]
fn the_command_line_boots_the_image_kernel_on_the_machines_disk_with_only_ssh_forwarded() {
    let data = tempfile::tempdir().unwrap();
    let vm = Vm::new(data.path(), "vm_AB12").unwrap();
    std::fs::create_dir_all(vm.dir()).unwrap();
    let boot = Boot { vm_dir: Path::new("/img/vm"), accel: Accel::Tcg, shape: SHAPE, host: localhost(), port: 23001 };
    let dir = vm.dir().display().to_string();
    let expected = [
        "-name",
        "sgl-vm-ab12",
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "2048",
        "-smp",
        "2",
        "-nographic",
        "-nodefaults",
        "-serial",
        &format!("file:{dir}/console.log"),
        "-kernel",
        "/img/vm/vmlinuz",
        "-initrd",
        "/img/vm/initrd.img",
        "-append",
        "root=/dev/vda rw console=ttyS0 quiet",
        "-drive",
        &format!("file={dir}/disk.img,format=raw,if=virtio"),
        "-netdev",
        "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:23001-:22",
        "-device",
        "virtio-net-pci,netdev=n0",
        "-qmp",
        &format!("unix:{dir}/qmp.sock,server=on,wait=off"),
    ];
    assert_eq!(steps::qemu_args(&vm, &boot), expected);

    // With a key, the credential file as an SMBIOS OEM string; with KVM, the host's CPU.
    std::fs::write(vm.credential(), "io.systemd.credential:ssh.authorized_keys.root=ssh-ed25519 AAAA\n").unwrap();
    let host = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let args = steps::qemu_args(&vm, &Boot { accel: Accel::Kvm, host, ..boot });
    let after = |flag: &str| args.iter().position(|arg| arg == flag).map(|idx| args[idx + 1].as_str());
    assert_eq!(after("-accel"), Some("kvm"));
    assert_eq!(after("-cpu"), Some("host,-arch-capabilities"));
    assert_eq!(after("-netdev"), Some("user,id=n0,restrict=on,hostfwd=tcp:[::1]:23001-:22"));
    assert_eq!(after("-smbios"), Some(format!("type=11,path={dir}/credential").as_str()));
}

#[test]
fn paths_qemu_would_misread_are_refused() {
    assert!(steps::usable_path(Path::new("/var/lib/sgl-grid/data")));
    assert!(!steps::usable_path(Path::new("/data/a,b")));
    assert!(!steps::usable_path(Path::new("/data/a:b")));
    use std::os::unix::ffi::OsStrExt;
    assert!(!steps::usable_path(Path::new(std::ffi::OsStr::from_bytes(b"/data/\xff"))));
}

#[test]
fn a_machines_names_and_records_read_back_what_was_written() {
    let data = tempfile::tempdir().unwrap();
    for bad in ["", "../etc", "-x", "a b", &"x".repeat(61)] {
        assert!(matches!(Vm::new(data.path(), bad), Err(LocalError::InvalidMachineId(_))), "{bad:?}");
    }
    let vm = Vm::new(data.path(), "vm_Ab12").unwrap();
    assert_eq!((vm.hostname(), vm.name()), ("vm-ab12".to_owned(), "sgl-vm-ab12".to_owned()));
    assert_eq!(vm.dir(), data.path().join("vms/vm_Ab12"));
    assert!(!vm.exists());
    std::fs::create_dir_all(vm.dir()).unwrap();
    assert_eq!((vm.pid(), vm.port(), vm.shape(), vm.is_stopped()), (None, None, None, false));
    vm.set_pid(4242).unwrap();
    vm.set_port(23017).unwrap();
    vm.set_shape(SHAPE).unwrap();
    vm.set_stopped(true).unwrap();
    assert_eq!((vm.pid(), vm.port(), vm.shape(), vm.is_stopped()), (Some(4242), Some(23017), Some(SHAPE), true));
    vm.set_stopped(false).unwrap();
    vm.set_stopped(false).unwrap();
    assert!(!vm.is_stopped());
    assert_eq!(super::vm::all(data.path()).iter().map(Vm::id).collect::<Vec<_>>(), ["vm_Ab12"]);
}

#[test]
fn a_qemu_process_is_known_by_its_name_argument() {
    let cmdline = b"qemu-system-x86_64\0-name\0sgl-vm-1\0-machine\0q35\0";
    assert!(leftovers::names_vm(cmdline, "sgl-vm-1"));
    assert!(!leftovers::names_vm(cmdline, "sgl-vm-12"));
    assert!(!leftovers::names_vm(b"sh\0-c\0echo -name sgl-vm-1\0", "sgl-vm-1"));
    assert!(!leftovers::names_vm(b"sgl-vm-1\0-name\0", "sgl-vm-1"));
    assert!(leftovers::processes_named("sgl-vm-no-such-machine").is_empty());
    let data = tempfile::tempdir().unwrap();
    assert_eq!(leftovers::scan("sgl-vm-none", &data.path().join("none")), []);
    let found = leftovers::scan("sgl-vm-none", data.path());
    assert_eq!(found.iter().map(|leftover| leftover.kind).collect::<Vec<_>>(), ["directory"]);
}

#[tokio::test]
async fn a_port_is_the_machines_own_when_free_else_the_lowest_free_one_no_other_machine_keeps() {
    let data = tempfile::tempdir().unwrap();
    // A port something else listens on, and the next one kept by a stopped machine.
    let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let first = busy.local_addr().unwrap().port();
    let mut config = QemuConfig::new("/nonexistent".into(), data.path().to_owned(), Accel::Tcg);
    config.ssh_ports = first..=first.saturating_add(3);
    let backend = QemuBackend::new(config);
    let other = Vm::new(data.path(), "vm_other").unwrap();
    std::fs::create_dir_all(other.dir()).unwrap();
    other.set_port(first + 1).unwrap();
    let vm = Vm::new(data.path(), "vm_this").unwrap();
    std::fs::create_dir_all(vm.dir()).unwrap();
    let port = backend.free_port(&vm).unwrap();
    assert!(port >= first + 2, "{port} is neither the busy {first} nor the kept {}", first + 1);
    vm.set_port(first + 3).unwrap();
    assert_eq!(backend.free_port(&vm).unwrap(), first + 3, "its own port first");
    vm.set_port(first + 1).unwrap();
    assert_ne!(backend.free_port(&vm).unwrap(), first + 1, "never another machine's");
}

#[tokio::test]
async fn the_backend_says_what_it_sells_and_why_it_cannot_run() {
    let data = tempfile::tempdir().unwrap();
    let backend = QemuBackend::new(QemuConfig::new(data.path().join("no-vm"), data.path().to_owned(), Accel::Tcg));
    assert_eq!(backend.name(), BackendName::LocalVm);
    let capabilities = backend.capabilities();
    assert!(capabilities.password_login && capabilities.downgrade && capabilities.disk_growth_permanent);
    let plans = backend.plans().await.unwrap();
    let ids: Vec<_> = plans.iter().map(|plan| (plan.id.as_str(), plan.vcpus, plan.memory_mb, plan.disk_gb)).collect();
    assert_eq!(ids, [("local-vm:1c-1gb", 1, 1024, 4), ("local-vm:2c-2gb", 2, 2048, 8)]);
    assert!(plans.iter().all(|plan| BackendName::of_plan(&plan.id) == BackendName::LocalVm));
    assert_eq!(backend.regions().await.unwrap()[0].id, "local");
    match backend.probe() {
        Err(LocalError::NotRoot) => assert!(!rustix::process::geteuid().is_root()),
        Err(LocalError::MissingVmTool(_)) => {}
        other => assert!(matches!(other, Err(LocalError::NoVmImage(_))), "{other:?}"),
    }
}

#[tokio::test]
async fn qmp_skips_events_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(async move {
        for answer in [
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "POWERDOWN"}
{"return": {}}"#,
            r#"{"error": {"class": "GenericError", "desc": "no powerdown today"}}"#,
        ] {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n").await.unwrap();
            assert_eq!(lines.next_line().await.unwrap().unwrap(), r#"{"execute":"qmp_capabilities"}"#);
            write.write_all(b"{\"return\": {}}\n").await.unwrap();
            assert_eq!(lines.next_line().await.unwrap().unwrap(), r#"{"execute":"system_powerdown"}"#);
            write.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
        }
    });
    let answer = qmp::execute(&socket, "qmp system_powerdown", "system_powerdown").await.unwrap();
    assert_eq!(answer, serde_json::json!({}));
    let refused = qmp::execute(&socket, "qmp system_powerdown", "system_powerdown").await;
    let Err(LocalError::Step { step, stderr_tail, .. }) = refused else { panic!("{refused:?}") };
    assert_eq!((step, stderr_tail.as_str()), ("qmp system_powerdown", "no powerdown today"));
    server.await.unwrap();
    drop(dir);
    let gone = qmp::execute(Path::new("/nonexistent/qmp.sock"), "qmp quit", "quit").await;
    assert!(matches!(gone, Err(LocalError::Step { step: "qmp quit", .. })), "{gone:?}");
}

#[tokio::test]
async fn a_disk_grows_with_its_file_system() {
    let tools = ["mke2fs", "e2fsck", "resize2fs", "dumpe2fs"];
    if !tools.iter().all(|tool| ["/usr/sbin", "/sbin"].iter().any(|dir| Path::new(dir).join(tool).is_file())) {
        eprintln!("skipped: e2fsprogs is not installed");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let vm = Vm::new(data.path(), "vm_disk").unwrap();
    std::fs::create_dir_all(vm.dir()).unwrap();
    let mut mke2fs = std::process::Command::new("mke2fs");
    mke2fs.args(["-q", "-t", "ext4"]).arg(vm.disk()).arg("64M").stderr(std::process::Stdio::null());
    let made = mke2fs.status();
    assert!(made.unwrap().success());
    disk::grow(&vm, 1).await.unwrap();
    assert_eq!(std::fs::metadata(vm.disk()).unwrap().len(), 1 << 30);
    let info = std::process::Command::new("dumpe2fs").arg("-h").arg(vm.disk()).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let blocks = |field: &str| -> u64 {
        let line = info.lines().find(|line| line.starts_with(field)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(blocks("Block count:") * blocks("Block size:"), 1 << 30);
}

fn localhost() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}
