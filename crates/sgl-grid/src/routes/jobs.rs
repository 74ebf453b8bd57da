//! What nodes post about jobs (sgl-protocol.md §1.9–§1.11): results, stream chunks and
//! failures. Every result and chunk signature is verified against the node's key before
//! anything is relayed or billed; a bad one is refused and recorded as tamper evidence.

use axum::extract::{Path, State};
use serde_json::{Value, json};
use sgl_protocol::api::node::{
    ChunkPost, ChunkResponse, CompleteJobRequest, CompletedResult, FailJobRequest, ResultSignature,
};
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::NodePublicKey;
use sgl_protocol::ids::{JobId, NodeId};

use crate::error::{ApiError, ApiResult};
use crate::jobs::{Finish, JobEvent, finish};
use crate::routes::{AppJson, NodeAuth};
use crate::state::AppState;

/// The live job `id`, which must belong to the authenticated node.
fn owned_job(state: &AppState, auth: &NodeAuth, id: &str) -> ApiResult<(JobId, NodeId)> {
    let job_id: JobId = id.parse().map_err(|_| ApiError::not_found("no such job"))?;
    let node_id = state.jobs().lock().get(&job_id).map(|job| job.node_id);
    match node_id {
        Some(node_id) if node_id.to_string() == auth.0.id => Ok((job_id, node_id)),
        Some(_) => Err(ApiError::forbidden("this job belongs to another node")),
        None => Err(ApiError::not_found("no such live job (unknown, finished or reaped)")),
    }
}

/// Verifies a result signature; on failure records tamper evidence, fails the job and refuses.
async fn verify(
    state: &AppState,
    auth: &NodeAuth,
    claims: ResultClaims<'_>,
    signature: &ResultSignature,
) -> ApiResult<()> {
    let (job_id, node_id, kind, usage) = (claims.job_id, claims.node_id, claims.kind, claims.usage);
    let key = NodePublicKey::from_b58(&auth.0.public_key).map_err(|e| ApiError::internal(&e))?;
    let version = EnvelopeVersion::from_tag(&signature.result_envelope_version)
        .map_err(|e| ApiError::bad_param("result_envelope_version", e.to_string()))?;
    let verdict =
        claims.verify(&key, version, &signature.result_envelope_signature, signature.proof_of_execution.as_deref());
    let Err(error) = verdict else { return Ok(()) };
    let evidence = json!({
        "kind": kind.to_string(), "version": version.tag(), "signature": signature.result_envelope_signature,
        "payload_sha256": sgl_protocol::encoding::sha256_hex(claims.payload), "usage": usage, "error": error.to_string(),
    });
    state
        .store()
        .record_tamper(&auth.0.id, job_id.as_str(), "bad_result_signature", &evidence.to_string(), state.now_ms())
        .await?;
    tracing::warn!(target: "sgl::events::tamper", node_id = %node_id, job_id = %job_id, %error, "result signature refused");
    let reason = "the node's result signature did not verify".to_owned();
    finish(state, job_id, Finish::Failed { reason, node_at_fault: true }).await?;
    Err(ApiError::invalid_signature(format!("result_envelope_signature refused: {error}")))
}

/// `POST /grid/jobs/{id}/complete`.
pub(super) async fn complete(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<CompleteJobRequest>,
) -> ApiResult<AppJson<Value>> {
    let (job_id, node_id) = owned_job(&state, &auth, &id)?;
    let (kind, payload) = match &body.result {
        CompletedResult::Sealed { sealed_result } => (ResultKind::Sealed, sealed_result.ciphertext.as_str()),
        CompletedResult::Plain { encrypted_result } => (ResultKind::Plain, encrypted_result.as_str()),
    };
    let claims = ResultClaims {
        job_id: &job_id,
        node_id: &node_id,
        kind,
        payload: payload.as_bytes(),
        usage: body.usage.as_ref(),
        model_sha256: body.signature.model_sha256.as_deref(),
    };
    verify(&state, &auth, claims, &body.signature).await?;
    let usage = body.usage.unwrap_or_default();
    let event = Some(JobEvent::Completed(Box::new(body)));
    finish(&state, &job_id, Finish::Completed { usage, event }).await?;
    Ok(AppJson(json!({"ok": true})))
}

/// `POST /grid/jobs/{id}/chunk`: a sealed stream chunk, or `{"error": true}`.
pub(super) async fn chunk(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<ChunkPost>,
) -> ApiResult<AppJson<ChunkResponse>> {
    let (job_id, node_id) = owned_job(&state, &auth, &id)?;
    let post = match body {
        ChunkPost::Error(error) => {
            let reason =
                error.reason.map_or_else(|| "the node's stream failed".to_owned(), |r| format!("stream failed: {r}"));
            finish(&state, &job_id, Finish::Failed { reason, node_at_fault: true }).await?;
            return Ok(AppJson(ChunkResponse { ok: true, closed: true }));
        }
        ChunkPost::Chunk(post) => post,
    };
    let expected = state.jobs().lock().get(&job_id).map(|job| job.next_seq).unwrap_or_default();
    if post.seq != expected {
        return Err(ApiError::bad_param("seq", format!("expected chunk {expected}, got {}", post.seq)));
    }
    let kind = ResultKind::Stream { seq: post.seq, is_final: post.is_final };
    let claims = ResultClaims {
        job_id: &job_id,
        node_id: &node_id,
        kind,
        payload: post.ciphertext.as_bytes(),
        usage: post.usage.as_ref(),
        model_sha256: post.signature.model_sha256.as_deref(),
    };
    verify(&state, &auth, claims, &post.signature).await?;
    let sender = {
        let mut jobs = state.jobs().lock();
        let Some(job) = jobs.get_mut(&job_id) else { return Err(ApiError::not_found("the job finished meanwhile")) };
        job.acked = true;
        job.next_seq += 1;
        job.events.clone()
    };
    let is_final = post.is_final;
    let usage = post.usage.unwrap_or_default();
    let closed = sender.send(JobEvent::Chunk(Box::new(post))).await.is_err();
    if is_final {
        finish(&state, &job_id, Finish::Completed { usage, event: None }).await?;
    }
    Ok(AppJson(ChunkResponse { ok: true, closed }))
}

/// `POST /grid/jobs/{id}/fail`.
pub(super) async fn fail(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<FailJobRequest>,
) -> ApiResult<AppJson<Value>> {
    let (job_id, _) = owned_job(&state, &auth, &id)?;
    let reason: String = body.reason.chars().take(500).collect();
    finish(
        &state,
        &job_id,
        Finish::Failed { reason: format!("the node failed the job: {reason}"), node_at_fault: true },
    )
    .await?;
    Ok(AppJson(json!({"ok": true})))
}
