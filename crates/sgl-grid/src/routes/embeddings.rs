//! `POST /v1/embeddings` (`docs/protocol.md` §15): OpenAI's embeddings, served by nodes'
//! embedding models as sealed `embedding` jobs. A plain request is sealed to the chosen node by
//! the grid, which opens and checks the signed answer and replies in OpenAI's shapes; a
//! caller-sealed one (`enc` and a reservation made with `job_type: "embedding"`) is relayed
//! unread, like a sealed chat. Billed per input token at the model's input price, from credits
//! or per request (x402, MPP).

mod sealed;

use std::collections::HashSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::caller::SealedChatRequest;
use sgl_protocol::api::embeddings::{EmbeddingJobRequest, EmbeddingList, EmbeddingModel, EmbeddingRequest};
use sgl_protocol::api::error::ErrorCode;
use sgl_protocol::api::node::JobType;

use super::MaybeCaller;
use super::chat::{Refusal, no_key, refused, run, seal_for};
use crate::admission::{self, Want};
use crate::config::ReferencePrice;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Dispatch, EmbeddingShape, JobEvent, Opened};
use crate::payments::{self, Charge};
use crate::registry::LiveNode;
use crate::service::embeddings::EmbeddingJob;
use crate::service::pricing::cost_micros;
use crate::service::schedule::Candidate;
use crate::state::AppState;

/// Nodes tried before giving up on a request.
const MAX_ATTEMPTS: usize = 3;

/// Embeds one text or several.
#[utoipa::path(
    post, path = "/v1/embeddings", tag = "caller",
    request_body(
        description = "OpenAI's embeddings request, or a sealed one (`enc` and `reservation_token` from a reservation with `job_type: embedding`).",
        content(
            (EmbeddingRequest = "application/json"),
            (SealedChatRequest = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "The embeddings in OpenAI's shape, or the node's sealed, signed reply.",
            content(
                (EmbeddingList = "application/json"),
                (sgl_protocol::api::caller::SealedChatResponse = "application/json"),
            )),
        (status = 400, description = "The request is invalid (token arrays, an empty or too long input, `dimensions` the model does not make, a chat model); nothing was billed.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "An unknown or revoked API key.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "Payment required: too few credits, or the x402 (and MPP) price of this request.",
            content(
                (sgl_pay::wire::PaymentRequiredV1 = "application/json"),
                (Object = "application/problem+json"),
            )),
        (status = 404, description = "No node serves the model, or the reservation is unknown.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 429, description = "Too many requests; see `Retry-After`.", body = sgl_protocol::api::error::ErrorBody),
        (status = 503, description = "No node could take the request now, or its node failed it; nothing was billed.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security((), ("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn embeddings(
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

async fn route(
    state: AppState,
    caller: Option<ApiKeyRecord>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object").into());
    }
    if value.get("enc").is_some() {
        return sealed::route(state, caller, headers, value).await;
    }
    let request: EmbeddingRequest = super::json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("invalid embeddings request: {e}")))?;
    let job = check(&state, request)?;
    if let Some(caller) = caller {
        return Ok(Json(serve(&state, &caller, &job, None).await?).into_response());
    }
    if state.payments().is_none() {
        return Err(no_key().into());
    }
    let price = state.config().reference_price(&job.model);
    let micros = cost_micros(price, job.token_bound, 0).max(1);
    let description = format!("Embeddings of {} inputs with {}", job.inputs.len(), job.model);
    let charge = Charge::new(micros, &headers, "/v1/embeddings", &description);
    let paid = payments::take(&state, &headers, &charge).await.map_err(Refusal::Finished)?;
    let response = match serve(&state, &paid.key, &job, Some(price)).await {
        Ok(list) => Json(list).into_response(),
        Err(error) => error.into_response(),
    };
    Ok(paid.stamp(response))
}

/// The request checked against the embedding models live nodes announce now.
fn check(state: &AppState, request: EmbeddingRequest) -> ApiResult<EmbeddingJob> {
    let (now, timeout_ms) = (state.now_ms(), state.config().node_timeout_ms());
    let eligible: Vec<LiveNode> =
        state.registry().snapshot().into_iter().filter(|node| node.is_eligible(now, timeout_ms)).collect();
    let announced: Vec<EmbeddingModel> =
        eligible.iter().filter_map(|node| node.embedding_model(&request.model)).cloned().collect();
    let is_chat_model = |model: &str| eligible.iter().any(|node| node.serves(JobType::Inference, model));
    Ok(EmbeddingJob::check(request, &announced, is_chat_model)?)
}

/// Serves `job` from `caller`'s credits on nodes no dearer than `price_cap` when given: a node
/// that fails is replaced, up to [`MAX_ATTEMPTS`]; one that cannot take the input ends it.
async fn serve(
    state: &AppState,
    caller: &ApiKeyRecord,
    job: &EmbeddingJob,
    price_cap: Option<ReferencePrice>,
) -> ApiResult<EmbeddingList> {
    let plaintext = zeroize::Zeroizing::new(
        serde_json::to_vec(&EmbeddingJobRequest { input: job.inputs.clone() }).map_err(|e| ApiError::internal(&e))?,
    );
    let mut tried = HashSet::new();
    let mut last_failure = None;
    for _ in 0..MAX_ATTEMPTS {
        let tried_now = tried.clone();
        let usable = move |node: &LiveNode, price: ReferencePrice| {
            !tried_now.contains(&node.node_id) && price_cap.is_none_or(|cap| price.input_per_m <= cap.input_per_m)
        };
        let want = Want { usable: Box::new(usable), ..Want::embedding(&job.model) };
        let (candidate, slot) = match admission::admit(state, caller.id, want).await {
            Ok(claimed) => claimed,
            Err(admission::Refusal::NoNode) if last_failure.is_some() => break,
            Err(admission::Refusal::NoNode) => {
                let message = format!("no node serving {} can take this request now (at its price)", job.model);
                return Err(ApiError::unavailable(ErrorCode::NoCapacity, message));
            }
            Err(refusal) => return Err(refused(state, &job.model, 0, refusal)),
        };
        tried.insert(candidate.node.node_id);
        match attempt(state, caller, job, &plaintext, candidate, slot).await? {
            Attempt::Answered(list) => return Ok(list),
            Attempt::Failed(reason) => last_failure = Some(reason),
        }
    }
    let reason = last_failure.unwrap_or_else(|| "no node answered".to_owned());
    Err(ApiError::unavailable(ErrorCode::UpstreamFailed, format!("{reason}; nothing was billed")))
}

/// How one node's try went.
enum Attempt {
    /// It answered, checked.
    Answered(EmbeddingList),
    /// It failed, for this reason: another node may be tried.
    Failed(String),
}

/// One node's try.
async fn attempt(
    state: &AppState,
    caller: &ApiKeyRecord,
    job: &EmbeddingJob,
    plaintext: &[u8],
    Candidate { node, price, .. }: Candidate,
    slot: admission::Slot,
) -> ApiResult<Attempt> {
    let dimensions = node.embedding_model(&job.model).map_or(0, |model| model.dimensions as usize);
    let (payload, mut opener) = seal_for(&node, plaintext, None)?;
    opener.embeddings = Some(EmbeddingShape { inputs: job.inputs.len(), dimensions });
    let dispatch = Dispatch {
        slot,
        operator_wallet: node.wallet.clone(),
        api_key_id: caller.id,
        job_type: JobType::Embedding,
        model: job.model.clone(),
        price,
        hold_micros: cost_micros(price, job.token_bound, 0).max(1),
        max_tokens: 0,
        stream: false,
        opener: Some(opener),
        payload,
    };
    let (job_id, first, _) = run(state, dispatch).await?;
    let reason = match first {
        JobEvent::Completed { opened: Some(Opened::Embeddings { vectors, result }), .. } => {
            return Ok(Attempt::Answered(job.answer(vectors, result)));
        }
        JobEvent::Failed { reason, input_rejected: true, .. } => return Err(ApiError::bad_param("input", reason)),
        JobEvent::Failed { reason, .. } => reason,
        JobEvent::Completed { .. } | JobEvent::Chunk { .. } => "the node's reply was not readable".to_owned(),
    };
    tracing::warn!(target: "sgl::events::job", job_id = %job_id, node_id = %node.node_id, %reason, "retrying on another node");
    Ok(Attempt::Failed(reason))
}
