//! What nodes post about their jobs (sgl-protocol.md §1.9–§1.11): results, stream chunks and
//! failures. Every result and chunk signature is verified against the node's key before
//! anything is relayed or billed; a bad one is refused, recorded as tamper evidence and slashed.
//! For requests the grid sealed itself, the reply must also open, or it is refused the same
//! way. No HTTP here: a refusal is a [`ResultError`].

use serde_json::{Value, json};
use sgl_grid_store::StoreError;
use sgl_grid_store::nodes::{NodeRecord, TamperKind};
use sgl_grid_store::stake::{NewSlash, StakeError};
use sgl_protocol::api::embeddings::EmbeddingJobResult;
use sgl_protocol::api::inference::Usage;
use sgl_protocol::api::node::{
    ChunkPost, ChunkResponse, CompleteJobRequest, CompletedResult, FailCode, FailJobRequest, JobType, ResultSignature,
    StreamChunkPost,
};
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::NodePublicKey;
use sgl_protocol::ids::{JobId, NodeId};

use sgl_protocol::seal::StreamError;
use tokio::sync::mpsc;

use crate::jobs::{Finish, JobError, JobEvent, Opened, finish};
use crate::state::AppState;

/// Why a node's post about a job was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The id is not a job id.
    #[error("no such job")]
    UnknownJob,
    /// The job is not live (unknown, finished or reaped).
    #[error("no such live job (unknown, finished or reaped)")]
    NotLive,
    /// The job finished while the post was checked.
    #[error("the job finished meanwhile")]
    Finished,
    /// The job runs on another node.
    #[error("this job belongs to another node")]
    OtherNode,
    /// A plain answer to a job the grid sealed.
    #[error("this job was sealed; answer with sealed_result")]
    PlainAnswer,
    /// A chunk for a job that is not a stream.
    #[error("this job is not a stream; answer with /complete")]
    NotAStream,
    /// A chunk out of order.
    #[error("expected chunk {expected}, got {got}")]
    OutOfOrder {
        /// The next sequence number expected.
        expected: u64,
        /// The one posted.
        got: u64,
    },
    /// The envelope version is unknown.
    #[error("{0}")]
    BadEnvelopeVersion(String),
    /// The result's signature does not verify (recorded as tamper evidence).
    #[error("result_envelope_signature refused: {0}")]
    BadSignature(String),
    /// The sealed result does not open (recorded as tamper evidence).
    #[error("the sealed result was refused: {0}")]
    UnreadableResult(String),
    /// The stream chunk does not open (recorded as tamper evidence).
    #[error("the stream chunk does not open: {0}")]
    UnreadableChunk(String),
    /// The node's own record is unusable.
    #[error("the node's record is corrupt: {0}")]
    CorruptRecord(&'static str),
    /// Slashing the node failed.
    #[error(transparent)]
    Stake(#[from] StakeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Ending the job failed.
    #[error(transparent)]
    Jobs(#[from] JobError),
}

/// The live job `id`, which must belong to the authenticated node: its id, node and mode.
fn owned_job(state: &AppState, node: &NodeRecord, id: &str) -> Result<(JobId, NodeId, bool), ResultError> {
    let job_id: JobId = id.parse().map_err(|_| ResultError::UnknownJob)?;
    let found = state.jobs().lock().get(&job_id).map(|job| (job.node_id, job.stream));
    match found {
        Some((node_id, stream)) if node_id.to_string() == node.id => Ok((job_id, node_id, stream)),
        Some(_) => Err(ResultError::OtherNode),
        None => Err(ResultError::NotLive),
    }
}

/// Refuses the job's result: records tamper evidence, fails the job (nothing billed) and
/// answers the node with `error`.
async fn refuse(
    state: &AppState,
    node: &NodeRecord,
    job_id: &JobId,
    kind: TamperKind,
    evidence: Value,
    error: ResultError,
) -> Result<(), ResultError> {
    let evidence_text = evidence.to_string();
    state.store().record_tamper(&node.id, job_id.as_str(), kind, &evidence_text, state.now_ms()).await?;
    let wallet = crate::chain::ledger_wallet(state, &node.wallet);
    let slash = NewSlash {
        wallet: &wallet,
        node_id: Some(&node.id),
        job_id: Some(job_id.as_str()),
        reason: kind.as_str(),
        evidence: &evidence_text,
        basis_points: state.config().slash_basis_points,
        active_first: state.chain().is_some(),
    };
    let slashed = state.store().slash(&slash, state.now_ms()).await?;
    crate::chain::slash::send(state, &node.wallet, &evidence_text, slashed);
    tracing::warn!(
        target: "sgl::events::tamper",
        node_id = %node.id, job_id = %job_id, %kind, slashed_micro_sgl = slashed, "result refused, stake slashed"
    );
    let reason = "the node's result failed verification".to_owned();
    finish(state, job_id, Finish::Failed { reason, node_at_fault: true }).await?;
    Err(error)
}

/// Verifies a result signature. A node that has signed v2 once may not fall back to v1, which
/// would leave its usage unsigned.
async fn verify(
    state: &AppState,
    node: &NodeRecord,
    claims: ResultClaims<'_>,
    signature: &ResultSignature,
) -> Result<(), ResultError> {
    let key = NodePublicKey::from_b58(&node.public_key).map_err(|_| ResultError::CorruptRecord("identity key"))?;
    let version = EnvelopeVersion::from_tag(&signature.result_envelope_version)
        .map_err(|e| ResultError::BadEnvelopeVersion(e.to_string()))?;
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
                state.registry().update(&node.id, |live| live.signs_v2 = true);
            }
            Ok(())
        }
        Err(error) => {
            let evidence = json!({
                "kind": claims.kind.to_string(), "version": version.tag(), "signature": signature.result_envelope_signature,
                "payload_sha256": sgl_protocol::encoding::sha256_hex(claims.payload), "usage": claims.usage, "error": error,
            });
            let refusal = ResultError::BadSignature(error);
            refuse(state, node, claims.job_id, TamperKind::BadResultSignature, evidence, refusal).await
        }
    }
}

/// A node's complete (non-stream) result for job `id`: verified, opened when the grid sealed
/// the request, then relayed to the waiting caller and billed.
pub async fn complete(
    state: &AppState,
    node: &NodeRecord,
    id: &str,
    body: CompleteJobRequest,
) -> Result<(), ResultError> {
    let (job_id, node_id, _) = owned_job(state, node, id)?;
    let (kind, payload) = match &body.result {
        CompletedResult::Sealed { sealed_result } => (ResultKind::Sealed, sealed_result.ciphertext.as_str()),
        CompletedResult::Plain { .. } => {
            // Every job this grid dispatches is sealed; a plain answer would put the reply in clear.
            return Err(ResultError::PlainAnswer);
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
    verify(state, node, claims, &body.signature).await?;
    let opened = match open_reply(state, &job_id, &body) {
        Ok(opened) => opened,
        Err(error) => {
            let evidence = json!({"kind": "sealed", "error": error.to_string()});
            let refusal = ResultError::UnreadableResult(error.to_string());
            return refuse(state, node, &job_id, TamperKind::UnreadableResult, evidence, refusal).await;
        }
    };
    let usage = body.usage.or(opened.as_ref().map(Opened::usage)).unwrap_or_default();
    let event = Some(JobEvent::Completed { body: Box::new(body), opened });
    finish(state, &job_id, Finish::Completed { usage, event }).await?;
    Ok(())
}

/// A reply the grid sealed for a plain caller did not yield a result.
#[derive(Debug, thiserror::Error)]
enum UnreadableReply {
    #[error("it does not open: {0}")]
    Open(#[from] sgl_protocol::seal::OpenError),
    #[error("it is not a result: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("it holds {found} vectors for {sent} inputs")]
    VectorCount { found: usize, sent: usize },
    #[error(transparent)]
    Vector(#[from] sgl_protocol::api::embeddings::VectorError),
}

/// Opens a reply the grid sealed for a plain caller; `Ok(None)` for caller-sealed jobs. An
/// embedding job's vectors must match what was asked.
fn open_reply(state: &AppState, job_id: &JobId, body: &CompleteJobRequest) -> Result<Option<Opened>, UnreadableReply> {
    let CompletedResult::Sealed { sealed_result } = &body.result else { return Ok(None) };
    let opener =
        state.jobs().lock().get(job_id).and_then(|job| job.opener.as_ref().map(|o| (o.reply.clone(), o.embeddings)));
    let Some((opener, embeddings)) = opener else { return Ok(None) };
    let plaintext = zeroize::Zeroizing::new(opener.open(sealed_result)?);
    let Some(shape) = embeddings else { return Ok(Some(Opened::Chat(serde_json::from_slice(&plaintext)?))) };
    let result: EmbeddingJobResult = serde_json::from_slice(&plaintext)?;
    if result.data.len() != shape.inputs {
        return Err(UnreadableReply::VectorCount { found: result.data.len(), sent: shape.inputs });
    }
    let vectors = result.vectors(shape.dimensions)?;
    Ok(Some(Opened::Embeddings { vectors, result }))
}

/// A node's stream chunk for job `id` (or its report that the stream failed): verified, checked
/// for order, opened when the grid sealed the request, relayed, and on the final chunk billed.
/// `closed` in the answer tells the node its caller left.
pub async fn chunk(
    state: &AppState,
    node: &NodeRecord,
    id: &str,
    body: ChunkPost,
) -> Result<ChunkResponse, ResultError> {
    let (job_id, node_id, stream) = owned_job(state, node, id)?;
    let post = match body {
        ChunkPost::Error(error) => {
            let reason =
                error.reason.map_or_else(|| "the node's stream failed".to_owned(), |r| format!("stream failed: {r}"));
            finish(state, &job_id, Finish::Failed { reason, node_at_fault: true }).await?;
            return Ok(ChunkResponse { ok: true, closed: true });
        }
        ChunkPost::Chunk(post) => post,
    };
    if !stream {
        return Err(ResultError::NotAStream);
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
    verify(state, node, claims, &post.signature).await?;
    if let Some(tokens) = partial_settlement(state, &job_id, &post) {
        let reason = format!("the node ended the stream early after {tokens} delivered tokens");
        finish(state, &job_id, Finish::Failed { reason, node_at_fault: false }).await?;
        return Ok(ChunkResponse { ok: true, closed: true });
    }
    match take_in_order(state, &job_id, &post)? {
        Taken::Again { closed } => Ok(ChunkResponse { ok: true, closed }),
        Taken::Next(Ok((text, caller))) => relay(state, &job_id, post, text, caller).await,
        Taken::Next(Err(error)) => {
            let refusal = ResultError::UnreadableChunk(error.to_string());
            let evidence = json!({"kind": kind.to_string(), "error": error.to_string()});
            refuse(state, node, &job_id, TamperKind::UnreadableChunk, evidence, refusal).await?;
            Ok(ChunkResponse { ok: false, closed: true })
        }
    }
}

/// A chunk checked for order against its live job.
enum Taken {
    /// The chunk just taken, posted again (its answer was lost): already relayed, not again.
    Again {
        /// The caller left.
        closed: bool,
    },
    /// The next chunk, opened (its text when the grid sealed the request) with the caller's
    /// channel; or why it could not be opened.
    Next(Result<(Option<String>, mpsc::Sender<JobEvent>), StreamError>),
}

/// Checks `post` is the job's next chunk, opens it and advances the job, under one lock, so
/// that two posts of one chunk cannot both be relayed.
fn take_in_order(state: &AppState, job_id: &JobId, post: &StreamChunkPost) -> Result<Taken, ResultError> {
    let mut jobs = state.jobs().lock();
    let job = jobs.get_mut(job_id).ok_or(ResultError::Finished)?;
    let signature = &post.signature.result_envelope_signature;
    if post.seq + 1 == job.next_seq && job.last_chunk_signature.as_ref() == Some(signature) {
        return Ok(Taken::Again { closed: job.events.is_closed() });
    }
    if post.seq != job.next_seq {
        return Err(ResultError::OutOfOrder { expected: job.next_seq, got: post.seq });
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
    Ok(Taken::Next(opened.map(|text| (text.map(|t| String::from_utf8_lossy(&t).into_owned()), job.events.clone()))))
}

/// Hands an accepted chunk to its caller, counts what reached it, and on the final chunk ends
/// the job.
async fn relay(
    state: &AppState,
    job_id: &JobId,
    post: StreamChunkPost,
    text: Option<String>,
    caller: mpsc::Sender<JobEvent>,
) -> Result<ChunkResponse, ResultError> {
    let (is_final, seq) = (post.is_final, post.seq);
    let usage = post.usage.unwrap_or_default();
    let closed = caller.send(JobEvent::Chunk { post: Box::new(post), text }).await.is_err();
    if !closed && let Some(job) = state.jobs().lock().get_mut(job_id) {
        job.chunks_delivered += 1;
        if !is_final {
            // Never more than the job may generate, whatever the node claims.
            job.delivered_tokens = job.delivered_tokens.max(usage.completion_tokens.min(job.max_tokens));
        }
    }
    if !closed && !is_final {
        crate::jobs::record_delivery(state, job_id);
    }
    if is_final {
        finish(state, job_id, final_end(state, job_id, usage, seq, closed)).await?;
    }
    Ok(ChunkResponse { ok: true, closed })
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

/// A node's report that it failed job `id`: the job goes to another node or fails, unbilled.
pub async fn fail(state: &AppState, node: &NodeRecord, id: &str, body: FailJobRequest) -> Result<(), ResultError> {
    let (job_id, _, _) = owned_job(state, node, id)?;
    let reason: String = body.reason.chars().take(500).collect();
    let job_type = state.jobs().lock().get(&job_id).and_then(|job| JobType::from_wire(&job.pending.job_type));
    let is_embedding = job_type == Some(JobType::Embedding);
    let end = if is_embedding && body.code == Some(FailCode::InputRejected) {
        Finish::Rejected { reason: format!("the node's model cannot take the input: {reason}") }
    } else {
        Finish::Failed { reason: format!("the node failed the job: {reason}"), node_at_fault: true }
    };
    finish(state, &job_id, end).await?;
    Ok(())
}
