//! The output directory's limits, checked by both runners after every run that ended with the
//! job exiting: at most so many bytes and so many entries, and nothing but regular files and
//! directories. A symlink, FIFO, socket or device in the output could point whoever uploads it
//! at a host file or block them, so any one of them fails the run.
//!
//! The walk never follows a symlink and stops at the first broken limit, so a job that made
//! millions of files costs the check no more than the limit's worth of work.

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

use crate::SandboxError;

/// What a run may leave in its output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputLimits {
    /// Most bytes, summed over every regular file's size.
    pub(crate) bytes: u64,
    /// Most entries: files and directories, the output directory itself not counted.
    pub(crate) files: u64,
}

/// What a run left in its output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputUsage {
    /// The sum of the regular files' sizes.
    pub bytes: u64,
    /// Files and directories, the output directory itself not counted.
    pub files: u64,
}

/// Walks `dir` and checks it against `limits`: the usage if within them, else the first limit
/// found broken.
pub(crate) fn check_output(dir: &Path, limits: OutputLimits) -> Result<OutputUsage, SandboxError> {
    let mut usage = OutputUsage::default();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let io_error = |source| SandboxError::Io { path: current.clone(), source };
        for entry in fs::read_dir(&current).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            let path = entry.path();
            // `DirEntry::file_type` and `DirEntry::metadata` do not follow symlinks.
            let file_type = entry.file_type().map_err(|source| SandboxError::Io { path: path.clone(), source })?;
            usage.files += 1;
            if usage.files > limits.files {
                return Err(SandboxError::TooManyOutputFiles { limit: limits.files });
            }
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_file() {
                let metadata = entry.metadata().map_err(|source| SandboxError::Io { path: path.clone(), source })?;
                usage.bytes = usage.bytes.saturating_add(metadata.len());
                if usage.bytes > limits.bytes {
                    return Err(SandboxError::OutputTooLarge { limit_bytes: limits.bytes, found_bytes: usage.bytes });
                }
            } else {
                return Err(SandboxError::OutputNotRegularFile { path: relative(dir, &path) });
            }
        }
    }
    Ok(usage)
}

/// `path` relative to `dir` (it is always under it).
fn relative(dir: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(dir).unwrap_or(path).to_owned()
}
