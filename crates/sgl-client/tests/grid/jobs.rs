//! Blobs and the job API against a real grid (no node: a job stays queued until cancelled),
//! and, from a scripted grid, what a real grid never sends: a blob that does not hash to its
//! name, a result whose receipt was altered, a followed job cut before `done`.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use sgl_client::{Client, Error, JobEvent, JobVerifyError};
use sgl_protocol::api::compute::{JobResult, SliceResult, SubmitJobRequest, WorkState};
use sgl_protocol::compute::Digest;
use sgl_protocol::compute::bundle::BundleSignature;
use sgl_protocol::compute::receipt::{OutputFile, Receipt, ResourceUsage};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::{JobId, NodeId};

use crate::{Grid, api_key, client};

/// A grid that sends no canaries and keeps its blobs in its own temporary directory.
async fn compute_grid() -> (Grid, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let grid = Grid::start_with_env(&[("SGL_COMPUTE_CANARY_RATE", "0"), ("SGL_DATA_DIR", &data_dir)]).await;
    (grid, data)
}

/// A signed one-module bundle of `slices` slices.
fn bundle(module: Digest, slices: usize) -> SubmitJobRequest {
    let manifest = json!({
        "format": "sgl-bundle-v1", "class": "wasm", "entry": "main.wasm",
        "files": {"main.wasm": module},
        "limits": {"fuel": 1_000_000_000u64, "memory_mb": 64, "wall_secs": 60, "output_mb": 1, "output_files": 4},
        "slices": vec![json!({"args": []}); slices], "max_price_micros_per_gfuel": 1000
    })
    .to_string();
    let signature = BundleSignature::sign(&NodeIdentity::from_seed(&[7; 32]), manifest.as_bytes());
    SubmitJobRequest { manifest, signature }
}

#[tokio::test]
async fn blobs_are_stored_once_and_come_back_verified() {
    let (grid, _data) = compute_grid().await;
    let key = api_key(&grid, 1.0).await;
    let client = client(&grid, Some(&key));
    let stored = client.put_blob(b"module bytes").await.unwrap();
    assert_eq!((stored.sha256, stored.size, stored.created), (Digest::of("module bytes"), 12, true));
    assert!(!client.put_blob(b"module bytes").await.unwrap().created, "a second upload writes nothing");
    assert_eq!(client.get_blob(&stored.sha256).await.unwrap(), b"module bytes");
    let missing = client.get_blob(&Digest::of("never uploaded")).await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing}");
    let keyless = crate::client(&grid, None);
    assert!(matches!(keyless.put_blob(b"x").await, Err(Error::MissingApiKey)));
    assert!(matches!(keyless.jobs().await, Err(Error::MissingApiKey)));
}

#[tokio::test]
async fn a_job_is_submitted_listed_followed_and_cancelled_with_its_escrow_back() {
    let (grid, _data) = compute_grid().await;
    let key = api_key(&grid, 1.0).await;
    let client = client(&grid, Some(&key));
    let module = client.put_blob(b"module").await.unwrap().sha256;
    let job = client.submit_job(&bundle(module, 3)).await.unwrap();
    assert_eq!((job.state, job.slice_count, job.escrow_micros), (WorkState::Queued, 3, 600));
    assert_eq!(client.credits_balance().await.unwrap().balance_micros, 1_000_000 - 600);
    let view = client.job(&job.id).await.unwrap();
    assert_eq!(view.slices.len(), 3);
    assert!(view.slices.iter().all(|s| s.state == WorkState::Queued && s.attempts.is_empty()));
    let listed = client.jobs().await.unwrap();
    assert_eq!(listed.data.iter().map(|j| &j.id).collect::<Vec<_>>(), [&job.id]);
    assert!(client.job_logs(&job.id).await.unwrap().is_empty());
    let not_done = client.job_result(&job.id).await.unwrap_err();
    assert_eq!(not_done.status(), Some(409), "{not_done}");

    let mut events = client.follow_job(&job.id).await.unwrap();
    match events.next().await.unwrap() {
        Some(JobEvent::State(view)) => assert_eq!(view.state, WorkState::Queued),
        other => panic!("expected the job's state first, got {other:?}"),
    }
    let cancelled = client.cancel_job(&job.id).await.unwrap();
    assert_eq!((cancelled.state, cancelled.refunded_micros), (WorkState::Cancelled, 600));
    match events.next().await.unwrap() {
        Some(JobEvent::State(view)) => assert_eq!(view.state, WorkState::Cancelled),
        other => panic!("expected the cancelled state, got {other:?}"),
    }
    assert_eq!(events.next().await.unwrap(), Some(JobEvent::Done));
    assert_eq!(events.next().await.unwrap(), None);

    assert_eq!(client.credits_balance().await.unwrap().balance_micros, 1_000_000);
    assert_eq!(client.cancel_job(&job.id).await.unwrap_err().status(), Some(409), "it already ended");
    let unknown: JobId = "no-such-job".parse().unwrap();
    assert_eq!(client.job(&unknown).await.unwrap_err().status(), Some(404));
}

/// A result for `job` whose one receipt's exit code was changed after it was sealed.
fn tampered_result(job: &JobId) -> JobResult {
    let identity = NodeIdentity::from_seed(&[9; 32]);
    let outputs = vec![OutputFile { path: "out.txt".into(), sha256: Digest::of("2\n"), size: 2, pixels: None }];
    let mut receipt = Receipt {
        job_id: job.clone(),
        slice: 0,
        attempt: 1,
        node_id: NodeId::random(),
        bundle_hash: Digest::of("manifest"),
        inputs: Default::default(),
        outputs: outputs.clone(),
        exit_code: 0,
        runtime: "wasmtime 48.0.8".into(),
        usage: ResourceUsage { fuel: Some(5), cpu_ms: 1, peak_memory_bytes: 1, wall_ms: 1 },
        result_digest: Digest::of(""),
        proof: Digest::of(""),
        signature: String::new(),
    }
    .seal(&identity);
    receipt.exit_code = 1;
    let slice = SliceResult { index: 0, result_digest: receipt.result_digest, exit_code: 1, outputs, receipts: vec![] };
    let public_keys = [(receipt.node_id, identity.public_key().to_b58())].into();
    JobResult { job_id: job.clone(), slices: vec![SliceResult { receipts: vec![receipt], ..slice }], public_keys }
}

/// A grid that lies: any blob is `wrong bytes`, any result is [`tampered_result`], and a
/// followed job's stream ends after one state event.
async fn lying_grid() -> Client {
    let router = Router::new()
        .route("/v1/blobs/{sha256}", get(|| async { "wrong bytes" }))
        .route(
            "/v1/jobs/{id}/result",
            get(|axum::extract::Path(id): axum::extract::Path<String>| async move {
                axum::Json(tampered_result(&id.parse().unwrap()))
            }),
        )
        .route(
            "/v1/jobs/{id}/logs",
            get(|| async {
                let sse = "event: state\ndata: not json\n\n";
                ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Client::new(&url, Some(sgl_client::ApiKey::new("x402c_k"))).unwrap()
}

#[tokio::test]
async fn a_blob_or_result_that_does_not_verify_is_refused() {
    let client = lying_grid().await;
    let name = Digest::of("the real bytes");
    let error = client.get_blob(&name).await.unwrap_err();
    assert!(error.is_verification(), "{error}");
    assert!(
        matches!(error, Error::JobVerification(JobVerifyError::BlobMismatch { name: n, actual })
            if n == name && actual == Digest::of("wrong bytes")),
        "{error}"
    );
    let job: JobId = "job-7".parse().unwrap();
    let error = client.job_result(&job).await.unwrap_err();
    assert!(matches!(error, Error::JobVerification(JobVerifyError::ReceiptDigest { slice: 0, attempt: 1 })), "{error}");
    let mut events = client.follow_job(&job).await.unwrap();
    let error = events.next().await.unwrap_err();
    assert!(matches!(error, Error::UnexpectedResponse(_)), "{error}");
}

#[tokio::test]
async fn a_followed_job_cut_before_done_is_an_error() {
    let router = Router::new().route(
        "/v1/jobs/{id}/logs",
        get(|| async {
            let log =
                json!({"slice": 0, "attempt": 1, "node_id": NodeId::random(), "stream": "stdout", "text": "hi\n"});
            let sse = format!(": keep-alive\n\nevent: log\ndata: {log}\n\nevent: later\ndata: {{}}\n\n");
            ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = Client::new(&url, Some(sgl_client::ApiKey::new("x402c_k"))).unwrap();
    let mut events = client.follow_job(&"j".parse().unwrap()).await.unwrap();
    match events.next().await.unwrap() {
        Some(JobEvent::Log(log)) => assert_eq!((log.slice, log.text.as_str()), (0, "hi\n")),
        other => panic!("expected a log, got {other:?}"),
    }
    assert!(matches!(events.next().await, Err(Error::JobStreamTruncated)), "an unknown event is skipped, then the cut");
}
