//! `--log-file PATH`: a size-rotating log the node writes itself, so a service's log never grows
//! without limit (R9). `PATH` is appended to until the next write would pass the cap, then
//! `PATH.1 … PATH.N` shift up by one (the oldest is deleted) and a fresh `PATH` starts.
//!
//! The files are 0600 and their directory 0700 when created: logs hold job ids and timings (never
//! prompts or outputs), which are still nobody else's business. One [`RotatingLog`] is shared by
//! every thread through a mutex, and each `write` goes whole into one file, so a tracing event
//! (one `write_all` per event) is never split across a rotation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Rotation limits for a [`RotatingLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before a write would take the live file past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`PATH.1 … PATH.keep`); 0 keeps none (the live file is truncated).
    pub keep: u32,
}

impl Rotation {
    /// 10 MiB per file, 5 rotated files kept: at most 60 MiB in all.
    pub const DEFAULT: Rotation = Rotation { max_bytes: 10 * 1024 * 1024, keep: 5 };
}

impl Default for Rotation {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Opening the log, or its directory, failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot open log file {path}: {source}")]
pub struct OpenLogError {
    /// The file or directory that failed.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// A thread-safe, size-rotating, append-only log file. Use `&RotatingLog` as an [`io::Write`], or
/// the log itself as a `tracing_subscriber` writer (`fmt().with_writer(log)`).
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    rotation: Rotation,
    state: Mutex<LiveFile>,
}

#[derive(Debug)]
struct LiveFile {
    file: File,
    len: u64,
}

impl RotatingLog {
    /// Open (or create, 0600) `path` for appending, creating its directory (0700) if missing.
    /// An existing file is tightened to 0600.
    pub fn open(path: &Path, rotation: Rotation) -> Result<Self, OpenLogError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| OpenLogError { path: dir.to_owned(), source })?;
        }
        let (file, len) = open_append(path).map_err(|source| OpenLogError { path: path.to_owned(), source })?;
        Ok(Self { path: path.to_owned(), rotation, state: Mutex::new(LiveFile { file, len }) })
    }

    /// The live file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of rotated file `n` (1 is the newest): `PATH.n`.
    pub fn rotated_path(&self, n: u32) -> PathBuf {
        rotated_path(&self.path, n)
    }

    fn lock(&self) -> MutexGuard<'_, LiveFile> {
        // A panic while holding the lock leaves at worst a partial line; keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_locked(&self, live: &mut LiveFile, buf: &[u8]) -> io::Result<usize> {
        let incoming = buf.len() as u64;
        if live.len > 0 && live.len.saturating_add(incoming) > self.rotation.max_bytes {
            self.rotate(live)?;
        }
        live.file.write_all(buf)?;
        live.len += incoming;
        Ok(buf.len())
    }

    fn rotate(&self, live: &mut LiveFile) -> io::Result<()> {
        live.file.flush()?;
        if self.rotation.keep == 0 {
            live.file.set_len(0)?;
            live.len = 0;
            return Ok(());
        }
        remove_if_present(&rotated_path(&self.path, self.rotation.keep))?;
        for n in (1..self.rotation.keep).rev() {
            rename_if_present(&rotated_path(&self.path, n), &rotated_path(&self.path, n + 1))?;
        }
        fs::rename(&self.path, rotated_path(&self.path, 1))?;
        let (file, len) = open_append(&self.path)?;
        *live = LiveFile { file, len };
        Ok(())
    }
}

impl Write for &RotatingLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut live = self.lock();
        self.write_locked(&mut live, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().file.flush()
    }
}

impl Write for RotatingLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingLog {
    type Writer = &'a RotatingLog;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Open for appending, 0600, and return the current length.
fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

/// Create `dir` and missing parents; the directories created are 0700.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests;
