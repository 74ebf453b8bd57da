//! Content-addressed blobs: bundle files, inputs and outputs, each named by its SHA-256. The
//! grid keeps them behind [`BlobStore`]; [`DiskBlobs`] (the default) puts them under the data
//! directory, one file per blob, written through a temporary file and a rename so a reader
//! never sees half a blob. Several replicas need a store they share (not built yet).
//!
//! Calls are blocking (file I/O); handlers run them with `spawn_blocking`.

use std::io::Write as _;
use std::path::PathBuf;

use sgl_protocol::compute::Digest;

/// A blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The bytes do not hash to the name they were sent under.
    #[error("the body's SHA-256 is {actual}, not {expected}")]
    DigestMismatch {
        /// The name in the path.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The disk failed.
    #[error("blob storage failed")]
    Io(#[from] std::io::Error),
}

/// Where blobs live.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` as `digest` after checking the hash; false when it was already there.
    fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<bool, BlobError>;
    /// The blob's bytes, if the store has it.
    fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, BlobError>;
    /// The blob's size, if the store has it.
    fn size(&self, digest: &Digest) -> Result<Option<u64>, BlobError>;
}

/// Blobs as files under one directory, fanned out by the first two hex digits.
#[derive(Debug, Clone)]
pub struct DiskBlobs {
    dir: PathBuf,
}

impl DiskBlobs {
    /// Blobs under `dir` (created when the first blob is stored).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.dir.join(&hex[..2]).join(hex)
    }
}

impl BlobStore for DiskBlobs {
    fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<bool, BlobError> {
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(BlobError::DigestMismatch { expected: *digest, actual });
        }
        let path = self.path(digest);
        if path.exists() {
            return Ok(false);
        }
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)?;
        let mut temp = tempfile::NamedTempFile::new_in(parent)?;
        temp.write_all(bytes)?;
        temp.as_file().sync_all()?;
        temp.persist(&path).map_err(|error| error.error)?;
        Ok(true)
    }

    fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, BlobError> {
        match std::fs::read(self.path(digest)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn size(&self, digest: &Digest) -> Result<Option<u64>, BlobError> {
        match std::fs::metadata(self.path(digest)) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests;
