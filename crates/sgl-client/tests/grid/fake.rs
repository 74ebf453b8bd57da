//! A scripted grid (axum on 127.0.0.1) holding a real node identity, for what a real grid does
//! not do on demand: 429/503 answers (retried or not), a sealed stream cut before its final
//! chunk, one aborted with an SSE `error` event, and a stream request answered whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_client::{ApiKey, Client, Error, RetryPolicy, VerifyError};
use sgl_protocol::api::caller::{ReserveResponse, SealedChatResponse, SealedStreamEvent};
use sgl_protocol::api::inference::{InferenceRequest, JobResult, Usage};
use sgl_protocol::api::openai::ChatMessage;
use sgl_protocol::api::sealed::SealedInput;
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::{JobId, NodeId, ReservationToken};
use sgl_protocol::keybind::sign_keybind;
use sgl_protocol::seal::{ReplySealer, open_request};

/// What the scripted grid does with a chat request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Stream chunk 0, then end the body.
    Truncate,
    /// Stream chunk 0, then an SSE `error` event.
    Abort,
    /// Answer the stream request with the non-stream JSON.
    Whole,
    /// Refuse with this status and error code, every time.
    Refuse(u16, &'static str),
}

struct Fake {
    identity: NodeIdentity,
    node_id: NodeId,
    script: Script,
    hits: AtomicUsize,
    models_failures: usize,
}

async fn serve(script: Script, models_failures: usize) -> (Client, Arc<Fake>) {
    let fake = Arc::new(Fake {
        identity: NodeIdentity::from_seed(&[0x21; 32]),
        node_id: NodeId::random(),
        script,
        hits: AtomicUsize::new(0),
        models_failures,
    });
    let router = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/reserve", post(reserve))
        .route("/v1/chat/completions", post(chat))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let fast =
        RetryPolicy { max_retries: 3, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(5) };
    let client = Client::builder(&url).api_key(ApiKey::new("x402c_fake")).retry(fast).build().unwrap();
    (client, fake)
}

fn refusal(status: u16, code: &str) -> Response {
    let body =
        json!({"error": {"message": "scripted", "type": "service_unavailable_error", "param": null, "code": code}});
    let status = StatusCode::from_u16(status).unwrap();
    (status, [(header::RETRY_AFTER, "0")], axum::Json(body)).into_response()
}

async fn models(State(fake): State<Arc<Fake>>) -> Response {
    if fake.hits.fetch_add(1, Ordering::SeqCst) < fake.models_failures {
        return refusal(503, "no_capacity");
    }
    axum::Json(
        json!({"object": "list", "data": [{"id": "gemma", "object": "model", "created": 0, "owned_by": "sgl-grid"}]}),
    )
    .into_response()
}

async fn reserve(State(fake): State<Arc<Fake>>) -> axum::Json<ReserveResponse> {
    let x25519 = fake.identity.encryption_secret().public_key();
    axum::Json(ReserveResponse {
        reservation_token: ReservationToken::new("rsv_fake"),
        node_id: fake.node_id,
        node_x25519_pubkey: Some(x25519.to_b58()),
        node_ed25519_pubkey: Some(fake.identity.public_key().to_b58()),
        tee_type: None,
        attestation_verified: None,
        expires_in_ms: 60_000,
        encryption_public_key_signature: Some(sign_keybind(&fake.identity, &fake.node_id, &x25519, 1)),
        key_version: Some(1),
        model_sha256: None,
    })
}

async fn chat(State(fake): State<Arc<Fake>>, body: axum::Json<Value>) -> Response {
    fake.hits.fetch_add(1, Ordering::SeqCst);
    if let Script::Refuse(status, code) = fake.script {
        return refusal(status, code);
    }
    let enc: SealedInput = serde_json::from_value(body.0["enc"].clone()).unwrap();
    let opened = open_request(&fake.identity.encryption_secret(), &enc).unwrap();
    let request: InferenceRequest = serde_json::from_slice(&opened.plaintext).unwrap();
    let job_id = JobId::random();
    if fake.script == Script::Whole {
        return axum::Json(whole(&fake, &opened.reply, job_id)).into_response();
    }
    let mut sealer = opened.reply.stream(request.nonce.as_deref().unwrap(), &mut OsRng).unwrap();
    let chunk = sealer.seal_chunk(b"Hello", false, &mut OsRng).unwrap();
    let claims = ResultClaims {
        job_id: &job_id,
        node_id: &fake.node_id,
        kind: ResultKind::Stream { seq: 0, is_final: false },
        payload: chunk.ciphertext.as_bytes(),
        usage: None,
        model_sha256: None,
    };
    let event = SealedStreamEvent {
        seq: 0,
        sig: Some(claims.sign(&fake.identity, EnvelopeVersion::V2).unwrap()),
        ct: chunk.ciphertext,
        eph: chunk.ephemeral_public_key,
        is_final: false,
        sig_version: Some("v2".into()),
        job_id: Some(job_id.clone()),
        node_id: Some(fake.node_id),
        usage: None,
        model_sha256: None,
        proof_of_execution: None,
    };
    let mut sse = format!(": keep-alive\n\ndata: {}\n\n", serde_json::to_string(&event).unwrap());
    if fake.script == Script::Abort {
        let error = json!({"error": {"message": "the node vanished", "type": "service_unavailable_error", "param": null, "code": "upstream_failed"}});
        sse.push_str(&format!("event: error\ndata: {error}\n\n"));
    }
    ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response()
}

fn whole(fake: &Fake, reply: &ReplySealer, job_id: JobId) -> SealedChatResponse {
    let usage = Usage::new(7, 1);
    let result = JobResult { content: "Whole".into(), model: "gemma".into(), usage };
    let sealed_result = reply.seal(result.to_compact_json().as_bytes(), &mut OsRng).unwrap();
    let claims = ResultClaims {
        job_id: &job_id,
        node_id: &fake.node_id,
        kind: ResultKind::Sealed,
        payload: sealed_result.ciphertext.as_bytes(),
        usage: Some(&usage),
        model_sha256: None,
    };
    SealedChatResponse {
        result_envelope_signature: Some(claims.sign(&fake.identity, EnvelopeVersion::V2).unwrap()),
        id: job_id,
        created: None,
        sealed_result,
        usage: Some(usage),
        node_id: Some(fake.node_id),
        result_envelope_version: Some("v2".into()),
        model_sha256: None,
        proof_of_execution: None,
    }
}

fn hello() -> sgl_client::ChatRequest {
    sgl_client::ChatRequest::new("gemma", vec![ChatMessage::text("user", "hi")])
}

#[tokio::test]
async fn idempotent_calls_are_retried_on_503_until_they_succeed() {
    let (client, fake) = serve(Script::Whole, 2).await;
    assert_eq!(client.models().await.unwrap().data[0].id, "gemma");
    assert_eq!(fake.hits.load(Ordering::SeqCst), 3);
    // Past the retry budget the refusal surfaces.
    let (client, fake) = serve(Script::Whole, 10).await;
    let error = client.models().await.unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(fake.hits.load(Ordering::SeqCst), 4, "one attempt and three retries");
}

#[tokio::test]
async fn a_chat_is_retried_only_when_nothing_was_billed() {
    // A sealed request whose node failed before any output (nothing billed) is sealed again
    // to a freshly reserved node.
    let (client, fake) = serve(Script::Refuse(503, "upstream_failed"), 0).await;
    let error = client.chat(&hello()).await.unwrap_err();
    assert_eq!(error.status(), Some(503));
    assert_eq!(fake.hits.load(Ordering::SeqCst), 4, "one attempt and three retries, each with a new reservation");
    let (client, fake) = serve(Script::Refuse(502, "upstream_failed"), 0).await;
    assert_eq!(client.chat(&hello()).await.unwrap_err().status(), Some(502));
    assert_eq!(fake.hits.load(Ordering::SeqCst), 1, "anything else: never resent");

    let (client, fake) = serve(Script::Refuse(429, "rate_limited"), 0).await;
    assert_eq!(client.chat(&hello()).await.unwrap_err().status(), Some(429));
    assert_eq!(fake.hits.load(Ordering::SeqCst), 4, "refused before any work: retried");

    let (client, fake) = serve(Script::Refuse(503, "upstream_failed"), 0).await;
    let plain = hello().to_openai(false);
    assert_eq!(client.chat_plain(&plain).await.unwrap_err().status(), Some(503));
    assert_eq!(fake.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_stream_cut_before_its_final_chunk_is_a_truncation() {
    let (client, _fake) = serve(Script::Truncate, 0).await;
    let mut stream = client.chat_stream(&hello()).await.unwrap();
    assert_eq!(stream.next_delta().await.unwrap().as_deref(), Some("Hello"));
    let error = stream.next_delta().await.unwrap_err();
    assert!(matches!(error, Error::Verification(VerifyError::StreamTruncated)), "{error:?}");
    assert!(error.is_verification());
    assert!(stream.end().is_none());
}

#[tokio::test]
async fn an_sse_error_event_is_a_typed_abort() {
    let (client, _fake) = serve(Script::Abort, 0).await;
    let mut stream = client.chat_stream(&hello()).await.unwrap();
    assert_eq!(stream.next_delta().await.unwrap().as_deref(), Some("Hello"));
    let error = stream.next_delta().await.unwrap_err();
    assert!(
        matches!(&error, Error::StreamAborted { code: Some(sgl_protocol::api::error::ErrorCode::UpstreamFailed), message } if message == "the node vanished"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stream_request_answered_whole_is_verified_and_yields_one_delta() {
    let (client, fake) = serve(Script::Whole, 0).await;
    let (text, end) = client.chat_stream(&hello()).await.unwrap().collect().await.unwrap();
    assert_eq!(text, "Whole");
    assert_eq!(end.usage, Usage::new(7, 1));
    assert_eq!(end.verification.node_id, fake.node_id);
    assert!(end.verification.verified);
}
