//! `POST /v1/chat/completions`: sealed by the caller (`enc` + `reservation_token`, relayed
//! unread) or plain OpenAI JSON (the grid seals to the node itself and answers in OpenAI's
//! shapes). Both pay from the caller's credits through escrow.

mod plain;
mod sealed;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;
use sgl_protocol::api::caller::SealedChatRequest;
use sgl_protocol::api::openai::ChatCompletionRequest;

use crate::error::{ApiError, ApiResult};
use crate::routes::CallerAuth;
use crate::state::AppState;

/// The node's default completion cap (seed §1.16), used when the caller names none.
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 2048;
/// The node's largest completion cap.
pub(crate) const MAX_MAX_TOKENS: u64 = 8192;

/// Routes a chat request to the sealed or the plain path.
pub(super) async fn completions(State(state): State<AppState>, caller: CallerAuth, body: Bytes) -> ApiResult<Response> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if value.get("enc").is_some() {
        let request: SealedChatRequest =
            serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid sealed request: {e}")))?;
        sealed::completion(state, caller.0, request).await
    } else {
        let request: ChatCompletionRequest =
            serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid chat request: {e}")))?;
        plain::completion(state, caller.0, request).await
    }
}

/// A job's receive timeout: the configured job timeout.
pub(crate) fn job_timeout(state: &AppState) -> std::time::Duration {
    std::time::Duration::from_secs(state.config().job_timeout_secs)
}
