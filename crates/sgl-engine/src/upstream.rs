//! Any OpenAI-compatible server (vLLM, Ollama, a remote llama-server) as an engine: each
//! generation is one streamed `POST {base}/v1/chat/completions`, parsed incrementally by
//! [`crate::sse`].
//!
//! Text is forwarded as soon as a delta arrives (the node batches, not the engine). Counts come
//! from the server's final `usage` chunk (`stream_options.include_usage`); a server that never
//! sends one gets prompt tokens 0 and completion tokens = the number of non-empty content
//! deltas, which is what the seed node did. EOF without `[DONE]` is a failure, never a forged
//! final event. Cancelling a [`Generation`] drops the connection, which llama-server and vLLM
//! take as an abort.
//!
//! These engines do I/O only, so they run on tokio tasks: [`UpstreamEngine::new`] and
//! [`Engine::generate`] must be called within a tokio runtime (outside one, `new` fails and
//! `generate` yields [`EngineEvent::Failed`]). Health is probed in the background every
//! [`HEALTH_INTERVAL`]: `GET {base}/health` (llama-server, vLLM), falling back to
//! `GET {base}/v1/models` (Ollama and others).

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use sgl_protocol::api::inference::Usage;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::sse::{SseEvent, SseParser};
use crate::{Engine, EngineError, EngineEvent, FinishReason, GenerateRequest, Generation};

/// Longest wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one health probe.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Time between background health probes.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// Longest silence between two reads of a stream (or before the response starts) before the
/// generation fails. Streams have no total timeout: long generations are legitimate.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Events buffered between the stream task and its consumer.
const EVENT_BUFFER: usize = 256;
/// Most bytes of an error answer read to quote it.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Most characters of upstream's error text quoted in an [`EngineError`].
const MAX_ERROR_CHARS: usize = 500;

/// Where the server is and what it serves.
#[derive(Clone)]
pub struct UpstreamOptions {
    /// The server's base URL, with or without a trailing `/v1` (`http://host:8000` and
    /// `http://host:8000/v1/` are the same server).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>`; never logged or shown by `Debug`.
    pub api_key: Option<String>,
    /// The model name sent upstream and advertised to the grid.
    pub model_name: String,
    /// Parallel generations the server is expected to run.
    pub slots: u32,
    /// Per-slot context size in tokens.
    pub context_size: u32,
    /// sha256 hex of the served GGUF; `None` when unknown, as it usually is for a remote server.
    pub model_sha256: Option<String>,
}

impl fmt::Debug for UpstreamOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamOptions")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model_name", &self.model_name)
            .field("slots", &self.slots)
            .field("context_size", &self.context_size)
            .field("model_sha256", &self.model_sha256)
            .finish()
    }
}

/// The engine cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The base URL is not an `http` or `https` URL.
    #[error("invalid upstream URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The API key holds characters an HTTP header cannot carry.
    #[error("the API key cannot be sent in an HTTP header")]
    InvalidApiKey,
    /// The HTTP client could not be built (TLS roots, for instance).
    #[error("building the HTTP client")]
    Client(#[source] reqwest::Error),
    /// Called outside a tokio runtime.
    #[error("the upstream engine must be created within a tokio runtime")]
    NoRuntime,
}

/// What every generation task needs.
struct Shared {
    client: Client,
    chat_url: String,
    health_urls: [String; 2],
    auth: Option<HeaderValue>,
    model_name: String,
    healthy: AtomicBool,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("chat_url", &self.chat_url)
            .field("api_key", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("healthy", &self.healthy)
            .finish_non_exhaustive()
    }
}

/// An OpenAI-compatible server as an [`Engine`].
#[derive(Debug)]
pub struct UpstreamEngine {
    shared: Arc<Shared>,
    slots: u32,
    context_size: u32,
    model_sha256: Option<String>,
    probe: Option<JoinHandle<()>>,
}

impl UpstreamEngine {
    /// Checks the options and starts the background health probe. Must be called within a
    /// tokio runtime. The engine reports unhealthy until the first probe succeeds; await
    /// [`UpstreamEngine::check_health`] to probe at once.
    pub fn new(options: &UpstreamOptions) -> Result<Self, UpstreamError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| UpstreamError::NoRuntime)?;
        let mut engine = Self::without_probe(options)?;
        let shared = Arc::clone(&engine.shared);
        engine.probe = Some(handle.spawn(async move {
            loop {
                let healthy = probe(&shared).await;
                shared.healthy.store(healthy, Ordering::Relaxed);
                tokio::time::sleep(HEALTH_INTERVAL).await;
            }
        }));
        Ok(engine)
    }

    /// The engine without a background probe (the llama-server engine supervises its child
    /// itself).
    pub(crate) fn without_probe(options: &UpstreamOptions) -> Result<Self, UpstreamError> {
        let root = api_root(&options.base_url)?;
        let auth = match &options.api_key {
            Some(key) => {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| UpstreamError::InvalidApiKey)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let client = Client::builder().connect_timeout(CONNECT_TIMEOUT).build().map_err(UpstreamError::Client)?;
        let shared = Shared {
            client,
            chat_url: format!("{root}/v1/chat/completions"),
            health_urls: [format!("{root}/health"), format!("{root}/v1/models")],
            auth,
            model_name: options.model_name.clone(),
            healthy: AtomicBool::new(false),
        };
        Ok(Self {
            shared: Arc::new(shared),
            slots: options.slots.max(1),
            context_size: options.context_size,
            model_sha256: options.model_sha256.clone(),
            probe: None,
        })
    }

    /// Probes the server now, records the result for [`Engine::is_healthy`] and returns it.
    pub async fn check_health(&self) -> bool {
        let healthy = probe(&self.shared).await;
        self.shared.healthy.store(healthy, Ordering::Relaxed);
        healthy
    }
}

impl Drop for UpstreamEngine {
    fn drop(&mut self) {
        if let Some(probe) = &self.probe {
            probe.abort();
        }
    }
}

impl Engine for UpstreamEngine {
    fn model_name(&self) -> &str {
        &self.shared.model_name
    }

    fn model_sha256(&self) -> Option<&str> {
        self.model_sha256.as_deref()
    }

    fn slots(&self) -> u32 {
        self.slots
    }

    fn context_size(&self) -> u32 {
        self.context_size
    }

    /// Spawns the stream task on the current tokio runtime; outside one, the generation fails.
    fn generate(&self, request: GenerateRequest) -> Generation {
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let cancel = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let generation = Generation::with_wake(receiver, Arc::clone(&cancel), Arc::clone(&wake));
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let shared = Arc::clone(&self.shared);
                handle.spawn(async move {
                    let stop = Stop { cancel, wake, events: events.clone() };
                    let last = match stream(&shared, &request, &stop).await {
                        Ok((usage, finish_reason)) => EngineEvent::Done { usage, finish_reason },
                        Err(error) => EngineEvent::Failed(error),
                    };
                    let _ = events.send(last).await;
                });
            }
            Err(_) => {
                let error = EngineError::Inference("generate was called outside a tokio runtime".into());
                let _ = events.try_send(EngineEvent::Failed(error));
            }
        }
        generation
    }

    fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }
}

/// `base_url` without a trailing `/` or `/v1`, checked to be `http(s)`.
fn api_root(base_url: &str) -> Result<String, UpstreamError> {
    let invalid = |reason: &str| UpstreamError::InvalidUrl { url: base_url.to_owned(), reason: reason.to_owned() };
    let url = reqwest::Url::parse(base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment"));
    }
    let text = url.as_str().trim_end_matches('/');
    Ok(text.strip_suffix("/v1").unwrap_or(text).to_owned())
}

/// One health probe: `/health`, then `/v1/models`; any 2xx answer is healthy.
async fn probe(shared: &Shared) -> bool {
    for url in &shared.health_urls {
        let mut request = shared.client.get(url).timeout(HEALTH_TIMEOUT);
        if let Some(auth) = &shared.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if request.send().await.is_ok_and(|response| response.status().is_success()) {
            return true;
        }
    }
    false
}

/// Cancellation: the caller's flag (woken through `wake`) or a dropped receiver.
struct Stop {
    cancel: Arc<AtomicBool>,
    wake: Arc<Notify>,
    events: mpsc::Sender<EngineEvent>,
}

impl Stop {
    fn is_set(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }

    /// Resolves once the generation is cancelled or dropped.
    async fn wait(&self) {
        while !self.cancel.load(Ordering::Relaxed) {
            tokio::select! {
                () = self.wake.notified() => {}
                () = self.events.closed() => return,
            }
        }
    }
}

/// Counts so far.
#[derive(Debug, Default)]
struct Progress {
    deltas: u64,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

impl Progress {
    /// Upstream's exact usage, or prompt 0 and one completion token per content delta.
    fn usage(&self) -> Usage {
        self.usage.unwrap_or_else(|| Usage::new(0, self.deltas))
    }
}

/// Streams one generation, sending text as it arrives; returns the counts and why it stopped.
async fn stream(shared: &Shared, request: &GenerateRequest, stop: &Stop) -> Result<(Usage, FinishReason), EngineError> {
    let mut progress = Progress::default();
    let body = request_body(&shared.model_name, request);
    // One retry when the request never got an answer: a pooled keep-alive connection the
    // server had just closed fails this way ("connection closed before message completed"),
    // and a fresh connection then works. Nothing was generated for the failed attempt.
    let mut attempts = 0;
    let mut response = loop {
        attempts += 1;
        let mut post = shared.client.post(&shared.chat_url).json(&body);
        if let Some(auth) = &shared.auth {
            post = post.header(AUTHORIZATION, auth.clone());
        }
        let sent = tokio::select! {
            biased;
            () = stop.wait() => return Ok((progress.usage(), FinishReason::Cancelled)),
            sent = tokio::time::timeout(IDLE_TIMEOUT, post.send()) => sent,
        };
        match sent {
            Err(_) => return Err(idle_error()),
            Ok(Err(error)) if attempts < 2 && (error.is_request() || error.is_connect()) => {
                tracing::debug!(error = %error_chain(&error), "upstream connection failed before an answer; retrying once");
            }
            Ok(Err(error)) => return Err(inference(format!("upstream request failed: {}", error_chain(&error)))),
            Ok(Ok(response)) => break response,
        }
    };
    if !response.status().is_success() {
        return Err(inference(error_message(response).await));
    }
    let mut parser = SseParser::default();
    loop {
        let read = tokio::select! {
            biased;
            () = stop.wait() => return Ok((progress.usage(), FinishReason::Cancelled)),
            read = tokio::time::timeout(IDLE_TIMEOUT, response.chunk()) => read,
        };
        let bytes = match read {
            Err(_) => return Err(idle_error()),
            Ok(Err(error)) => return Err(inference(format!("reading the upstream stream: {}", error_chain(&error)))),
            Ok(Ok(None)) => {
                let truncated = parser.finish().err().map_or_else(|| "the stream ended".to_owned(), |e| e.to_string());
                return Err(inference(format!("upstream: {truncated}")));
            }
            Ok(Ok(Some(bytes))) => bytes,
        };
        for event in parser.push(&bytes).map_err(|e| inference(format!("upstream: {e}")))? {
            let data = match event {
                SseEvent::Done => return Ok((progress.usage(), progress.finish.unwrap_or(FinishReason::Stop))),
                SseEvent::Data(data) => data,
            };
            let chunk = decode_chunk(&data)?;
            progress.usage = chunk.usage.or(progress.usage);
            progress.finish = chunk.finish_reason.or(progress.finish);
            for text in chunk.content {
                progress.deltas += 1;
                if stop.is_set() || stop.events.send(EngineEvent::Text(text)).await.is_err() {
                    return Ok((progress.usage(), FinishReason::Cancelled));
                }
            }
        }
    }
}

fn inference(message: String) -> EngineError {
    EngineError::Inference(message)
}

fn idle_error() -> EngineError {
    inference(format!("upstream sent nothing for {} s", IDLE_TIMEOUT.as_secs()))
}

/// An error with its sources (reqwest's own text is often just "error sending request").
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The JSON body of a streamed chat completion.
fn request_body(model: &str, request: &GenerateRequest) -> Value {
    let sampling = &request.sampling;
    let messages: Vec<Value> =
        request.messages.iter().map(|(role, content)| json!({ "role": role, "content": content })).collect();
    let mut body = json!({
        "model": model,
        "messages": messages,
        "temperature": sampling.temperature,
        "max_tokens": sampling.max_tokens,
        "seed": sampling.seed,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    let optional = [
        ("top_p", sampling.top_p.map(Value::from)),
        ("top_k", sampling.top_k.map(Value::from)),
        ("min_p", sampling.min_p.map(Value::from)),
        ("stop", (!sampling.stop.is_empty()).then(|| Value::from(sampling.stop.clone()))),
    ];
    for (key, value) in optional {
        if let (Some(value), Some(object)) = (value, body.as_object_mut()) {
            object.insert(key.to_owned(), value);
        }
    }
    body
}

/// What one streamed chunk carries.
#[derive(Debug, Default, PartialEq)]
struct Chunk {
    content: Vec<String>,
    usage: Option<Usage>,
    finish_reason: Option<FinishReason>,
}

/// Decodes one `data:` payload: non-empty `choices[].delta.content`, `usage`, `finish_reason`;
/// an in-stream `error` object fails the generation.
fn decode_chunk(data: &str) -> Result<Chunk, EngineError> {
    let value: Value = serde_json::from_str(data)
        .map_err(|e| inference(format!("upstream sent a stream chunk that is not JSON: {e}")))?;
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        return Err(inference(format!("upstream: {}", error_text(error))));
    }
    let mut chunk = Chunk::default();
    for choice in value.get("choices").and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            chunk.content.push(text.to_owned());
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            chunk.finish_reason = Some(if reason == "length" { FinishReason::Length } else { FinishReason::Stop });
        }
    }
    if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
        let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        chunk.usage = Some(Usage::new(count("prompt_tokens"), count("completion_tokens")));
    }
    Ok(chunk)
}

/// `upstream answered <status>: <message>` from a non-2xx answer, reading a bounded body.
async fn error_message(mut response: Response) -> String {
    let status = response.status();
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(bytes)) = response.chunk().await {
            body.extend_from_slice(&bytes);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(HEALTH_TIMEOUT, read).await;
    format!("upstream answered {status}: {}", error_detail(&body))
}

/// The message in an error body: OpenAI's `{"error":{"message"}}`, `{"error":"…"}`,
/// `{"message"}` or FastAPI's `{"detail"}`; otherwise the text itself, shortened.
fn error_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let detail = match serde_json::from_str::<Value>(&text) {
        Ok(value) => ["error", "message", "detail"]
            .iter()
            .find_map(|key| value.get(key).filter(|v| !v.is_null()))
            .map_or_else(|| text.trim().to_owned(), error_text),
        Err(_) => text.trim().to_owned(),
    };
    if detail.is_empty() {
        return "(no message)".to_owned();
    }
    match detail.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &detail[..cut]),
        None => detail,
    }
}

/// An error value's text: a string, or an object's `message`, or the JSON.
fn error_text(error: &Value) -> String {
    match error {
        Value::String(text) => text.clone(),
        Value::Object(object) => match object.get("message") {
            Some(Value::String(message)) => message.clone(),
            Some(other) => error_text(other),
            None => error.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! URL handling, the request body, chunk decoding and error bodies.

    use super::*;
    use crate::Sampling;

    #[test]
    fn base_urls_with_or_without_v1_give_one_root() {
        for url in ["http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/"] {
            assert_eq!(api_root(url).unwrap(), "http://h:8000", "{url}");
        }
        assert_eq!(api_root("https://h/openai/v1").unwrap(), "https://h/openai");
        assert!(matches!(api_root("ftp://h"), Err(UpstreamError::InvalidUrl { .. })));
        assert!(matches!(api_root("not a url"), Err(UpstreamError::InvalidUrl { .. })));
        assert!(matches!(api_root("http://h/?a=b"), Err(UpstreamError::InvalidUrl { .. })));
    }

    #[test]
    fn the_body_streams_with_usage_and_sends_only_set_options() {
        let mut request = GenerateRequest {
            messages: vec![("user".into(), "hi".into())],
            sampling: Sampling { temperature: 0.0, max_tokens: 5, seed: 3, ..Sampling::default() },
        };
        let body = request_body("m", &request);
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(
            (body["model"].as_str(), body["max_tokens"].as_u64(), body["seed"].as_u64()),
            (Some("m"), Some(5), Some(3))
        );
        assert_eq!(body["messages"], json!([{ "role": "user", "content": "hi" }]));
        for key in ["top_p", "top_k", "min_p", "stop"] {
            assert!(body.get(key).is_none(), "{key}");
        }
        request.sampling.top_k = Some(40);
        request.sampling.top_p = Some(0.5);
        request.sampling.stop = vec!["\n".into()];
        let body = request_body("m", &request);
        assert_eq!(
            (body["top_k"].as_i64(), body["top_p"].as_f64(), body["stop"].clone()),
            (Some(40), Some(0.5), json!(["\n"]))
        );
    }

    #[test]
    fn chunks_give_content_usage_and_finish_reasons() {
        let delta =
            decode_chunk(r#"{"choices":[{"index":0,"delta":{"content":"Par"},"finish_reason":null}]}"#).unwrap();
        assert_eq!(delta, Chunk { content: vec!["Par".into()], ..Chunk::default() });
        let role_only = decode_chunk(r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#).unwrap();
        assert_eq!(role_only, Chunk::default());
        let last = decode_chunk(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#).unwrap();
        assert_eq!(last.finish_reason, Some(FinishReason::Length));
        let stop = decode_chunk(r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#).unwrap();
        assert_eq!(stop.finish_reason, Some(FinishReason::Stop));
        let usage =
            decode_chunk(r#"{"choices":[],"usage":{"prompt_tokens":14,"completion_tokens":3,"total_tokens":17}}"#)
                .unwrap();
        assert_eq!(usage.usage, Some(Usage::new(14, 3)));
        let error = decode_chunk(r#"{"error":{"message":"slot crashed","code":500}}"#).unwrap_err();
        assert_eq!(error, EngineError::Inference("upstream: slot crashed".into()));
        assert!(decode_chunk("{not json").is_err());
    }

    #[test]
    fn progress_falls_back_to_counting_deltas() {
        let progress = Progress { deltas: 4, ..Progress::default() };
        assert_eq!(progress.usage(), Usage::new(0, 4));
        let exact = Progress { deltas: 4, usage: Some(Usage::new(9, 5)), finish: None };
        assert_eq!(exact.usage(), Usage::new(9, 5));
    }

    #[test]
    fn error_bodies_are_quoted_by_their_message() {
        let openai = br#"{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}"#;
        assert_eq!(error_detail(openai), "Invalid API Key");
        assert_eq!(error_detail(br#"{"error":"model not found"}"#), "model not found");
        assert_eq!(error_detail(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_detail(b"  bad gateway \n"), "bad gateway");
        assert_eq!(error_detail(b""), "(no message)");
        let long = "\u{e9}".repeat(MAX_ERROR_CHARS + 10);
        assert_eq!(error_detail(long.as_bytes()).chars().count(), MAX_ERROR_CHARS + 1);
    }

    /// A server on loopback that drops its first connection after reading the request (as a
    /// keep-alive connection closed under a client does) and answers the second with a stream.
    async fn flaky_upstream() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut first, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 65536];
            let _ = first.read(&mut buffer).await;
            drop(first);
            let (mut second, _) = listener.accept().await.unwrap();
            let _ = second.read(&mut buffer).await;
            let events = concat!(
                "data: {\"choices\":[{\"delta\":{\"content\":\"Paris\"}}]}\n\n",
                "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],",
                "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
                "data: [DONE]\n\n"
            );
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{events}",
                events.len()
            );
            second.write_all(response.as_bytes()).await.unwrap();
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_connection_dropped_before_any_answer_is_retried_once() {
        let options = UpstreamOptions {
            base_url: flaky_upstream().await,
            api_key: None,
            model_name: "m".into(),
            slots: 1,
            context_size: 512,
            model_sha256: None,
        };
        let engine = UpstreamEngine::without_probe(&options).unwrap();
        let request = GenerateRequest { messages: vec![("user".into(), "hi".into())], sampling: Sampling::default() };
        let done = engine.generate(request).collect().await.unwrap();
        assert_eq!(
            (done.text.as_str(), done.usage, done.finish_reason),
            ("Paris", Usage::new(5, 1), FinishReason::Stop)
        );
    }

    #[test]
    fn debug_output_hides_the_api_key() {
        let options = UpstreamOptions {
            base_url: "http://127.0.0.1:1".into(),
            api_key: Some("sk-secret-value".into()),
            model_name: "m".into(),
            slots: 1,
            context_size: 512,
            model_sha256: None,
        };
        assert!(!format!("{options:?}").contains("sk-secret-value"));
        let engine = UpstreamEngine::without_probe(&options).unwrap();
        assert!(!format!("{engine:?}").contains("sk-secret-value"));
        assert!(matches!(UpstreamEngine::new(&options), Err(UpstreamError::NoRuntime)));
    }
}
