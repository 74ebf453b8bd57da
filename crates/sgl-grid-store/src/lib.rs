//! The coordinator's persistence: one [`Store`] over SQLite (the embedded default, a WAL file
//! in the data directory) or PostgreSQL (for many replicas), chosen by URL.
//!
//! Both backends run the same SQL through sqlx's `Any` driver; the few places where the
//! dialects differ (row locks) branch on [`Backend`]. Each backend has its own forward-only
//! migrations in `migrations/<backend>/`, run at open. One test suite
//! (`tests/suite/`) runs against both.
//!
//! Times are Unix milliseconds passed in by the caller, so the store never reads a clock.
//! Money is integer micro-units in a double-entry [`ledger`].

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod allowlist;
pub mod api_keys;
pub mod audit;
pub mod chain;
pub mod compute;
pub mod devices;
pub mod group;
pub mod jobs;
pub mod ledger;
pub mod machines;
pub mod market;
pub mod nodes;
pub mod payments;
pub mod registration;
pub mod replicas;
pub mod reports;
pub mod reputation;
pub mod reservations;
pub mod settings;
pub mod settlement;
pub mod stake;

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (WAL).
    Sqlite,
    /// A PostgreSQL server, possibly shared by several coordinators.
    Postgres,
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStoreError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL scheme in {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// Connecting failed.
    #[error("connecting to the database")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migrating the database schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A new SQLite database file could not be created private.
    #[error("creating the database file {}", .path.display())]
    CreateFile {
        /// The database file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A database operation failed for a reason the caller cannot act on other than by retrying
/// or reporting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A value does not fit the database's integers.
    #[error("out of range: {0}")]
    OutOfRange(&'static str),
    /// Something that cannot happen did.
    #[error("internal invariant broken: {0}")]
    Invariant(String),
}

/// Creates the database file of a SQLite URL that may create one (`mode=rwc`) as an empty,
/// owner-only (0600) file before SQLite does: SQLite would create it 0644 under the usual umask,
/// and it creates the `-wal` and `-shm` files with the main file's mode. An existing file, an
/// in-memory database and a URL that may not create are left alone.
fn create_private_sqlite_file(url: &str) -> Result<(), OpenStoreError> {
    // Split as sqlx splits it; as there, the last `mode` wins.
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    let mode = params.split('&').filter_map(|pair| pair.strip_prefix("mode=")).next_back();
    if mode != Some("rwc") || database == ":memory:" {
        return Ok(());
    }
    // sqlx's own reading of the path (percent-decoded), so the file made is the one it opens.
    let options = SqliteConnectOptions::from_str(url).map_err(OpenStoreError::Connect)?;
    let path = options.get_filename();
    let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    let result = match created {
        // Exactly 0600, whatever the umask.
        Ok(file) => file.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    };
    result.map_err(|source| OpenStoreError::CreateFile { path: path.to_owned(), source })
}

/// The coordinator's database. Cheap to clone; clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    pg_url: Option<replicas::PgUrl>,
}

impl Store {
    /// Opens the database at `url` and runs its migrations. `sqlite://PATH?mode=rwc` creates
    /// the file if needed, owner-only (0600, and so its `-wal` and `-shm`); `postgres://…`
    /// connects to an existing database.
    pub async fn open(url: &str) -> Result<Self, OpenStoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(OpenStoreError::UnsupportedUrl(url.to_owned()));
        };
        if backend == Backend::Sqlite {
            create_private_sqlite_file(url)?;
        }
        let options = AnyConnectOptions::from_str(url).map_err(OpenStoreError::Connect)?.disable_statement_logging();
        let pool = match backend {
            // SQLite allows one writer at a time; one connection serialises writes without
            // lock-upgrade deadlocks, and WAL keeps each commit cheap.
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(1)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;").await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(OpenStoreError::Connect)?,
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(OpenStoreError::Connect)?,
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(OpenStoreError::Migrate)?;
        let pg_url = (backend == Backend::Postgres).then(|| replicas::PgUrl(url.to_owned()));
        Ok(Self { pool, backend, pg_url })
    }

    /// Opens (creating if needed) the SQLite database file at `path`.
    pub async fn open_sqlite_file(path: &Path) -> Result<Self, OpenStoreError> {
        Self::open(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection, waiting for them to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pg_url(&self) -> Option<&replicas::PgUrl> {
        self.pg_url.as_ref()
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// `FOR UPDATE` on PostgreSQL; nothing on SQLite, where the single connection already
    /// serialises writers.
    /// How a statement numbers its parameters: `$1` on PostgreSQL, `?1` on SQLite (where `$1`
    /// is a name, looked up by a linear search at every prepare).
    pub(crate) fn mark(&self) -> char {
        match self.backend {
            Backend::Sqlite => '?',
            Backend::Postgres => '$',
        }
    }

    pub(crate) fn row_lock(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}
