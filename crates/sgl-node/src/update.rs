//! `sgl update`, fail-closed (protocol §5.5). Our machines have no route to GitHub, so the new
//! binary is a local file (`--binary PATH`) or an HTTPS download (`--url`, see [`download`]), and
//! the only authority on whether it may run is the grid's allowlist (`GET /grid/allowed-binaries`,
//! fetched by the caller and passed in as hashes).
//!
//! [`apply_update`] hashes the candidate, refuses it unless its sha256 is allowlisted, stops if the
//! target already has that hash, and otherwise stages a 0755 copy as `.sgl-update.tmp` next to the
//! target, fsyncs it, checks the copy's hash again (the candidate may change under us) and renames
//! it over the target, which is atomic on one filesystem. The target is a parameter, so tests
//! never touch the running binary; a symlinked target is resolved and the file it points at is
//! replaced. The caller then tells the operator to restart the service and run `sgl attest`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sgl_engine::model_file::sha256_file;

/// The staging file's name, in the target's directory.
pub const STAGING_FILE_NAME: &str = ".sgl-update.tmp";

/// Largest binary [`download`] accepts.
pub const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;

/// What [`apply_update`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UpdateOutcome {
    /// The target already has the candidate's hash; nothing was written.
    AlreadyUpToDate {
        /// The shared sha256.
        hash: String,
    },
    /// The target was replaced.
    Replaced {
        /// The file that was replaced (symlinks resolved).
        path: PathBuf,
        /// Its sha256 before.
        previous_hash: String,
        /// Its sha256 now, an allowlisted hash.
        new_hash: String,
    },
}

/// Why [`apply_update`] refused or failed. In every case the target is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The candidate could not be read.
    #[error("cannot read the new binary {path}: {source}")]
    ReadCandidate {
        /// The candidate.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The target could not be resolved or read.
    #[error("cannot read the installed binary {path}: {source}")]
    ReadTarget {
        /// The target as given.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The candidate's hash is not on the grid's allowlist.
    #[error("refusing to install a binary whose sha256 {hash} is not on the grid's allowlist ({n_allowed} hashes)")]
    NotAllowed {
        /// The candidate's sha256, lower-case hex.
        hash: String,
        /// How many hashes the allowlist held (0 means the grid allows none).
        n_allowed: usize,
    },
    /// The target's directory is not writable by this user.
    #[error(
        "cannot write to {dir}: permission denied; re-run with sudo, or install sgl in a directory \
         you own (e.g. ~/.local/bin) and point the service at it"
    )]
    PermissionDenied {
        /// The target's directory.
        dir: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Staging the copy or renaming it failed for another reason.
    #[error("cannot stage or install {path}: {source}")]
    Install {
        /// The file being written or renamed.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The staged copy's hash differs from the allowlisted hash (the candidate changed meanwhile).
    #[error("the staged copy hashes to {actual}, not the allowlisted {expected}; nothing was replaced")]
    CopyMismatch {
        /// The allowlisted hash checked.
        expected: String,
        /// The copy's hash.
        actual: String,
    },
}

/// Replace `target_exe` with `candidate` if the candidate's sha256 is in `allowed_hashes`
/// (compared case-insensitively, surrounding whitespace ignored).
pub fn apply_update(
    candidate: &Path,
    target_exe: &Path,
    allowed_hashes: &[String],
) -> Result<UpdateOutcome, UpdateError> {
    let hash =
        sha256_file(candidate).map_err(|source| UpdateError::ReadCandidate { path: candidate.to_owned(), source })?;
    if !is_allowed(&hash, allowed_hashes) {
        return Err(UpdateError::NotAllowed { hash, n_allowed: allowed_hashes.len() });
    }
    let read_target = |source| UpdateError::ReadTarget { path: target_exe.to_owned(), source };
    let target = fs::canonicalize(target_exe).map_err(read_target)?;
    let previous_hash = sha256_file(&target).map_err(read_target)?;
    if previous_hash == hash {
        return Ok(UpdateOutcome::AlreadyUpToDate { hash });
    }
    let dir = target.parent().map_or_else(|| PathBuf::from("/"), Path::to_owned);
    let staged = dir.join(STAGING_FILE_NAME);
    let result = stage_and_swap(candidate, &staged, &target, &hash);
    if result.is_err() {
        // Best effort: a leftover staging file is removed by the next attempt anyway.
        let _ = fs::remove_file(&staged);
    }
    result?;
    Ok(UpdateOutcome::Replaced { path: target, previous_hash, new_hash: hash })
}

/// Whether `hash` is in `allowed`, case-insensitively.
pub fn is_allowed(hash: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| a.trim().eq_ignore_ascii_case(hash.trim()))
}

fn stage_and_swap(candidate: &Path, staged: &Path, target: &Path, expected: &str) -> Result<(), UpdateError> {
    let dir = staged.parent().unwrap_or(Path::new("/"));
    match fs::remove_file(staged) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(installing(dir, staged)(error)),
        _ => {}
    }
    let mut source =
        File::open(candidate).map_err(|source| UpdateError::ReadCandidate { path: candidate.to_owned(), source })?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o755);
    let mut copy = options.open(staged).map_err(installing(dir, staged))?;
    io::copy(&mut source, &mut copy).map_err(installing(dir, staged))?;
    copy.flush().map_err(installing(dir, staged))?;
    #[cfg(unix)]
    copy.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755)).map_err(installing(dir, staged))?;
    copy.sync_all().map_err(installing(dir, staged))?;
    drop(copy);
    let actual = sha256_file(staged).map_err(installing(dir, staged))?;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(UpdateError::CopyMismatch { expected: expected.to_owned(), actual });
    }
    fs::rename(staged, target).map_err(installing(dir, target))?;
    // Make the rename durable; a failure here does not undo it, so it is not an error.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn installing<'a>(dir: &'a Path, path: &'a Path) -> impl FnOnce(io::Error) -> UpdateError + 'a {
    move |source| install_error(dir, path, source)
}

/// A permission error names the directory and suggests sudo; anything else names the file.
fn install_error(dir: &Path, path: &Path, source: io::Error) -> UpdateError {
    if source.kind() == io::ErrorKind::PermissionDenied {
        UpdateError::PermissionDenied { dir: dir.to_owned(), source }
    } else {
        UpdateError::Install { path: path.to_owned(), source }
    }
}

/// Why [`download`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// Not an `https://` URL, and not plain HTTP to this machine.
    #[error("{0}: binaries are downloaded over https:// only (plain http:// only from localhost)")]
    InsecureUrl(String),
    /// The request failed or the server answered with an error status.
    #[error("downloading {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The transport or status error.
        #[source]
        source: reqwest::Error,
    },
    /// The body was larger than [`MAX_DOWNLOAD_BYTES`].
    #[error("{url} is larger than {max} bytes; refusing it")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        max: u64,
    },
    /// Writing the download failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Check that `url` is `https://`, or `http://` to a loopback host (tests, a local mirror).
pub fn check_download_url(url: &str) -> Result<reqwest::Url, DownloadError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| DownloadError::InsecureUrl(url.to_owned()))?;
    if is_acceptable(&parsed) { Ok(parsed) } else { Err(DownloadError::InsecureUrl(url.to_owned())) }
}

fn is_acceptable(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => {
            let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// Download `url` to `dest` (created 0600, replaced if present), following redirects only to
/// URLs [`check_download_url`] accepts, and refusing bodies over [`MAX_DOWNLOAD_BYTES`]. Returns
/// the byte count. The download is untrusted until [`apply_update`] has checked its hash. Writes
/// with blocking file I/O: meant for the one-shot `sgl update` command, not the daemon loop.
pub async fn download(url: &str, dest: &Path) -> Result<u64, DownloadError> {
    let parsed = check_download_url(url)?;
    let http = |source| DownloadError::Http { url: url.to_owned(), source };
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 || !is_acceptable(attempt.url()) { attempt.stop() } else { attempt.follow() }
    });
    let client = reqwest::Client::builder()
        .redirect(policy)
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("sgl-node/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(http)?;
    let mut response = client.get(parsed).send().await.and_then(reqwest::Response::error_for_status).map_err(http)?;
    let too_large = || DownloadError::TooLarge { url: url.to_owned(), max: MAX_DOWNLOAD_BYTES };
    if response.content_length().is_some_and(|n| n > MAX_DOWNLOAD_BYTES) {
        return Err(too_large());
    }
    let write = |source| DownloadError::Write { path: dest.to_owned(), source };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(dest).map_err(write)?;
    let mut n_bytes = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        n_bytes += chunk.len() as u64;
        if n_bytes > MAX_DOWNLOAD_BYTES {
            drop(file);
            let _ = fs::remove_file(dest);
            return Err(too_large());
        }
        file.write_all(&chunk).map_err(write)?;
    }
    file.sync_all().map_err(write)?;
    Ok(n_bytes)
}

#[cfg(test)]
mod tests;
