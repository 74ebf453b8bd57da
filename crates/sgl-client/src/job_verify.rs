//! Checks of what the job API returns, without I/O: a blob must hash to its name, and a job's
//! result must hold together with the receipts that vouch for it.
//!
//! What is checked: every receipt is for this job and slice, its output paths are safe
//! relative paths (so they can be written under a directory), its result digest is the digest
//! of its own exit code, fuel and outputs, its proof of execution binds that digest to the task
//! and the node, it is signed by its node's key (the result lists each node's key, as the grid
//! registered it), the receipts of a slice agree (same result, same bundle, distinct nodes),
//! and the slice's stated result is the one they sign.

use std::collections::{BTreeMap, BTreeSet};

use sgl_protocol::api::compute::{JobResult, SliceResult};
use sgl_protocol::compute::Digest;
use sgl_protocol::compute::bundle::check_path;
use sgl_protocol::compute::receipt::{Receipt, proof_of_execution, result_digest};
use sgl_protocol::identity::NodePublicKey;
use sgl_protocol::ids::{JobId, NodeId};

use crate::error::JobVerifyError;

/// Each listed node's base58 ed25519 key.
type NodeKeys = BTreeMap<NodeId, String>;

/// Refuses `bytes` unless their SHA-256 is `name`.
pub fn check_blob(name: &Digest, bytes: &[u8]) -> Result<(), JobVerifyError> {
    let actual = Digest::of(bytes);
    if actual != *name {
        return Err(JobVerifyError::BlobMismatch { name: *name, actual });
    }
    Ok(())
}

/// Checks that `result` is `job_id`'s and that each slice's receipts hold together.
pub fn check_job_result(job_id: &JobId, result: &JobResult) -> Result<(), JobVerifyError> {
    if result.job_id != *job_id {
        return Err(JobVerifyError::WrongJob { expected: job_id.clone(), got: result.job_id.clone() });
    }
    let mut previous: Option<u32> = None;
    for slice in &result.slices {
        if previous.is_some_and(|p| p >= slice.index) {
            return Err(JobVerifyError::SlicesOutOfOrder(slice.index));
        }
        previous = Some(slice.index);
        check_slice(job_id, slice, &result.public_keys)?;
    }
    Ok(())
}

fn check_slice(job_id: &JobId, slice: &SliceResult, keys: &NodeKeys) -> Result<(), JobVerifyError> {
    let Some(first) = slice.receipts.first() else { return Err(JobVerifyError::NoReceipts(slice.index)) };
    let mut nodes = BTreeSet::new();
    for receipt in &slice.receipts {
        check_receipt(job_id, slice.index, receipt)?;
        check_signature(slice.index, receipt, keys)?;
        if receipt.result_digest != first.result_digest || receipt.bundle_hash != first.bundle_hash {
            return Err(JobVerifyError::ReceiptsDisagree(slice.index));
        }
        if !nodes.insert(receipt.node_id) {
            return Err(JobVerifyError::DuplicateNode { slice: slice.index, node_id: receipt.node_id });
        }
    }
    let stated = (slice.result_digest, slice.exit_code, &slice.outputs);
    if stated != (first.result_digest, first.exit_code, &first.outputs) {
        return Err(JobVerifyError::SliceMismatch(slice.index));
    }
    Ok(())
}

/// One receipt on its own: filed under the right job and slice, its digests consistent.
fn check_receipt(job_id: &JobId, slice: u32, receipt: &Receipt) -> Result<(), JobVerifyError> {
    let attempt = receipt.attempt;
    if receipt.job_id != *job_id || receipt.slice != slice {
        return Err(JobVerifyError::ReceiptMisplaced { slice, attempt });
    }
    if receipt.outputs.windows(2).any(|pair| pair[0].path >= pair[1].path) {
        return Err(JobVerifyError::ReceiptUnsorted { slice, attempt });
    }
    if let Some(file) = receipt.outputs.iter().find(|file| check_path(&file.path).is_err()) {
        return Err(JobVerifyError::UnsafePath { slice, attempt, path: file.path.clone() });
    }
    if receipt.result_digest != result_digest(receipt.exit_code, receipt.usage.fuel, &receipt.outputs) {
        return Err(JobVerifyError::ReceiptDigest { slice, attempt });
    }
    if receipt.proof != proof_of_execution(job_id, slice, &receipt.result_digest, &receipt.node_id) {
        return Err(JobVerifyError::ReceiptProof { slice, attempt });
    }
    Ok(())
}

/// The receipt is signed by its node's key.
fn check_signature(slice: u32, receipt: &Receipt, keys: &NodeKeys) -> Result<(), JobVerifyError> {
    let attempt = receipt.attempt;
    let key = keys.get(&receipt.node_id).ok_or(JobVerifyError::UnknownNode { slice, node_id: receipt.node_id })?;
    let key = NodePublicKey::from_b58(key).map_err(|_| JobVerifyError::ReceiptSignature { slice, attempt })?;
    receipt.verify(&key).map_err(|_| JobVerifyError::ReceiptSignature { slice, attempt })
}

#[cfg(test)]
mod tests;
