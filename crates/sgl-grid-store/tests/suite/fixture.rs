//! Fresh stores for each test: a SQLite file in a temporary directory, or a new PostgreSQL
//! database created from `SGL_TEST_DATABASE_URL` and dropped afterwards.

use sgl_grid_store::Store;
use sqlx::Connection;

/// A store and what to clean up after it.
pub(crate) struct TestDb {
    pub(crate) store: Store,
    postgres: Option<(String, String)>,
    /// A URL for a second, raw connection to the same database.
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Runs SQL on the database behind the store's back, to plant what the store never writes.
    pub(crate) async fn raw(&self, sql: &str) {
        let mut connection = sqlx::AnyConnection::connect(&self.url).await.expect("a raw connection");
        sqlx::raw_sql(sql).execute(&mut connection).await.expect("raw SQL runs");
        connection.close().await.expect("close the raw connection");
    }

    /// Closes the store and drops a PostgreSQL test database.
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

pub(crate) async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("grid.db");
    let store = Store::open_sqlite_file(&path).await.expect("open sqlite store");
    let url = format!("sqlite://{}", path.display());
    TestDb { store, postgres: None, url, _dir: Some(dir) }
}

pub(crate) async fn postgres() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("SGL_TEST_DATABASE_URL") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but SGL_TEST_DATABASE_URL is not set: the PostgreSQL half of the store suite must run in CI"
        );
        eprintln!("note: SGL_TEST_DATABASE_URL is not set; skipping the PostgreSQL case");
        return None;
    };
    let name = format!("sgl_test_{}", uuid_like());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to SGL_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    admin.close().await.expect("close admin connection");
    let (base, _) = admin_url.rsplit_once('/').expect("the URL names a database");
    let url = format!("{base}/{name}");
    let store = Store::open(&url).await.expect("open postgres store");
    Some(TestDb { store, postgres: Some((admin_url, name)), url, _dir: None })
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_nanos();
    format!("{}_{}_{}", std::process::id(), nanos % 1_000_000_000, COUNTER.fetch_add(1, Ordering::Relaxed))
}
