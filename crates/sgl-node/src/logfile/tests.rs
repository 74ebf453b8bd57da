//! Rotation on real files in a temporary directory.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("exists").permissions().mode() & 0o777
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).expect("readable")
}

#[test]
fn rotates_at_the_cap_shifts_old_files_and_keeps_at_most_n() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logs/sgl.log");
    let log = RotatingLog::open(&path, Rotation { max_bytes: 10, keep: 2 }).expect("open");
    let mut writer = &log;
    writer.write_all(b"aaaa\n").expect("write");
    writer.write_all(b"bbbb\n").expect("write");
    // Exactly at the cap: nothing rotated yet.
    assert_eq!(read(&path), "aaaa\nbbbb\n");
    assert!(!log.rotated_path(1).exists());

    writer.write_all(b"cccc\n").expect("write");
    assert_eq!(read(&path), "cccc\n");
    assert_eq!(read(&log.rotated_path(1)), "aaaa\nbbbb\n");

    writer.write_all(b"dddddd\n").expect("write");
    assert_eq!(read(&path), "dddddd\n");
    assert_eq!(read(&log.rotated_path(1)), "cccc\n");
    assert_eq!(read(&log.rotated_path(2)), "aaaa\nbbbb\n");

    writer.write_all(b"eeeeee\n").expect("write");
    assert_eq!(read(&path), "eeeeee\n");
    assert_eq!(read(&log.rotated_path(1)), "dddddd\n");
    assert_eq!(read(&log.rotated_path(2)), "cccc\n");
    assert!(!log.rotated_path(3).exists(), "only keep = 2 rotated files");

    // A single write larger than the cap goes whole into a fresh file.
    writer.write_all(b"a line longer than ten bytes\n").expect("write");
    assert_eq!(read(&path), "a line longer than ten bytes\n");
    assert_eq!(read(&log.rotated_path(1)), "eeeeee\n");

    for file in [path.clone(), log.rotated_path(1), log.rotated_path(2)] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&dir.path().join("logs")), 0o700);
}

#[test]
fn reopening_appends_counts_the_existing_size_and_tightens_the_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sgl.log");
    fs::write(&path, "12345678\n").expect("seed file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut log = RotatingLog::open(&path, Rotation { max_bytes: 12, keep: 1 }).expect("open");
    assert_eq!(mode(&path), 0o600);
    log.write_all(b"ab\n").expect("write");
    assert_eq!(read(&path), "12345678\nab\n");
    log.write_all(b"x\n").expect("write");
    assert_eq!(read(&path), "x\n");
    assert_eq!(read(&log.rotated_path(1)), "12345678\nab\n");
}

#[test]
fn keep_zero_truncates_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sgl.log");
    let mut log = RotatingLog::open(&path, Rotation { max_bytes: 4, keep: 0 }).expect("open");
    log.write_all(b"abc\n").expect("write");
    log.write_all(b"def\n").expect("write");
    assert_eq!(read(&path), "def\n");
    assert!(!log.rotated_path(1).exists());
}

#[test]
fn serves_as_a_tracing_writer_shared_across_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sgl.log");
    let log = std::sync::Arc::new(RotatingLog::open(&path, Rotation { max_bytes: 200, keep: 50 }).expect("open"));
    let subscriber = tracing_subscriber::fmt().with_writer(std::sync::Arc::clone(&log)).with_ansi(false).finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let dispatch = &dispatch;
            scope.spawn(move || {
                tracing::dispatcher::with_default(dispatch, || {
                    for event in 0..10 {
                        tracing::info!(thread, event, "job done");
                    }
                })
            });
        }
    });
    let mut lines = Vec::new();
    for file in std::iter::once(path.clone()).chain((1..=50).map(|n| log.rotated_path(n))) {
        if let Ok(text) = fs::read_to_string(&file) {
            assert!(text.len() <= 200 || text.lines().count() == 1, "{} over the cap", file.display());
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    assert_eq!(lines.len(), 40, "every event exactly once, whole: {lines:#?}");
    assert!(lines.iter().all(|l| l.contains("job done") && l.contains("thread=")));
}
