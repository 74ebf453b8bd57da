//! Caller-sealed completions: the grid checks the reservation and credits, forwards `enc`
//! untouched, and relays the node's sealed, signed reply (or stream chunks as SSE) together
//! with everything the caller needs to verify the node's signature.

use std::convert::Infallible;

use axum::Json;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde_json::json;
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::caller::{SSE_EVENT_ERROR, SealedChatRequest, SealedChatResponse, SealedStreamEvent};
use sgl_protocol::api::error::{ErrorBody, ErrorCode, ErrorType};
use sgl_protocol::api::node::{CompleteJobRequest, CompletedResult, JobType, StreamChunkPost};
use sgl_protocol::api::sealed::SealedInput;
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::seal::{MAX_CIPHERTEXT_B58_CHARS, SealVersion};
use tokio::sync::mpsc;

use super::MAX_MAX_TOKENS;
use crate::admission::{self, Refusal, Slot, Want};
use crate::config::ReferencePrice;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Dispatch, JobEvent};
use crate::payments::Charge;
use crate::registry::LiveNode;
use crate::service::pricing::cost_micros;
use crate::service::schedule::Candidate;
use crate::service::schedule::{effective_price, estimate_tokens};
use crate::state::{AppState, Reservation};

/// What a sealed request without an API key pays up front: the reserved price for a bound on
/// its sealed prompt and its cleartext `max_tokens` (the node's largest completion when absent),
/// which the dispatch then caps generation at (seed S3). The reservation is only looked at.
pub(super) async fn charge(
    state: &AppState,
    request: &SealedChatRequest,
    headers: &axum::http::HeaderMap,
) -> ApiResult<Charge> {
    let token = request.reservation_token.as_str();
    let reservation = state.reservations().peek(token, None, state.now_ms()).await?.ok_or_else(unknown_reservation)?;
    let (prompt_bound, max_tokens) = bounds(state, &reservation, request)?.1;
    let micros = cost_micros(reservation.price, prompt_bound, max_tokens);
    let description = format!("Sealed chat completion with {}, up to {max_tokens} tokens", reservation.model);
    Ok(Charge::new(micros, headers, "/v1/chat/completions", &description))
}

fn gone() -> ApiError {
    ApiError::unavailable(ErrorCode::NoCapacity, "the reserved node is no longer available; reserve again")
}

pub(crate) fn unknown_reservation() -> ApiError {
    ApiError::bad_param("reservation_token", "unknown, used or expired reservation_token; POST /v1/reserve first")
}

/// The size of a sealed request's plaintext, estimated from its base58 ciphertext (about 0.73
/// bytes per character, less the nonce and tag's 40 bytes), once its size and version pass.
pub(crate) fn sealed_bytes(enc: &SealedInput) -> ApiResult<u64> {
    if enc.ciphertext.len() > MAX_CIPHERTEXT_B58_CHARS {
        return Err(ApiError::bad_param("enc", "sealed request exceeds 1 MiB of base58"));
    }
    SealVersion::from_tag(enc.algorithm.as_deref()).map_err(|e| ApiError::bad_param("enc", e.to_string()))?;
    Ok((enc.ciphertext.len() as u64 * 73 / 100).saturating_sub(40))
}

/// The reservation's node, if it may still serve the reservation's model for `job_type` (its
/// slots aside). A reservation made for the other job type is the caller's 400.
pub(crate) fn reserved_node(state: &AppState, reservation: &Reservation, job_type: JobType) -> ApiResult<LiveNode> {
    let (now, timeout_ms) = (state.now_ms(), state.config().node_timeout_ms());
    let node = state.registry().get(&reservation.node_id).ok_or_else(gone)?;
    if node.may_serve(job_type, &reservation.model, now, timeout_ms) {
        return Ok(node);
    }
    let (other, path) = match job_type {
        JobType::Inference => (JobType::Embedding, "/v1/embeddings"),
        JobType::Embedding => (JobType::Inference, "/v1/chat/completions"),
    };
    Err(if node.serves(other, &reservation.model) {
        let message = format!("this reservation is for {} jobs; post it to {path}", other.as_str());
        ApiError::bad_param("reservation_token", message)
    } else {
        gone()
    })
}

/// The reserved node, if it can still serve (its slots aside), and the request's (prompt bound,
/// max tokens).
fn bounds(
    state: &AppState,
    reservation: &Reservation,
    request: &SealedChatRequest,
) -> ApiResult<(crate::registry::LiveNode, (u64, u64))> {
    let sealed_bytes = sealed_bytes(&request.enc)?;
    let node = reserved_node(state, reservation, JobType::Inference)?;
    if estimate_tokens(sealed_bytes) >= u64::from(node.context_size) {
        return Err(ApiError::bad_param(
            "enc",
            format!(
                "the sealed prompt (about {} tokens) does not fit the reserved node's context of {}",
                estimate_tokens(sealed_bytes),
                node.context_size
            ),
        ));
    }
    let prompt_bound = sealed_bytes.min(u64::from(node.context_size));
    super::plain::validate_limits(request.max_tokens, None)?;
    let max_tokens = request.max_tokens.unwrap_or(MAX_MAX_TOKENS);
    Ok((node, (prompt_bound, max_tokens)))
}

/// Serves a sealed request from `caller`'s credits. `paid` says the request paid for itself,
/// on a reservation made without a key; otherwise the reservation must be `caller`'s.
pub(super) async fn completion(
    state: AppState,
    caller: ApiKeyRecord,
    request: SealedChatRequest,
    paid: bool,
) -> ApiResult<Response> {
    let owner = (!paid).then_some(caller.id);
    let token = request.reservation_token.as_str();
    let reservation = state.reservations().take(token, owner, state.now_ms()).await?.ok_or_else(unknown_reservation)?;
    let (_, (prompt_bound, max_tokens)) = bounds(&state, &reservation, &request)?;
    let (node, slot) = admit_reserved(&state, caller.id, &reservation, JobType::Inference).await?;
    let price = quoted_price(&state, &node, &reservation);
    let stream = request.stream == Some(true);
    let dispatch = Dispatch {
        slot,
        operator_wallet: node.wallet.clone(),
        api_key_id: caller.id,
        job_type: JobType::Inference,
        model: reservation.model,
        price,
        hold_micros: cost_micros(price, prompt_bound, max_tokens).max(1),
        max_tokens,
        stream,
        opener: None,
        payload: payload(&request, max_tokens, stream),
    };
    let (job_id, first, events) = super::run(&state, dispatch).await?;
    match first {
        // A node may answer a stream request whole (seed §3.1); callers accept JSON then (§4.5).
        JobEvent::Completed { body, .. } => respond(&state, job_id, node.node_id, *body),
        JobEvent::Chunk { post, .. } => Ok(sse(job_id, node.node_id, *post, events).into_response()),
        JobEvent::Failed { reason, .. } => Err(ApiError::unavailable(
            ErrorCode::UpstreamFailed,
            format!("{reason}; nothing was billed, reserve again and retry"),
        )),
    }
}

/// The reservation keeps its node: the request waits in line for that node's slot.
pub(crate) async fn admit_reserved(
    state: &AppState,
    caller: i64,
    reservation: &Reservation,
    job_type: JobType,
) -> ApiResult<(LiveNode, Slot)> {
    let want = Want { node: Some(reservation.node_id), job_type, ..Want::model(&reservation.model) };
    let (Candidate { node, .. }, slot) =
        admission::admit(state, caller, want).await.map_err(|refusal| match refusal {
            Refusal::NoNode => gone(),
            busy => super::plain::refused(state, &reservation.model, 0, busy),
        })?;
    Ok((node, slot))
}

/// The price quoted at reservation holds, unless the node has since become cheaper.
pub(crate) fn quoted_price(state: &AppState, node: &LiveNode, reservation: &Reservation) -> ReferencePrice {
    let (current, _) = effective_price(state.config(), node, &reservation.model);
    ReferencePrice {
        input_per_m: current.input_per_m.min(reservation.price.input_per_m),
        output_per_m: current.output_per_m.min(reservation.price.output_per_m),
    }
}

/// What the node is given. The hold covers the caller's cleartext `max_tokens` (the node's
/// largest completion when it is absent), and the dispatch carries it: our nodes generate at
/// most that many tokens, whatever the sealed request says (seed S3). Only the signed usage is
/// billed.
fn payload(request: &SealedChatRequest, max_tokens: u64, stream: bool) -> serde_json::Value {
    let mut payload = json!({"enc": request.enc, "max_tokens": max_tokens});
    if stream {
        payload["stream"] = json!(true);
    }
    payload
}

pub(crate) fn respond(
    state: &AppState,
    job_id: JobId,
    node_id: NodeId,
    body: CompleteJobRequest,
) -> ApiResult<Response> {
    let CompletedResult::Sealed { sealed_result } = body.result else {
        return Err(ApiError::internal(&"a plain result reached the sealed relay"));
    };
    Ok(Json(SealedChatResponse {
        id: job_id,
        created: Some(u64::try_from(state.now_ms() / 1000).unwrap_or(0)),
        sealed_result,
        usage: body.usage,
        node_id: Some(node_id),
        result_envelope_signature: Some(body.signature.result_envelope_signature),
        result_envelope_version: Some(body.signature.result_envelope_version),
        model_sha256: body.signature.model_sha256,
        proof_of_execution: body.signature.proof_of_execution,
    })
    .into_response())
}

fn relayed(job_id: &JobId, node_id: NodeId, post: StreamChunkPost) -> Event {
    let event = SealedStreamEvent {
        seq: post.seq,
        ct: post.ciphertext,
        eph: post.ephemeral_public_key,
        is_final: post.is_final,
        sig: Some(post.signature.result_envelope_signature),
        sig_version: Some(post.signature.result_envelope_version),
        job_id: Some(job_id.clone()),
        node_id: Some(node_id),
        usage: post.usage,
        model_sha256: post.signature.model_sha256,
        proof_of_execution: post.signature.proof_of_execution,
    };
    Event::default().data(serde_json::to_string(&event).unwrap_or_default())
}

fn error_event(reason: &str) -> Event {
    let body = ErrorBody::new(ErrorType::ServiceUnavailableError, ErrorCode::UpstreamFailed, reason);
    Event::default().event(SSE_EVENT_ERROR).data(serde_json::to_string(&body).unwrap_or_default())
}

/// Relays verified chunks as `data: {seq, ct, eph, final, sig, …}` until the final one; a
/// failure ends the stream with `event: error`, never with a fake final chunk.
fn sse(
    job_id: JobId,
    node_id: NodeId,
    first: StreamChunkPost,
    events: mpsc::Receiver<JobEvent>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let first_final = first.is_final;
    let head = stream::iter(vec![relayed(&job_id, node_id, first)]);
    let rest = stream::unfold((Some(events), first_final), move |(events, done)| {
        let job_id = job_id.clone();
        async move {
            if done {
                return None;
            }
            let mut events = events?;
            let (event, done) = match events.recv().await {
                Some(JobEvent::Chunk { post, .. }) => {
                    let done = post.is_final;
                    (relayed(&job_id, node_id, *post), done)
                }
                Some(JobEvent::Failed { reason, .. }) => (error_event(&reason), true),
                Some(JobEvent::Completed { .. }) | None => {
                    (error_event("the stream ended before its final chunk"), true)
                }
            };
            Some((event, (Some(events), done)))
        }
    });
    Sse::new(head.chain(rest).map(Ok)).keep_alive(KeepAlive::default())
}
