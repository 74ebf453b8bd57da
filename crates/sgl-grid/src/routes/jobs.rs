//! What nodes post about jobs (sgl-protocol.md §1.9–§1.11): results, stream chunks and
//! failures. Every result and chunk signature is verified against the node's key before
//! anything is relayed or billed; a bad one is refused and recorded as tamper evidence. For
//! requests the grid sealed itself, the reply must also open, or it is refused the same way.

use axum::extract::{Path, State};
use serde_json::{Value, json};
use sgl_protocol::api::inference::{JobResult, Usage};
use sgl_protocol::api::node::{
    ChunkPost, ChunkResponse, CompleteJobRequest, CompletedResult, FailJobRequest, ResultSignature, StreamChunkPost,
};
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::NodePublicKey;
use sgl_protocol::ids::{JobId, NodeId};

use sgl_grid_store::nodes::TamperKind;
use sgl_grid_store::stake::NewSlash;

use crate::error::{ApiError, ApiResult};
use crate::jobs::{Finish, JobEvent, finish};
use crate::routes::{AppJson, NodeAuth};
use crate::state::AppState;

/// The live job `id`, which must belong to the authenticated node: its id, node and mode.
fn owned_job(state: &AppState, auth: &NodeAuth, id: &str) -> ApiResult<(JobId, NodeId, bool)> {
    let job_id: JobId = id.parse().map_err(|_| ApiError::not_found("no such job"))?;
    let found = state.jobs().lock().get(&job_id).map(|job| (job.node_id, job.stream));
    match found {
        Some((node_id, stream)) if node_id.to_string() == auth.0.id => Ok((job_id, node_id, stream)),
        Some(_) => Err(ApiError::forbidden("this job belongs to another node")),
        None => Err(ApiError::not_found("no such live job (unknown, finished or reaped)")),
    }
}

/// Refuses the job's result: records tamper evidence, fails the job (nothing billed) and
/// answers the node with `error`.
async fn refuse(
    state: &AppState,
    auth: &NodeAuth,
    job_id: &JobId,
    kind: TamperKind,
    evidence: Value,
    error: ApiError,
) -> ApiResult<()> {
    let evidence_text = evidence.to_string();
    state.store().record_tamper(&auth.0.id, job_id.as_str(), kind, &evidence_text, state.now_ms()).await?;
    let slash = NewSlash {
        wallet: &auth.0.wallet,
        node_id: Some(&auth.0.id),
        job_id: Some(job_id.as_str()),
        reason: kind.as_str(),
        evidence: &evidence_text,
        basis_points: state.config().slash_basis_points,
    };
    let slashed = state.store().slash(&slash, state.now_ms()).await.map_err(|e| ApiError::internal(&e))?;
    tracing::warn!(
        target: "sgl::events::tamper",
        node_id = %auth.0.id, job_id = %job_id, %kind, slashed_micro_sgl = slashed, "result refused, stake slashed"
    );
    let reason = "the node's result failed verification".to_owned();
    finish(state, job_id, Finish::Failed { reason, node_at_fault: true }).await?;
    Err(error)
}

/// Verifies a result signature. A node that has signed v2 once may not fall back to v1, which
/// would leave its usage unsigned.
async fn verify(
    state: &AppState,
    auth: &NodeAuth,
    claims: ResultClaims<'_>,
    signature: &ResultSignature,
) -> ApiResult<()> {
    let key = NodePublicKey::from_b58(&auth.0.public_key).map_err(|e| ApiError::internal(&e))?;
    let version = EnvelopeVersion::from_tag(&signature.result_envelope_version)
        .map_err(|e| ApiError::bad_param("result_envelope_version", e.to_string()))?;
    let signs_v2 = state.registry().get(claims.node_id).is_some_and(|node| node.signs_v2);
    let verdict = if version == EnvelopeVersion::V1 && signs_v2 {
        Err("this node signs v2; a v1 envelope from it is refused".to_owned())
    } else {
        claims
            .verify(&key, version, &signature.result_envelope_signature, signature.proof_of_execution.as_deref())
            .map_err(|e| e.to_string())
    };
    match verdict {
        Ok(()) => {
            if version == EnvelopeVersion::V2 {
                state.registry().update(&auth.0.id, |node| node.signs_v2 = true);
            }
            Ok(())
        }
        Err(error) => {
            let evidence = json!({
                "kind": claims.kind.to_string(), "version": version.tag(), "signature": signature.result_envelope_signature,
                "payload_sha256": sgl_protocol::encoding::sha256_hex(claims.payload), "usage": claims.usage, "error": error,
            });
            let refusal = ApiError::invalid_signature(format!("result_envelope_signature refused: {error}"));
            refuse(state, auth, claims.job_id, TamperKind::BadResultSignature, evidence, refusal).await
        }
    }
}

/// `POST /grid/jobs/{id}/complete`.
#[utoipa::path(
    post, path = "/grid/jobs/{id}/complete", tag = "node",
    params(("id" = String, Path, description = "The job id.")),
    request_body = sgl_protocol::api::node::CompleteJobRequest,
    responses(
        (status = 200, description = "Accepted and billed.", body = Object),
        (status = 404, description = "No such live job.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The job is a stream, or already answered.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn complete(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<CompleteJobRequest>,
) -> ApiResult<AppJson<Value>> {
    let (job_id, node_id, _) = owned_job(&state, &auth, &id)?;
    let (kind, payload) = match &body.result {
        CompletedResult::Sealed { sealed_result } => (ResultKind::Sealed, sealed_result.ciphertext.as_str()),
        CompletedResult::Plain { .. } => {
            // Every job this grid dispatches is sealed; a plain answer would put the reply in clear.
            return Err(ApiError::bad_request("this job was sealed; answer with sealed_result"));
        }
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
    let opened = match open_reply(&state, &job_id, &body) {
        Ok(opened) => opened,
        Err(error) => {
            let evidence = json!({"kind": "sealed", "error": error.to_string()});
            let refusal = ApiError::bad_request(format!("the sealed result was refused: {error}"));
            return refuse(&state, &auth, &job_id, TamperKind::UnreadableResult, evidence, refusal)
                .await
                .map(|()| AppJson(json!({})));
        }
    };
    let usage = body.usage.or(opened.as_ref().map(|result| result.usage)).unwrap_or_default();
    let event = Some(JobEvent::Completed { body: Box::new(body), opened });
    finish(&state, &job_id, Finish::Completed { usage, event }).await?;
    Ok(AppJson(json!({"ok": true})))
}

/// A reply the grid sealed for a plain caller did not yield a result.
#[derive(Debug, thiserror::Error)]
enum UnreadableReply {
    #[error("it does not open: {0}")]
    Open(#[from] sgl_protocol::seal::OpenError),
    #[error("it is not a result: {0}")]
    Parse(#[from] serde_json::Error),
}

/// Opens a reply the grid sealed for a plain caller; `Ok(None)` for caller-sealed jobs.
fn open_reply(
    state: &AppState,
    job_id: &JobId,
    body: &CompleteJobRequest,
) -> Result<Option<JobResult>, UnreadableReply> {
    let CompletedResult::Sealed { sealed_result } = &body.result else { return Ok(None) };
    let opener = state.jobs().lock().get(job_id).and_then(|job| job.opener.as_ref().map(|o| o.reply.clone()));
    let Some(opener) = opener else { return Ok(None) };
    let plaintext = opener.open(sealed_result)?;
    Ok(Some(serde_json::from_slice(&plaintext)?))
}

/// `POST /grid/jobs/{id}/chunk`: a sealed stream chunk, or `{"error": true}`.
#[utoipa::path(
    post, path = "/grid/jobs/{id}/chunk", tag = "node",
    params(("id" = String, Path, description = "The job id.")),
    request_body = sgl_protocol::api::node::ChunkPost,
    responses(
        (status = 200, description = "Relayed; `closed` tells the node the caller left.", body = sgl_protocol::api::node::ChunkResponse),
        (status = 404, description = "No such live job.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "Not a stream, or a chunk out of order.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn chunk(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<ChunkPost>,
) -> ApiResult<AppJson<ChunkResponse>> {
    let (job_id, node_id, stream) = owned_job(&state, &auth, &id)?;
    let post = match body {
        ChunkPost::Error(error) => {
            let reason =
                error.reason.map_or_else(|| "the node's stream failed".to_owned(), |r| format!("stream failed: {r}"));
            finish(&state, &job_id, Finish::Failed { reason, node_at_fault: true }).await?;
            return Ok(AppJson(ChunkResponse { ok: true, closed: true }));
        }
        ChunkPost::Chunk(post) => post,
    };
    if !stream {
        return Err(ApiError::conflict("this job is not a stream; answer with /complete"));
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
    if let Some(tokens) = partial_settlement(&state, &job_id, &post) {
        let reason = format!("the node ended the stream early after {tokens} delivered tokens");
        finish(&state, &job_id, Finish::Failed { reason, node_at_fault: false }).await?;
        return Ok(AppJson(ChunkResponse { ok: true, closed: true }));
    }
    // Sequence check, opening and advancing happen under one lock, so two posts of one chunk
    // cannot both be relayed.
    let opened = {
        let mut jobs = state.jobs().lock();
        let job = jobs.get_mut(&job_id).ok_or_else(|| ApiError::not_found("the job finished meanwhile"))?;
        let signature = &post.signature.result_envelope_signature;
        if post.seq + 1 == job.next_seq && job.last_chunk_signature.as_ref() == Some(signature) {
            // A retry of the chunk just taken: already relayed, not again.
            return Ok(AppJson(ChunkResponse { ok: true, closed: job.events.is_closed() }));
        }
        if post.seq != job.next_seq {
            return Err(ApiError::conflict(format!("expected chunk {}, got {}", job.next_seq, post.seq)));
        }
        let eph = post.ephemeral_public_key.as_deref();
        let opened = match job.opener.as_mut().and_then(|o| o.stream.as_mut()) {
            Some(opener) => {
                opener.open_chunk(post.seq, &post.ciphertext, eph, post.is_final).map(|text| Some(text.to_vec()))
            }
            None => Ok(None),
        };
        if opened.is_ok() {
            job.next_seq += 1;
            job.last_chunk_signature = Some(signature.clone());
            job.acked = true;
            job.last_activity_at = state.now_ms();
        }
        opened.map(|text| (text.map(|t| String::from_utf8_lossy(&t).into_owned()), job.events.clone()))
    };
    let (text, sender) = match opened {
        Ok(accepted) => accepted,
        Err(error) => {
            let refusal = ApiError::bad_request(format!("the stream chunk does not open: {error}"));
            let evidence = json!({"kind": kind.to_string(), "error": error.to_string()});
            return refuse(&state, &auth, &job_id, TamperKind::UnreadableChunk, evidence, refusal)
                .await
                .map(|()| AppJson(ChunkResponse { ok: false, closed: true }));
        }
    };
    let (is_final, seq) = (post.is_final, post.seq);
    let usage = post.usage.unwrap_or_default();
    let closed = sender.send(JobEvent::Chunk { post: Box::new(post), text }).await.is_err();
    if !closed && let Some(job) = state.jobs().lock().get_mut(&job_id) {
        job.chunks_delivered += 1;
        if !is_final {
            // Never more than the job may generate, whatever the node claims.
            job.delivered_tokens = job.delivered_tokens.max(usage.completion_tokens.min(job.max_tokens));
        }
    }
    if !closed && !is_final {
        crate::jobs::record_delivery(&state, &job_id);
    }
    if is_final {
        finish(&state, &job_id, final_end(&state, &job_id, usage, seq, closed)).await?;
    }
    Ok(AppJson(ChunkResponse { ok: true, closed }))
}

/// How a stream whose final chunk (at `seq`, carrying `usage`) was accepted ends: completed, or,
/// when its caller had already left (`closed`), billed for the tokens that reached it.
fn final_end(state: &AppState, job_id: &JobId, usage: Usage, seq: u64, closed: bool) -> Finish {
    if !closed {
        return Finish::Completed { usage, event: None };
    }
    let tokens = state.jobs().lock().get_mut(job_id).map_or(0, |job| job.delivered(usage.completion_tokens, seq));
    let reason = format!("the caller left before the end; {tokens} delivered tokens billed");
    Finish::Failed { reason, node_at_fault: false }
}

/// A seed node's partial settlement (sgl-protocol.md §3.9 and R2): after `closed: true`, or a
/// chunk POST that failed, the seed posts a `final` chunk that reuses the last sequence number
/// (or the failed one) and carries completion-only usage; a node that numbers strictly sends
/// it at the next number. It is a settlement, never the stream's genuine end: returns the
/// completion tokens that reached the caller, which the job is then billed for, or `None` for
/// any other chunk. A node whose chunks sign running counts (v2) is billed its last delivered
/// count; otherwise the claim is prorated over the chunks the caller received, rounded down,
/// since such chunks carry no counts.
fn partial_settlement(state: &AppState, job_id: &JobId, post: &StreamChunkPost) -> Option<u64> {
    if !post.is_final {
        return None;
    }
    let mut jobs = state.jobs().lock();
    let job = jobs.get_mut(job_id)?;
    let signature = Some(&post.signature.result_envelope_signature);
    let reuses_last = post.seq + 1 == job.next_seq && job.last_chunk_signature.as_ref() != signature;
    let completion_only = post.seq == job.next_seq && post.usage.is_some_and(|u| u.prompt_tokens == 0);
    if !(reuses_last || completion_only) {
        return None;
    }
    // The content chunks the node sent: up to the reused number, or all accepted ones plus,
    // while the caller still listens (so the node was not told to stop), the one it lost.
    let sent = if reuses_last || job.events.is_closed() { job.next_seq } else { job.next_seq + 1 };
    Some(job.delivered(post.usage.map_or(0, |usage| usage.completion_tokens), sent))
}

/// `POST /grid/jobs/{id}/fail`.
#[utoipa::path(
    post, path = "/grid/jobs/{id}/fail", tag = "node",
    params(("id" = String, Path, description = "The job id.")),
    request_body = sgl_protocol::api::node::FailJobRequest,
    responses(
        (status = 200, description = "Recorded; the job goes to another node or fails.", body = Object),
        (status = 404, description = "No such live job.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn fail(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(body): AppJson<FailJobRequest>,
) -> ApiResult<AppJson<Value>> {
    let (job_id, _, _) = owned_job(&state, &auth, &id)?;
    let reason: String = body.reason.chars().take(500).collect();
    finish(
        &state,
        &job_id,
        Finish::Failed { reason: format!("the node failed the job: {reason}"), node_at_fault: true },
    )
    .await?;
    Ok(AppJson(json!({"ok": true})))
}
