//! Fresh stores for each case: a SQLite file in a temporary directory, or a new PostgreSQL
//! database created from `SGL_TEST_DATABASE_URL` and dropped afterwards (as in the store suite).

use sgl_grid_store::Store;
use sqlx::Connection;

/// A fresh database, and what to drop after it.
pub(crate) struct TestDb {
    pub(crate) store: Store,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open_sqlite_file(&dir.path().join("grid.db")).await.expect("open sqlite store");
        Self { store, postgres: None, _dir: Some(dir) }
    }

    pub(crate) async fn postgres(admin_url: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos();
        let name = format!(
            "sgl_workload_{}_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("connect to SGL_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
        admin.close().await.expect("close admin connection");
        let (base, _) = admin_url.rsplit_once('/').expect("the URL names a database");
        let store = Store::open(&format!("{base}/{name}")).await.expect("open postgres store");
        Self { store, postgres: Some((admin_url.to_owned(), name)), _dir: None }
    }

    pub(crate) async fn finish(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = self.postgres {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("admin connection");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop test database");
        }
    }
}
