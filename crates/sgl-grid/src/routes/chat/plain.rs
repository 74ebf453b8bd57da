//! Plain OpenAI requests: the grid picks a node, seals the request to it (v2) as a caller
//! would, opens the signed reply, and answers in OpenAI's shapes. A node that fails before its
//! first token is replaced transparently; the caller is billed once, for what was delivered.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::Json;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::error::{ErrorBody, ErrorCode, ErrorType};
use sgl_protocol::api::inference::{InferenceRequest, JobResult, Usage};
use sgl_protocol::api::node::{CompletedResult, StreamChunkPost};
use sgl_protocol::api::openai::*;
use sgl_protocol::identity::EncryptionPublicKey;
use sgl_protocol::ids::JobId;
use sgl_protocol::seal::{ReplyOpener, SealVersion, StreamOpener, seal_request};
use tokio::sync::mpsc;

use super::{DEFAULT_MAX_TOKENS, MAX_MAX_TOKENS, job_timeout};
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Dispatch, Finish, JobEvent, dispatch, finish};
use crate::routes::discovery::no_node_for_model;
use crate::service::pricing::cost_micros;
use crate::service::schedule::{Requirement, estimate_tokens, rank};
use crate::service::secrets;
use crate::state::AppState;

/// Nodes tried before giving up on a request.
const MAX_ATTEMPTS: usize = 3;
/// Fields of OpenAI's request this grid does not serve; refused rather than silently dropped.
const UNSUPPORTED: &[&str] =
    &["tools", "tool_choice", "functions", "function_call", "top_logprobs", "audio", "modalities"];

fn validate(request: &ChatCompletionRequest) -> ApiResult<()> {
    if request.model.trim().is_empty() {
        return Err(ApiError::bad_param("model", "model is required"));
    }
    if request.messages.is_empty() || request.messages.len() > 256 {
        return Err(ApiError::bad_param("messages", "messages must hold 1 to 256 messages"));
    }
    if request.messages.iter().any(|m| m.role.trim().is_empty()) {
        return Err(ApiError::bad_param("messages", "every message needs a role"));
    }
    if request.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_param("n", "only n = 1 is served"));
    }
    if request.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return Err(ApiError::bad_param("temperature", "temperature must be between 0 and 2"));
    }
    if request.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        return Err(ApiError::bad_param("top_p", "top_p must be in (0, 1]"));
    }
    if request.effective_max_tokens() == Some(0) {
        return Err(ApiError::bad_param("max_tokens", "max_tokens must be at least 1"));
    }
    if let Some(field) = UNSUPPORTED.iter().find(|f| request.extra.get(**f).is_some_and(|v| !v.is_null())) {
        return Err(ApiError::bad_param(field, format!("{field} is not supported by this grid")));
    }
    if request.extra.get("logprobs") == Some(&Value::Bool(true)) {
        return Err(ApiError::bad_param("logprobs", "logprobs are not served"));
    }
    let format_is_text = |v: &Value| v.is_null() || v.get("type").and_then(Value::as_str) == Some("text");
    if request.extra.get("response_format").is_some_and(|v| !format_is_text(v)) {
        return Err(ApiError::bad_param("response_format", "only the text response format is served"));
    }
    Ok(())
}

/// An upper bound on the prompt's tokens: every character of every message, plus template.
fn prompt_bound(request: &ChatCompletionRequest) -> u64 {
    let text: usize = request
        .messages
        .iter()
        .map(|m| m.role.len() + m.content.as_ref().map_or(0, |c| c.joined_text().len()) + 16)
        .sum();
    text as u64 + 64
}

pub(super) async fn completion(
    state: AppState,
    caller: ApiKeyRecord,
    request: ChatCompletionRequest,
) -> ApiResult<Response> {
    validate(&request)?;
    let max_tokens = request.effective_max_tokens().unwrap_or(DEFAULT_MAX_TOKENS).min(MAX_MAX_TOKENS);
    let stream = request.stream == Some(true);
    let nonce = stream.then(|| secrets::random_b58(16));
    let inference = InferenceRequest {
        messages: Some(request.messages.clone()),
        temperature: request.temperature,
        max_tokens: Some(max_tokens),
        prompt: None,
        stream: stream.then_some(true),
        nonce: nonce.clone(),
        top_p: request.top_p,
        top_k: request.top_k,
        min_p: request.min_p,
        seed: request.seed,
        stop: request.stop.clone(),
    };
    let plaintext = zeroize::Zeroizing::new(serde_json::to_vec(&inference).map_err(|e| ApiError::internal(&e))?);
    let prompt_bytes = prompt_bound(&request);
    let wanted = Requirement { model: &request.model, max_price: None, prompt_tokens: estimate_tokens(prompt_bytes) };
    let mut tried = HashSet::new();
    let mut last_failure = None;
    for _ in 0..MAX_ATTEMPTS {
        let candidates = rank(state.config(), state.registry().snapshot(), &wanted, state.now_ms());
        let Some(candidate) = candidates.into_iter().find(|c| !tried.contains(&c.node.node_id)) else { break };
        let node = candidate.node;
        tried.insert(node.node_id);
        let encryption_key = EncryptionPublicKey::from_b58(&node.encryption_key).map_err(|e| ApiError::internal(&e))?;
        let (enc, opener) = seal_request(&encryption_key, SealVersion::V2, &plaintext, &mut OsRng)
            .map_err(|e| ApiError::internal(&e))?;
        let mut payload = json!({"enc": enc});
        if stream {
            payload["stream"] = json!(true);
        }
        let prompt_tokens = prompt_bytes.min(u64::from(node.context_size));
        let (job_id, mut events) = dispatch(
            &state,
            Dispatch {
                node_id: node.node_id,
                operator_wallet: node.wallet.clone(),
                api_key_id: caller.id,
                model: request.model.clone(),
                price: candidate.price,
                hold_micros: cost_micros(candidate.price, prompt_tokens, max_tokens).max(1),
                max_tokens,
                stream,
                sealed_by_caller: false,
                payload,
            },
        )
        .await?;
        let first = tokio::time::timeout(job_timeout(&state), events.recv()).await;
        let reason = match first {
            Ok(Some(JobEvent::Completed(body))) if !stream => {
                return answer(&state, &request, &job_id, &opener, *body, node.model_sha256.as_deref(), max_tokens);
            }
            Ok(Some(JobEvent::Chunk(chunk))) if stream => {
                let stream_opener =
                    opener.stream(nonce.as_deref().unwrap_or_default()).map_err(|e| ApiError::internal(&e))?;
                let relay = PlainStream::new(&state, &request, &job_id, stream_opener, max_tokens);
                return Ok(relay.into_sse(*chunk, events).into_response());
            }
            Ok(Some(JobEvent::Failed { reason, .. })) => reason,
            Ok(Some(_) | None) => "the node's reply was lost".to_owned(),
            Err(_) => {
                let reason = "the node did not answer in time".to_owned();
                finish(&state, &job_id, Finish::Failed { reason: reason.clone(), node_at_fault: true }).await?;
                reason
            }
        };
        tracing::warn!(target: "sgl::events::job", job_id = %job_id, node_id = %node.node_id, %reason, "retrying on another node");
        last_failure = Some(reason);
    }
    Err(match last_failure {
        Some(reason) => ApiError::unavailable(ErrorCode::UpstreamFailed, format!("{reason}; nothing was billed")),
        None => too_long_or_no_node(&state, &request.model, wanted.prompt_tokens),
    })
}

/// Nothing was tried: either the prompt fits no node's context, or no node serves the model.
fn too_long_or_no_node(state: &AppState, model: &str, prompt_tokens: u64) -> ApiError {
    let serving = rank(state.config(), state.registry().snapshot(), &Requirement::model(model), state.now_ms());
    match serving.iter().map(|c| c.node.context_size).max() {
        Some(largest) if u64::from(largest) <= prompt_tokens => ApiError::bad_param(
            "messages",
            format!(
                "the prompt (about {prompt_tokens} tokens) does not fit the context of any node serving {model} (largest: {largest})"
            ),
        ),
        _ => no_node_for_model(state, model),
    }
}

fn answer(
    state: &AppState,
    request: &ChatCompletionRequest,
    job_id: &JobId,
    opener: &ReplyOpener,
    body: sgl_protocol::api::node::CompleteJobRequest,
    model_sha256: Option<&str>,
    max_tokens: u64,
) -> ApiResult<Response> {
    let CompletedResult::Sealed { sealed_result } = body.result else {
        return Err(ApiError::unavailable(ErrorCode::UpstreamFailed, "the node answered a sealed job in plain"));
    };
    let plaintext = opener.open(&sealed_result).map_err(|e| ApiError::internal(&e))?;
    let result: JobResult = serde_json::from_slice(&plaintext).map_err(|e| ApiError::internal(&e))?;
    let usage = body.usage.unwrap_or(result.usage);
    let finish_reason = if usage.completion_tokens >= max_tokens { FinishReason::Length } else { FinishReason::Stop };
    Ok(Json(ChatCompletion {
        id: format!("chatcmpl-{job_id}"),
        object: "chat.completion".into(),
        created: u64::try_from(state.now_ms() / 1000).unwrap_or(0),
        model: request.model.clone(),
        choices: vec![ChatChoice {
            index: 0,
            message: AssistantMessage { role: "assistant".into(), content: Some(result.content) },
            finish_reason: Some(finish_reason),
            logprobs: None,
        }],
        usage: Some(usage),
        system_fingerprint: model_sha256.map(|hash| format!("gguf-{}", &hash[..hash.len().min(12)])),
    })
    .into_response())
}

/// Turns a sealed stream into OpenAI `chat.completion.chunk` events.
struct PlainStream {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    max_tokens: u64,
    opener: StreamOpener,
    sent_role: bool,
}

enum Step {
    Chunk(Box<StreamChunkPost>),
    Done,
}

impl PlainStream {
    fn new(
        state: &AppState,
        request: &ChatCompletionRequest,
        job_id: &JobId,
        opener: StreamOpener,
        max_tokens: u64,
    ) -> Self {
        Self {
            id: format!("chatcmpl-{job_id}"),
            model: request.model.clone(),
            created: u64::try_from(state.now_ms() / 1000).unwrap_or(0),
            include_usage: request.stream_options.is_some_and(|o| o.include_usage),
            max_tokens,
            opener,
            sent_role: false,
        }
    }

    fn chunk(&self, delta: ChunkDelta, finish_reason: Option<FinishReason>, usage: Option<Usage>) -> Event {
        let choices = if usage.is_some() {
            Vec::new()
        } else {
            vec![ChunkChoice { index: 0, delta, finish_reason, logprobs: None }]
        };
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        };
        Event::default().data(serde_json::to_string(&chunk).unwrap_or_default())
    }

    /// The events for one verified chunk: its text, and after the final chunk the finish
    /// reason, the usage (when asked for) and `[DONE]`.
    fn events_for(&mut self, post: &StreamChunkPost) -> Result<Vec<Event>, String> {
        let eph = post.ephemeral_public_key.as_deref();
        let text = self
            .opener
            .open_chunk(post.seq, &post.ciphertext, eph, post.is_final)
            .map_err(|e| format!("a stream chunk failed to open: {e}"))?;
        let mut events = Vec::new();
        if !text.is_empty() {
            let role = (!self.sent_role).then(|| "assistant".to_owned());
            self.sent_role = true;
            let content = String::from_utf8_lossy(&text).into_owned();
            events.push(self.chunk(ChunkDelta { role, content: Some(content) }, None, None));
        }
        if post.is_final {
            let usage = post.usage.unwrap_or_default();
            let reason =
                if usage.completion_tokens >= self.max_tokens { FinishReason::Length } else { FinishReason::Stop };
            events.push(self.chunk(ChunkDelta::default(), Some(reason), None));
            if self.include_usage {
                events.push(self.chunk(ChunkDelta::default(), None, Some(usage)));
            }
            events.push(Event::default().data("[DONE]"));
        }
        Ok(events)
    }

    fn into_sse(
        self,
        first: StreamChunkPost,
        events: mpsc::Receiver<JobEvent>,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
        let start = (self, Some(Step::Chunk(Box::new(first))), Some(events));
        let stream = stream::unfold(start, |(mut relay, step, events)| async move {
            let mut events = events?;
            let step = match step {
                Some(step) => step,
                None => match events.recv().await {
                    Some(JobEvent::Chunk(post)) => Step::Chunk(post),
                    Some(JobEvent::Failed { reason, .. }) => {
                        return Some((vec![error_event(&reason)], (relay, None, None)));
                    }
                    Some(JobEvent::Completed(_)) | None => {
                        let reason = "the stream ended before its final chunk";
                        return Some((vec![error_event(reason)], (relay, None, None)));
                    }
                },
            };
            match step {
                Step::Done => None,
                Step::Chunk(post) => match relay.events_for(&post) {
                    Ok(batch) if post.is_final => Some((batch, (relay, Some(Step::Done), Some(events)))),
                    Ok(batch) => Some((batch, (relay, None, Some(events)))),
                    Err(reason) => Some((vec![error_event(&reason)], (relay, None, None))),
                },
            }
        });
        let flat = futures_util::StreamExt::flat_map(stream, |batch| stream::iter(batch.into_iter().map(Ok)));
        Sse::new(flat).keep_alive(KeepAlive::default())
    }
}

/// A mid-stream failure in the shape OpenAI's SDKs raise: `data: {"error": {...}}`, no `[DONE]`.
fn error_event(reason: &str) -> Event {
    let body = ErrorBody::new(ErrorType::ServiceUnavailableError, ErrorCode::UpstreamFailed, reason);
    Event::default().data(serde_json::to_string(&body).unwrap_or_default())
}
