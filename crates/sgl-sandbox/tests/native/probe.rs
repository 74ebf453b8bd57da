//! What the probe reports on this machine, and its errors.

use std::path::{Path, PathBuf};

use sgl_sandbox::SandboxError;
use sgl_sandbox::native::{CgroupVersion, Limit, NativeSandbox};

use crate::{in_ci, sandbox};

#[test]
fn the_probe_finds_bwrap_and_says_what_is_not_enforced() {
    let capabilities = sandbox().capabilities();
    assert!(capabilities.bwrap.is_file(), "{:?}", capabilities.bwrap);
    assert!(capabilities.bwrap_version.starts_with("bubblewrap "), "{}", capabilities.bwrap_version);
    assert_eq!(capabilities.runs_as_root, euid_is_root());
    for unenforced in &capabilities.unenforced {
        assert!(!unenforced.reason.trim().is_empty(), "{unenforced:?}");
    }
    // Each limit is either backed by a cgroup or listed as not enforced, never both nor neither.
    for (limit, cgroup) in [
        (Limit::Memory, capabilities.memory_cgroup),
        (Limit::Pids, capabilities.pids_cgroup),
        (Limit::CpuRate, capabilities.cpu_cgroup),
    ] {
        let listed = capabilities.unenforced.iter().any(|unenforced| unenforced.limit == limit);
        assert_ne!(cgroup.is_some(), listed, "{limit:?}: cgroup {cgroup:?}, listed {listed}");
    }
    if in_ci() {
        // CI machines are like the project's: root, with memory and pids cgroups.
        assert!(capabilities.memory_cgroup.is_some() && capabilities.pids_cgroup.is_some(), "{capabilities:#?}");
        assert!(matches!(capabilities.memory_cgroup, Some(CgroupVersion::V1 | CgroupVersion::V2)));
    }
}

/// Whether this test process runs as root, read from `/proc/self/status` (no libc in tests).
fn euid_is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let uid_line = status.lines().find(|line| line.starts_with("Uid:")).expect("a Uid line");
    uid_line.split_whitespace().nth(2) == Some("0")
}

#[test]
fn a_missing_bwrap_is_a_typed_error_naming_the_path() {
    let missing = Path::new("/nonexistent/bwrap");
    match NativeSandbox::probe_with(missing) {
        Err(SandboxError::BwrapMissing { searched }) => assert_eq!(searched, [PathBuf::from(missing)]),
        other => panic!("expected BwrapMissing, got {other:?}"),
    }
}
