//! The data directory and the database files, opened through [`open_store`] as the binary
//! opens them.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use super::*;
use crate::config::CliOverrides;

fn config_for(data_dir: &Path) -> Config {
    let overrides = CliOverrides { data_dir: Some(data_dir.to_owned()), ..CliOverrides::default() };
    Config::from_sources(None, &BTreeMap::new(), &overrides).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Log lines written while a test runs.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_new_data_dir_is_0700_and_the_database_with_its_wal_and_shm_0600() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("share/sgl-grid");
    let store = open_store(&config_for(&data_dir)).await.unwrap();
    assert!(store.allow_binary(&"ab".repeat(32), 1).await.unwrap());
    assert_eq!(mode(&data_dir), 0o700);
    for name in ["grid.db", "grid.db-wal", "grid.db-shm"] {
        assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
    }
    store.close().await;
    // Reopened: still private, and no warning to give.
    let store = open_store(&config_for(&data_dir)).await.unwrap();
    assert_eq!((mode(&data_dir), mode(&data_dir.join("grid.db"))), (0o700, 0o600));
    store.close().await;
}

#[tokio::test]
async fn an_existing_data_dir_open_to_others_is_left_as_it_is_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("shared");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let store = open_store(&config_for(&data_dir)).await.unwrap();
    assert_eq!(mode(&data_dir), 0o755, "an existing directory is not changed");
    assert_eq!(mode(&data_dir.join("grid.db")), 0o600, "a new database in it is still private");
    let text = logs.text();
    let path = data_dir.display().to_string();
    assert!(text.contains("WARN") && text.contains("open to other users") && text.contains(&path), "{text}");
    assert!(text.contains("mode=755"), "{text}");
    store.close().await;
}

#[test]
fn a_private_data_dir_gets_no_warning_and_a_file_in_its_place_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    tracing::subscriber::with_default(subscriber, || {
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        prepare(root.path()).unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let error = prepare(&file).unwrap_err();
        assert_eq!(error.source.kind(), std::io::ErrorKind::NotADirectory);
    });
    assert_eq!(logs.text(), "");
}
