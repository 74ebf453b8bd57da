//! An attempt's files: the bundle's entry and inputs fetched by hash into its working
//! directory, and the outputs read back.

use std::path::{Path, PathBuf};

use sgl_protocol::compute::bundle::BundleManifest;
use sgl_protocol::compute::receipt::OutputFile;
use sgl_protocol::compute::{Digest, Runtime};

use crate::agent::Shared;

/// Something went wrong preparing or reading an attempt's files.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FilesError {
    /// A blob could not be fetched.
    #[error("fetching blob {digest}: {source}")]
    Fetch {
        /// The blob.
        digest: Digest,
        /// Why.
        source: crate::client::ClientError,
    },
    /// The disk failed.
    #[error("the attempt's files: {0}")]
    Io(#[from] std::io::Error),
    /// An output's path is not a protocol path.
    #[error("output {0:?} has a name the protocol cannot carry")]
    BadName(PathBuf),
    /// A PNG output of a class compared by pixels does not decode.
    #[error("output {path} is not an image the grid can compare: {source}")]
    Pixels {
        /// The output.
        path: String,
        /// Why.
        source: sgl_media::pixels::PixelError,
    },
}

/// Where a chained class's guest finds the previous slice's accepted outputs, under `/in`.
pub(crate) const CARRY_DIR: &str = "prev";

/// Fetches the entry file, and writes under `input_dir` every input, the outputs `carry`
/// from the slice before (under [`CARRY_DIR`]) and, for the native classes, the bundle's files.
pub(crate) async fn prepare(
    shared: &Shared,
    manifest: &BundleManifest,
    carry: &[OutputFile],
    input_dir: &Path,
) -> Result<Vec<u8>, FilesError> {
    let fetch = |digest: Digest| async move {
        shared.client.get_blob(&shared.token(), &digest).await.map_err(|source| FilesError::Fetch { digest, source })
    };
    let entry = manifest.files.get(&manifest.entry).copied().unwrap_or(Digest::of(b""));
    let module = fetch(entry).await?;
    let mut wanted: Vec<(String, Digest)> = manifest.inputs.iter().map(|(p, d)| (p.clone(), *d)).collect();
    for file in carry {
        // The grid checked these paths in the receipt it accepted; checked again, since they
        // become paths on this machine.
        sgl_protocol::compute::bundle::check_path(&file.path)
            .map_err(|_| FilesError::BadName(file.path.clone().into()))?;
        wanted.push((format!("{CARRY_DIR}/{}", file.path), file.sha256));
    }
    if manifest.class.runtime() == Runtime::Native {
        wanted.extend(manifest.files.iter().map(|(p, d)| (p.clone(), *d)));
    }
    for (path, digest) in &wanted {
        let bytes = fetch(*digest).await?;
        let target = input_dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, bytes)?;
    }
    Ok(module)
}

/// Every regular file under `dir`, by `/`-separated relative path, sorted.
pub(crate) fn outputs(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, FilesError> {
    let mut found = Vec::new();
    walk(dir, dir, &mut found)?;
    found.sort();
    Ok(found)
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<(String, Vec<u8>)>) -> Result<(), FilesError> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let kind = std::fs::symlink_metadata(&path)?.file_type();
        if kind.is_dir() {
            walk(root, &path, found)?;
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).map_err(|_| FilesError::BadName(path.clone()))?;
            let name = relative.to_str().ok_or_else(|| FilesError::BadName(path.clone()))?.to_owned();
            sgl_protocol::compute::bundle::check_path(&name).map_err(|_| FilesError::BadName(path.clone()))?;
            found.push((name, std::fs::read(&path)?));
        }
    }
    Ok(())
}

/// The receipt's description of `outputs`; with `pixels`, each PNG's pixel digest too.
pub(crate) fn described(outputs: &[(String, Vec<u8>)], pixels: bool) -> Result<Vec<OutputFile>, FilesError> {
    let describe = |(path, bytes): &(String, Vec<u8>)| {
        let pixels = match pixels && path.ends_with(".png") {
            true => Some(
                sgl_media::pixels::pixel_digest(bytes)
                    .map(Digest::from_bytes)
                    .map_err(|source| FilesError::Pixels { path: path.clone(), source })?,
            ),
            false => None,
        };
        Ok(OutputFile { path: path.clone(), sha256: Digest::of(bytes), size: bytes.len() as u64, pixels })
    };
    outputs.iter().map(describe).collect()
}
