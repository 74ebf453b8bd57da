//! `POST /v1/chat/completions`: sealed by the caller (`enc` + `reservation_token`, relayed
//! unread) or plain OpenAI JSON (the grid seals to the node itself and answers in OpenAI's
//! shapes). Both pay from the caller's credits through escrow.

mod plain;
mod sealed;

pub(super) use self::plain::{refused, seal_for};
pub(super) use self::sealed::{
    admit_reserved, quoted_price, reserved_node, respond, sealed_bytes, unknown_reservation,
};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sgl_protocol::api::caller::SealedChatRequest;
use sgl_protocol::api::error::ErrorCode;
use sgl_protocol::api::openai::ChatCompletionRequest;

use crate::error::{ApiError, ApiResult};
use crate::jobs::{CancelOnDrop, Dispatch, JobEvent};
use crate::payments;
use crate::routes::MaybeCaller;
use crate::state::AppState;

/// The node's default completion cap (seed §1.16), used when the caller names none.
/// Dispatches a job and waits for its first event (its answer, its first chunk or its
/// failure); a caller leaving meanwhile cancels the job. Returns the job, that event and the
/// rest of its events.
pub(super) async fn run(
    state: &AppState,
    dispatch: Dispatch,
) -> ApiResult<(sgl_protocol::ids::JobId, JobEvent, tokio::sync::mpsc::Receiver<JobEvent>)> {
    let node_id = dispatch.slot.node_id();
    let (job_id, mut events) = crate::jobs::dispatch(state, dispatch).await?;
    let guard = CancelOnDrop::new(state, &job_id, node_id);
    let first = plain::first_event(state, &job_id, &mut events).await?;
    guard.disarm();
    Ok((job_id, first, events))
}

pub(crate) const DEFAULT_MAX_TOKENS: u64 = 2048;
/// The node's largest completion cap.
pub(crate) const MAX_MAX_TOKENS: u64 = 8192;

/// Routes a chat request to the sealed or the plain path. Without an API key, a plain request
/// is paid for by itself (x402): answered 402 with its price, then served when the retry
/// carries the payment.
#[utoipa::path(
    post, path = "/v1/chat/completions", tag = "caller",
    request_body(
        description = "OpenAI's chat request, or a sealed one (`enc` and `reservation_token`).",
        content(
            (sgl_protocol::api::openai::ChatCompletionRequest = "application/json"),
            (SealedChatRequest = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "The completion: OpenAI's object or a sealed reply; with `stream`, server-sent events of chunks.",
            content(
                (sgl_protocol::api::openai::ChatCompletion = "application/json"),
                (sgl_protocol::api::caller::SealedChatResponse = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 400, description = "The request is invalid; nothing was dispatched.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "An unknown or revoked API key.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "Payment required: too few credits, or the x402 (and MPP) price of this request.",
            content(
                (sgl_pay::wire::PaymentRequiredV1 = "application/json"),
                (Object = "application/problem+json"),
            )),
        (status = 404, description = "No node serves the model, or the reservation is unknown.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The reservation was already used.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 429, description = "Too many requests; see `Retry-After`.", body = sgl_protocol::api::error::ErrorBody),
        (status = 503, description = "No node could take the request now, or its node failed it.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security((), ("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn completions(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match route(state, caller, headers, body).await {
        Ok(response) | Err(Refusal::Finished(response)) => response,
        Err(Refusal::Api(error)) => error.into_response(),
    }
}

/// A request that ends before it is served.
pub(super) enum Refusal {
    /// An ordinary error.
    Api(ApiError),
    /// A complete answer, such as a 402 with payment requirements.
    Finished(Response),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

async fn route(
    state: AppState,
    caller: Option<sgl_grid_store::api_keys::ApiKeyRecord>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object").into());
    }
    if value.get("enc").is_some() {
        let request: SealedChatRequest = super::json::from_value(value)
            .map_err(|e| ApiError::bad_request(format!("invalid sealed request: {e}")))?;
        if let Some(caller) = caller {
            return Ok(sealed::completion(state, caller, request, false).await?);
        }
        if state.payments().is_none() {
            return Err(no_key().into());
        }
        let charge = sealed::charge(&state, &request, &headers).await?;
        let paid = payments::take(&state, &headers, &charge).await.map_err(Refusal::Finished)?;
        let response = match sealed::completion(state, paid.key.clone(), request, true).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        return Ok(paid.stamp(response));
    }
    let request: ChatCompletionRequest =
        super::json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid chat request: {e}")))?;
    if let Some(caller) = caller {
        return Ok(plain::completion(state, caller, request, None).await?);
    }
    if state.payments().is_none() {
        return Err(no_key().into());
    }
    let (charge, price) = plain::charge(&state, &request, &headers)?;
    let paid = payments::take(&state, &headers, &charge).await.map_err(Refusal::Finished)?;
    let key = paid.key.clone();
    let response = match plain::completion(state, key, request, Some(price)).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    Ok(paid.stamp(response))
}

/// 402 for a request without an API key on a grid that takes no per-request payments.
pub(crate) fn no_key() -> ApiError {
    ApiError::payment_required(
        ErrorCode::PaymentRequired,
        "payment required: send an API key with credits in X-API-Key or Authorization: Bearer",
    )
}

/// A job's receive timeout: the configured job timeout.
pub(crate) fn job_timeout(state: &AppState) -> std::time::Duration {
    std::time::Duration::from_secs(state.config().job_timeout_secs)
}
