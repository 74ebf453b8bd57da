//! Synthetic nodes, many per process: each registers as `sgl init` does (codeless, one bench
//! wallet), heartbeats every interval (±10 % jitter, first beat at a random offset), keeps the
//! job WebSocket open, and answers every job at once: the sealed request is opened with the
//! node's X25519 key, a fixed reply is sealed back to the response key and signed with the
//! envelope the grid negotiated (v2 from our grid), exactly as `sgl` does, then posted to
//! `/complete`. Two tasks per node (heartbeat, WebSocket) and one per job; no thread per node.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use rand_core::{OsRng, RngCore};
use sgl_protocol::api::inference::{InferenceRequest, JobPayload, JobResult, Usage};
use sgl_protocol::api::node::{
    ChallengeResponse, CompleteJobRequest, CompletedResult, HEADER_NODE_AUTH, HEADER_NODE_ID, HardwareReport,
    HeartbeatRequest, HeartbeatResponse, KeybindClaim, NodeCapabilities, NodeMessage, PendingJob, RegisterNodeRequest,
    RegisterNodeResponse, ResultSignature, ServerMessage, VerifyAttestationRequest, VerifyAttestationResponse,
};
use sgl_protocol::attestation::{report_hash, sign_challenge};
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::{EncryptionSecret, NodeIdentity};
use sgl_protocol::ids::{AuthToken, JobId, NodeId};
use sgl_protocol::keybind::sign_keybind;
use sgl_protocol::seal::open_request;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The operator wallet every synthetic node registers under.
const WALLET: &str = "0x5c41e00000000000000000000000000000000001";
/// Registrations in flight at once.
const REGISTER_CONCURRENCY: usize = 32;
/// Parallel job slots each node advertises (the grid's ceiling).
pub(crate) const SLOTS: u32 = 16;
/// Each node's initial WebSocket read buffer.
const SOCKET_READ_BUFFER: usize = 8 * 1024;
/// Finished job ids each node remembers, so a late re-delivery is not answered twice.
const RECENT: usize = 64;

/// What the fleet has done, counted across all nodes.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Heartbeats the grid answered 200.
    pub(crate) heartbeats_ok: AtomicU64,
    /// Heartbeats refused or not answered.
    pub(crate) heartbeats_failed: AtomicU64,
    /// WebSockets open now.
    pub(crate) sockets_open: AtomicU64,
    /// WebSocket (re)connects that failed or sockets that closed.
    pub(crate) socket_drops: AtomicU64,
    /// Jobs answered with a result the grid took.
    pub(crate) jobs_answered: AtomicU64,
    /// Jobs whose answer failed (could not open, sign, or the grid refused the result).
    pub(crate) job_errors: AtomicU64,
}

/// How the fleet talks to the grid.
#[derive(Debug)]
struct Link {
    base_url: String,
    ws_base: String,
    http: reqwest::Client,
    model: String,
    heartbeat: Duration,
    counters: Arc<Counters>,
}

/// One synthetic node.
#[derive(Debug)]
struct Node {
    node_id: NodeId,
    identity: NodeIdentity,
    secret: EncryptionSecret,
    token: Mutex<AuthToken>,
    envelope: Mutex<EnvelopeVersion>,
    beat: HeartbeatRequest,
    inflight: Mutex<HashSet<JobId>>,
    recent: Mutex<VecDeque<JobId>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The synthetic nodes of one grid.
#[derive(Debug)]
pub(crate) struct Fleet {
    link: Arc<Link>,
    tasks: JoinSet<()>,
    n_nodes: usize,
}

impl Fleet {
    /// A fleet without nodes yet, serving `model` to the grid at `base_url`.
    pub(crate) fn new(base_url: &str, model: &str, heartbeat: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()
            .context("the nodes' HTTP client")?;
        let link = Link {
            base_url: base_url.to_owned(),
            ws_base: base_url.replacen("http://", "ws://", 1),
            http,
            model: model.to_owned(),
            heartbeat,
            counters: Arc::default(),
        };
        Ok(Self { link: Arc::new(link), tasks: JoinSet::new(), n_nodes: 0 })
    }

    /// The fleet's counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.link.counters
    }

    /// Nodes registered so far.
    pub(crate) fn len(&self) -> usize {
        self.n_nodes
    }

    /// Registers nodes until there are `total`, starts them, and waits until every node has an
    /// open WebSocket (and so has had a heartbeat accepted), at most `timeout` in all.
    pub(crate) async fn grow_to(&mut self, total: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut registering = JoinSet::new();
        let mut wanted = total.saturating_sub(self.n_nodes);
        while wanted > 0 || !registering.is_empty() {
            if tokio::time::Instant::now() > deadline {
                bail!("only {} of {total} nodes registered within {timeout:?}", self.n_nodes);
            }
            while wanted > 0 && registering.len() < REGISTER_CONCURRENCY {
                registering.spawn(register(Arc::clone(&self.link)));
                wanted -= 1;
            }
            let Some(joined) = registering.join_next().await else { break };
            let node = joined.context("a registration task")??;
            self.n_nodes += 1;
            let node = Arc::new(node);
            self.tasks.spawn(heartbeat_loop(Arc::clone(&self.link), Arc::clone(&node)));
        }
        while self.link.counters.sockets_open.load(Ordering::Relaxed) < total as u64 {
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "only {} of {total} nodes connected within {timeout:?}",
                    self.link.counters.sockets_open.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Stops every node.
    pub(crate) async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

/// Registers one node, the way `sgl init` does without a code.
async fn register(link: Arc<Link>) -> anyhow::Result<Node> {
    let identity = NodeIdentity::generate(&mut OsRng);
    let request = RegisterNodeRequest {
        wallet_address: WALLET.to_owned(),
        registration_code: None,
        tee_type: "none".to_owned(),
        available_models: vec![link.model.clone()],
        public_key: identity.public_key().to_b58(),
        cpu_cores: 2,
        ram_gb: 4.0,
        gpu_model: String::new(),
        supported_runtimes: vec!["llama.cpp".to_owned()],
        capability_manifest: None,
        wallet_proof: None,
    };
    let response = link.http.post(format!("{}/grid/nodes/register", link.base_url)).json(&request).send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!("registering a node: {status}: {}", response.text().await.unwrap_or_default());
    }
    let registered: RegisterNodeResponse = response.json().await.context("the register answer")?;
    attest(&link, &identity, &registered).await?;
    let secret = identity.encryption_secret();
    let encryption_key = secret.public_key();
    let beat = HeartbeatRequest {
        current_load: 0.0,
        available_models: vec![link.model.clone()],
        encryption_public_key: encryption_key.to_b58(),
        keybind: Some(KeybindClaim {
            encryption_public_key_signature: sign_keybind(&identity, &registered.node_id, &encryption_key, 1),
            key_version: 1,
        }),
        capabilities: NodeCapabilities { streaming: true, context_size: 4096 },
        active_job_ids: Vec::new(),
        binary_hash: BENCH_BINARY.to_owned(),
        max_concurrent_jobs: SLOTS,
        model_sha256: None,
        cluster: None,
        workloads: Vec::new(),
        engines: Vec::new(),
        embedding_models: Vec::new(),
    };
    Ok(Node {
        node_id: registered.node_id,
        identity,
        secret,
        token: Mutex::new(registered.auth_token),
        envelope: Mutex::new(EnvelopeVersion::negotiate(&registered.accepted_envelope_versions)),
        beat,
        inflight: Mutex::default(),
        recent: Mutex::default(),
    })
}

/// The binary hash synthetic nodes attest and report.
const BENCH_BINARY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// Passes attestation as `sgl attest` does (the grid gives unattested nodes no work).
async fn attest(link: &Link, identity: &NodeIdentity, registered: &RegisterNodeResponse) -> anyhow::Result<()> {
    let base = format!("{}/grid/nodes/{}", link.base_url, registered.node_id);
    let token = registered.auth_token.expose_secret();
    let challenge: ChallengeResponse = link
        .http
        .post(format!("{base}/challenge"))
        .header(HEADER_NODE_AUTH, token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .context("the attestation challenge")?;
    let mut report = HardwareReport { binary_hash: BENCH_BINARY.to_owned(), ..HardwareReport::default() };
    report.report_hash = report_hash(&report);
    let request = VerifyAttestationRequest {
        signature: sign_challenge(identity, &challenge.challenge),
        encryption_public_key: identity.encryption_secret().public_key().to_b58(),
        hardware_report: report,
    };
    let verdict: VerifyAttestationResponse = link
        .http
        .post(format!("{base}/verify-attestation"))
        .header(HEADER_NODE_AUTH, token)
        .json(&request)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .context("the attestation verdict")?;
    if !verdict.verified {
        bail!("attestation refused: {}", verdict.status);
    }
    Ok(())
}

/// `interval` scaled by a random factor in `[low, low + width)`.
fn jittered(interval: Duration, low: f64, width: f64) -> Duration {
    let unit = (OsRng.next_u32() as f64) / (u32::MAX as f64 + 1.0);
    interval.mul_f64(low + width * unit)
}

/// Beats forever; the WebSocket opens after the first accepted beat, as `sgl` does it.
async fn heartbeat_loop(link: Arc<Link>, node: Arc<Node>) {
    let mut socket: Option<SocketTask> = None;
    let mut first = true;
    loop {
        let accepted = match beat_once(&link, &node).await {
            Ok(response) => {
                link.counters.heartbeats_ok.fetch_add(1, Ordering::Relaxed);
                apply(&link, &node, response);
                true
            }
            Err(_) => {
                link.counters.heartbeats_failed.fetch_add(1, Ordering::Relaxed);
                false
            }
        };
        if accepted && socket.is_none() {
            socket = Some(SocketTask(tokio::spawn(socket_loop(Arc::clone(&link), Arc::clone(&node)))));
        }
        // The first wait spreads the fleet's beats over one interval.
        let wait = if first { jittered(link.heartbeat, 0.0, 1.0) } else { jittered(link.heartbeat, 0.9, 0.2) };
        first = false;
        tokio::time::sleep(wait).await;
    }
}

async fn beat_once(link: &Link, node: &Node) -> anyhow::Result<HeartbeatResponse> {
    let mut beat = node.beat.clone();
    beat.active_job_ids = lock(&node.inflight).iter().cloned().collect();
    let token = lock(&node.token).clone();
    let response = link
        .http
        .post(format!("{}/grid/nodes/heartbeat", link.base_url))
        .header(HEADER_NODE_AUTH, token.expose_secret())
        .header(HEADER_NODE_ID, node.node_id.to_string())
        .json(&beat)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("heartbeat refused: {}", response.status());
    }
    Ok(response.json().await?)
}

fn apply(link: &Arc<Link>, node: &Arc<Node>, response: HeartbeatResponse) {
    *lock(&node.envelope) = EnvelopeVersion::negotiate(&response.accepted_envelope_versions);
    if let Some(token) = response.new_auth_token {
        *lock(&node.token) = token;
    }
    for job in response.pending_jobs.jobs {
        take(link, node, job);
    }
}

/// Answers `job` on its own task unless it is running or was just answered.
fn take(link: &Arc<Link>, node: &Arc<Node>, job: PendingJob) {
    if lock(&node.recent).contains(&job.id) || !lock(&node.inflight).insert(job.id.clone()) {
        return;
    }
    let (link, node) = (Arc::clone(link), Arc::clone(node));
    tokio::spawn(async move {
        let answered = answer(&link, &node, &job).await;
        let counter = if answered.is_ok() { &link.counters.jobs_answered } else { &link.counters.job_errors };
        counter.fetch_add(1, Ordering::Relaxed);
        lock(&node.inflight).remove(&job.id);
        let mut recent = lock(&node.recent);
        recent.push_back(job.id);
        if recent.len() > RECENT {
            recent.pop_front();
        }
    });
}

/// The node's WebSocket task, stopped with the heartbeat task that owns it.
#[derive(Debug)]
struct SocketTask(tokio::task::JoinHandle<()>);

impl Drop for SocketTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps the job WebSocket open, reconnecting after a second when it drops.
async fn socket_loop(link: Arc<Link>, node: Arc<Node>) {
    loop {
        if let Err(error) = socket_session(&link, &node).await {
            eprintln!("scale: node {} websocket: {error:#}", node.node_id);
        }
        link.counters.socket_drops.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn socket_session(link: &Arc<Link>, node: &Arc<Node>) -> anyhow::Result<()> {
    let url = format!("{}/grid/nodes/{}/ws", link.ws_base, node.node_id);
    let mut request = url.into_client_request()?;
    let token = lock(&node.token).clone();
    request.headers_mut().insert(HEADER_NODE_AUTH, HeaderValue::from_str(token.expose_secret())?);
    // tungstenite zero-fills its whole read buffer (128 KiB by default); jobs are small.
    let config = WebSocketConfig::default().read_buffer_size(SOCKET_READ_BUFFER);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    link.counters.sockets_open.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let result = async {
        while let Some(message) = stream.next().await {
            match message? {
                Message::Text(text) => match serde_json::from_str::<ServerMessage>(&text) {
                    Ok(ServerMessage::Job { job }) => take(link, node, *job),
                    Ok(ServerMessage::Ping) => {
                        let pong = serde_json::to_string(&NodeMessage::Pong)?;
                        sink.send(Message::Text(pong.into())).await?;
                    }
                    Ok(ServerMessage::TokenRotated { new_auth_token, .. }) => *lock(&node.token) = new_auth_token,
                    Ok(_) | Err(_) => {}
                },
                Message::Ping(payload) => sink.send(Message::Pong(payload)).await?,
                Message::Close(_) => break,
                _ => {}
            }
        }
        anyhow::Ok(())
    }
    .await;
    link.counters.sockets_open.fetch_sub(1, Ordering::Relaxed);
    result
}

/// Opens the job, seals and signs a fixed reply as `sgl` would, and posts it.
async fn answer(link: &Link, node: &Node, job: &PendingJob) -> anyhow::Result<()> {
    let body = complete_body(link, node, job)?;
    let token = lock(&node.token).clone();
    let response = link
        .http
        .post(format!("{}/grid/jobs/{}/complete", link.base_url, job.id.as_str()))
        .header(HEADER_NODE_AUTH, token.expose_secret())
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        bail!("the grid refused the result: {status}: {}", response.text().await.unwrap_or_default());
    }
    Ok(())
}

fn complete_body(link: &Link, node: &Node, job: &PendingJob) -> anyhow::Result<CompleteJobRequest> {
    let Some(JobPayload::Sealed { enc, max_tokens: billed, .. }) = job.payload()? else {
        bail!("the grid sent an unsealed job");
    };
    let opened = open_request(&node.secret, &enc)?;
    let request: InferenceRequest = serde_json::from_slice(&opened.plaintext)?;
    let cap = request.max_tokens.unwrap_or(4).min(billed.unwrap_or(u64::MAX));
    let usage = Usage::new(8, cap.clamp(1, 4));
    let result = JobResult { content: "ok ok ok ok".to_owned(), model: link.model.clone(), usage };
    let sealed_result = opened.reply.seal(result.to_compact_json().as_bytes(), &mut OsRng)?;
    let version = *lock(&node.envelope);
    let claims = ResultClaims {
        job_id: &job.id,
        node_id: &node.node_id,
        kind: ResultKind::Sealed,
        payload: sealed_result.ciphertext.as_bytes(),
        usage: Some(&usage),
        model_sha256: None,
    };
    let signature = ResultSignature {
        result_envelope_signature: claims.sign(&node.identity, version)?,
        result_envelope_version: version.tag().to_owned(),
        model_sha256: None,
        proof_of_execution: (version == EnvelopeVersion::V2).then(|| claims.proof_of_execution()),
    };
    Ok(CompleteJobRequest { result: CompletedResult::Sealed { sealed_result }, usage: Some(usage), signature })
}
