//! The local backend's parts that need no root: where cgroups go on v1, hybrid and v2 hosts,
//! the records in a machine's folder, names and addresses, the leftover scan's parsing, root
//! passwords, and the SSH forwarder on loopback. The machines themselves are in
//! `tests/local.rs`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::cgroup::{self, CgroupDir, Limits, Version};
use super::forward::{self, Forwarder};
use super::leftovers;
use super::machine::{Machine, Slot};
use super::{LocalBackend, LocalConfig, LocalPlan};
use crate::backend::{BackendName, LocalError, MachineBackend};

/// This project's machine kind: v1 controllers, `name=systemd`, an empty unified hierarchy,
/// and this process's memory cgroup below the root.
const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";

fn dir(version: Version, memory: bool, cpu: bool, path: &str) -> CgroupDir {
    CgroupDir { version, memory, cpu, path: PathBuf::from(path) }
}

#[test]
fn on_a_hybrid_host_limits_go_to_the_v1_controllers_and_nspawn_gets_its_own_groups() {
    let dirs = cgroup::plan_dirs(HYBRID_MOUNTINFO, HYBRID_CGROUP, "sgl-vm-1");
    assert_eq!(
        dirs,
        [
            dir(Version::V1, true, false, "/sys/fs/cgroup/memory/process_api/abc/sgl-vm-1"),
            dir(Version::V1, false, true, "/sys/fs/cgroup/cpu/sgl-vm-1"),
            dir(Version::V1, false, false, "/sys/fs/cgroup/systemd/sgl-vm-1"),
            dir(Version::V2, false, false, "/sys/fs/cgroup/unified/sgl-vm-1"),
        ]
    );
}

#[test]
fn on_a_v2_host_one_directory_holds_both_limits() {
    let mountinfo = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    let dirs = cgroup::plan_dirs(mountinfo, "0::/system.slice/sgl-grid.service\n", "sgl-vm-1");
    assert_eq!(dirs, [dir(Version::V2, true, true, "/sys/fs/cgroup/system.slice/sgl-grid.service/sgl-vm-1")]);
    assert_eq!(cgroup::plan_dirs("", "", "sgl-vm-1"), []);
}

#[test]
fn a_combined_v1_hierarchy_and_a_mount_below_its_root_are_followed() {
    // cpu and cpuacct share a hierarchy, mounted from the cgroup `/outer` (as in a container).
    let mountinfo = "32 31 0:29 /outer /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                     35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
    let dirs = cgroup::plan_dirs(mountinfo, "3:cpu,cpuacct:/outer/grid\n4:memory:/\n", "m");
    assert_eq!(
        dirs,
        [
            dir(Version::V1, true, false, "/sys/fs/cgroup/memory/m"),
            dir(Version::V1, false, true, "/sys/fs/cgroup/cpu,cpuacct/grid/m")
        ]
    );
}

#[test]
fn the_cgroup_record_reads_back_what_was_written() {
    let dirs = cgroup::plan_dirs(HYBRID_MOUNTINFO, HYBRID_CGROUP, "sgl-vm-1");
    assert_eq!(cgroup::from_record(&cgroup::to_record(&dirs)), dirs);
    let both = [dir(Version::V2, true, true, "/sys/fs/cgroup/a b/m")];
    assert_eq!(cgroup::from_record(&cgroup::to_record(&both)), both);
    assert_eq!(cgroup::from_record("memory v3 /x\ngarbage\n"), []);
}

#[test]
fn limits_are_bytes_and_a_quota_per_100_ms() {
    let limits = Limits { vcpus: 2, memory_mb: 1024 };
    assert_eq!((limits.memory_bytes(), limits.cpu_quota_us()), (1 << 30, 200_000));
    assert_eq!(Limits { vcpus: 0, memory_mb: 0 }.cpu_quota_us(), 100_000, "never a zero quota");
}

#[test]
fn a_machine_id_names_a_folder_a_container_and_a_hostname() {
    let machine = Machine::new(Path::new("/data"), "vm_0123abcd").unwrap();
    assert_eq!(machine.dir(), Path::new("/data/machines/vm_0123abcd"));
    assert_eq!(machine.hostname(), "vm-0123abcd");
    assert_eq!(machine.name(), "sgl-vm-0123abcd");
    assert_eq!(machine.root(), Path::new("/data/machines/vm_0123abcd/root"));
    for bad in ["", "../etc", "a/b", "-x", "_x", "vm 1", "vm.1", &"x".repeat(61)] {
        assert!(matches!(Machine::new(Path::new("/data"), bad), Err(LocalError::InvalidMachineId(_))), "{bad:?}");
    }
    assert!(Machine::new(Path::new("/data"), &"x".repeat(60)).is_ok());
}

#[test]
fn a_slot_has_short_link_names_and_a_slash_30() {
    let base = Ipv4Addr::new(10, 231, 0, 0);
    let slot = Slot(70);
    assert_eq!(
        (slot.netns(), slot.host_link(), slot.guest_link()),
        ("sglm70".into(), "sglm70h".into(), "sglm70c".into())
    );
    assert_eq!(slot.host_addr(base), Some(Ipv4Addr::new(10, 231, 1, 25)));
    assert_eq!(slot.guest_addr(base), Some(Ipv4Addr::new(10, 231, 1, 26)));
    assert_eq!(Slot(0).guest_addr(base), Some(Ipv4Addr::new(10, 231, 0, 2)));
    assert!(Slot(u32::MAX).host_link().len() < 16, "Linux link names are at most 15 characters");
    assert_eq!(Slot(1).guest_addr(Ipv4Addr::new(255, 255, 255, 252)), None, "past the address space");
}

#[test]
fn a_process_is_the_machines_only_with_the_exact_argument() {
    let cmdline = b"systemd-nspawn\0-D\0/d/root\0--machine=sgl-vm-ab\0--boot\0";
    assert!(leftovers::names_machine(cmdline, "sgl-vm-ab"));
    assert!(!leftovers::names_machine(cmdline, "sgl-vm-a"));
    assert!(!leftovers::names_machine(b"grep\0--machine=sgl-vm-ab.\0", "sgl-vm-ab"));
}

#[test]
fn mount_points_are_unescaped() {
    let mountinfo = "96 30 0:40 / /data/machines/vm_1/root rw - overlay overlay rw,lowerdir=/img\n\
                     97 30 0:41 / /data/with\\040space rw - tmpfs tmpfs rw\n";
    assert_eq!(
        leftovers::mount_points(mountinfo),
        [PathBuf::from("/data/machines/vm_1/root"), PathBuf::from("/data/with space")]
    );
}

#[test]
fn root_passwords_are_long_random_and_unambiguous() {
    let passwords: BTreeSet<String> = (0..50).map(|_| super::ops::new_password().expose().to_owned()).collect();
    assert_eq!(passwords.len(), 50);
    for password in &passwords {
        assert_eq!(password.len(), 24);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)), "{password}");
    }
}

#[tokio::test]
async fn the_backend_sells_its_plans_in_one_region_and_says_what_it_can_do() {
    let backend = LocalBackend::new(LocalConfig::new("/nonexistent".into(), "/nonexistent".into()));
    assert_eq!(backend.name(), BackendName::Local);
    let plans = backend.plans().await.unwrap();
    let shape: Vec<_> =
        plans.iter().map(|p| (p.id.as_str(), p.vcpus, p.memory_mb, p.disk_gb, p.monthly_micros)).collect();
    assert_eq!(shape, [("local:1c-512mb", 1, 512, 5, 0), ("local:2c-1gb", 2, 1024, 10, 0)]);
    assert!(plans.iter().all(|plan| plan.regions == ["local"] && plan.gpu.is_none()));
    assert_eq!(LocalPlan::defaults().len(), 2);
    let regions = backend.regions().await.unwrap();
    assert_eq!(regions.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["local"]);
    let capabilities = backend.capabilities();
    assert!(capabilities.password_login && capabilities.downgrade && !capabilities.disk_growth_permanent);
    let probe = backend.probe();
    assert!(matches!(probe, Err(LocalError::NotRoot | LocalError::MissingTool(_) | LocalError::NoImage(_))));
}

#[tokio::test]
async fn a_forwarder_relays_both_ways_until_closed() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let (mut socket, _) = target.accept().await.unwrap();
        let mut buf = [0u8; 5];
        socket.read_exact(&mut buf).await.unwrap();
        socket.write_all(&buf).await.unwrap();
    });
    let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let listener = forward::bind(host, &(0..=0), None, &BTreeSet::new()).await.unwrap();
    let forwarder = Forwarder::start(listener, target_addr).unwrap();
    let addr = forwarder.addr();
    assert!(forwarder.is_running());

    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut answer = [0u8; 5];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"hello");
    echo.await.unwrap();

    forwarder.close().await;
    let mut client_read = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(2), client.read(&mut client_read)).await.unwrap();
    assert!(matches!(closed, Ok(0) | Err(_)), "an open connection ends with its forwarder");
    assert!(TcpStream::connect(addr).await.is_err(), "nothing listens after close");
    TcpListener::bind(addr).await.expect("the port is free again");
}

#[tokio::test]
async fn a_port_is_the_preferred_one_when_free_else_the_lowest_not_kept_by_another() {
    let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // Find three consecutive free ports, then hold the first.
    let (first, held) = loop {
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let first = probe.local_addr().unwrap().port();
        if first < u16::MAX - 2
            && TcpListener::bind(("127.0.0.1", first + 1)).await.is_ok()
            && TcpListener::bind(("127.0.0.1", first + 2)).await.is_ok()
        {
            break (first, probe);
        }
    };
    let ports = first..=first + 2;
    let avoid = BTreeSet::from([first + 1]);
    let port = |listener: TcpListener| listener.local_addr().unwrap().port();
    assert_eq!(port(forward::bind(host, &ports, None, &avoid).await.unwrap()), first + 2);
    assert_eq!(port(forward::bind(host, &ports, Some(first + 1), &avoid).await.unwrap()), first + 1);
    assert_eq!(port(forward::bind(host, &ports, Some(first), &BTreeSet::new()).await.unwrap()), first + 1);
    assert!(forward::bind(host, &ports, Some(9), &BTreeSet::from([first + 1, first + 2])).await.is_none());
    drop(held);
}
