//! Job secrets (`docs/protocol.md` §12): each secret is sealed by the requester to the X25519
//! key of the node that leased the attempt, after checking that key's binding to the node's
//! identity, with the same sealing as prompts (v2). The plaintext names the job, slice and
//! attempt, so a secret cannot be replayed to another attempt; the grid stores and relays only
//! ciphertext.

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::api::compute::{SealedSecret, SecretsTarget};
use crate::identity::{EncryptionPublicKey, EncryptionSecret, NodePublicKey, VerifyError};
use crate::ids::{JobId, NodeId};
use crate::keybind::KeyBinding;
use crate::seal::{OpenError, SealError, SealVersion, open_request, seal_request};

/// The sealed plaintext of one secret.
#[derive(Serialize, Deserialize)]
struct Plain {
    job_id: JobId,
    slice: u32,
    attempt: u32,
    name: String,
    value: String,
}

/// Which attempt a secret is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFor<'a> {
    /// The job.
    pub job_id: &'a JobId,
    /// The slice.
    pub slice: u32,
    /// The attempt's number.
    pub attempt: u32,
}

/// A secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The node's encryption key is not bound to its identity.
    #[error("the node's encryption key is not bound to its identity: {0}")]
    Keybind(#[from] VerifyError),
    /// A key in the target is malformed.
    #[error("the node's {0} is malformed")]
    BadKey(&'static str),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The ciphertext does not open with this node's key.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// It opened but is for another attempt or name, or is not a secret.
    #[error("the secret is for another attempt, or malformed")]
    Mismatch,
}

/// Seals `value` as secret `name` for the attempt, to the node `target` describes, after
/// verifying its keybind.
pub fn seal_secret(
    target: &SecretsTarget,
    node_id: &NodeId,
    to: &SecretFor<'_>,
    name: &str,
    value: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<SealedSecret, SecretError> {
    let identity = NodePublicKey::from_b58(&target.node_public_key).map_err(|_| SecretError::BadKey("identity key"))?;
    let encryption = EncryptionPublicKey::from_b58(&target.encryption_public_key)
        .map_err(|_| SecretError::BadKey("encryption key"))?;
    let binding =
        KeyBinding { node_id, identity_key: &identity, encryption_key: &encryption, key_version: target.key_version };
    binding.verify(&target.encryption_public_key_signature)?;
    let plain = Plain {
        job_id: to.job_id.clone(),
        slice: to.slice,
        attempt: to.attempt,
        name: name.to_owned(),
        value: value.to_owned(),
    };
    let bytes = Zeroizing::new(serde_json::to_vec(&plain).map_err(|_| SecretError::Mismatch)?);
    let (enc, _reply) = seal_request(&encryption, SealVersion::V2, &bytes, rng)?;
    Ok(SealedSecret { name: name.to_owned(), enc })
}

/// Opens a secret with the node's X25519 secret, refusing one sealed for another attempt or
/// under another name. Returns the value, zeroised on drop.
pub fn open_secret(
    node_secret: &EncryptionSecret,
    to: &SecretFor<'_>,
    sealed: &SealedSecret,
) -> Result<Zeroizing<String>, SecretError> {
    let opened = open_request(node_secret, &sealed.enc)?;
    let plain: Plain = serde_json::from_slice(&opened.plaintext).map_err(|_| SecretError::Mismatch)?;
    let value = Zeroizing::new(plain.value);
    let matches = plain.job_id == *to.job_id
        && plain.slice == to.slice
        && plain.attempt == to.attempt
        && plain.name == sealed.name;
    if !matches {
        return Err(SecretError::Mismatch);
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
