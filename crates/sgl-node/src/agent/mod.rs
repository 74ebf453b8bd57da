//! The running node (`sgl start`): heartbeats, job pickup over WebSocket with the heartbeat as
//! fallback, an honest capacity gate, job execution, a progress watchdog and local states.
//!
//! Jobs arrive from two transports and are de-duplicated by id (the last
//! [`SEEN_CAPACITY`] ids). A job is taken only when a slot is free. A job that finds every
//! slot busy waits up to [`SLOT_WAIT`] for one: the grid frees a slot the moment it has a
//! result, a little before this node's job task has released it, so back-to-back jobs would
//! otherwise wait for the next heartbeat (seconds). One still not taken is not marked as seen,
//! so the grid's next heartbeat re-delivers it.

pub mod compute;
mod heartbeat;
pub mod jobs;
pub mod market;
mod report;
pub mod state;
mod ws;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sgl_engine::Engine;
use sgl_engine::embed::Embedder;
use sgl_protocol::api::node::PendingJob;
use sgl_protocol::envelope::EnvelopeVersion;
use sgl_protocol::identity::{EncryptionSecret, NodeIdentity};
use sgl_protocol::ids::{AuthToken, JobId, NodeId};
use sgl_protocol::keyfile::{NodeFile, save_node_file};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::client::GridClient;
use crate::harden::lock_in_place;
use state::{Facts, StateTracker};

/// How many job ids are remembered for de-duplication.
pub const SEEN_CAPACITY: usize = 1024;
/// How long a shutdown waits for running jobs.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a job that found every slot busy waits for one before it is left to the grid's
/// re-delivery.
pub const SLOT_WAIT: Duration = Duration::from_secs(2);

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where `node.json` and `state.json` live.
    pub config_dir: PathBuf,
    /// Seconds between heartbeats (seed default 5).
    pub heartbeat_interval: Duration,
    /// A job without any progress for this long is abandoned (seed §3.8).
    pub watchdog_after: Duration,
    /// sha256 hex of this binary, sent on every heartbeat.
    pub binary_hash: String,
    /// The share of the machine the operator keeps: `1 - resource_percent / 100`.
    pub reserved_share: f64,
    /// Take pushed jobs over the WebSocket (the heartbeat still delivers them otherwise).
    pub websocket: bool,
    /// The cluster (compute market) to serve, sent on every heartbeat.
    pub cluster: Option<String>,
    /// General compute, when the node runs it (`--workloads wasm`).
    pub compute: Option<compute::ComputeConfig>,
    /// Bidding on the order book by the operator's price policy (with general compute).
    pub market: Option<market::MarketConfig>,
}

/// The agent stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The engine made no progress through several watchdog restarts: exit so the service
    /// manager starts a clean process.
    #[error(
        "the engine made no progress after {0} watchdog restarts; exiting so the service manager restarts the node"
    )]
    Wedged(u32),
    /// The Wasm sandbox could not be set up.
    #[error("the compute sandbox could not start")]
    Sandbox(#[from] sgl_sandbox::SandboxError),
}

/// The remembered job ids, oldest first.
#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<JobId>,
    ids: HashSet<JobId>,
}

impl Seen {
    fn contains(&self, id: &JobId) -> bool {
        self.ids.contains(id)
    }

    /// Remembers `id`; false if it was already known.
    fn insert(&mut self, id: JobId) -> bool {
        if !self.ids.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN_CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Everything the agent's tasks share.
pub(crate) struct Shared {
    pub(crate) client: GridClient,
    pub(crate) node_id: NodeId,
    pub(crate) identity: NodeIdentity,
    pub(crate) secret: EncryptionSecret,
    pub(crate) engine: Option<Arc<dyn Engine>>,
    /// The embedding model, when the node serves one (`--embedding-model`).
    pub(crate) embedder: Option<Arc<Embedder>>,
    pub(crate) config: AgentConfig,
    pub(crate) state: StateTracker,
    claims: heartbeat::FixedClaims,
    slots: u32,
    token: Mutex<AuthToken>,
    node_file: Mutex<NodeFile>,
    node_file_path: PathBuf,
    token_unsaved: AtomicBool,
    active: AtomicU32,
    /// Woken whenever a slot is released.
    slot_freed: Notify,
    seen: Mutex<Seen>,
    inflight: Mutex<HashMap<JobId, Option<AbortHandle>>>,
    envelope_v2: AtomicBool,
    seed_grid: AtomicBool,
    last_activity_ms: AtomicU64,
    finished: AtomicU64,
    shutting_down: AtomicBool,
    facts: Mutex<Facts>,
    ws_task: Mutex<Option<AbortHandle>>,
    compute: Option<Arc<compute::Worker>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("node_id", &self.node_id).field("slots", &self.slots).finish_non_exhaustive()
    }
}

impl Shared {
    /// The current node token.
    pub(crate) fn token(&self) -> AuthToken {
        lock(&self.token).clone()
    }

    /// The envelope version the grid verifies.
    pub(crate) fn envelope_version(&self) -> EnvelopeVersion {
        if self.envelope_v2.load(Ordering::Relaxed) { EnvelopeVersion::V2 } else { EnvelopeVersion::V1 }
    }

    /// Stamps progress for the watchdog.
    pub(crate) fn touch(&self) {
        self.last_activity_ms.store(now_ms(), Ordering::Relaxed);
    }

    fn active(&self) -> u32 {
        self.active.load(Ordering::SeqCst)
    }

    fn active_job_ids(&self) -> Vec<JobId> {
        lock(&self.inflight).keys().cloned().collect()
    }

    /// Takes a slot if one is free.
    fn take_slot(&self) -> bool {
        self.active.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.slots).then_some(n + 1)).is_ok()
    }

    fn release_slot(&self) {
        let _ = self.active.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_sub(1)));
        self.slot_freed.notify_waiters();
    }

    /// Swaps in a rotated token and saves it; a failed save is retried on every heartbeat so a
    /// restart never comes back with a dead token.
    pub(crate) fn rotate(&self, token: AuthToken) {
        *lock(&self.token) = token.clone();
        lock(&self.node_file).auth_token = token;
        self.token_unsaved.store(true, Ordering::SeqCst);
        self.save_token();
    }

    fn save_token(&self) {
        if !self.token_unsaved.load(Ordering::SeqCst) {
            return;
        }
        let file = lock(&self.node_file).clone();
        match save_node_file(&self.node_file_path, &file) {
            Ok(()) => {
                self.token_unsaved.store(false, Ordering::SeqCst);
                tracing::info!(target: "sgl::events::node", "node token rotated and saved");
            }
            Err(error) => {
                tracing::error!(%error, "could not save the rotated node token; retrying on the next heartbeat");
            }
        }
    }

    /// A job offered by either transport: de-duplicated, gated on capacity, then run.
    pub(crate) fn offer(self: &Arc<Self>, job: PendingJob, via: &'static str) {
        if self.shutting_down.load(Ordering::SeqCst) || lock(&self.seen).contains(&job.id) {
            return;
        }
        if !self.take_slot() {
            let shared = Arc::clone(self);
            tokio::spawn(async move { shared.offer_when_free(job, via).await });
            return;
        }
        self.start(job, via);
    }

    /// Waits up to [`SLOT_WAIT`] for a slot, then runs the job, or leaves it to the grid's
    /// re-delivery.
    async fn offer_when_free(self: Arc<Self>, job: PendingJob, via: &'static str) {
        let deadline = tokio::time::Instant::now() + SLOT_WAIT;
        loop {
            let freed = self.slot_freed.notified();
            if self.shutting_down.load(Ordering::SeqCst) || lock(&self.seen).contains(&job.id) {
                return;
            }
            if self.take_slot() {
                return self.start(job, via);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                tracing::info!(job_id = %job.id, via, "all slots busy; deferring (the grid re-delivers it)");
                return;
            }
        }
    }

    /// Runs a job whose slot is taken (released here if the job turns out to be a duplicate).
    fn start(self: &Arc<Self>, job: PendingJob, via: &'static str) {
        if !lock(&self.seen).insert(job.id.clone()) {
            self.release_slot();
            return;
        }
        let job_id = job.id.clone();
        lock(&self.inflight).insert(job_id.clone(), None);
        self.touch();
        self.update_state(false);
        tracing::info!(target: "sgl::events::job", job_id = %job_id, via, "job accepted");
        let shared = Arc::clone(self);
        let handle = tokio::spawn(async move {
            let result = jobs::run(&shared, &job).await;
            if let Ok(outcome) = result {
                tracing::info!(
                    target: "sgl::events::job",
                    job_id = %job.id,
                    prompt_tokens = outcome.usage.prompt_tokens,
                    completion_tokens = outcome.usage.completion_tokens,
                    streamed = outcome.streamed,
                    caller_left = outcome.caller_left,
                    "job done"
                );
            }
            shared.finish(&job.id);
        });
        if let Some(entry) = lock(&self.inflight).get_mut(&job_id) {
            *entry = Some(handle.abort_handle());
        }
    }

    /// Stops a job the grid cancelled (its caller went away): the generation is dropped, which
    /// stops the engine, and the slot is freed at once. The grid has already finished the job,
    /// so nothing is reported.
    pub(crate) fn cancel(&self, job_id: &JobId, via: &'static str) {
        let handle = lock(&self.inflight).get(job_id).cloned();
        let Some(handle) = handle else { return };
        if let Some(handle) = handle {
            handle.abort();
        }
        tracing::info!(target: "sgl::events::job", job_id = %job_id, via, "job cancelled by the grid: the caller left");
        self.finish(job_id);
    }

    /// Releases a job's slot, once, even if the watchdog already abandoned it.
    fn finish(&self, job_id: &JobId) {
        if lock(&self.inflight).remove(job_id).is_some() {
            self.release_slot();
            self.finished.fetch_add(1, Ordering::SeqCst);
            self.touch();
            self.update_state(false);
        }
    }

    /// An attempt of general compute ended: its counts go to `state.json`.
    pub(crate) fn compute_done(&self) {
        if let Some(worker) = &self.compute {
            let (reported, failed) = (worker.reported.load(Ordering::SeqCst), worker.failed.load(Ordering::SeqCst));
            self.state.record_compute(worker.running(), reported, failed);
        }
        self.touch();
        self.update_state(false);
    }

    /// The general-compute classes this node runs now.
    pub(crate) fn workloads(&self) -> Vec<sgl_protocol::compute::JobClass> {
        self.compute.as_ref().map(|worker| worker.config.classes.clone()).unwrap_or_default()
    }

    /// The embedding model it serves, as heartbeats announce it; none once it shuts down.
    pub(crate) fn embedding_models(&self) -> Vec<sgl_protocol::api::embeddings::EmbeddingModel> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let announce = |embedder: &Arc<Embedder>| sgl_protocol::api::embeddings::EmbeddingModel {
            name: embedder.model_name().to_owned(),
            dimensions: u32::try_from(embedder.dimensions()).unwrap_or(u32::MAX),
            max_input_tokens: embedder.max_input_tokens(),
            model_sha256: embedder.model_sha256().to_owned(),
        };
        self.embedder.iter().map(announce).collect()
    }

    /// The native engines its classes run (`onnxruntime 1.32.0`), announced in heartbeats.
    pub(crate) fn engines(&self) -> Vec<String> {
        self.compute.as_ref().map(|worker| worker.config.engines.announced()).unwrap_or_default()
    }

    /// Re-derives the local state from the last heartbeat's facts and the running jobs.
    fn update_state(&self, heartbeat_ok: bool) {
        let computing = self.compute.as_ref().map(|worker| worker.running());
        let active_jobs = self.active() + computing.unwrap_or(0);
        let facts = Facts { active_jobs, computing: computing.is_some(), ..*lock(&self.facts) };
        self.state.update(facts, heartbeat_ok, self.finished.load(Ordering::SeqCst));
    }
}

/// The models a node serves: a chat engine, an embedding model, either or both.
#[derive(Default)]
pub struct Models {
    /// Chat completions (`--model-path`).
    pub engine: Option<Arc<dyn Engine>>,
    /// Embeddings (`--embedding-model`).
    pub embedder: Option<Arc<Embedder>>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("engine", &self.engine.as_ref().map(|engine| engine.model_name()))
            .field("embedder", &self.embedder.as_ref().map(|embedder| embedder.model_name()))
            .finish()
    }
}

/// A node ready to run.
#[derive(Debug)]
pub struct Agent {
    shared: Arc<Shared>,
}

impl Agent {
    /// An agent for the registered node in `node_file`, serving `models` with `slots` parallel
    /// jobs, and general compute when configured.
    pub fn new(
        client: GridClient,
        node_file: NodeFile,
        identity: NodeIdentity,
        models: Models,
        slots: u32,
        config: AgentConfig,
    ) -> Result<Self, AgentError> {
        let Models { engine, embedder } = models;
        let compute = config.compute.clone().map(compute::Worker::new).transpose()?.map(Arc::new);
        let slots = slots.max(1);
        let secret = identity.encryption_secret();
        let model = engine.as_ref().map(|e| e.model_name().to_owned());
        let state = StateTracker::new(&config.config_dir, model, slots);
        let claims = heartbeat::FixedClaims::new(&identity, &node_file.node_id);
        let shared = Shared {
            client,
            claims,
            node_id: node_file.node_id,
            identity,
            secret,
            engine,
            embedder,
            state,
            slots,
            token: Mutex::new(node_file.auth_token.clone()),
            node_file_path: config.config_dir.join(crate::init::NODE_FILE),
            node_file: Mutex::new(node_file),
            token_unsaved: AtomicBool::new(false),
            active: AtomicU32::new(0),
            slot_freed: Notify::new(),
            seen: Mutex::new(Seen::default()),
            inflight: Mutex::new(HashMap::new()),
            envelope_v2: AtomicBool::new(false),
            seed_grid: AtomicBool::new(true),
            last_activity_ms: AtomicU64::new(now_ms()),
            finished: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            facts: Mutex::new(Facts::default()),
            ws_task: Mutex::new(None),
            compute,
            config,
        };
        let shared = Arc::new(shared);
        // The identity and encryption keys stay in these pages for the life of the process.
        for protection in [lock_in_place(&shared.identity), lock_in_place(&shared.secret)] {
            if !protection.locked {
                tracing::warn!(error = protection.error.as_deref(), "could not lock key memory");
            }
        }
        Ok(Self { shared })
    }

    /// Runs until `shutdown` resolves (then drains running jobs for up to [`DRAIN_TIMEOUT`]) or
    /// the watchdog gives up.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), AgentError> {
        let shared = self.shared;
        let worker = shared.compute.clone().map(|worker| tokio::spawn(compute::run(Arc::clone(&shared), worker)));
        let bidder = shared.config.market.clone().map(|config| tokio::spawn(market::run(Arc::clone(&shared), config)));
        let result = tokio::select! {
            result = heartbeat::run(Arc::clone(&shared)) => result,
            () = shutdown => Ok(()),
        };
        shared.shutting_down.store(true, Ordering::SeqCst);
        for task in [worker, bidder].into_iter().flatten() {
            task.abort();
        }
        ws::stop(&shared);
        heartbeat::farewell(&shared).await;
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while shared.active() > 0 && tokio::time::Instant::now() < deadline && result.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        heartbeat::abandon_all(&shared, "the node is shutting down").await;
        result
    }
}

#[cfg(test)]
mod tests {
    //! De-duplication memory.

    use super::*;

    #[test]
    fn seen_ids_are_bounded_and_forget_the_oldest() {
        let mut seen = Seen::default();
        let id = |n: usize| -> JobId { format!("job-{n}").parse().unwrap() };
        assert!(seen.insert(id(0)));
        assert!(!seen.insert(id(0)));
        for n in 1..=SEEN_CAPACITY {
            assert!(seen.insert(id(n)));
        }
        assert!(!seen.contains(&id(0)), "the oldest id is forgotten");
        assert!(seen.contains(&id(SEEN_CAPACITY)));
        assert_eq!(seen.order.len(), SEEN_CAPACITY);
    }
}
