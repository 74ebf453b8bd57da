//! The receipt (`sgl-receipt-v1`, `docs/protocol.md` §10): what a node signs for each attempt
//! of a slice it ran, for every job class. The grid compares receipts' result digests to accept
//! a slice, pays by the metered work they state, and keeps them as evidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::Digest;
use crate::canonical::Canonical;
use crate::identity::{NodeIdentity, NodePublicKey, VerifyError};
use crate::ids::{JobId, NodeId};

/// Domain tag of the receipt's signed bytes.
pub const RECEIPT_DOMAIN: &[u8] = b"sgl-receipt-v1\0";
/// Domain tag of the result digest.
pub const RESULT_DOMAIN: &[u8] = b"sgl-result-v1\0";

/// One file the run left in `/out`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// Relative path under `/out`.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// For a PNG of a class compared by pixels (`image`, `render`): the SHA-256 of its decoded
    /// pixels (`docs/protocol.md` §10), which the result digest uses instead of its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixels: Option<Digest>,
}

/// What a run used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceUsage {
    /// Wasm fuel consumed (deterministic runtimes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// CPU time, milliseconds.
    pub cpu_ms: u64,
    /// Peak memory, bytes.
    pub peak_memory_bytes: u64,
    /// Wall time, milliseconds.
    pub wall_ms: u64,
}

/// A signed receipt for one attempt of one slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The job.
    pub job_id: JobId,
    /// The slice's index.
    pub slice: u32,
    /// The attempt's number within the slice (from 1).
    pub attempt: u32,
    /// The node that ran it.
    pub node_id: NodeId,
    /// SHA-256 of the bundle's manifest.
    pub bundle_hash: Digest,
    /// The inputs it read, by path.
    pub inputs: BTreeMap<String, Digest>,
    /// The files it wrote, sorted by path.
    pub outputs: Vec<OutputFile>,
    /// The guest's exit code.
    pub exit_code: i32,
    /// The runtime and its version, e.g. `wasmtime 48.0.8`.
    pub runtime: String,
    /// What it used.
    pub usage: ResourceUsage,
    /// SHA-256 over the exit code, the metered fuel and the outputs ([`result_digest`]): what
    /// redundant runs must agree on.
    pub result_digest: Digest,
    /// SHA-256(task ‖ result ‖ node) ([`proof_of_execution`]).
    pub proof: Digest,
    /// Base58 ed25519 signature over [`Receipt::canonical_bytes`].
    pub signature: String,
}

/// A receipt that does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The result digest is not the digest of the receipt's own outputs.
    #[error("the result digest does not match the receipt's outputs")]
    ResultDigest,
    /// The proof of execution is not SHA-256(task ‖ result ‖ node).
    #[error("the proof of execution does not match")]
    Proof,
    /// The outputs are not sorted by path, or a path repeats.
    #[error("the outputs must be sorted by path without repeats")]
    Unsorted,
    /// The signature is invalid.
    #[error(transparent)]
    Signature(#[from] VerifyError),
}

/// SHA-256 of `sgl-result-v1\0`, the exit code (as i64, two's complement, u64 big-endian), the
/// fuel (a decimal string, empty when not metered) and the outputs (count, then each path,
/// hex digest and size; for a file compared by pixels, `pixels:` and the hex pixel digest, and
/// size 0, so two PNGs of the same pixels agree).
pub fn result_digest(exit_code: i32, fuel: Option<u64>, outputs: &[OutputFile]) -> Digest {
    let mut out = Canonical::new(RESULT_DOMAIN);
    out.integer(i64::from(exit_code) as u64);
    out.string(&fuel.map(|f| f.to_string()).unwrap_or_default());
    out.count(outputs.len());
    for file in outputs {
        out.string(&file.path);
        match file.pixels {
            None => {
                out.string(&file.sha256.to_hex());
                out.integer(file.size);
            }
            Some(pixels) => {
                out.string(&format!("pixels:{}", pixels.to_hex()));
                out.integer(0);
            }
        }
    }
    Digest::of(out.finish())
}

/// `SHA-256(task ‖ result ‖ node)`: the task is the job id's bytes, `:`, and the slice index in
/// decimal; the result is the 32 raw bytes of the result digest; the node is its dashed id.
pub fn proof_of_execution(job_id: &JobId, slice: u32, result: &Digest, node_id: &NodeId) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(job_id.as_str().as_bytes());
    hasher.update(format!(":{slice}").as_bytes());
    hasher.update(result.as_bytes());
    hasher.update(node_id.to_string().as_bytes());
    Digest::from_bytes(hasher.finalize().into())
}

impl Receipt {
    /// The bytes that are signed: every field but `signature`, in declaration order.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Canonical::new(RECEIPT_DOMAIN);
        out.string(self.job_id.as_str());
        out.integer(self.slice.into());
        out.integer(self.attempt.into());
        out.string(&self.node_id.to_string());
        out.string(&self.bundle_hash.to_hex());
        out.count(self.inputs.len());
        for (path, digest) in &self.inputs {
            out.string(path);
            out.string(&digest.to_hex());
        }
        out.count(self.outputs.len());
        for file in &self.outputs {
            out.string(&file.path);
            out.string(&file.sha256.to_hex());
            out.integer(file.size);
        }
        out.integer(i64::from(self.exit_code) as u64);
        out.string(&self.runtime);
        out.string(&self.usage.fuel.map(|f| f.to_string()).unwrap_or_default());
        out.integer(self.usage.cpu_ms);
        out.integer(self.usage.peak_memory_bytes);
        out.integer(self.usage.wall_ms);
        out.string(&self.result_digest.to_hex());
        out.string(&self.proof.to_hex());
        // Pixel digests, only when there are any (so receipts without them keep their bytes).
        let pixels: Vec<_> = self.outputs.iter().filter_map(|f| f.pixels.map(|p| (&f.path, p))).collect();
        if !pixels.is_empty() {
            out.count(pixels.len());
            for (path, digest) in pixels {
                out.string(path);
                out.string(&digest.to_hex());
            }
        }
        out.finish()
    }

    /// Sorts the outputs, fills in the result digest and the proof, and signs.
    pub fn seal(mut self, identity: &NodeIdentity) -> Self {
        self.outputs.sort();
        self.result_digest = result_digest(self.exit_code, self.usage.fuel, &self.outputs);
        self.proof = proof_of_execution(&self.job_id, self.slice, &self.result_digest, &self.node_id);
        self.signature = identity.sign_b58(&self.canonical_bytes());
        self
    }

    /// Checks that the digests hold together and that `key` signed the receipt.
    pub fn verify(&self, key: &NodePublicKey) -> Result<(), ReceiptError> {
        if self.outputs.windows(2).any(|pair| pair[0].path >= pair[1].path) {
            return Err(ReceiptError::Unsorted);
        }
        if self.result_digest != result_digest(self.exit_code, self.usage.fuel, &self.outputs) {
            return Err(ReceiptError::ResultDigest);
        }
        if self.proof != proof_of_execution(&self.job_id, self.slice, &self.result_digest, &self.node_id) {
            return Err(ReceiptError::Proof);
        }
        Ok(key.verify_b58(&self.canonical_bytes(), &self.signature)?)
    }
}

#[cfg(test)]
mod tests;
