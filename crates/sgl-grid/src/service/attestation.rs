//! A node's attestation: a single-use challenge, then a signed hardware report checked against
//! it, the report's hash and the binary allowlist. The verdict is recorded and takes effect on
//! the live node at once (an unattested node gets no work). No HTTP here: a refusal is an
//! [`AttestationError`]; a report that fails the checks is an answer (`verified: false`), not
//! an error.

use sgl_grid_store::StoreError;
use sgl_grid_store::nodes::NodeRecord;
use sgl_protocol::api::node::{ChallengeResponse, VerifyAttestationRequest, VerifyAttestationResponse};
use sgl_protocol::attestation::{report_hash, verify_challenge};
use sgl_protocol::identity::NodePublicKey;

use crate::registry::Attestation;
use crate::service::{rfc3339, secrets};
use crate::state::AppState;

/// How long an attestation challenge stays valid.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60 * 1000;

/// Why an attestation step was refused.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    /// The node has no live challenge.
    #[error("no live challenge for this node; POST /grid/nodes/{{id}}/challenge first")]
    NoChallenge,
    /// The node's own record is unusable.
    #[error("the node's record is corrupt: {0}")]
    CorruptRecord(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A fresh single-use challenge for `node`, replacing any earlier one.
pub async fn challenge(state: &AppState, node: &NodeRecord) -> Result<ChallengeResponse, AttestationError> {
    let challenge = format!("sgl-attest:{}:{}", node.id, secrets::random_b58(24));
    let expires_at = state.now_ms() + CHALLENGE_TTL_MS;
    state.store().put_challenge(&node.id, &challenge, expires_at).await?;
    Ok(ChallengeResponse {
        challenge,
        expires_at: Some(rfc3339::format(expires_at)),
        expires_in_seconds: Some(u64::try_from(CHALLENGE_TTL_MS / 1000).unwrap_or(0)),
    })
}

/// Checks `node`'s answer to its challenge and records the verdict.
pub async fn verify(
    state: &AppState,
    node: &NodeRecord,
    request: &VerifyAttestationRequest,
) -> Result<VerifyAttestationResponse, AttestationError> {
    let challenge =
        state.store().take_challenge(&node.id, state.now_ms()).await?.ok_or(AttestationError::NoChallenge)?;
    let key = NodePublicKey::from_b58(&node.public_key).map_err(|_| AttestationError::CorruptRecord("identity key"))?;
    let report = &request.hardware_report;
    let allowlist = state.store().allowed_binaries().await?;
    let binary = report.binary_hash.to_ascii_lowercase();
    let failure = if verify_challenge(&key, &challenge, &request.signature).is_err() {
        Some("challenge signature does not verify")
    } else if report.report_hash != report_hash(report) {
        Some("report_hash does not match the hardware report")
    } else if !allowlist.is_empty() && !allowlist.contains(&binary) {
        Some("Node binary is not a recognized SGL build")
    } else {
        None
    };
    state.store().set_attested(&node.id, failure.is_none(), &binary).await?;
    state.registry().update(&node.id, |live| {
        live.attestation = Attestation::of(failure.is_none(), Some(&binary), &live.binary_hash);
    });
    if let Ok(node_id) = node.id.parse() {
        crate::cluster::node_changed(state, node_id);
    }
    tracing::info!(target: "sgl::events::node", node_id = %node.id, verified = failure.is_none(), "attestation checked");
    Ok(VerifyAttestationResponse { verified: failure.is_none(), status: failure.unwrap_or("attested").to_owned() })
}
