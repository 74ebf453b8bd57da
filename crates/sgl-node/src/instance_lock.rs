//! One running `sgl start` per node identity: an advisory `flock` on [`LOCK_FILE`] in the
//! config directory, held for the life of the process.
//!
//! Two processes with one identity would answer each other's jobs, rotate each other's token
//! and overwrite each other's `state.json`. The kernel releases the lock on any exit, SIGKILL
//! and crashes included, so a lock file left behind never blocks a restart; the holder writes
//! its pid into the file so that a second start can name it. The file is opened close-on-exec
//! (as Rust opens every file), so a child such as llama-server never inherits the lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name in the config directory.
pub const LOCK_FILE: &str = "sgl.lock";

/// The config directory could not be locked for this process.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceLockError {
    /// Another process holds the lock: the node is already running.
    #[error(
        "another sgl start{holder} is already running for the node in {dir}: stop it first (one node identity runs in one process at a time)",
        holder = Holder(*.pid),
        dir = .dir.display()
    )]
    Held {
        /// The config directory.
        dir: PathBuf,
        /// The holder's pid, when its lock file could be read.
        pid: Option<u32>,
    },
    /// The lock file could not be opened, locked or written.
    #[error("{action} the lock file {}", .path.display())]
    Io {
        /// What failed.
        action: &'static str,
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The lock, held until dropped (the file stays: see [`InstanceLock::acquire`]).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Locks `config_dir` for this process, or fails at once with [`InstanceLockError::Held`]
    /// naming the holder's pid.
    ///
    /// The file is never removed: unlinking it on exit would let a process that opened the old
    /// file and one that creates a new file both hold "the" lock.
    pub fn acquire(config_dir: &Path) -> Result<Self, InstanceLockError> {
        let path = config_dir.join(LOCK_FILE);
        let io_err = |action| {
            let path = path.clone();
            move |source| InstanceLockError::Io { action, path, source }
        };
        // Not truncated on open: until the lock is ours, the pid in the file is the holder's.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("opening"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(InstanceLockError::Held { dir: config_dir.to_owned(), pid });
            }
            Err(TryLockError::Error(source)) => return Err(io_err("locking")(source)),
        }
        file.set_len(0).map_err(io_err("truncating"))?;
        writeln!(file, "{}", std::process::id()).map_err(io_err("writing the pid into"))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// ` (pid N)` when the holder's pid is known, else nothing.
struct Holder(Option<u32>);

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(pid) => write!(f, " (pid {pid})"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
