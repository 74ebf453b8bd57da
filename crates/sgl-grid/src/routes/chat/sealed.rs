//! Caller-sealed completions: the grid checks the reservation and credits, forwards `enc`
//! untouched, and relays the node's sealed, signed reply (or stream chunks as SSE) together
//! with everything the caller needs to verify the node's signature.

use std::convert::Infallible;

use axum::Json;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::caller::{SSE_EVENT_ERROR, SealedChatRequest, SealedChatResponse, SealedStreamEvent};
use sgl_protocol::api::error::{ErrorBody, ErrorCode, ErrorType};
use sgl_protocol::api::node::CompletedResult;
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::seal::{MAX_CIPHERTEXT_B58_CHARS, SealVersion};
use tokio::sync::mpsc;

use super::{DEFAULT_MAX_TOKENS, MAX_MAX_TOKENS, job_timeout};
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Dispatch, Finish, JobEvent, dispatch, finish};
use crate::service::pricing::cost_micros;
use crate::service::schedule::{effective_price, estimate_tokens};
use crate::state::AppState;

pub(super) async fn completion(
    state: AppState,
    caller: ApiKeyRecord,
    request: SealedChatRequest,
) -> ApiResult<Response> {
    let now = state.now_ms();
    let reservation =
        state.reservations().remove(request.reservation_token.as_str()).filter(|r| r.expires_at_ms > now).ok_or_else(
            || {
                ApiError::bad_param(
                    "reservation_token",
                    "unknown, used or expired reservation_token; POST /v1/reserve first",
                )
            },
        )?;
    if request.enc.ciphertext.len() > MAX_CIPHERTEXT_B58_CHARS {
        return Err(ApiError::bad_param("enc", "sealed request exceeds 1 MiB of base58"));
    }
    SealVersion::from_tag(request.enc.algorithm.as_deref()).map_err(|e| ApiError::bad_param("enc", e.to_string()))?;
    let timeout_ms = i64::try_from(state.config().node_timeout_secs).unwrap_or(i64::MAX).saturating_mul(1000);
    let node = state
        .registry()
        .get(&reservation.node_id)
        .filter(|node| node.can_serve(&reservation.model, now, timeout_ms))
        .ok_or_else(|| {
            ApiError::unavailable(ErrorCode::NoCapacity, "the reserved node is no longer available; reserve again")
        })?;
    // Base58 carries about 0.73 bytes per character; the nonce and tag take 40 bytes.
    let sealed_bytes = (request.enc.ciphertext.len() as u64 * 73 / 100).saturating_sub(40);
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
    let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).clamp(1, MAX_MAX_TOKENS);
    // The grid cannot count sealed prompt tokens; a token is at least one byte, and base58 is
    // about 1.37 characters per byte, so this bounds the prompt from above.
    let prompt_bound = (request.enc.ciphertext.len() as u64 * 3 / 4).min(u64::from(node.context_size));
    let (price, _) = effective_price(state.config(), &node, &reservation.model);
    let stream = request.stream == Some(true);
    let mut payload = json!({"enc": request.enc});
    if stream {
        payload["stream"] = json!(true);
    }
    let (job_id, mut events) = dispatch(
        &state,
        Dispatch {
            node_id: node.node_id,
            operator_wallet: node.wallet.clone(),
            api_key_id: caller.id,
            model: reservation.model,
            price,
            hold_micros: cost_micros(price, prompt_bound, max_tokens).max(1),
            max_tokens,
            stream,
            sealed_by_caller: true,
            payload,
        },
    )
    .await?;
    if stream {
        return Ok(sse(job_id, node.node_id, events).into_response());
    }
    match tokio::time::timeout(job_timeout(&state), events.recv()).await {
        Ok(Some(JobEvent::Completed(body))) => {
            let CompletedResult::Sealed { sealed_result } = body.result else {
                return Err(ApiError::unavailable(
                    ErrorCode::UpstreamFailed,
                    "the node answered a sealed request in plain",
                ));
            };
            Ok(Json(SealedChatResponse {
                id: job_id,
                created: Some(u64::try_from(state.now_ms() / 1000).unwrap_or(0)),
                sealed_result,
                usage: body.usage,
                node_id: Some(node.node_id),
                result_envelope_signature: Some(body.signature.result_envelope_signature),
                result_envelope_version: Some(body.signature.result_envelope_version),
                model_sha256: body.signature.model_sha256,
                proof_of_execution: body.signature.proof_of_execution,
            })
            .into_response())
        }
        Ok(Some(JobEvent::Failed { reason, .. })) => Err(retryable(&reason)),
        Ok(Some(JobEvent::Chunk(_)) | None) => Err(retryable("the node's reply was lost")),
        Err(_) => {
            let reason = "the node did not answer in time".to_owned();
            finish(&state, &job_id, Finish::Failed { reason: reason.clone(), node_at_fault: true }).await?;
            Err(retryable(&reason))
        }
    }
}

fn retryable(reason: &str) -> ApiError {
    ApiError::unavailable(ErrorCode::UpstreamFailed, format!("{reason}; nothing was billed, reserve again and retry"))
}

/// Relays verified chunks as `data: {seq, ct, eph, final, sig, …}` until the final one; a
/// failure ends the stream with `event: error`, never with a fake final chunk.
fn sse(
    job_id: JobId,
    node_id: NodeId,
    events: mpsc::Receiver<JobEvent>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = stream::unfold(Some(events), move |events| {
        let job_id = job_id.clone();
        async move {
            let mut events = events?;
            let event = match events.recv().await {
                Some(JobEvent::Chunk(post)) => {
                    let is_final = post.is_final;
                    let relayed = SealedStreamEvent {
                        seq: post.seq,
                        ct: post.ciphertext,
                        eph: post.ephemeral_public_key,
                        is_final,
                        sig: Some(post.signature.result_envelope_signature),
                        sig_version: Some(post.signature.result_envelope_version),
                        job_id: Some(job_id),
                        node_id: Some(node_id),
                        usage: post.usage,
                        model_sha256: post.signature.model_sha256,
                        proof_of_execution: post.signature.proof_of_execution,
                    };
                    let data = serde_json::to_string(&relayed).unwrap_or_default();
                    return Some((Ok(Event::default().data(data)), (!is_final).then_some(events)));
                }
                Some(JobEvent::Failed { reason, .. }) => reason,
                Some(JobEvent::Completed(_)) | None => "the stream ended before its final chunk".to_owned(),
            };
            let body = ErrorBody::new(ErrorType::ServiceUnavailableError, ErrorCode::UpstreamFailed, event);
            let data = serde_json::to_string(&body).unwrap_or_default();
            Some((Ok(Event::default().event(SSE_EVENT_ERROR).data(data)), None))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
