//! The output check: counts, the exact edges of each limit, and every kind of entry it refuses.

use std::fs;

use super::*;

const ROOMY: OutputLimits = OutputLimits { bytes: 1 << 20, files: 100 };

/// An output directory with `a.txt` (3 bytes) and `sub/b.bin` (5 bytes): 8 bytes, 3 entries.
fn sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    fs::write(dir.path().join("a.txt"), b"abc").expect("write a.txt");
    fs::create_dir(dir.path().join("sub")).expect("mkdir sub");
    fs::write(dir.path().join("sub/b.bin"), b"01234").expect("write b.bin");
    dir
}

#[test]
fn counts_bytes_and_entries_of_the_whole_tree() {
    let dir = sample();
    assert_eq!(check_output(dir.path(), ROOMY).expect("within limits"), OutputUsage { bytes: 8, files: 3 });
    let empty = tempfile::tempdir().expect("a temporary directory");
    assert_eq!(check_output(empty.path(), ROOMY).expect("empty"), OutputUsage::default());
}

#[test]
fn exactly_at_the_limits_passes_and_one_past_fails() {
    let dir = sample();
    let exact = OutputLimits { bytes: 8, files: 3 };
    assert_eq!(check_output(dir.path(), exact).expect("at the limits"), OutputUsage { bytes: 8, files: 3 });
    match check_output(dir.path(), OutputLimits { bytes: 7, ..exact }) {
        Err(SandboxError::OutputTooLarge { limit_bytes: 7, found_bytes }) => assert_eq!(found_bytes, 8),
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
    assert!(matches!(
        check_output(dir.path(), OutputLimits { files: 2, ..exact }),
        Err(SandboxError::TooManyOutputFiles { limit: 2 })
    ));
}

#[test]
fn a_symlink_is_refused_even_to_a_file_inside() {
    let dir = sample();
    std::os::unix::fs::symlink("a.txt", dir.path().join("sub/link")).expect("symlink");
    match check_output(dir.path(), ROOMY) {
        Err(SandboxError::OutputNotRegularFile { path }) => assert_eq!(path, Path::new("sub/link")),
        other => panic!("expected OutputNotRegularFile, got {other:?}"),
    }
}

#[test]
fn a_symlink_to_a_directory_is_refused_not_followed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::os::unix::fs::symlink("/etc", dir.path().join("etc")).expect("symlink");
    match check_output(dir.path(), ROOMY) {
        Err(SandboxError::OutputNotRegularFile { path }) => assert_eq!(path, Path::new("etc")),
        other => panic!("expected OutputNotRegularFile, got {other:?}"),
    }
}

#[test]
fn a_socket_and_a_fifo_are_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("socket")).expect("bind a socket");
    match check_output(dir.path(), ROOMY) {
        Err(SandboxError::OutputNotRegularFile { path }) => assert_eq!(path, Path::new("socket")),
        other => panic!("expected OutputNotRegularFile, got {other:?}"),
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let status = std::process::Command::new("mkfifo").arg(dir.path().join("fifo")).status().expect("mkfifo runs");
    assert!(status.success());
    match check_output(dir.path(), ROOMY) {
        Err(SandboxError::OutputNotRegularFile { path }) => assert_eq!(path, Path::new("fifo")),
        other => panic!("expected OutputNotRegularFile, got {other:?}"),
    }
}

#[test]
fn a_missing_directory_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("nowhere");
    match check_output(&missing, ROOMY) {
        Err(SandboxError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Io, got {other:?}"),
    }
}
