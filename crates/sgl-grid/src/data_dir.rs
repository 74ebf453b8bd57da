//! The grid's data directory and the store in it. It holds the SQLite database (and, for
//! `sgl-grid up`, the local operator's and caller's keys), so a new one is created owner-only
//! (0700) and the store creates a new database file 0600. An existing directory is never
//! changed behind the operator's back: one that other users can enter is reported with a
//! warning instead.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sgl_grid_store::{OpenStoreError, Store};

use crate::config::Config;

/// The data directory could not be created or inspected.
#[derive(Debug, thiserror::Error)]
#[error("creating the data directory {}", .path.display())]
pub struct DataDirError {
    /// The directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// The grid's store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Its data directory could not be created.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The database could not be opened.
    #[error("opening the database")]
    Store(#[source] OpenStoreError),
}

/// Creates `dir` (and any missing parent) owner-only, 0700 whatever the umask, unless it
/// exists; an existing `dir` that its group or others may enter is logged as a warning and left
/// as it is.
pub fn prepare(dir: &Path) -> Result<(), DataDirError> {
    let error = |source| DataDirError { path: dir.to_owned(), source };
    match std::fs::metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => Err(error(std::io::ErrorKind::NotADirectory.into())),
        Ok(metadata) => {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %dir.display(),
                    mode = format_args!("{mode:03o}"),
                    "the data directory is open to other users and holds the grid's database; \
                     left as it is (chmod 700 it)"
                );
            }
            Ok(())
        }
        Err(missing) if missing.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(error)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(error)
        }
        Err(other) => Err(error(other)),
    }
}

/// Opens the store as `sgl-grid serve`, `admin` and `up` do: for SQLite, the data directory is
/// prepared first ([`prepare`]); PostgreSQL needs no directory.
pub async fn open_store(config: &Config) -> Result<Store, OpenError> {
    if config.database_url.starts_with("sqlite:") {
        prepare(&config.data_dir)?;
    }
    Store::open(&config.database_url).await.map_err(OpenError::Store)
}

#[cfg(test)]
mod tests;
