//! A tampering man in the middle: an HTTP server on 127.0.0.1 that forwards every request to
//! the real grid and, as told, rewrites the answers of `/v1/reserve` and
//! `/v1/chat/completions` the way a malicious coordinator or network could.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use rand_core::OsRng;
use serde_json::Value;
use sgl_protocol::identity::EncryptionSecret;

use super::sse::parse_all;

/// What the proxy does to the grid's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tamper {
    /// Forwards unchanged.
    Nothing,
    /// `/v1/reserve`: the node's X25519 key replaced by the proxy's own.
    ReserveKey,
    /// Sealed reply: one character of `sealed_result.ciphertext` changed.
    ReplyCiphertext,
    /// Sealed reply: `sealed_result.ephemeral_public_key` replaced by the proxy's key.
    ReplyEphemeralKey,
    /// Sealed reply: `usage.completion_tokens` raised by one (a coordinator overbilling).
    ReplyUsage,
    /// Sealed stream: one character of the first chunk's `ct` changed.
    StreamChunk,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    tamper: Mutex<Tamper>,
    own_key: String,
    chats: AtomicUsize,
    tampered: AtomicUsize,
}

/// The running proxy; aborted on drop.
#[derive(Debug)]
pub(crate) struct TamperProxy {
    /// `http://127.0.0.1:PORT`, to give a client instead of the grid's URL.
    pub(crate) base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl TamperProxy {
    /// Starts a proxy in front of `upstream`, forwarding unchanged until told otherwise.
    pub(crate) async fn start(upstream: &str) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            http: reqwest::Client::new(),
            tamper: Mutex::new(Tamper::Nothing),
            own_key: EncryptionSecret::generate(&mut OsRng).public_key().to_b58(),
            chats: AtomicUsize::new(0),
            tampered: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy");
        let base_url = format!("http://{}", listener.local_addr().expect("the proxy's address"));
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url, shared, task }
    }

    /// From now on, tamper this way.
    pub(crate) fn set(&self, tamper: Tamper) {
        *self.shared.tamper.lock().unwrap_or_else(PoisonError::into_inner) = tamper;
    }

    /// Chat requests forwarded so far.
    pub(crate) fn chats(&self) -> usize {
        self.shared.chats.load(Ordering::SeqCst)
    }

    /// Answers altered so far.
    pub(crate) fn tampered(&self) -> usize {
        self.shared.tampered.load(Ordering::SeqCst)
    }
}

impl Drop for TamperProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = shared.http.request(method, format!("{}{path_and_query}", shared.upstream)).body(body);
    for name in [AUTHORIZATION.as_str(), CONTENT_TYPE.as_str(), "x-api-key"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    if uri.path() == "/v1/chat/completions" {
        shared.chats.fetch_add(1, Ordering::SeqCst);
    }
    let upstream = match request.send().await {
        Ok(upstream) => upstream,
        Err(error) => return reply(StatusCode::BAD_GATEWAY, None, Bytes::from(error.to_string())),
    };
    let status = upstream.status();
    let content_type = upstream.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Ok(body) = upstream.bytes().await else {
        return reply(StatusCode::BAD_GATEWAY, None, Bytes::from_static(b"upstream body lost"));
    };
    let tamper = *shared.tamper.lock().unwrap_or_else(PoisonError::into_inner);
    let rewritten = status.is_success().then(|| rewrite(&shared, uri.path(), tamper, &body)).flatten();
    let body = match rewritten {
        Some(rewritten) => {
            shared.tampered.fetch_add(1, Ordering::SeqCst);
            Bytes::from(rewritten)
        }
        None => body,
    };
    reply(status, content_type.as_deref(), body)
}

fn reply(status: StatusCode, content_type: Option<&str>, body: Bytes) -> Response {
    let mut builder = Response::builder().status(status);
    if let Some(content_type) = content_type {
        builder = builder.header(CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body)).unwrap_or_default()
}

/// One base58 character changed, in the middle: still base58, no longer what was signed.
fn flip(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == '2' { '3' } else { '2' };
    chars.into_iter().collect()
}

/// The altered body, or `None` to forward it unchanged.
fn rewrite(shared: &Shared, path: &str, tamper: Tamper, body: &[u8]) -> Option<Vec<u8>> {
    match (path, tamper) {
        ("/v1/reserve", Tamper::ReserveKey) => {
            let mut json: Value = serde_json::from_slice(body).ok()?;
            json["node_x25519_pubkey"] = Value::from(shared.own_key.clone());
            serde_json::to_vec(&json).ok()
        }
        ("/v1/chat/completions", Tamper::StreamChunk) => {
            let text = std::str::from_utf8(body).ok()?;
            let mut flipped = false;
            let mut out = String::new();
            for event in parse_all(text) {
                let mut data = event.data;
                if !flipped
                    && let Ok(mut chunk) = serde_json::from_str::<Value>(&data)
                    && let Some(ct) = chunk["ct"].as_str().filter(|ct| !ct.is_empty()).map(flip)
                {
                    chunk["ct"] = Value::from(ct);
                    data = chunk.to_string();
                    flipped = true;
                }
                if let Some(name) = event.event {
                    out.push_str(&format!("event: {name}\n"));
                }
                out.push_str(&format!("data: {data}\n\n"));
            }
            flipped.then(|| out.into_bytes())
        }
        ("/v1/chat/completions", Tamper::ReplyCiphertext | Tamper::ReplyEphemeralKey | Tamper::ReplyUsage) => {
            let mut json: Value = serde_json::from_slice(body).ok()?;
            match tamper {
                Tamper::ReplyCiphertext => {
                    let ct = json["sealed_result"]["ciphertext"].as_str()?.to_owned();
                    json["sealed_result"]["ciphertext"] = Value::from(flip(&ct));
                }
                Tamper::ReplyEphemeralKey => {
                    json["sealed_result"].get("ephemeral_public_key")?;
                    json["sealed_result"]["ephemeral_public_key"] = Value::from(shared.own_key.clone());
                }
                _ => {
                    let tokens = json["usage"]["completion_tokens"].as_u64()?;
                    json["usage"]["completion_tokens"] = Value::from(tokens + 1);
                }
            }
            serde_json::to_vec(&json).ok()
        }
        _ => None,
    }
}
