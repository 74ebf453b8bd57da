//! What nodes report about their attempts: a receipt, checked against the lease and the node's
//! key before the queue decides its slice, or a failure. Then the consequences: reputation up
//! for accepted work; for rejected work, reputation down and, when the receipt is provably
//! wrong (it missed a canary's known answer, or a unanimous quorum of at least two others
//! disagrees on deterministic work), tamper evidence and a slash with the receipts as evidence.

use sgl_grid_store::compute::{ComputeJobRecord, ReceiptIn, SliceVerdict};
use sgl_grid_store::nodes::{NodeRecord, TamperKind};
use sgl_grid_store::stake::NewSlash;
use sgl_protocol::api::compute::{AttemptAck, AttemptFailure, ReceiptPost};
use sgl_protocol::compute::bundle::BundleManifest;
use sgl_protocol::compute::receipt::Receipt;
use sgl_protocol::identity::NodePublicKey;

use super::WorkError;
use super::canary::Expected;
use crate::state::AppState;

/// The longest log kept per stream of an attempt.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// Takes a node's receipt for its attempt.
pub async fn receipt(
    state: &AppState,
    node: &NodeRecord,
    attempt_id: i64,
    post: ReceiptPost,
) -> Result<AttemptAck, WorkError> {
    let attempt = state.store().compute_attempt(attempt_id).await?.filter(|a| a.node_id == node.id);
    let attempt = attempt.ok_or(WorkError::NotFound)?;
    let job = state.store().compute_job(&attempt.job_id).await?.ok_or(WorkError::NotFound)?;
    let manifest = BundleManifest::parse(job.manifest.as_bytes())?;
    let receipt = &post.receipt;
    let mismatch = [
        (receipt.job_id.as_str() != job.id, "job_id"),
        (receipt.slice != attempt.slice, "slice"),
        (receipt.attempt != attempt.attempt, "attempt"),
        (receipt.node_id.to_string() != node.id, "node_id"),
        (receipt.bundle_hash.to_hex() != job.bundle_hash, "bundle_hash"),
        (receipt.inputs != manifest.inputs, "inputs"),
    ];
    if let Some((_, field)) = mismatch.into_iter().find(|(wrong, _)| *wrong) {
        return Err(WorkError::ReceiptMismatch(field));
    }
    let key = NodePublicKey::from_b58(&node.public_key)
        .map_err(|_| WorkError::Refused("the node's registered key is unreadable".into()))?;
    receipt.verify(&key)?;
    outputs_present(state, receipt, &manifest).await?;
    let matches_expected = match &job.expected {
        Some(expected) => Some(Expected::parse(expected)?.matches(receipt)),
        None => None,
    };
    let receipt_json = serde_json::to_string(receipt).map_err(|e| WorkError::Refused(e.to_string()))?;
    let input = ReceiptIn {
        attempt_id,
        node_id: &node.id,
        result_digest: &receipt.result_digest.to_hex(),
        fuel: receipt.usage.fuel.map(|f| i64::try_from(f).unwrap_or(i64::MAX)),
        receipt: &receipt_json,
        stdout: capped(&post.stdout),
        stderr: capped(&post.stderr),
        matches_expected,
    };
    let verdict = state.store().submit_compute_receipt(&input, state.config().compute.shares, state.now_ms()).await?;
    tracing::info!(
        target: "sgl::events::compute", job = %job.id, slice = attempt.slice, attempt = attempt.attempt,
        node = %node.id, state = verdict.attempt_state.as_str(), job_state = verdict.job_state.as_str(), "receipt taken"
    );
    consequences(state, &job, &manifest, &verdict).await?;
    Ok(AttemptAck { state: verdict.attempt_state })
}

/// Every output is a blob, within the job's output limits.
async fn outputs_present(state: &AppState, receipt: &Receipt, manifest: &BundleManifest) -> Result<(), WorkError> {
    let total: u64 = receipt.outputs.iter().map(|o| o.size).sum();
    let limits = manifest.limits;
    if receipt.outputs.len() > limits.output_files as usize || total > u64::from(limits.output_mb) << 20 {
        return Err(WorkError::Refused("the receipt's outputs exceed the job's output limits".into()));
    }
    for output in &receipt.outputs {
        sgl_protocol::compute::bundle::check_path(&output.path)?;
        if super::blob_size(state, output.sha256).await? != Some(output.size) {
            return Err(WorkError::MissingOutput(output.sha256.to_hex()));
        }
    }
    Ok(())
}

fn capped(text: &str) -> &str {
    let mut end = text.len().min(MAX_LOG_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Reputation for everyone the verdict decided; a slash for provably wrong receipts.
async fn consequences(
    state: &AppState,
    job: &ComputeJobRecord,
    manifest: &BundleManifest,
    verdict: &SliceVerdict,
) -> Result<(), WorkError> {
    let now = state.now_ms();
    for accepted in &verdict.accepted {
        state.store().record_job_outcome(&accepted.node_id, true, now).await?;
    }
    let provable = verdict.canary || (manifest.class.is_deterministic() && verdict.accepted.len() >= 2);
    for rejected in &verdict.rejected {
        if !provable {
            state.store().record_job_outcome(&rejected.node_id, false, now).await?;
            continue;
        }
        let evidence = serde_json::json!({
            "job_id": job.id,
            "slice": verdict.slice,
            "class": manifest.class,
            "wrong_receipt": rejected.receipt.as_deref().and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()),
            "agreeing_receipts": verdict.accepted.iter()
                .filter_map(|a| a.receipt.as_deref().and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()))
                .collect::<Vec<_>>(),
            "known_answer": job.expected.as_deref().and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok()),
        })
        .to_string();
        // Per attempt: one decision can prove several receipts wrong, each its own fault.
        let fault = format!("{}/{}/{}", job.id, verdict.slice, rejected.attempt_id);
        state.store().record_tamper(&rejected.node_id, &fault, TamperKind::WrongComputeResult, &evidence, now).await?;
        let wallet = crate::chain::ledger_wallet(state, &rejected.operator);
        let slash = NewSlash {
            wallet: &wallet,
            node_id: Some(&rejected.node_id),
            job_id: Some(&fault),
            reason: "wrong_compute_result",
            evidence: &evidence,
            basis_points: state.config().slash_basis_points,
            active_first: state.chain().is_some(),
        };
        let taken = state.store().slash(&slash, now).await.map_err(|e| WorkError::Refused(e.to_string()))?;
        crate::chain::slash::send(state, &rejected.operator, &evidence, taken);
        tracing::warn!(
            target: "sgl::events::compute", job = %job.id, slice = verdict.slice, node = %rejected.node_id,
            canary = verdict.canary, slashed_micro_sgl = taken, "a provably wrong receipt: node slashed"
        );
    }
    Ok(())
}

/// Takes a node's report that it could not run its attempt.
pub async fn fail(
    state: &AppState,
    node: &NodeRecord,
    attempt_id: i64,
    failure: AttemptFailure,
) -> Result<AttemptAck, WorkError> {
    let now = state.now_ms();
    let reason = capped(&failure.reason).chars().take(500).collect::<String>();
    let ended = state.store().fail_compute_attempt(attempt_id, &node.id, &reason, capped(&failure.stderr), now).await?;
    state.store().record_job_outcome(&node.id, false, now).await?;
    tracing::info!(
        target: "sgl::events::compute", job = %ended.job_id, node = %node.id, reason = %reason, "attempt failed"
    );
    Ok(AttemptAck { state: sgl_protocol::api::compute::AttemptState::Failed })
}
