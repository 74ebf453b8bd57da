//! The test grid: router, store, clock, and a scripted node that registers and heartbeats.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sgl_grid::admin::{self, AdminCommand};
use sgl_grid::config::{CliOverrides, Config};
use sgl_grid::state::{AppState, ManualClock, SharedClock};
use sgl_grid_store::Store;
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::NodeId;
use sgl_protocol::keybind::{KEY_VERSION_1, sign_keybind};
use tower::ServiceExt;

pub(crate) const START_MS: i64 = 1_795_000_000_000;

pub(crate) struct Grid {
    pub(crate) router: Router,
    pub(crate) store: Store,
    state: AppState,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Grid {
    pub(crate) async fn new() -> Self {
        Self::with_config("").await
    }

    pub(crate) async fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite_file(&dir.path().join("grid.db")).await.unwrap();
        let overrides = CliOverrides { data_dir: Some(dir.path().to_owned()), ..CliOverrides::default() };
        let config = Config::from_sources(Some(toml), &BTreeMap::new(), &overrides).unwrap();
        let clock = Arc::new(ManualClock::at(START_MS));
        let state = AppState::new(store.clone(), config, Arc::clone(&clock) as SharedClock);
        Self { router: sgl_grid::routes::router(state.clone()), store, state, clock, _dir: dir }
    }

    /// `n` replicas on one fresh PostgreSQL database (from `SGL_TEST_DATABASE_URL`), each with
    /// its own connection pool, sharing one clock, each joined to the others; and the database
    /// (server URL and name), to drop at the end ([`drop_database`]). `None` (skip) without PostgreSQL, outside CI.
    pub(crate) async fn replicas(n: usize) -> Option<(Vec<Self>, (String, String))> {
        let Some(server) = std::env::var("SGL_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) else {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true but SGL_TEST_DATABASE_URL is not set");
            eprintln!("note: SGL_TEST_DATABASE_URL is not set; skipping a replicas test");
            return None;
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("sgl_api_replicas_{}_{}", std::process::id(), nanos % 1_000_000_000);
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
        let url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
        let clock = Arc::new(ManualClock::at(START_MS));
        let config = Config::from_sources(Some(""), &BTreeMap::new(), &CliOverrides::default()).unwrap();
        let mut grids = Vec::new();
        for _ in 0..n {
            grids.push(Self::replica_on(&url, config.clone(), Arc::clone(&clock)).await);
        }
        Some((grids, (server, name)))
    }

    /// One more replica on the database `url`, on the same clock and configuration as this one.
    pub(crate) async fn another_replica(&self, url: &str) -> Self {
        Self::replica_on(url, self.state.config().clone(), Arc::clone(&self.clock)).await
    }

    async fn replica_on(url: &str, config: Config, clock: Arc<ManualClock>) -> Self {
        let store = Store::open(url).await.unwrap();
        let state = AppState::new(store.clone(), config, Arc::clone(&clock) as SharedClock);
        // The tasks run until the test's runtime ends (a dropped handle detaches).
        drop(sgl_grid::cluster::join(&state).await.unwrap());
        let (router, dir) = (sgl_grid::routes::router(state.clone()), tempfile::tempdir().unwrap());
        Self { router, store, state, clock, _dir: dir }
    }

    /// A second coordinator process over the same database and configuration, as after a
    /// crash and restart: nothing of this one's memory (live jobs, sessions) carries over.
    pub(crate) fn restarted_state(&self) -> AppState {
        AppState::new(self.store.clone(), self.state.config().clone(), Arc::clone(&self.clock) as SharedClock)
    }

    /// The grid's state, for calls the router does not make.
    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs the reaper once.
    pub(crate) async fn reap(&self) -> usize {
        let chat = sgl_grid::jobs::reap(&self.state).await.unwrap();
        chat + sgl_grid::service::compute::reap(&self.state).await.unwrap()
    }

    pub(crate) fn advance_ms(&self, ms: i64) {
        self.clock.advance(ms);
    }

    /// Sends a request; `body` is JSON unless it is a string (sent raw).
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(self.router.clone(), method, path, headers, body).await
    }

    /// Like [`Grid::call`], with the response's headers.
    pub(crate) async fn call_full(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        call_full(self.router.clone(), method, path, headers, body).await
    }

    /// Like [`Grid::call_full`], from a client at `peer`.
    pub(crate) async fn call_full_from(
        &self,
        peer: std::net::SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        call_full_as(self.router.clone(), Some(peer), method, path, headers, body).await
    }

    /// Like [`Grid::call`], from a client at `peer`.
    pub(crate) async fn call_from(
        &self,
        peer: std::net::SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_full_from(peer, method, path, headers, body).await;
        (status, body)
    }

    /// Sends a request from a task of its own, for requests that wait on a node.
    pub(crate) fn spawn_call(
        &self,
        path: &str,
        api_key: &str,
        body: Value,
    ) -> tokio::task::JoinHandle<(StatusCode, Value)> {
        let (router, path, api_key) = (self.router.clone(), path.to_owned(), api_key.to_owned());
        tokio::spawn(async move { call(router, "POST", &path, &[("X-API-Key", &api_key)], Some(body)).await })
    }

    /// A live API key with `usd` of credits: `(id, key)`.
    pub(crate) async fn api_key(&self, usd: f64) -> (i64, String) {
        let created =
            self.admin(AdminCommand::ApiKeyCreate { credits_usd: usd, label: "test".into(), wallet: None }).await;
        (created["id"].as_i64().unwrap(), created["api_key"].as_str().unwrap().to_owned())
    }

    pub(crate) async fn credits(&self, key_id: i64) -> i64 {
        self.store.balance(&sgl_grid_store::ledger::Account::Credits { api_key_id: key_id }).await.unwrap()
    }

    pub(crate) async fn assert_ledger_balanced(&self) {
        for (asset, total) in self.store.ledger_totals().await.unwrap() {
            assert_eq!(total, 0, "the ledger does not balance for {asset}");
        }
        // The operator's audit agrees: every transaction balances, nothing is overdrawn.
        let audit = self.admin(AdminCommand::LedgerCheck).await;
        assert_eq!(audit["sound"], true, "{audit}");
        assert!(audit["transactions"].as_i64().unwrap() > 0, "{audit}");
    }

    pub(crate) async fn admin(&self, command: AdminCommand) -> Value {
        admin::run(&self.store, command, START_MS).await.unwrap().json
    }

    pub(crate) async fn stake(&self, wallet: &str, sgl: u64) {
        self.admin(AdminCommand::Stake { wallet: wallet.into(), amount_sgl: sgl }).await;
    }

    pub(crate) async fn code(&self, wallet: &str) -> String {
        let output = self.admin(AdminCommand::RegistrationCode { wallet: wallet.into(), ttl_secs: 600 }).await;
        output["registration_code"].as_str().unwrap().to_owned()
    }

    /// Stakes, issues a code and registers a fresh node for `wallet`.
    pub(crate) async fn node(&self, wallet: &str, seed: u8) -> Node {
        self.stake(wallet, 50_000).await;
        let code = self.code(wallet).await;
        let identity = NodeIdentity::from_seed(&[seed; 32]);
        let (status, body) =
            self.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, wallet, Some(&code)))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let node = Node {
            node_id: body["node_id"].as_str().unwrap().parse().unwrap(),
            token: body["auth_token"].as_str().unwrap().to_owned(),
            identity,
        };
        node.attest(self, SCRIPTED_BINARY).await;
        node
    }

    /// A registered node that has not attested: it gets no work until it does.
    pub(crate) async fn unattested_node(&self, wallet: &str, seed: u8) -> Node {
        self.stake(wallet, 50_000).await;
        let code = self.code(wallet).await;
        let identity = NodeIdentity::from_seed(&[seed; 32]);
        let (status, body) =
            self.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, wallet, Some(&code)))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Node {
            node_id: body["node_id"].as_str().unwrap().parse().unwrap(),
            token: body["auth_token"].as_str().unwrap().to_owned(),
            identity,
        }
    }
}

/// Drops a database made by [`Grid::replicas`].
pub(crate) async fn drop_database((server, name): (String, String)) {
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
}

/// Sends one request to `router`; `body` is JSON unless it is a string (sent raw). A body that
/// is not JSON (SSE) comes back as a string.
pub(crate) async fn call(
    router: Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, _, value) = call_full(router, method, path, headers, body).await;
    (status, value)
}

/// Like [`call`], with the response's headers.
pub(crate) async fn call_full(
    router: Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    call_full_as(router, None, method, path, headers, body).await
}

/// Like [`call_full`], as a client at `peer` (what the server records as `ConnectInfo`).
pub(crate) async fn call_full_as(
    router: Router,
    peer: Option<std::net::SocketAddr>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(peer) = peer {
        builder = builder.extension(axum::extract::ConnectInfo(peer));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(Value::String(raw)) => {
            builder = builder.header("content-type", "application/json");
            Body::from(raw)
        }
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = router.oneshot(builder.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, value)
}

pub(crate) fn register_body(identity: &NodeIdentity, wallet: &str, code: Option<&str>) -> Value {
    let mut body = json!({
        "wallet_address": wallet, "tee_type": "linux_se", "available_models": ["gemma-3-270m"],
        "public_key": identity.public_key().to_b58(), "cpu_cores": 2, "ram_gb": 24.0,
        "gpu_model": "none", "supported_runtimes": ["llama.cpp"]
    });
    if let Some(code) = code {
        body["registration_code"] = json!(code);
    }
    body
}

/// A scripted node.
pub(crate) struct Node {
    pub(crate) node_id: NodeId,
    pub(crate) token: String,
    pub(crate) identity: NodeIdentity,
}

impl Node {
    pub(crate) fn heartbeat_body(&self, models: &[&str]) -> Value {
        let encryption_key = self.identity.encryption_secret().public_key();
        json!({
            "current_load": 0.0,
            "available_models": models,
            "encryption_public_key": encryption_key.to_b58(),
            "encryption_public_key_signature": sign_keybind(&self.identity, &self.node_id, &encryption_key, KEY_VERSION_1),
            "key_version": KEY_VERSION_1,
            "capabilities": {"streaming": true, "context_size": 4096},
            "active_job_ids": [],
            "binary_hash": SCRIPTED_BINARY,
            "max_concurrent_jobs": 2
        })
    }

    pub(crate) async fn heartbeat(&self, grid: &Grid, body: Value) -> (StatusCode, Value) {
        let id = self.node_id.to_string();
        grid.call("POST", "/grid/nodes/heartbeat", &[("X-Node-Auth", &self.token), ("X-Node-Id", &id)], Some(body))
            .await
    }

    pub(crate) async fn beat(&self, grid: &Grid, models: &[&str]) -> Value {
        let (status, body) = self.heartbeat(grid, self.heartbeat_body(models)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Passes attestation (challenge, signed report) for a node running `binary_hash`.
    pub(crate) async fn attest(&self, grid: &Grid, binary_hash: &str) {
        let base = format!("/grid/nodes/{}", self.node_id);
        let (_, challenge) = self.call(grid, "POST", &format!("{base}/challenge"), None).await;
        let signature =
            sgl_protocol::attestation::sign_challenge(&self.identity, challenge["challenge"].as_str().unwrap());
        let mut report = sgl_protocol::api::node::HardwareReport {
            tee_type: "linux_se".into(),
            binary_hash: binary_hash.into(),
            ..Default::default()
        };
        report.report_hash = sgl_protocol::attestation::report_hash(&report);
        let body = json!({"signature": signature, "encryption_public_key": "k", "hardware_report": report});
        let (status, verdict) = self.call(grid, "POST", &format!("{base}/verify-attestation"), Some(body)).await;
        assert_eq!((status, &verdict["verified"]), (StatusCode::OK, &json!(true)), "{verdict}");
    }

    pub(crate) async fn call(&self, grid: &Grid, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        grid.call(method, path, &[("X-Node-Auth", &self.token)], body).await
    }
}

/// Asserts an OpenAI-shaped error with this status and code.
pub(crate) fn assert_error(actual: (StatusCode, Value), status: StatusCode, code: &str) {
    let (actual_status, body) = actual;
    assert_eq!(actual_status, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
}

/// What `sgl-client` checks of a sealed answer: the reserved node's own v2 signature over the
/// ciphertext, the usage and the model hash.
pub(crate) fn assert_signed_by_reserved_node(
    reservation: &sgl_protocol::api::caller::ReserveResponse,
    response: &sgl_protocol::api::caller::SealedChatResponse,
) {
    let claims = sgl_protocol::envelope::ResultClaims {
        job_id: &response.id,
        node_id: &response.node_id.unwrap(),
        kind: sgl_protocol::envelope::ResultKind::Sealed,
        payload: response.sealed_result.ciphertext.as_bytes(),
        usage: response.usage.as_ref(),
        model_sha256: response.model_sha256.as_deref(),
    };
    let node_key =
        sgl_protocol::identity::NodePublicKey::from_b58(reservation.node_ed25519_pubkey.as_deref().unwrap()).unwrap();
    let signature = response.result_envelope_signature.as_deref().unwrap();
    let version = sgl_protocol::envelope::EnvelopeVersion::V2;
    claims.verify(&node_key, version, signature, response.proof_of_execution.as_deref()).unwrap();
}

/// The binary hash scripted nodes report and attest.
pub(crate) const SCRIPTED_BINARY: &str = "abababababababababababababababababababababababababababababababab";

/// The GGUF hash scripted nodes claim to serve.
pub(crate) const MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

/// A job a scripted node has opened.
pub(crate) struct OpenedJob {
    pub(crate) id: sgl_protocol::ids::JobId,
    pub(crate) request: sgl_protocol::api::inference::InferenceRequest,
    pub(crate) reply: sgl_protocol::seal::ReplySealer,
    pub(crate) stream: bool,
}

impl Node {
    pub(crate) fn heartbeat_with(&self, models: &[&str], active: &[&str]) -> Value {
        let mut body = self.heartbeat_body(models);
        body["active_job_ids"] = json!(active);
        body["model_sha256"] = json!(MODEL_SHA256);
        body
    }

    /// Heartbeats until the grid hands over a job (polling with a deadline).
    pub(crate) async fn wait_job(&self, grid: &Grid, model: &str) -> sgl_protocol::api::node::PendingJob {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let (status, body) = self.heartbeat(grid, self.heartbeat_with(&[model], &[])).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let response: sgl_protocol::api::node::HeartbeatResponse = serde_json::from_value(body).unwrap();
            if let Some(job) = response.pending_jobs.jobs.into_iter().next() {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("no job was dispatched to the node");
    }

    pub(crate) fn open(&self, job: &sgl_protocol::api::node::PendingJob) -> OpenedJob {
        let Some(sgl_protocol::api::inference::JobPayload::Sealed { enc, stream, .. }) = job.payload().unwrap() else {
            panic!("the grid sends sealed jobs only");
        };
        let opened = sgl_protocol::seal::open_request(&self.identity.encryption_secret(), &enc).unwrap();
        OpenedJob {
            id: job.id.clone(),
            request: serde_json::from_slice(&opened.plaintext).unwrap(),
            reply: opened.reply,
            stream,
        }
    }

    fn signature(
        &self,
        signer: &NodeIdentity,
        job: &OpenedJob,
        kind: sgl_protocol::envelope::ResultKind,
        payload: &str,
        usage: Option<&sgl_protocol::api::inference::Usage>,
    ) -> sgl_protocol::api::node::ResultSignature {
        let claims = sgl_protocol::envelope::ResultClaims {
            job_id: &job.id,
            node_id: &self.node_id,
            kind,
            payload: payload.as_bytes(),
            usage,
            model_sha256: Some(MODEL_SHA256),
        };
        sgl_protocol::api::node::ResultSignature {
            result_envelope_signature: claims.sign(signer, sgl_protocol::envelope::EnvelopeVersion::V2).unwrap(),
            result_envelope_version: "v2".into(),
            model_sha256: Some(MODEL_SHA256.into()),
            proof_of_execution: Some(claims.proof_of_execution()),
        }
    }

    /// Seals, signs and posts a complete result; `signer` lets a test forge the signature.
    pub(crate) async fn complete_as(
        &self,
        grid: &Grid,
        job: &OpenedJob,
        content: &str,
        usage: sgl_protocol::api::inference::Usage,
        signer: &NodeIdentity,
    ) -> (StatusCode, Value) {
        let result = sgl_protocol::api::inference::JobResult { content: content.into(), model: "m".into(), usage };
        let sealed = job.reply.seal(result.to_compact_json().as_bytes(), &mut rand_core::OsRng).unwrap();
        let signature =
            self.signature(signer, job, sgl_protocol::envelope::ResultKind::Sealed, &sealed.ciphertext, Some(&usage));
        let body = sgl_protocol::api::node::CompleteJobRequest {
            result: sgl_protocol::api::node::CompletedResult::Sealed { sealed_result: sealed },
            usage: Some(usage),
            signature,
        };
        let path = format!("/grid/jobs/{}/complete", job.id);
        self.call(grid, "POST", &path, Some(serde_json::to_value(body).unwrap())).await
    }

    pub(crate) async fn complete(
        &self,
        grid: &Grid,
        job: &OpenedJob,
        content: &str,
        usage: sgl_protocol::api::inference::Usage,
    ) -> (StatusCode, Value) {
        self.complete_as(grid, job, content, usage, &self.identity).await
    }

    /// Streams `pieces` then an empty final chunk carrying `usage`; returns each post's reply.
    pub(crate) async fn stream(
        &self,
        grid: &Grid,
        job: &OpenedJob,
        pieces: &[&str],
        usage: sgl_protocol::api::inference::Usage,
    ) -> Vec<(StatusCode, Value)> {
        let nonce = job.request.nonce.clone().unwrap_or_default();
        let mut sealer = job.reply.stream(&nonce, &mut rand_core::OsRng).unwrap();
        let mut replies = Vec::new();
        let n_pieces = pieces.len();
        for (idx, piece) in pieces.iter().chain(std::iter::once(&"")).enumerate() {
            let is_final = idx == n_pieces;
            let chunk = sealer.seal_chunk(piece.as_bytes(), is_final, &mut rand_core::OsRng).unwrap();
            let usage = is_final.then_some(usage);
            let kind = sgl_protocol::envelope::ResultKind::Stream { seq: chunk.seq, is_final };
            let signature = self.signature(&self.identity, job, kind, &chunk.ciphertext, usage.as_ref());
            let post = sgl_protocol::api::node::StreamChunkPost {
                seq: chunk.seq,
                is_final,
                ciphertext: chunk.ciphertext,
                algorithm: sgl_protocol::seal::ALGORITHM_V2_STREAM.into(),
                ephemeral_public_key: chunk.ephemeral_public_key,
                usage,
                signature,
            };
            let path = format!("/grid/jobs/{}/chunk", job.id);
            replies.push(self.call(grid, "POST", &path, Some(serde_json::to_value(post).unwrap())).await);
        }
        replies
    }
}

/// Splits an SSE body into `(event name, data)` pairs.
pub(crate) fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let mut event = "message".to_owned();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_owned();
                } else if let Some(text) = line.strip_prefix("data:") {
                    data.push(text.trim_start().to_owned());
                }
            }
            (!data.is_empty()).then(|| (event, data.join("\n")))
        })
        .collect()
}

/// Signs and posts one sealed stream chunk as `node`, under `version`.
pub(crate) async fn post_chunk(
    grid: &Grid,
    node: &Node,
    job: &OpenedJob,
    chunk: &sgl_protocol::seal::SealedChunk,
    usage: Option<sgl_protocol::api::inference::Usage>,
    version: sgl_protocol::envelope::EnvelopeVersion,
) -> (StatusCode, Value) {
    let claims = sgl_protocol::envelope::ResultClaims {
        job_id: &job.id,
        node_id: &node.node_id,
        kind: sgl_protocol::envelope::ResultKind::Stream { seq: chunk.seq, is_final: chunk.is_final },
        payload: chunk.ciphertext.as_bytes(),
        usage: usage.as_ref(),
        model_sha256: None,
    };
    let post = json!({
        "seq": chunk.seq, "final": chunk.is_final, "ciphertext": chunk.ciphertext,
        "algorithm": sgl_protocol::seal::ALGORITHM_V2_STREAM, "ephemeral_public_key": chunk.ephemeral_public_key,
        "usage": usage, "result_envelope_signature": claims.sign(&node.identity, version).unwrap(),
        "result_envelope_version": version.tag(),
    });
    node.call(grid, "POST", &format!("/grid/jobs/{}/chunk", job.id), Some(post)).await
}
