//! Caller-sealed embeddings: the texts are sealed by the caller to the reserved node's key (a
//! reservation made with `job_type: "embedding"`); the grid checks the reservation and the
//! payment, forwards `enc` untouched and relays the node's sealed, signed reply with everything
//! the caller needs to verify it. It never reads the texts or the vectors.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::caller::SealedChatRequest;
use sgl_protocol::api::error::ErrorCode;
use sgl_protocol::api::node::JobType;

use crate::error::{ApiError, ApiResult};
use crate::jobs::{Dispatch, JobEvent};
use crate::payments::{self, Charge};
use crate::registry::LiveNode;
use crate::routes::chat::{
    Refusal, admit_reserved, no_key, quoted_price, reserved_node, respond, run, sealed_bytes, unknown_reservation,
};
use crate::service::pricing::cost_micros;
use crate::state::{AppState, Reservation};

/// A sealed embeddings request: from `caller`'s credits, or paid for by itself.
pub(super) async fn route(
    state: AppState,
    caller: Option<ApiKeyRecord>,
    headers: HeaderMap,
    value: Value,
) -> Result<Response, Refusal> {
    let request: SealedChatRequest = crate::routes::json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("invalid sealed request: {e}")))?;
    if request.stream == Some(true) {
        return Err(ApiError::bad_param("stream", "embeddings are answered whole; leave stream out").into());
    }
    if let Some(caller) = caller {
        return Ok(serve(state, caller, request, false).await?);
    }
    if state.payments().is_none() {
        return Err(no_key().into());
    }
    let charge = charge(&state, &request, &headers).await?;
    let paid = payments::take(&state, &headers, &charge).await.map_err(Refusal::Finished)?;
    let response = match serve(state, paid.key.clone(), request, true).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    Ok(paid.stamp(response))
}

/// The reserved node, if it still serves the reservation's model as an embedding model, and a
/// bound on the sealed texts' tokens: their plaintext bytes (every text's JSON quotes and comma
/// outweigh its two special tokens).
fn bound(state: &AppState, reservation: &Reservation, request: &SealedChatRequest) -> ApiResult<(LiveNode, u64)> {
    let sealed_bytes = sealed_bytes(&request.enc)?;
    let node = reserved_node(state, reservation, JobType::Embedding)?;
    Ok((node, sealed_bytes.max(1)))
}

/// What a sealed request without an API key pays up front: the reserved price for the bound.
async fn charge(state: &AppState, request: &SealedChatRequest, headers: &HeaderMap) -> ApiResult<Charge> {
    let token = request.reservation_token.as_str();
    let reservation = state.reservations().peek(token, None, state.now_ms()).await?.ok_or_else(unknown_reservation)?;
    let (_, bound) = bound(state, &reservation, request)?;
    let micros = cost_micros(reservation.price, bound, 0).max(1);
    let description = format!("Sealed embeddings with {}", reservation.model);
    Ok(Charge::new(micros, headers, "/v1/embeddings", &description))
}

/// Serves a sealed request from `caller`'s credits; `paid` as in the sealed chat.
async fn serve(state: AppState, caller: ApiKeyRecord, request: SealedChatRequest, paid: bool) -> ApiResult<Response> {
    let owner = (!paid).then_some(caller.id);
    let token = request.reservation_token.as_str();
    let reservation = state.reservations().take(token, owner, state.now_ms()).await?.ok_or_else(unknown_reservation)?;
    let (_, bound) = bound(&state, &reservation, &request)?;
    let (node, slot) = admit_reserved(&state, caller.id, &reservation, JobType::Embedding).await?;
    let price = quoted_price(&state, &node, &reservation);
    let dispatch = Dispatch {
        slot,
        operator_wallet: node.wallet.clone(),
        api_key_id: caller.id,
        job_type: JobType::Embedding,
        model: reservation.model,
        price,
        hold_micros: cost_micros(price, bound, 0).max(1),
        max_tokens: 0,
        stream: false,
        opener: None,
        payload: json!({"enc": request.enc}),
    };
    let (job_id, first, _) = run(&state, dispatch).await?;
    match first {
        JobEvent::Completed { body, .. } => respond(&state, job_id, node.node_id, *body),
        JobEvent::Failed { reason, input_rejected: true, .. } => Err(ApiError::bad_param("enc", reason)),
        JobEvent::Failed { reason, .. } => Err(ApiError::unavailable(
            ErrorCode::UpstreamFailed,
            format!("{reason}; nothing was billed, reserve again and retry"),
        )),
        JobEvent::Chunk { .. } => Err(ApiError::internal(&"a stream chunk reached a whole embeddings answer")),
    }
}
