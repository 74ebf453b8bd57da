//! Result envelope signatures: what a node signs for every result and stream chunk, so the
//! coordinator and (in v2) the caller can check who produced it.
//!
//! - `sgl-result-v1` (seed, §2.9): `"sgl-result-v1\n{job_id}\n{kind}\n{sha256_hex(payload)}"`.
//!   It does not cover usage, the model or the node id.
//! - `sgl-result-v2` (ours, `docs/protocol.md`): adds the node id, the usage, the served model's
//!   GGUF sha256 and the proof of execution, so billing and model claims are checkable by
//!   anyone holding the node's public key.

use std::fmt;

use crate::api::inference::Usage;
use crate::encoding::{is_sha256_hex, sha256_hex};
use crate::identity::{NodeIdentity, NodePublicKey, VerifyError};
use crate::ids::{JobId, NodeId};

/// `result_envelope_version` of seed nodes.
pub const ENVELOPE_V1: &str = "v1";
/// `result_envelope_version` of our nodes.
pub const ENVELOPE_V2: &str = "v2";
/// Written in place of a value that is not claimed (no usage on a non-final chunk, no model
/// hash from an engine that cannot know it).
pub const NOT_CLAIMED: &str = "-";

/// What a result payload is, which fixes which bytes are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultKind {
    /// A plain completion; the payload is the `encrypted_result` string.
    Plain,
    /// A sealed completion; the payload is the base58 ciphertext string.
    Sealed,
    /// A stream chunk; the payload is the chunk's base58 ciphertext string.
    Stream {
        /// The chunk's sequence number.
        seq: u64,
        /// Whether it is the final chunk.
        is_final: bool,
    },
}

impl fmt::Display for ResultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain => f.write_str("plain"),
            Self::Sealed => f.write_str("sealed"),
            Self::Stream { seq, is_final } => write!(f, "stream:{seq}:{}", u8::from(*is_final)),
        }
    }
}

/// An envelope version, negotiated from `result_envelope_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeVersion {
    /// Seed nodes.
    V1,
    /// Our nodes.
    V2,
}

/// An envelope could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// `result_envelope_version` is neither `v1` nor `v2`.
    #[error("unknown result envelope version {0:?}")]
    UnknownVersion(String),
    /// A claimed model hash is not 64 lowercase hex characters.
    #[error("model sha256 is not 64 lowercase hex characters")]
    BadModelHash,
    /// The proof of execution sent does not match the one computed from the result.
    #[error("proof of execution does not match the result")]
    ProofMismatch,
    /// v2 usage must be present on completions and final stream chunks (a non-final chunk may
    /// carry the running count of completion tokens sent so far).
    #[error("v2 usage must be present on completions and final chunks")]
    UsagePlacement,
    /// The signature did not verify.
    #[error(transparent)]
    Signature(#[from] VerifyError),
}

impl EnvelopeVersion {
    /// Parses `result_envelope_version`.
    pub fn from_tag(tag: &str) -> Result<Self, EnvelopeError> {
        match tag {
            ENVELOPE_V1 => Ok(Self::V1),
            ENVELOPE_V2 => Ok(Self::V2),
            other => Err(EnvelopeError::UnknownVersion(other.to_owned())),
        }
    }

    /// The tag sent on the wire.
    pub const fn tag(self) -> &'static str {
        match self {
            Self::V1 => ENVELOPE_V1,
            Self::V2 => ENVELOPE_V2,
        }
    }

    /// The version a node signs with, given the grid's `accepted_envelope_versions`: v2 when
    /// the grid lists it, otherwise v1 (a seed grid lists nothing and verifies only v1).
    pub fn negotiate(accepted_by_grid: &[String]) -> Self {
        if accepted_by_grid.iter().any(|v| v == ENVELOPE_V2) { Self::V2 } else { Self::V1 }
    }
}

/// Everything a result signature covers. v1 uses only `job_id`, `kind` and `payload`.
#[derive(Debug, Clone, Copy)]
pub struct ResultClaims<'a> {
    /// The job, as its raw id string.
    pub job_id: &'a JobId,
    /// The node that ran it.
    pub node_id: &'a NodeId,
    /// Which payload this is.
    pub kind: ResultKind,
    /// The payload bytes (see [`ResultKind`]).
    pub payload: &'a [u8],
    /// Token counts: for a completion, and for the final stream chunk.
    pub usage: Option<&'a Usage>,
    /// sha256 hex of the served GGUF, when the engine knows it.
    pub model_sha256: Option<&'a str>,
}

impl ResultClaims<'_> {
    /// The proof of execution, `SHA-256(job_id || payload || node_id)` over the raw job id, the
    /// payload bytes and the dashed lowercase node id, as hex.
    pub fn proof_of_execution(&self) -> String {
        proof_of_execution(self.job_id, self.payload, self.node_id)
    }

    /// The exact bytes signed under `version`.
    pub fn message(&self, version: EnvelopeVersion) -> Result<String, EnvelopeError> {
        let payload_hash = sha256_hex(self.payload);
        match version {
            EnvelopeVersion::V1 => Ok(format!("sgl-result-v1\n{}\n{}\n{payload_hash}", self.job_id, self.kind)),
            EnvelopeVersion::V2 => {
                let needs_usage = match self.kind {
                    ResultKind::Plain | ResultKind::Sealed => true,
                    ResultKind::Stream { is_final, .. } => is_final,
                };
                if needs_usage && self.usage.is_none() {
                    return Err(EnvelopeError::UsagePlacement);
                }
                let model = match self.model_sha256 {
                    Some(hash) if is_sha256_hex(hash) => hash,
                    Some(_) => return Err(EnvelopeError::BadModelHash),
                    None => NOT_CLAIMED,
                };
                let usage = self.usage.map_or_else(
                    || NOT_CLAIMED.to_owned(),
                    |u| {
                        format!(
                            "prompt_tokens={};completion_tokens={};total_tokens={}",
                            u.prompt_tokens, u.completion_tokens, u.total_tokens
                        )
                    },
                );
                Ok(format!(
                    "sgl-result-v2\n{}\n{}\n{}\n{payload_hash}\n{usage}\n{model}\n{}",
                    self.job_id,
                    self.node_id,
                    self.kind,
                    self.proof_of_execution()
                ))
            }
        }
    }

    /// Signs the envelope and returns the base58 signature.
    pub fn sign(&self, identity: &NodeIdentity, version: EnvelopeVersion) -> Result<String, EnvelopeError> {
        Ok(identity.sign_b58(self.message(version)?.as_bytes()))
    }

    /// Verifies a base58 signature under `version`. When the sender also sent a proof of
    /// execution, pass it as `claimed_proof` and it must match the one computed here.
    pub fn verify(
        &self,
        key: &NodePublicKey,
        version: EnvelopeVersion,
        signature_b58: &str,
        claimed_proof: Option<&str>,
    ) -> Result<(), EnvelopeError> {
        if claimed_proof.is_some_and(|proof| proof != self.proof_of_execution()) {
            return Err(EnvelopeError::ProofMismatch);
        }
        Ok(key.verify_b58(self.message(version)?.as_bytes(), signature_b58)?)
    }
}

/// `SHA-256(job_id || result || node_id)` as hex: the raw job id bytes, the result payload
/// bytes and the dashed lowercase node id string, concatenated.
pub fn proof_of_execution(job_id: &JobId, payload: &[u8], node_id: &NodeId) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(job_id.as_str().as_bytes());
    hasher.update(payload);
    hasher.update(node_id.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests;
