//! Which files a job's cgroup writes and reads, on a directory tree that stands in for the
//! cgroup file systems (the real ones are exercised by `tests/native`). On a plain directory a
//! write creates the file, so the tree shows exactly what was written.

use super::*;

fn own(version: CgroupVersion, dir: &Path) -> Option<OwnCgroup> {
    Some(OwnCgroup { version, dir: dir.to_owned() })
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{path:?}: {error}"))
}

/// Empties the cgroup's directories so that its removal (a plain `rmdir`) succeeds.
fn empty_and_remove(cgroup: JobCgroup) {
    for dir in &cgroup.dirs {
        for entry in fs::read_dir(dir).expect("list") {
            fs::remove_file(entry.expect("entry").path()).expect("remove a file");
        }
    }
    cgroup.remove().expect("removed");
}

fn limits() -> NativeLimits {
    NativeLimits { memory_bytes: 64 << 20, pids: 16, cpu_millicores: Some(1500), ..NativeLimits::default() }
}

#[test]
fn v1_writes_each_limit_in_its_own_hierarchy() {
    let root = tempfile::tempdir().expect("a temporary directory");
    for name in ["memory", "pids", "cpu", "cpuacct"] {
        fs::create_dir(root.path().join(name)).expect("mkdir");
    }
    let at = |name: &str| own(CgroupVersion::V1, &root.path().join(name));
    let parents = CgroupParents { memory: at("memory"), pids: at("pids"), cpu: at("cpu"), cpu_usage: at("cpuacct") };
    let cgroup = JobCgroup::create(&parents, &limits()).expect("created").expect("some controllers");
    assert_eq!(cgroup.dirs.len(), 4, "one directory per hierarchy");
    let job = cgroup.dirs[0].file_name().expect("a name").to_owned();
    let file = |hierarchy: &str, name: &str| read(&root.path().join(hierarchy).join(&job).join(name));
    assert_eq!(file("memory", "memory.limit_in_bytes"), (64u64 << 20).to_string());
    assert_eq!(file("pids", "pids.max"), "16");
    assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(file("cpu", "cpu.cfs_quota_us"), "150000", "1.5 cores: 150 ms per 100 ms");
    for dir in &cgroup.dirs {
        fs::write(dir.join("cgroup.procs"), "").expect("stand in for the kernel's cgroup.procs");
    }
    assert_eq!(cgroup.procs_files().expect("cgroup.procs opens").len(), 4);

    fs::write(root.path().join("memory").join(&job).join("memory.max_usage_in_bytes"), "123456\n").expect("write");
    fs::write(
        root.path().join("memory").join(&job).join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    .expect("write");
    fs::write(root.path().join("cpuacct").join(&job).join("cpuacct.usage"), "2500000000\n").expect("write");
    let usage = cgroup.usage();
    assert_eq!(
        usage,
        CgroupUsage { peak_memory_bytes: Some(123456), cpu_time: Some(Duration::from_millis(2500)), oom_kills: 2 }
    );
    empty_and_remove(cgroup);
    assert_eq!(fs::read_dir(root.path().join("memory")).expect("list").count(), 0, "the job's directory is gone");
}

#[test]
fn v2_writes_every_limit_in_one_directory() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let at = || own(CgroupVersion::V2, root.path());
    let parents = CgroupParents { memory: at(), pids: at(), cpu: at(), cpu_usage: at() };
    let cgroup = JobCgroup::create(&parents, &limits()).expect("created").expect("some controllers");
    assert_eq!(cgroup.dirs.len(), 1, "one directory for every controller");
    let dir = cgroup.dirs[0].clone();
    assert_eq!(read(&dir.join("memory.max")), (64u64 << 20).to_string());
    assert_eq!(read(&dir.join("pids.max")), "16");
    assert_eq!(read(&dir.join("cpu.max")), "150000 100000");
    // Files a v2 kernel always has are written only where present: a plain directory has none.
    assert!(!dir.join("memory.swap.max").exists());

    fs::write(dir.join("memory.peak"), "4096\n").expect("write");
    fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n").expect("write");
    fs::write(dir.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n").expect("write");
    assert_eq!(
        cgroup.usage(),
        CgroupUsage { peak_memory_bytes: Some(4096), cpu_time: Some(Duration::from_micros(1500)), oom_kills: 1 }
    );
    empty_and_remove(cgroup);
    assert!(!dir.exists());
}

#[test]
fn no_usable_controller_means_no_cgroup_and_a_tiny_rate_is_raised_to_the_kernels_minimum() {
    assert!(JobCgroup::create(&CgroupParents::default(), &limits()).expect("nothing to do").is_none());

    let root = tempfile::tempdir().expect("a temporary directory");
    let parents = CgroupParents { cpu: own(CgroupVersion::V2, root.path()), ..CgroupParents::default() };
    let tiny = NativeLimits { cpu_millicores: Some(1), ..limits() };
    let cgroup = JobCgroup::create(&parents, &tiny).expect("created").expect("cpu");
    assert_eq!(read(&cgroup.dirs[0].join("cpu.max")), "1000 100000");
    empty_and_remove(cgroup);
}

#[test]
fn key_value_files_are_read_by_key() {
    let text = "usage_usec 42\nuser_usec 40\nnr_periods x\n";
    assert_eq!(parse_key(text, "usage_usec"), Some(42));
    assert_eq!(parse_key(text, "user_usec"), Some(40));
    assert_eq!(parse_key(text, "usage"), None, "a prefix of a key is not the key");
    assert_eq!(parse_key(text, "nr_periods"), None, "not a number");
}
