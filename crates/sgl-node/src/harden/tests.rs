//! Hardening applied to this test process for real, and locked memory read back from
//! `/proc/self/status`.

use super::*;

/// `VmLck` from `/proc/self/status`, in KiB.
fn locked_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmLck:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The soft `RLIMIT_MEMLOCK` in bytes.
fn memlock_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    assert_eq!(rc, 0);
    limit.rlim_cur
}

#[cfg(target_os = "linux")]
#[test]
fn harden_process_makes_this_process_non_dumpable_with_no_core() {
    let report = harden_process();
    assert_eq!(report.os, "linux");
    let names: Vec<_> = report.measures.iter().map(|m| m.name).collect();
    assert_eq!(names, ["prctl(PR_SET_DUMPABLE, 0)", "setrlimit(RLIMIT_CORE, 0)"]);
    assert!(report.fully_applied(), "{report:?}");
    assert_eq!(is_dumpable(), Some(false));
    let mut core = libc::rlimit { rlim_cur: 1, rlim_max: 1 };
    // SAFETY: `core` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut core) }, 0);
    assert_eq!((core.rlim_cur, core.rlim_max), (0, 0));
    // Idempotent: every command calls it, and a second call must not turn into a failure.
    assert!(harden_process().fully_applied());
}

#[cfg(target_os = "linux")]
#[test]
fn locked_secret_locks_pages_or_says_why_not() {
    let before = locked_kib().expect("VmLck readable");
    let len = 3 * 4096 + 10;
    let mut secret = LockedSecret::zeroed(len).expect("mapping");
    assert_eq!(secret.as_slice().len(), len);
    assert!(secret.as_slice().iter().all(|b| *b == 0));
    secret.as_mut_slice()[len - 1] = 7;
    assert_eq!(secret.as_slice()[len - 1], 7);
    assert!(secret.protection().excluded_from_core_dumps, "{:?}", secret.protection());
    let during = locked_kib().expect("VmLck readable");
    if memlock_limit() >= 64 * 1024 {
        assert!(secret.protection().locked, "{:?}", secret.protection());
        // Four pages locked, whatever else the process holds (this is the only test that locks).
        assert!(during >= before + 16, "VmLck {before} kB -> {during} kB");
    } else {
        assert!(!secret.protection().locked);
        assert!(secret.protection().error.as_deref().is_some_and(|e| e.contains("mlock")));
    }
    drop(secret);
    assert_eq!(locked_kib(), Some(before));

    // Copies, an empty secret, and a Debug that never shows the bytes. These lock too, so they
    // live in this test: the VmLck arithmetic above assumes no other test locks meanwhile.
    let copied = LockedSecret::copy_from(b"ed25519 seed").expect("mapping");
    assert_eq!(copied.as_slice(), b"ed25519 seed");
    let debug = format!("{copied:?}");
    assert!(debug.contains("len: 12") && !debug.contains("101, 100"), "{debug}");
    let empty = LockedSecret::copy_from(&[]).expect("mapping");
    assert!(empty.as_slice().is_empty());

    // Keys that live as long as the process are locked where they are (never unlocked, so last).
    let key = Box::new([9u8; 32]);
    let before = locked_kib().expect("VmLck readable");
    let protection = lock_in_place(&*key);
    assert!(protection.excluded_from_core_dumps, "{protection:?}");
    if memlock_limit() >= 64 * 1024 {
        assert!(protection.locked, "{protection:?}");
        assert!(locked_kib().expect("VmLck readable") >= before + 4);
    } else {
        assert!(!protection.locked);
    }
}
