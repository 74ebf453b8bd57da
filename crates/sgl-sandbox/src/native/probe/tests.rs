//! The probe's refusals and their reasons (the probe of the real machine is in `tests/native`).

use super::*;

#[test]
fn a_v2_cgroup_that_does_not_offer_the_controller_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    fs::write(dir.path().join("cgroup.controllers"), "cpu pids\n").expect("write");
    let own = OwnCgroup { version: CgroupVersion::V2, dir: dir.path().to_owned() };
    let refusal = try_controller(&own, Controller::Memory).expect_err("memory is not offered");
    assert!(matches!(refusal, Refusal::NotOffered { controller: "memory", .. }), "{refusal:?}");
    assert!(refusal.to_string().ends_with("does not offer memory (not in its cgroup.controllers)"), "{refusal}");
    assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1, "no probe cgroup was left behind");
}

#[test]
fn a_missing_cgroup_directory_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let own = OwnCgroup { version: CgroupVersion::V1, dir: dir.path().join("gone") };
    let refusal = try_controller(&own, Controller::Pids).expect_err("nowhere to make a child");
    assert!(matches!(&refusal, Refusal::CannotMake { dir, .. } if *dir == own.dir), "{refusal:?}");
}

#[test]
fn the_pids_reason_says_what_stands_in() {
    let refusal = Refusal::NotMounted { controller: "pids" };
    assert_eq!(
        pids_fallback(&refusal, true),
        "no usable pids cgroup (no cgroup hierarchy has the pids controller), and RLIMIT_NPROC does not bind root"
    );
    assert!(pids_fallback(&refusal, false).contains("RLIMIT_NPROC is set instead"));
}

#[test]
fn a_missing_bwrap_is_its_own_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("bwrap");
    match probe(&missing) {
        Err(SandboxError::BwrapMissing { searched }) => assert_eq!(searched, [missing]),
        other => panic!("expected BwrapMissing, got {other:?}"),
    }
}

#[test]
fn a_bwrap_that_fails_is_unusable_with_its_message() {
    // A stand-in that fails the way a bwrap without user namespaces does.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fake = dir.path().join("bwrap");
    fs::write(&fake, "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n").expect("write");
    let mut permissions = fs::metadata(&fake).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    fs::set_permissions(&fake, permissions).expect("chmod");
    match probe(&fake) {
        Err(SandboxError::BwrapUnusable { bwrap, message }) => {
            assert_eq!(bwrap, fake);
            assert!(message.contains("No permissions to creating new namespace"), "{message}");
        }
        other => panic!("expected BwrapUnusable, got {other:?}"),
    }
}
