//! Finding this process's cgroups in the layouts seen in the wild: a v1 hybrid (the project's
//! machines), pure v2 (systemd hosts), v2 inside a container's cgroup namespace, co-mounted
//! v1 controllers, and no cgroups at all.

use super::*;

/// The project's machine kind: v1 controllers, each on its own hierarchy, an empty unified
/// hierarchy, and this process in a memory cgroup of its own.
const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/2657
2:cpuacct:/
1:cpu:/
0::/
";

fn located(version: CgroupVersion, dir: &str) -> Option<OwnCgroup> {
    Some(OwnCgroup { version, dir: PathBuf::from(dir) })
}

#[test]
fn a_hybrid_layout_uses_each_v1_hierarchy() {
    let at = |controller| locate(HYBRID_MOUNTINFO, HYBRID_CGROUP, controller);
    assert_eq!(at(Controller::Memory), located(CgroupVersion::V1, "/sys/fs/cgroup/memory/process_api/2657"));
    assert_eq!(at(Controller::Pids), located(CgroupVersion::V1, "/sys/fs/cgroup/pids"));
    assert_eq!(at(Controller::Cpu), located(CgroupVersion::V1, "/sys/fs/cgroup/cpu"));
    assert_eq!(at(Controller::CpuUsage), located(CgroupVersion::V1, "/sys/fs/cgroup/cpuacct"));
}

#[test]
fn a_pure_v2_layout_uses_the_unified_hierarchy_for_everything() {
    let mountinfo =
        "25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
    let proc_cgroup = "0::/system.slice/sgl-node.service\n";
    let expected = located(CgroupVersion::V2, "/sys/fs/cgroup/system.slice/sgl-node.service");
    for controller in [Controller::Memory, Controller::Pids, Controller::Cpu, Controller::CpuUsage] {
        assert_eq!(locate(mountinfo, proc_cgroup, controller), expected, "{controller:?}");
    }
}

#[test]
fn a_mount_of_a_subtree_is_joined_relative_to_its_root() {
    // A container whose cgroup namespace was not unshared: the hierarchy mounted at
    // /sys/fs/cgroup is the host's /docker/abc, and /proc/self/cgroup shows full paths.
    let mountinfo = "700 690 0:30 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
    assert_eq!(
        locate(mountinfo, "0::/docker/abc/job\n", Controller::Memory),
        located(CgroupVersion::V2, "/sys/fs/cgroup/job")
    );
    assert_eq!(locate(mountinfo, "0::/docker/abc\n", Controller::Memory), located(CgroupVersion::V2, "/sys/fs/cgroup"));
    assert_eq!(locate(mountinfo, "0::/elsewhere\n", Controller::Memory), None, "a path outside the mount");
}

#[test]
fn co_mounted_v1_controllers_share_a_directory() {
    let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
    let proc_cgroup = "5:memory:/node\n4:cpu,cpuacct:/node\n";
    assert_eq!(
        locate(mountinfo, proc_cgroup, Controller::Cpu),
        located(CgroupVersion::V1, "/sys/fs/cgroup/cpu,cpuacct/node")
    );
    assert_eq!(
        locate(mountinfo, proc_cgroup, Controller::CpuUsage),
        located(CgroupVersion::V1, "/sys/fs/cgroup/cpu,cpuacct/node")
    );
    assert_eq!(locate(mountinfo, proc_cgroup, Controller::Pids), None, "no pids hierarchy and no v2 one");
}

#[test]
fn without_cgroup_mounts_nothing_is_found() {
    let mountinfo = "22 1 0:21 / /proc rw - proc proc rw\n";
    assert_eq!(locate(mountinfo, "0::/\n", Controller::Memory), None);
    assert_eq!(locate("", "", Controller::Memory), None);
}

#[test]
fn escaped_mount_points_are_decoded() {
    let mountinfo = "41 31 0:38 / /mnt/cgroup\\040v2 rw - cgroup2 cgroup2 rw\n";
    assert_eq!(locate(mountinfo, "0::/a\n", Controller::Pids), located(CgroupVersion::V2, "/mnt/cgroup v2/a"));
    assert_eq!(unescape("a\\134b\\x"), PathBuf::from("a\\b\\x"));
}
