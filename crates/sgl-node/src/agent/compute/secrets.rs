//! An attempt's secrets on the node: fetched sealed once the requester has given them, opened
//! with the node's X25519 key (each must name this job, slice and attempt), written 0600 into
//! the attempt's own directory for the sandbox's read-only `/secrets`, and overwritten and
//! removed when the run ends, whatever its outcome.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sgl_protocol::api::compute::Lease;
use sgl_protocol::compute::secrets::{SecretFor, open_secret};

use crate::agent::Shared;

/// How long a node waits for the requester's secrets.
pub(crate) const WAIT: Duration = Duration::from_secs(120);
/// How often it asks.
const POLL: Duration = Duration::from_millis(500);

/// The secrets could not be received.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretsError {
    /// The grid refused to give them.
    #[error("fetching the secrets: {0}")]
    Fetch(#[source] crate::client::ClientError),
    /// The requester never sent them.
    #[error("the requester did not send the job's secrets within {} s", WAIT.as_secs())]
    NotSent,
    /// A secret the manifest does not declare.
    #[error("a secret the manifest does not declare: {0:?}")]
    Undeclared(String),
    /// A secret does not open for this attempt.
    #[error("secret {name:?}: {source}")]
    Open {
        /// Its name.
        name: String,
        /// Why.
        source: sgl_protocol::compute::secrets::SecretError,
    },
    /// Writing it failed.
    #[error("secret {name:?}: {source}")]
    Io {
        /// Its name (or the directory).
        name: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The secrets' directory; dropping it wipes them.
#[derive(Debug)]
pub(crate) struct SecretFiles {
    dir: PathBuf,
}

impl SecretFiles {
    /// The directory the sandbox sees as `/secrets`.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if let Ok(meta) = std::fs::metadata(&path) {
                    let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0)];
                    let _ = std::fs::write(&path, zeros);
                }
                let _ = std::fs::remove_file(&path);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Waits for the attempt's secrets and writes them under `parent/secrets`.
pub(crate) async fn receive(
    shared: &Shared,
    lease: &Lease,
    names: &[String],
    parent: &Path,
) -> Result<SecretFiles, SecretsError> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let sealed = loop {
        match shared.client.attempt_secrets(&shared.token(), lease.attempt_id).await {
            Ok(answer) if !answer.secrets.is_empty() => break answer.secrets,
            Ok(_) => {}
            Err(error) if !error.is_retryable() => return Err(SecretsError::Fetch(error)),
            Err(_) => {}
        }
        if tokio::time::Instant::now() > deadline {
            return Err(SecretsError::NotSent);
        }
        tokio::time::sleep(POLL).await;
    };
    let files = SecretFiles { dir: parent.join("secrets") };
    std::fs::create_dir(files.dir()).map_err(|source| SecretsError::Io { name: "secrets/".into(), source })?;
    let to = SecretFor { job_id: &lease.job_id, slice: lease.slice, attempt: lease.attempt };
    for secret in &sealed {
        if !names.contains(&secret.name) {
            return Err(SecretsError::Undeclared(secret.name.clone()));
        }
        let name = secret.name.clone();
        let value = open_secret(&shared.secret, &to, secret)
            .map_err(|source| SecretsError::Open { name: name.clone(), source })?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(files.dir().join(&secret.name))
            .map_err(|source| SecretsError::Io { name: name.clone(), source })?;
        file.write_all(value.as_bytes()).map_err(|source| SecretsError::Io { name, source })?;
    }
    Ok(files)
}
