//! The lock within one process: `flock` locks belong to an open file, so a second open of the
//! same file conflicts just as a second process would.

use super::*;

#[test]
fn a_second_holder_is_refused_with_the_first_pid_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let first = InstanceLock::acquire(dir.path()).unwrap();
    let pid = std::process::id();
    assert_eq!(std::fs::read_to_string(first.path()).unwrap(), format!("{pid}\n"));

    let refused = InstanceLock::acquire(dir.path()).unwrap_err();
    assert!(matches!(&refused, InstanceLockError::Held { pid: Some(p), .. } if *p == pid), "{refused:?}");
    let message = refused.to_string();
    assert!(message.contains(&dir.path().display().to_string()) && message.contains(&format!("(pid {pid})")));
    // The refused attempt left the holder's pid in place.
    assert_eq!(std::fs::read_to_string(first.path()).unwrap(), format!("{pid}\n"));

    drop(first);
    let second = InstanceLock::acquire(dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(second.path()).unwrap(), format!("{pid}\n"));
}

#[test]
fn a_stale_lock_file_does_not_block_and_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(LOCK_FILE), "999999999\nleftover\n").unwrap();
    let lock = InstanceLock::acquire(dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(lock.path()).unwrap(), format!("{}\n", std::process::id()));
}

#[test]
fn an_unknown_holder_is_refused_without_a_pid() {
    let dir = tempfile::tempdir().unwrap();
    // A holder that has not written its pid yet.
    let file = File::create(dir.path().join(LOCK_FILE)).unwrap();
    file.lock().unwrap();
    let refused = InstanceLock::acquire(dir.path()).unwrap_err();
    assert!(matches!(refused, InstanceLockError::Held { pid: None, .. }), "{refused:?}");
    assert!(!refused.to_string().contains("(pid"), "{refused}");
}
