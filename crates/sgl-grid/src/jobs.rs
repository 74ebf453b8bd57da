//! Jobs in flight on this coordinator: dispatch (escrow hold, WebSocket push, heartbeat
//! re-delivery), the events a waiting caller receives, and the one place a job finishes
//! (settle or release, exactly once, in one database transaction).
//!
//! Database work that moves money runs in spawned tasks, so a caller or node hanging up
//! mid-request cannot cancel it half-way.

pub mod commit;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use sgl_grid_store::group::{EndedJob, JobWrite, StartedJob};
use sgl_grid_store::jobs::{JobEnd, JobMovement, JobRecord};
use sgl_grid_store::ledger::PostError;
use sgl_protocol::api::embeddings::EmbeddingJobResult;
use sgl_protocol::api::inference::{JobResult, Usage};
use sgl_protocol::api::node::{CompleteJobRequest, JobType, PendingJob, ServerMessage, StreamChunkPost};
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::seal::{ReplyOpener, StreamOpener};
use tokio::sync::mpsc;

use crate::admission::Slot;
use crate::config::ReferencePrice;
use crate::service::billing;
use crate::service::pricing::cost_micros;
use crate::state::AppState;

/// How long after a node stops listing a job it acknowledged the job counts as a ghost.
pub const GHOST_GRACE_MS: i64 = 10_000;
/// Events buffered between a node's posts and the waiting caller.
const EVENT_BUFFER: usize = 64;

/// Why a job could not be dispatched or ended as asked. No HTTP here: `crate::error` maps it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The paying key holds less than the job's hold.
    #[error(
        "this request may cost up to ${:.6} and the key has ${:.6} of credits; add credits or lower max_tokens",
        *debit as f64 / 1e6,
        *balance as f64 / 1e6
    )]
    InsufficientCredits {
        /// The key's credits, micro-dollars.
        balance: i64,
        /// The hold, micro-dollars.
        debit: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] sgl_grid_store::StoreError),
    /// The ledger refused a movement it should have taken.
    #[error(transparent)]
    Ledger(PostError),
    /// The job writer stopped.
    #[error(transparent)]
    Committer(#[from] commit::CommitterGone),
    /// The task dispatching or ending the job did not finish.
    #[error("the task recording the job failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<PostError> for JobError {
    fn from(error: PostError) -> Self {
        match error {
            PostError::Store(error) => Self::Store(error),
            PostError::InsufficientFunds { balance, debit, .. } => Self::InsufficientCredits { balance, debit },
            other => Self::Ledger(other),
        }
    }
}

/// What the caller waiting on a job receives.
#[derive(Debug)]
pub enum JobEvent {
    /// A verified non-stream result; `opened` is the plaintext when the grid sealed the request.
    Completed {
        /// The node's body, signature verified.
        body: Box<CompleteJobRequest>,
        /// The opened result, for requests the grid sealed itself.
        opened: Option<Opened>,
    },
    /// A verified stream chunk; `text` is its plaintext when the grid sealed the request.
    Chunk {
        /// The node's chunk, signature verified.
        post: Box<StreamChunkPost>,
        /// The opened text, for requests the grid sealed itself.
        text: Option<String>,
    },
    /// The job failed; `before_output` says whether nothing had been relayed, which decides
    /// whether another node may be tried.
    Failed {
        /// Why, safe to show to the caller.
        reason: String,
        /// Nothing had been relayed yet.
        before_output: bool,
        /// The node could not take the input (an embedding over the model's limit): the
        /// caller's error, not to be retried elsewhere.
        input_rejected: bool,
    },
}

/// For requests the grid sealed on a caller's behalf: how it reads the node's answer.
#[derive(Debug)]
pub struct GridOpener {
    /// Opens a non-stream reply.
    pub reply: ReplyOpener,
    /// Opens stream chunks, in order.
    pub stream: Option<StreamOpener>,
    /// For an embedding job: the vectors its answer must hold.
    pub embeddings: Option<EmbeddingShape>,
}

/// The vectors an embedding job's answer must hold: one per input, each as wide as the node's
/// model announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingShape {
    /// Inputs sent.
    pub inputs: usize,
    /// Values per vector.
    pub dimensions: usize,
}

/// A node's answer, opened by the grid for a request it sealed itself.
#[derive(Debug)]
pub enum Opened {
    /// A chat completion.
    Chat(JobResult),
    /// Embeddings, checked against their [`EmbeddingShape`]: one vector per input, in order.
    Embeddings {
        /// The decoded vectors.
        vectors: Vec<Vec<f32>>,
        /// The node's result, with its model and usage.
        result: EmbeddingJobResult,
    },
}

impl Opened {
    /// The token counts the opened answer states.
    pub fn usage(&self) -> Usage {
        match self {
            Self::Chat(result) => result.usage,
            Self::Embeddings { result, .. } => result.usage,
        }
    }
}

/// A job on its way through a node.
#[derive(Debug)]
pub struct LiveJob {
    /// The node running it.
    pub node_id: NodeId,
    /// Where the operator's share goes.
    pub operator_wallet: String,
    /// Who pays.
    pub api_key_id: i64,
    /// The price billed.
    pub price: ReferencePrice,
    /// Escrowed micro-dollars.
    pub held_micros: i64,
    /// Streamed.
    pub stream: bool,
    /// What the node is given.
    pub pending: PendingJob,
    /// First sent to the node (WebSocket or heartbeat).
    pub delivered_at: Option<i64>,
    /// The node showed it has the job (listed it or posted for it).
    pub acked: bool,
    /// The last heartbeat that listed the job.
    pub last_listed_at: Option<i64>,
    /// Dispatched at.
    pub dispatched_at: i64,
    /// The last sign of progress (dispatch, a chunk).
    pub last_activity_at: i64,
    /// The next stream chunk expected.
    pub next_seq: u64,
    /// The signature of the last chunk accepted, so a node retrying a chunk whose answer it
    /// lost is told it was taken instead of being refused.
    pub last_chunk_signature: Option<String>,
    /// Chunks handed to a caller that was still listening.
    pub chunks_delivered: u64,
    /// Completion tokens the last delivered chunk signed for (v2 nodes sign a running count on
    /// every chunk): what a stream cut short is billed.
    pub delivered_tokens: u64,
    /// The completion cap the hold assumed.
    pub max_tokens: u64,
    /// `delivered_tokens` as last written to the job's row, and when.
    pub recorded_tokens: u64,
    /// See `recorded_tokens`.
    pub recorded_at_ms: i64,
    /// Set when the grid sealed the request itself.
    pub opener: Option<GridOpener>,
    pub(crate) events: mpsc::Sender<JobEvent>,
}

impl LiveJob {
    /// The completion tokens that reached the caller of a stream that ended early, given the
    /// node's claim of tokens emitted over `sent` content chunks: the running count the last
    /// delivered chunk signed (v2), else the claim prorated over the chunks the caller received,
    /// rounded down (such chunks carry no counts). Never more than the cap; recorded as what is
    /// billed.
    pub fn delivered(&mut self, claimed: u64, sent: u64) -> u64 {
        if self.delivered_tokens == 0 {
            self.delivered_tokens = claimed.min(self.max_tokens).saturating_mul(self.chunks_delivered) / sent.max(1);
        }
        self.delivered_tokens = self.delivered_tokens.min(self.max_tokens);
        self.delivered_tokens
    }
}

/// All jobs in flight and the nodes' WebSocket sessions.
#[derive(Debug, Default)]
pub struct Jobs {
    live: Mutex<HashMap<JobId, LiveJob>>,
    sessions: Mutex<HashMap<NodeId, mpsc::Sender<ServerMessage>>>,
    cancelled: Mutex<HashMap<NodeId, Vec<JobId>>>,
}

impl Jobs {
    /// Locks the jobs map. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, HashMap<JobId, LiveJob>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the sessions map.
    pub fn sessions(&self) -> MutexGuard<'_, HashMap<NodeId, mpsc::Sender<ServerMessage>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells `node_id` to stop `job_id` in its next heartbeat answer from this replica (see
    /// [`cancel`], which also pushes it).
    fn note_cancelled(&self, node_id: NodeId, job_id: JobId) {
        let mut cancelled = self.cancelled.lock().unwrap_or_else(PoisonError::into_inner);
        let list = cancelled.entry(node_id).or_default();
        // Bounded: a node that never heartbeats again cannot grow it without end.
        if list.len() < MAX_CANCELLED_PER_NODE {
            list.push(job_id);
        }
    }

    /// The cancellations for `node_id` not yet delivered by a heartbeat, taken.
    pub fn take_cancelled(&self, node_id: &NodeId) -> Vec<JobId> {
        self.cancelled.lock().unwrap_or_else(PoisonError::into_inner).remove(node_id).unwrap_or_default()
    }
}

/// Cancellations kept per node until its next heartbeat.
const MAX_CANCELLED_PER_NODE: usize = 1024;

/// Tells `node_id` to stop `job_id`: pushed over its WebSocket now (by whichever replica holds
/// it), and listed in its next heartbeat answer from this replica (the push may be lost, or the
/// node may have no socket).
pub fn cancel(state: &AppState, node_id: NodeId, job_id: JobId) {
    crate::cluster::push(state, node_id, ServerMessage::Cancel { job_id: job_id.clone() });
    state.jobs().note_cancelled(node_id, job_id);
}

/// Cancels a job if its caller leaves before any output: dropped while armed (the request
/// handler's future was dropped because the caller disconnected), it fails the job without
/// blaming the node, bills nothing (nothing reached the caller) and tells the node to stop.
#[derive(Debug)]
pub struct CancelOnDrop {
    state: AppState,
    job_id: JobId,
    node_id: NodeId,
    armed: bool,
}

impl CancelOnDrop {
    /// Armed for `job_id` on `node_id`.
    pub fn new(state: &AppState, job_id: &JobId, node_id: NodeId) -> Self {
        Self { state: state.clone(), job_id: job_id.clone(), node_id, armed: true }
    }

    /// The caller got its answer (or the job ended otherwise): nothing to cancel.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        // A stream whose first chunk already went out is the relay's: the node learns the caller
        // left from `closed: true` and settles what was delivered.
        let untouched = self.state.jobs().lock().get(&self.job_id).is_some_and(|job| job.chunks_delivered == 0);
        if !self.armed || !untouched {
            return;
        }
        let (state, job_id, node_id) = (self.state.clone(), self.job_id.clone(), self.node_id);
        tracing::info!(target: "sgl::events::job", job_id = %job_id, "the caller left; cancelling the job");
        tokio::spawn(async move {
            let reason = "the caller went away before the answer".to_owned();
            match finish(&state, &job_id, Finish::Failed { reason, node_at_fault: false }).await {
                Ok(true) => cancel(&state, node_id, job_id),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, job_id = %job_id, "cancelling a job failed"),
            }
        });
    }
}

/// What to dispatch.
#[derive(Debug)]
pub struct Dispatch {
    /// The slot claimed on the node that runs the job.
    pub slot: Slot,
    /// The operator's wallet.
    pub operator_wallet: String,
    /// Who pays.
    pub api_key_id: i64,
    /// Chat or embeddings.
    pub job_type: JobType,
    /// The model.
    pub model: String,
    /// The price billed.
    pub price: ReferencePrice,
    /// Micro-dollars to hold.
    pub hold_micros: i64,
    /// The completion cap the hold assumed.
    pub max_tokens: u64,
    /// Stream the result.
    pub stream: bool,
    /// The grid's opener when it sealed the request itself; `None` for caller-sealed requests.
    pub opener: Option<GridOpener>,
    /// The node's `input_payload`.
    pub payload: Value,
}

/// Records the job and holds the quote (atomically), then hands the job to the node. Returns
/// the receiver of the job's events.
pub async fn dispatch(state: &AppState, dispatch: Dispatch) -> Result<(JobId, mpsc::Receiver<JobEvent>), JobError> {
    // In a task of its own, so that a caller hanging up mid-dispatch cannot leave a job
    // recorded and held but never handed to its node.
    let state = state.clone();
    tokio::spawn(async move { start(&state, dispatch).await }).await?
}

async fn start(state: &AppState, dispatch: Dispatch) -> Result<(JobId, mpsc::Receiver<JobEvent>), JobError> {
    let job_id = JobId::random();
    let now = state.now_ms();
    let node_id = dispatch.slot.node_id();
    let job = StartedJob {
        id: job_id.to_string(),
        node_id: node_id.to_string(),
        api_key_id: dispatch.api_key_id,
        model: dispatch.model.clone(),
        sealed_by_caller: dispatch.opener.is_none(),
        stream: dispatch.stream,
        max_tokens: i64::try_from(dispatch.max_tokens).unwrap_or(i64::MAX),
        held_micros: dispatch.hold_micros,
        replica: state.cluster().map(|cluster| cluster.id().to_owned()),
    };
    let hold = billing::hold(job_id.as_str(), dispatch.api_key_id, dispatch.hold_micros);
    state.committer().write(JobWrite::Start { job, hold }).await??;
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    let (slot, live) = LiveJob::dispatched(job_id.clone(), dispatch, now, events);
    let message = ServerMessage::Job { job: Box::new(live.pending.clone()) };
    // The slot, counted since it was claimed, is the job's before the job can finish.
    slot.into_job();
    state.jobs().lock().insert(job_id.clone(), live);
    let pushed = crate::cluster::push(state, node_id, message);
    if pushed && let Some(job) = state.jobs().lock().get_mut(&job_id) {
        job.delivered_at = Some(now);
    }
    tracing::info!(target: "sgl::events::job", job_id = %job_id, %node_id, pushed, "job dispatched");
    Ok((job_id, receiver))
}

impl LiveJob {
    /// The live record of `dispatch` as `job_id`, dispatched at `now`, and its claimed slot.
    fn dispatched(job_id: JobId, dispatch: Dispatch, now: i64, events: mpsc::Sender<JobEvent>) -> (Slot, Self) {
        let pending = PendingJob {
            id: job_id,
            job_type: dispatch.job_type.as_str().to_owned(),
            model: Some(dispatch.model),
            input_payload: Some(dispatch.payload),
        };
        let live = Self {
            node_id: dispatch.slot.node_id(),
            operator_wallet: dispatch.operator_wallet,
            api_key_id: dispatch.api_key_id,
            price: dispatch.price,
            held_micros: dispatch.hold_micros,
            stream: dispatch.stream,
            pending,
            delivered_at: None,
            acked: false,
            last_listed_at: None,
            dispatched_at: now,
            last_activity_at: now,
            next_seq: 0,
            last_chunk_signature: None,
            chunks_delivered: 0,
            delivered_tokens: 0,
            recorded_tokens: 0,
            recorded_at_ms: i64::MIN,
            max_tokens: dispatch.max_tokens,
            opener: dispatch.opener,
            events,
        };
        (dispatch.slot, live)
    }
}

/// How a job ends.
#[derive(Debug)]
pub enum Finish {
    /// With a verified result and these counts; `event` goes to the waiting caller first.
    Completed {
        /// The node's (signed, in v2) usage.
        usage: Usage,
        /// The final event for the caller, if any (stream chunks were sent already).
        event: Option<JobEvent>,
    },
    /// Failed; nothing is billed.
    Failed {
        /// Why.
        reason: String,
        /// Count it against the node's reputation.
        node_at_fault: bool,
    },
    /// The node could not take the input (`FailCode::InputRejected` on an embedding job):
    /// nothing is billed and the node is not at fault.
    Rejected {
        /// The node's reason.
        reason: String,
    },
}

/// Finishes a live job exactly once: settles or releases its escrow, updates the node's record
/// and tells the waiting caller. Returns false if the job was not live.
pub async fn finish(state: &AppState, job_id: &JobId, finish: Finish) -> Result<bool, JobError> {
    let Some(job) = state.jobs().lock().remove(job_id) else { return Ok(false) };
    crate::admission::give_back(state, job.node_id);
    let settle = |cost| {
        JobMovement::Settle(billing::Settlement {
            job_id: job_id.to_string(),
            api_key_id: job.api_key_id,
            operator_wallet: job.operator_wallet.clone(),
            held: job.held_micros,
            cost,
            shares: state.config().shares,
        })
    };
    let release = || JobMovement::Release(billing::release(job_id.as_str(), job.api_key_id, job.held_micros));
    let mut answer = None;
    let (end, movement, completed, node_at_fault) = match finish {
        Finish::Completed { usage, event } => {
            // Only what reaches a listening caller is paid for; the answer itself goes out
            // after the job's commit.
            answer = event.filter(|_| !job.events.is_closed());
            if answer.is_some() || job.chunks_delivered > 0 {
                let cost = cost_micros(job.price, usage.prompt_tokens, usage.completion_tokens).min(job.held_micros);
                (Ending::Completed { usage, cost }, settle(cost), true, false)
            } else {
                (Ending::Failed("the caller went away before any output".to_owned()), release(), false, false)
            }
        }
        Finish::Failed { reason, node_at_fault } => {
            let before_output = job.chunks_delivered == 0 && job.next_seq == 0;
            let event = JobEvent::Failed { reason: reason.clone(), before_output, input_rejected: false };
            let _ = job.events.try_send(event);
            // A stream cut short is paid for what reached the caller (the completion tokens
            // the last delivered chunk signed for); anything else releases the whole hold.
            let cost = cost_micros(job.price, 0, job.delivered_tokens).min(job.held_micros);
            if cost > 0 {
                (Ending::Cut { reason, tokens: job.delivered_tokens, cost }, settle(cost), false, node_at_fault)
            } else {
                (Ending::Failed(reason), release(), false, node_at_fault)
            }
        }
        Finish::Rejected { reason } => {
            let event = JobEvent::Failed { reason: reason.clone(), before_output: true, input_rejected: true };
            let _ = job.events.try_send(event);
            (Ending::Failed(reason), release(), false, false)
        }
    };
    // In a task of its own, so that whoever asked hanging up cannot leave a caller billed and
    // never answered.
    let (state, job_id) = (state.clone(), job_id.clone());
    tokio::spawn(async move {
        record_end(&state, &job_id, &job.node_id, end, movement, completed, node_at_fault).await?;
        if let Some(event) = answer {
            let _ = job.events.try_send(event);
        }
        Ok::<_, JobError>(())
    })
    .await??;
    Ok(true)
}

/// How a job ended.
#[derive(Debug)]
enum Ending {
    Completed { usage: Usage, cost: i64 },
    Failed(String),
    Cut { reason: String, tokens: u64, cost: i64 },
}

async fn record_end(
    state: &AppState,
    job_id: &JobId,
    node_id: &NodeId,
    ending: Ending,
    movement: JobMovement,
    completed: bool,
    node_at_fault: bool,
) -> Result<(), JobError> {
    let end = match &ending {
        Ending::Completed { usage, cost } => EndedJob::Completed {
            prompt_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
            completion_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
            billed_micros: *cost,
        },
        Ending::Failed(reason) => EndedJob::Failed { error: reason.clone() },
        Ending::Cut { reason, tokens, cost } => EndedJob::Cut {
            error: reason.clone(),
            completion_tokens: i64::try_from(*tokens).unwrap_or(i64::MAX),
            billed_micros: *cost,
        },
    };
    // The job's row, its money and (when it counts) its node's record end in one transaction.
    let outcome = (completed || node_at_fault).then(|| (node_id.to_string(), completed));
    let write = JobWrite::End { job_id: job_id.to_string(), end, movement, outcome };
    if !state.committer().write(write).await?? {
        return Ok(());
    }
    let counter = if completed { &state.metrics().jobs_completed } else { &state.metrics().jobs_failed };
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match ending {
        Ending::Completed { cost, .. } => {
            tracing::info!(target: "sgl::events::job", job_id = %job_id, cost_micros = cost, "job settled");
        }
        Ending::Failed(reason) => {
            tracing::info!(target: "sgl::events::job", job_id = %job_id, reason, "job failed, escrow released");
        }
        Ending::Cut { reason, tokens, cost } => {
            tracing::info!(
                target: "sgl::events::job",
                job_id = %job_id, reason, delivered_tokens = tokens, cost_micros = cost, "stream cut short, delivered tokens billed"
            );
        }
    }
    Ok(())
}

/// For a heartbeat another replica took: [`reconcile`] this replica's jobs on `node_id`, the
/// unacknowledged ones pushed again (through whichever replica holds the node's socket).
pub(crate) fn listed_elsewhere(state: &AppState, node_id: NodeId, active: &[JobId]) {
    let (state, active) = (state.clone(), active.to_vec());
    tokio::spawn(async move {
        match reconcile(&state, node_id, &active).await {
            Ok(jobs) => {
                for job in jobs {
                    crate::cluster::push(&state, node_id, ServerMessage::Job { job: Box::new(job) });
                }
            }
            Err(error) => tracing::warn!(%error, %node_id, "reconciling a node's jobs failed"),
        }
    });
}

/// For a heartbeat: notes the jobs the node lists, fails jobs it acknowledged and has not
/// listed for [`GHOST_GRACE_MS`] (ghosts), and returns the unacknowledged jobs to (re)deliver.
pub async fn reconcile(state: &AppState, node_id: NodeId, active: &[JobId]) -> Result<Vec<PendingJob>, JobError> {
    let now = state.now_ms();
    let active: HashSet<&JobId> = active.iter().collect();
    let mut ghosts = Vec::new();
    let mut deliver = Vec::new();
    for (job_id, job) in state.jobs().lock().iter_mut().filter(|(_, job)| job.node_id == node_id) {
        if active.contains(job_id) {
            job.acked = true;
            job.last_listed_at = Some(now);
        } else if job.acked {
            let unlisted_since = job.last_listed_at.or(job.delivered_at).unwrap_or(job.dispatched_at);
            if now - unlisted_since >= GHOST_GRACE_MS {
                ghosts.push(job_id.clone());
            }
        } else {
            job.delivered_at.get_or_insert(now);
            deliver.push(job.pending.clone());
        }
    }
    for job_id in ghosts {
        let reason = "the node no longer reports this job".to_owned();
        finish(state, &job_id, Finish::Failed { reason, node_at_fault: true }).await?;
    }
    Ok(deliver)
}

/// Fails every live job without progress for the job timeout, and every job whose node has
/// gone silent (no heartbeat within the node timeout), so its caller can be served elsewhere;
/// also purges expired device logins once a minute.
pub async fn reap(state: &AppState) -> Result<usize, JobError> {
    if state.leads() {
        crate::routes::device::purge_expired(state).await?;
    }
    let job_timeout_ms = state.config().job_timeout_ms();
    let node_timeout_ms = state.config().node_timeout_ms();
    let now = state.now_ms();
    let silent: HashSet<NodeId> = state
        .registry()
        .snapshot()
        .into_iter()
        .filter(|node| !node.is_online(now, node_timeout_ms))
        .map(|node| node.node_id)
        .collect();
    let doomed: Vec<(JobId, &'static str)> = state
        .jobs()
        .lock()
        .iter()
        .filter_map(|(id, job)| {
            if now - job.last_activity_at > job_timeout_ms {
                Some((id.clone(), "the node made no progress on the job in time"))
            } else if silent.contains(&job.node_id) {
                Some((id.clone(), "the node went silent"))
            } else {
                None
            }
        })
        .collect();
    for (job_id, reason) in &doomed {
        finish(state, job_id, Finish::Failed { reason: (*reason).to_owned(), node_at_fault: true }).await?;
    }
    crate::admission::offer_all(state);
    Ok(doomed.len())
}

/// Runs [`reap`], the expiry of compute leases and, on the leader, the machines' and the order
/// book's duties every `every`, logging failures, until the returned task is aborted.
pub fn spawn_reaper(state: AppState, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(error) = reap(&state).await {
                tracing::warn!(%error, "reaping stuck jobs failed");
            }
            if let Err(error) = crate::service::compute::reap(&state).await {
                tracing::warn!(%error, "expiring compute leases failed");
            }
            if state.leads()
                && let Err(error) = state.machines().duties().await
            {
                tracing::warn!(%error, "machine duties failed");
            }
            if state.leads()
                && let Err(error) = state.market().duties(state.registry()).await
            {
                tracing::warn!(%error, "market duties failed");
            }
        }
    })
}

/// At start: jobs a previous process left dispatched can no longer reach their callers, so
/// they end ([`end_orphan`]). On SQLite this process is the only coordinator, so all of them; on
/// a shared PostgreSQL only jobs no replica holds (written before replicas existed) older than
/// the job timeout; a dead replica's jobs are ended by the leader (`cluster::duties::lead`).
pub async fn release_orphans(state: &AppState) -> Result<usize, JobError> {
    let cutoff = match state.store().backend() {
        sgl_grid_store::Backend::Sqlite => i64::MAX,
        sgl_grid_store::Backend::Postgres => state.now_ms() - state.config().job_timeout_ms(),
    };
    let orphans = state.store().stale_jobs(cutoff).await?;
    for job in &orphans {
        end_orphan(state, job, "the coordinator restarted while the job ran").await?;
    }
    Ok(orphans.len())
}

/// Ends a job whose coordinator is gone: a stream that had delivered tokens is billed for them
/// (as recorded, at most a second behind), anything else has its escrow released. A job that
/// ended meanwhile is left as it is.
pub async fn end_orphan(state: &AppState, job: &JobRecord, error: &str) -> Result<(), JobError> {
    let wallet = state.store().node(&job.node_id).await?.map(|node| node.wallet);
    let (end, movement) = match wallet {
        Some(operator_wallet) if job.delivered_micros > 0 => {
            let cost = job.delivered_micros.min(job.held_micros);
            let end = JobEnd::Cut { error, completion_tokens: job.delivered_tokens, billed_micros: cost };
            let settlement = billing::Settlement {
                job_id: job.id.clone(),
                api_key_id: job.api_key_id,
                operator_wallet,
                held: job.held_micros,
                cost,
                shares: state.config().shares,
            };
            (end, JobMovement::Settle(settlement))
        }
        _ => {
            (JobEnd::Failed { error }, JobMovement::Release(billing::release(&job.id, job.api_key_id, job.held_micros)))
        }
    };
    state.store().finish_job_with(&job.id, &end, &movement, state.now_ms()).await?;
    Ok(())
}

/// How often a live stream's delivered tokens are written down at most.
const RECORD_DELIVERED_EVERY_MS: i64 = 1_000;

/// After a chunk reached its caller: writes the stream's delivered tokens and their cost to
/// the job's row, at most once a second per job and off the answer path, so a coordinator
/// crash loses at most a second of billable output.
pub fn record_delivery(state: &AppState, job_id: &JobId) {
    let now = state.now_ms();
    let due = {
        let mut jobs = state.jobs().lock();
        let Some(job) = jobs.get_mut(job_id) else { return };
        let due = job.delivered_tokens > job.recorded_tokens
            && now.saturating_sub(job.recorded_at_ms) >= RECORD_DELIVERED_EVERY_MS;
        if due {
            (job.recorded_tokens, job.recorded_at_ms) = (job.delivered_tokens, now);
        }
        due.then(|| (job.delivered_tokens, cost_micros(job.price, 0, job.delivered_tokens).min(job.held_micros)))
    };
    let Some((tokens, micros)) = due else { return };
    let (state, id) = (state.clone(), job_id.to_string());
    tokio::spawn(async move {
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
        if let Err(error) = state.store().record_delivered(&id, tokens, micros).await {
            tracing::warn!(%error, job_id = %id, "could not record a stream's delivered tokens");
        }
    });
}
