//! Plain OpenAI requests: the grid picks a node, seals the request to it (v2) as a caller
//! would, opens the signed reply, and answers in OpenAI's shapes. A node that fails before its
//! first token is replaced transparently; the caller is billed once, for what was delivered.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::error::{ErrorBody, ErrorCode, ErrorType};
use sgl_protocol::api::inference::{InferenceRequest, Usage};
use sgl_protocol::api::node::{JobType, StreamChunkPost};
use sgl_protocol::api::openai::*;
use sgl_protocol::identity::EncryptionPublicKey;
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::seal::{SealVersion, seal_request};
use tokio::sync::mpsc;

use super::{DEFAULT_MAX_TOKENS, MAX_MAX_TOKENS, job_timeout};
use crate::admission::{self, Refusal, Want};
use crate::config::ReferencePrice;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Dispatch, Finish, GridOpener, JobEvent, Opened, finish};
use crate::payments::Charge;
use crate::registry::LiveNode;
use crate::routes::discovery::no_node_for_model;
use crate::service::pricing::cost_micros;
use crate::service::schedule::{Candidate, estimate_tokens};
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
    validate_messages(&request.messages)?;
    validate_limits(request.effective_max_tokens(), request.stop.as_ref())?;
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

/// Content parts: text parts are served (joined into one string for the node), any other part
/// is refused by name rather than silently dropped.
fn validate_messages(messages: &[ChatMessage]) -> ApiResult<()> {
    for (i, message) in messages.iter().enumerate() {
        let Some(MessageContent::Parts(parts)) = &message.content else { continue };
        if let Some((j, part)) = parts.iter().enumerate().find(|(_, p)| !matches!(p, ContentPart::Text { .. })) {
            let kind = part.type_name();
            return Err(ApiError::bad_param(
                &format!("messages[{i}].content[{j}]"),
                format!("{kind} content parts are not served by this grid; send text parts or a string"),
            ));
        }
    }
    Ok(())
}

/// Most stop sequences one request may name (OpenAI's limit).
pub(super) const MAX_STOP_SEQUENCES: usize = 4;

/// `max_tokens` between 1 and the largest completion a node serves, and at most four stop
/// sequences: OpenAI's 400s rather than a silent clamp.
pub(super) fn validate_limits(max_tokens: Option<u64>, stop: Option<&StopSequences>) -> ApiResult<()> {
    match max_tokens {
        Some(0) => return Err(ApiError::bad_param("max_tokens", "max_tokens must be at least 1")),
        Some(n) if n > MAX_MAX_TOKENS => {
            return Err(ApiError::bad_param(
                "max_tokens",
                format!(
                    "max_tokens is too large: {n}; this grid's models take at most {MAX_MAX_TOKENS} completion tokens"
                ),
            ));
        }
        _ => {}
    }
    if let Some(StopSequences::Many(many)) = stop
        && many.len() > MAX_STOP_SEQUENCES
    {
        return Err(ApiError::bad_param(
            "stop",
            format!("stop holds {} sequences; at most {MAX_STOP_SEQUENCES} are allowed", many.len()),
        ));
    }
    Ok(())
}

/// The conversation as a node that has not announced content parts reads it: every content
/// as one string.
fn flattened(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    messages
        .iter()
        .map(|m| ChatMessage { content: m.content.as_ref().map(MessageContent::flattened), ..m.clone() })
        .collect()
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

/// What a request without an API key pays up front: the model's reference price for a bound on
/// its prompt and its whole `max_tokens`, so the same body is always quoted the same amount. It
/// is only served by nodes at or below that price. Refused before any payment when nothing could
/// serve it.
pub(super) fn charge(
    state: &AppState,
    request: &ChatCompletionRequest,
    headers: &axum::http::HeaderMap,
) -> ApiResult<(Charge, ReferencePrice)> {
    validate(request)?;
    let max_tokens = request.effective_max_tokens().unwrap_or(DEFAULT_MAX_TOKENS);
    let price = state.config().reference_price(&request.model);
    let prompt_bytes = prompt_bound(request);
    let prompt_tokens = estimate_tokens(prompt_bytes);
    if !admission::could_serve(state, &want(&request.model, prompt_tokens, HashSet::new(), Some(price))) {
        return Err(too_long_or_no_node(state, &request.model, prompt_tokens));
    }
    let micros = cost_micros(price, prompt_bytes, max_tokens);
    let description = format!("Chat completion with {}, up to {max_tokens} tokens", request.model);
    Ok((Charge::new(micros, headers, "/v1/chat/completions", &description), price))
}

/// Whether a node's price is at most `cap` on both sides.
fn within(price: ReferencePrice, cap: ReferencePrice) -> bool {
    price.input_per_m <= cap.input_per_m && price.output_per_m <= cap.output_per_m
}

/// What the node is asked to run: the request's messages (text parts joined) and sampling, and
/// for a stream the nonce its chunks are sealed under.
fn inference_request(request: &ChatCompletionRequest, max_tokens: u64, nonce: Option<String>) -> InferenceRequest {
    InferenceRequest {
        messages: Some(flattened(&request.messages)),
        temperature: request.temperature,
        max_tokens: Some(max_tokens),
        prompt: None,
        stream: nonce.is_some().then_some(true),
        nonce,
        top_p: request.top_p,
        top_k: request.top_k,
        min_p: request.min_p,
        seed: request.seed,
        stop: request.stop.clone(),
    }
}

/// Seals `plaintext` to `node`: the job's payload, and the grid's opener for its answer (and
/// for its stream chunks under `nonce`).
pub(crate) fn seal_for(node: &LiveNode, plaintext: &[u8], nonce: Option<&str>) -> ApiResult<(Value, GridOpener)> {
    let encryption_key = EncryptionPublicKey::from_b58(&node.encryption_key).map_err(|e| ApiError::internal(&e))?;
    let (enc, reply) =
        seal_request(&encryption_key, SealVersion::V2, plaintext, &mut OsRng).map_err(|e| ApiError::internal(&e))?;
    let stream = nonce.map(|nonce| reply.stream(nonce)).transpose().map_err(|e| ApiError::internal(&e))?;
    let mut payload = json!({"enc": enc});
    if stream.is_some() {
        payload["stream"] = json!(true);
    }
    Ok((payload, GridOpener { reply, stream, embeddings: None }))
}

/// Serves `request` from `caller`'s credits, on nodes no dearer than `price_cap` when given.
pub(super) async fn completion(
    state: AppState,
    caller: ApiKeyRecord,
    request: ChatCompletionRequest,
    price_cap: Option<ReferencePrice>,
) -> ApiResult<Response> {
    validate(&request)?;
    let job = PlainJob::new(&request)?;
    let mut tried = HashSet::new();
    let mut last_failure = None;
    for _ in 0..MAX_ATTEMPTS {
        let want = want(&request.model, job.prompt_tokens, tried.clone(), price_cap);
        let (candidate, slot) = match admission::admit(&state, caller.id, want).await {
            Ok(claimed) => claimed,
            Err(Refusal::NoNode) if last_failure.is_some() => break,
            Err(refusal) => return Err(refused(&state, &request.model, job.prompt_tokens, refusal)),
        };
        tried.insert(candidate.node.node_id);
        match attempt(&state, &caller, &request, &job, candidate, slot).await? {
            Attempt::Answered(answer) => return Ok(answer),
            Attempt::Failed(reason) => last_failure = Some(reason),
        }
    }
    let reason = last_failure.unwrap_or_else(|| "no node answered".to_owned());
    Err(ApiError::unavailable(ErrorCode::UpstreamFailed, format!("{reason}; nothing was billed")))
}

/// What every attempt of one plain request shares.
struct PlainJob {
    max_tokens: u64,
    stream: bool,
    /// The nonce stream chunks are sealed under.
    nonce: Option<String>,
    /// The node's request, sealed anew to each node tried.
    plaintext: zeroize::Zeroizing<Vec<u8>>,
    prompt_bytes: u64,
    prompt_tokens: u64,
}

impl PlainJob {
    fn new(request: &ChatCompletionRequest) -> ApiResult<Self> {
        let max_tokens = request.effective_max_tokens().unwrap_or(DEFAULT_MAX_TOKENS);
        let stream = request.stream == Some(true);
        let nonce = stream.then(|| secrets::random_b58(16));
        let inference = inference_request(request, max_tokens, nonce.clone());
        let plaintext = zeroize::Zeroizing::new(serde_json::to_vec(&inference).map_err(|e| ApiError::internal(&e))?);
        let prompt_bytes = prompt_bound(request);
        Ok(Self { max_tokens, stream, nonce, plaintext, prompt_bytes, prompt_tokens: estimate_tokens(prompt_bytes) })
    }
}

/// How one node's try at a request went.
enum Attempt {
    /// It answered (whole, or the first chunk of a stream).
    Answered(Response),
    /// It failed before any output, for this reason: another node may be tried.
    Failed(String),
}

/// One node's try at `request`.
async fn attempt(
    state: &AppState,
    caller: &ApiKeyRecord,
    request: &ChatCompletionRequest,
    job: &PlainJob,
    Candidate { node, price, .. }: Candidate,
    slot: admission::Slot,
) -> ApiResult<Attempt> {
    let (payload, opener) = seal_for(&node, &job.plaintext, job.nonce.as_deref())?;
    let prompt_tokens = job.prompt_bytes.min(u64::from(node.context_size));
    let dispatch = Dispatch {
        slot,
        operator_wallet: node.wallet.clone(),
        api_key_id: caller.id,
        job_type: JobType::Inference,
        model: request.model.clone(),
        price,
        hold_micros: cost_micros(price, prompt_tokens, job.max_tokens).max(1),
        max_tokens: job.max_tokens,
        stream: job.stream,
        opener: Some(opener),
        payload,
    };
    let (job_id, first, events) = super::run(state, dispatch).await?;
    let relay = Relay { request, max_tokens: job.max_tokens };
    let reason = match first {
        JobEvent::Completed { body, opened: Some(Opened::Chat(result)) } => {
            let usage = body.usage.unwrap_or(result.usage);
            let completion = relay.completion(state, &job_id, result.content, usage, node.model_sha256.as_deref());
            let sse = job.stream.then(|| relay.single_chunk_sse(&completion).into_response());
            return Ok(Attempt::Answered(sse.unwrap_or_else(|| Json(completion).into_response())));
        }
        JobEvent::Chunk { post, text } => {
            return Ok(Attempt::Answered(relay.sse(state, &job_id, &post, text, events).into_response()));
        }
        JobEvent::Failed { reason, .. } => reason,
        JobEvent::Completed { .. } => "the node's reply was not readable".to_owned(),
    };
    tracing::warn!(target: "sgl::events::job", job_id = %job_id, node_id = %node.node_id, %reason, "retrying on another node");
    Ok(Attempt::Failed(reason))
}

/// What a plain request needs from a node: the model, room for its prompt, a node not tried yet
/// and, for a request that paid a quote, a price no higher than the quote.
fn want(model: &str, prompt_tokens: u64, tried: HashSet<NodeId>, price_cap: Option<ReferencePrice>) -> Want {
    Want {
        prompt_tokens,
        usable: Box::new(move |node, price| {
            !tried.contains(&node.node_id) && price_cap.is_none_or(|cap| within(price, cap))
        }),
        ..Want::model(model)
    }
}

/// The error for a request admission refused.
pub(crate) fn refused(state: &AppState, model: &str, prompt_tokens: u64, refusal: Refusal) -> ApiError {
    let wait_secs = state.config().admission.wait_secs;
    match refusal {
        Refusal::NoNode => too_long_or_no_node(state, model, prompt_tokens),
        Refusal::LineFull => ApiError::unavailable(
            ErrorCode::NoCapacity,
            "every node serving this model is busy and the waiting line is full; retry shortly",
        )
        .with_retry_after(RETRY_AFTER_SECS),
        Refusal::TimedOut => ApiError::unavailable(
            ErrorCode::NoCapacity,
            format!("every node serving this model stayed busy for {wait_secs} s; retry shortly"),
        )
        .with_retry_after(RETRY_AFTER_SECS),
    }
}

/// What a busy grid's 503 asks a caller to wait before retrying.
const RETRY_AFTER_SECS: u64 = 2;

/// Waits for a job's first event. A node handed the job must show it has it (list it in a
/// heartbeat, or post for it) within the acknowledgement period, checked once a period: one
/// seen holding the job unacknowledged at two checks running is a black hole, and the job fails
/// with the node at fault (a plain request then tries another node). On the job timeout it
/// fails too. If the job finished meanwhile, its buffered result is used instead of being
/// billed and thrown away.
pub(super) async fn first_event(
    state: &AppState,
    job_id: &JobId,
    events: &mut mpsc::Receiver<JobEvent>,
) -> ApiResult<JobEvent> {
    let give_up = tokio::time::Instant::now() + job_timeout(state);
    let period = Duration::from_secs(state.config().admission.ack_timeout_secs);
    let mut unacknowledged = 0;
    let reason = loop {
        let check = (tokio::time::Instant::now() + period).min(give_up);
        if let Ok(event) = tokio::time::timeout_at(check, events.recv()).await {
            return Ok(event.unwrap_or(JobEvent::Failed {
                reason: "the node's reply was lost".into(),
                before_output: true,
                input_rejected: false,
            }));
        }
        if tokio::time::Instant::now() >= give_up {
            break "the node did not answer in time".to_owned();
        }
        let standing = state.jobs().lock().get(job_id).map(|job| (job.acked, job.delivered_at.is_some()));
        match standing {
            Some((false, true)) => unacknowledged += 1,
            Some((true, _)) => unacknowledged = 0,
            // Not handed over yet (the reaper fails it if its node went silent), or finished: its
            // event is buffered.
            _ => {}
        }
        if unacknowledged >= 2 {
            break format!("the node did not take the job within {} s", period.as_secs() * 2);
        }
    };
    let failed_now = finish(state, job_id, Finish::Failed { reason: reason.clone(), node_at_fault: true }).await?;
    match events.try_recv() {
        Ok(event) if !failed_now || !matches!(event, JobEvent::Failed { .. }) => Ok(event),
        _ => Ok(JobEvent::Failed { reason, before_output: true, input_rejected: false }),
    }
}

/// Nothing was tried: either the prompt fits no node's context, or no node serves the model.
fn too_long_or_no_node(state: &AppState, model: &str, prompt_tokens: u64) -> ApiError {
    let (now, timeout_ms) = (state.now_ms(), state.config().node_timeout_ms());
    let serving = state
        .registry()
        .snapshot()
        .into_iter()
        .filter(|node| node.may_serve(JobType::Inference, model, now, timeout_ms));
    match serving.map(|node| node.context_size).max() {
        Some(largest) if u64::from(largest) <= prompt_tokens => ApiError::bad_param(
            "messages",
            format!(
                "the prompt (about {prompt_tokens} tokens) does not fit the context of any node serving {model} (largest: {largest})"
            ),
        ),
        _ => no_node_for_model(state, JobType::Inference, model),
    }
}

/// Builds OpenAI's shapes for one request.
struct Relay<'a> {
    request: &'a ChatCompletionRequest,
    max_tokens: u64,
}

impl Relay<'_> {
    fn finish_reason(&self, usage: &Usage) -> FinishReason {
        if usage.completion_tokens >= self.max_tokens { FinishReason::Length } else { FinishReason::Stop }
    }

    fn completion(
        &self,
        state: &AppState,
        job_id: &JobId,
        content: String,
        usage: Usage,
        fingerprint: Option<&str>,
    ) -> ChatCompletion {
        ChatCompletion {
            id: format!("chatcmpl-{job_id}"),
            object: "chat.completion".into(),
            created: u64::try_from(state.now_ms() / 1000).unwrap_or(0),
            model: self.request.model.clone(),
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage { role: "assistant".into(), content: Some(content) },
                finish_reason: Some(self.finish_reason(&usage)),
                logprobs: None,
            }],
            usage: Some(usage),
            system_fingerprint: fingerprint.and_then(|hash| hash.get(..12)).map(|prefix| format!("gguf-{prefix}")),
        }
    }

    fn chunk(
        &self,
        id: &str,
        created: u64,
        delta: ChunkDelta,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
    ) -> Event {
        let choices = if usage.is_some() {
            Vec::new()
        } else {
            vec![ChunkChoice { index: 0, delta, finish_reason, logprobs: None }]
        };
        let chunk = ChatCompletionChunk {
            id: id.to_owned(),
            object: "chat.completion.chunk".into(),
            created,
            model: self.request.model.clone(),
            choices,
            usage,
        };
        Event::default().data(serde_json::to_string(&chunk).unwrap_or_default())
    }

    /// The closing events: finish reason, usage (when asked for), `[DONE]`.
    fn closing(&self, id: &str, created: u64, usage: Usage) -> Vec<Event> {
        let mut events = vec![self.chunk(id, created, ChunkDelta::default(), Some(self.finish_reason(&usage)), None)];
        if self.request.stream_options.is_some_and(|o| o.include_usage) {
            events.push(self.chunk(id, created, ChunkDelta::default(), None, Some(usage)));
        }
        events.push(Event::default().data("[DONE]"));
        events
    }

    /// A node that answered a stream with a whole result still gives the caller a stream.
    fn single_chunk_sse(
        &self,
        completion: &ChatCompletion,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
        let content = completion.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default();
        let usage = completion.usage.unwrap_or_default();
        let mut events = vec![self.chunk(
            &completion.id,
            completion.created,
            ChunkDelta { role: Some("assistant".into()), content: Some(content) },
            None,
            None,
        )];
        events.extend(self.closing(&completion.id, completion.created, usage));
        Sse::new(stream::iter(events.into_iter().map(Ok)))
    }

    /// Relays opened chunks as `chat.completion.chunk` events; a failure mid-stream ends with
    /// `data: {"error": …}` and no `[DONE]`, which OpenAI's SDKs raise as an error.
    fn sse(
        &self,
        state: &AppState,
        job_id: &JobId,
        first: &StreamChunkPost,
        first_text: Option<String>,
        events: mpsc::Receiver<JobEvent>,
    ) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
        let id = format!("chatcmpl-{job_id}");
        let created = u64::try_from(state.now_ms() / 1000).unwrap_or(0);
        // The role goes on the first chunk with text, wherever that falls.
        let mut sent_role = false;
        let mut render = {
            let request = self.request.clone();
            let max_tokens = self.max_tokens;
            move |post: &StreamChunkPost, text: Option<String>| -> Vec<Event> {
                let relay = Relay { request: &request, max_tokens };
                let mut batch = Vec::new();
                let text = text.unwrap_or_default();
                if !text.is_empty() {
                    let role = (!sent_role).then(|| "assistant".to_owned());
                    sent_role = true;
                    batch.push(relay.chunk(&id, created, ChunkDelta { role, content: Some(text) }, None, None));
                }
                if post.is_final {
                    batch.extend(relay.closing(&id, created, post.usage.unwrap_or_default()));
                }
                batch
            }
        };
        let first_batch = render(first, first_text);
        let first_final = first.is_final;
        let rest = stream::unfold((Some(events), render, first_final), |(events, mut render, done)| async move {
            if done {
                return None;
            }
            let mut events = events?;
            match events.recv().await {
                Some(JobEvent::Chunk { post, text }) => {
                    let batch = render(&post, text);
                    Some((batch, (Some(events), render, post.is_final)))
                }
                Some(JobEvent::Failed { reason, .. }) => Some((vec![error_event(&reason)], (None, render, true))),
                Some(JobEvent::Completed { .. }) | None => {
                    Some((vec![error_event("the stream ended before its final chunk")], (None, render, true)))
                }
            }
        });
        let all = stream::iter(vec![first_batch]).chain(rest);
        let flat = all.flat_map(|batch| stream::iter(batch.into_iter().map(Ok)));
        Sse::new(flat).keep_alive(KeepAlive::default())
    }
}

/// A mid-stream failure in the shape OpenAI's SDKs raise: `data: {"error": {...}}`, no `[DONE]`.
fn error_event(reason: &str) -> Event {
    let body = ErrorBody::new(ErrorType::ServiceUnavailableError, ErrorCode::UpstreamFailed, reason);
    Event::default().data(serde_json::to_string(&body).unwrap_or_default())
}
