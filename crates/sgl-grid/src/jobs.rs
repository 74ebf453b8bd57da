//! Jobs in flight on this coordinator: dispatch (escrow hold, WebSocket push, heartbeat
//! fallback), the events a waiting caller receives, and the one place a job finishes
//! (settle or release, exactly once).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use sgl_grid_store::jobs::{JobEnd, NewJob};
use sgl_grid_store::ledger::PostError;
use sgl_protocol::api::error::ErrorCode;
use sgl_protocol::api::inference::Usage;
use sgl_protocol::api::node::{CompleteJobRequest, JOB_TYPE_INFERENCE, PendingJob, ServerMessage, StreamChunkPost};
use sgl_protocol::ids::{JobId, NodeId};
use tokio::sync::mpsc;

use crate::config::ReferencePrice;
use crate::error::ApiError;
use crate::service::billing;
use crate::service::pricing::cost_micros;
use crate::state::AppState;

/// How long after delivery a job the node stopped reporting counts as a ghost.
pub const GHOST_GRACE_MS: i64 = 10_000;
/// Events buffered between a node's posts and the waiting caller.
const EVENT_BUFFER: usize = 64;

/// What the caller waiting on a job receives.
#[derive(Debug)]
pub enum JobEvent {
    /// A verified non-stream result.
    Completed(Box<CompleteJobRequest>),
    /// A verified stream chunk.
    Chunk(Box<StreamChunkPost>),
    /// The job failed; `before_output` says whether any output had been relayed, which decides
    /// whether another node may be tried.
    Failed {
        /// Why, safe to show to the caller.
        reason: String,
        /// Nothing had been relayed yet.
        before_output: bool,
    },
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
    /// The effective price.
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
    /// Dispatched at.
    pub dispatched_at: i64,
    /// The next stream chunk expected.
    pub next_seq: u64,
    pub(crate) events: mpsc::Sender<JobEvent>,
}

/// All jobs in flight and the nodes' WebSocket sessions.
#[derive(Debug, Default)]
pub struct Jobs {
    live: Mutex<HashMap<JobId, LiveJob>>,
    sessions: Mutex<HashMap<NodeId, mpsc::Sender<ServerMessage>>>,
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

    /// The events sender of a job, if it is live and belongs to `node_id`.
    pub fn sender_for(&self, job_id: &JobId) -> Option<(NodeId, mpsc::Sender<JobEvent>)> {
        self.lock().get(job_id).map(|job| (job.node_id, job.events.clone()))
    }
}

/// What to dispatch.
#[derive(Debug)]
pub struct Dispatch {
    /// The node.
    pub node_id: NodeId,
    /// The operator's wallet.
    pub operator_wallet: String,
    /// Who pays.
    pub api_key_id: i64,
    /// The model.
    pub model: String,
    /// The effective price.
    pub price: ReferencePrice,
    /// Micro-dollars to hold.
    pub hold_micros: i64,
    /// The completion cap the hold assumed.
    pub max_tokens: u64,
    /// Stream the result.
    pub stream: bool,
    /// The caller sealed the request.
    pub sealed_by_caller: bool,
    /// The node's `input_payload`.
    pub payload: Value,
}

/// Records the job, holds the quote, and hands the job to the node. Returns the receiver of
/// the job's events.
pub async fn dispatch(state: &AppState, dispatch: Dispatch) -> Result<(JobId, mpsc::Receiver<JobEvent>), ApiError> {
    let job_id = JobId::random();
    let now = state.now_ms();
    let node_text = dispatch.node_id.to_string();
    let record = NewJob {
        id: job_id.as_str(),
        node_id: &node_text,
        api_key_id: dispatch.api_key_id,
        model: &dispatch.model,
        sealed_by_caller: dispatch.sealed_by_caller,
        stream: dispatch.stream,
        max_tokens: i64::try_from(dispatch.max_tokens).unwrap_or(i64::MAX),
        held_micros: dispatch.hold_micros,
    };
    state.store().insert_job(&record, now).await?;
    let hold = billing::hold(job_id.as_str(), dispatch.api_key_id, dispatch.hold_micros);
    if let Err(error) = state.store().post(&hold, now).await {
        state.store().finish_job(job_id.as_str(), &JobEnd::Failed { error: "not dispatched: credits" }, now).await?;
        return Err(match error {
            PostError::InsufficientFunds { balance, debit, .. } => ApiError::payment_required(
                ErrorCode::InsufficientCredits,
                format!(
                    "this request may cost up to ${:.6} and the key has ${:.6} of credits; add credits or lower max_tokens",
                    debit as f64 / 1e6,
                    balance as f64 / 1e6
                ),
            ),
            other => ApiError::internal(&other),
        });
    }
    let (events, receiver) = mpsc::channel(EVENT_BUFFER);
    let pending = PendingJob {
        id: job_id.clone(),
        job_type: JOB_TYPE_INFERENCE.to_owned(),
        model: Some(dispatch.model.clone()),
        input_payload: Some(dispatch.payload),
    };
    let pushed = state
        .jobs()
        .sessions()
        .get(&dispatch.node_id)
        .is_some_and(|session| session.try_send(ServerMessage::Job { job: Box::new(pending.clone()) }).is_ok());
    let live = LiveJob {
        node_id: dispatch.node_id,
        operator_wallet: dispatch.operator_wallet,
        api_key_id: dispatch.api_key_id,
        price: dispatch.price,
        held_micros: dispatch.hold_micros,
        stream: dispatch.stream,
        pending,
        delivered_at: pushed.then_some(now),
        acked: false,
        dispatched_at: now,
        next_seq: 0,
        events,
    };
    state.jobs().lock().insert(job_id.clone(), live);
    state.registry().update(&node_text, |node| node.jobs_in_flight += 1);
    tracing::info!(target: "sgl::events::job", job_id = %job_id, node_id = %dispatch.node_id, pushed, "job dispatched");
    Ok((job_id, receiver))
}

/// How a job ends.
#[derive(Debug)]
pub enum Finish {
    /// With a verified result and these counts; `event` goes to the waiting caller first.
    Completed {
        /// The node's (signed, in v2) usage.
        usage: Usage,
        /// The final event for the caller, if any.
        event: Option<JobEvent>,
    },
    /// Failed; nothing is billed.
    Failed {
        /// Why.
        reason: String,
        /// Count it against the node's reputation.
        node_at_fault: bool,
    },
}

/// Finishes a live job exactly once: settles or releases its escrow, updates the node's record
/// and tells the waiting caller. Returns false if the job was not live.
pub async fn finish(state: &AppState, job_id: &JobId, finish: Finish) -> Result<bool, ApiError> {
    let Some(job) = state.jobs().lock().remove(job_id) else { return Ok(false) };
    let node_text = job.node_id.to_string();
    state.registry().update(&node_text, |node| node.jobs_in_flight = node.jobs_in_flight.saturating_sub(1));
    let now = state.now_ms();
    match finish {
        Finish::Completed { usage, event } => {
            let delivered = match event {
                Some(event) => job.events.send(event).await.is_ok(),
                None => !job.events.is_closed() || job.stream,
            };
            if !delivered {
                // A non-stream caller who left gets nothing, so pays nothing.
                return release(state, job_id, &job, "caller went away before the result", false).await;
            }
            let cost = cost_micros(job.price, usage.prompt_tokens, usage.completion_tokens).min(job.held_micros);
            let end = JobEnd::Completed {
                prompt_tokens: i64::try_from(usage.prompt_tokens).unwrap_or(i64::MAX),
                completion_tokens: i64::try_from(usage.completion_tokens).unwrap_or(i64::MAX),
                billed_micros: cost,
            };
            if state.store().finish_job(job_id.as_str(), &end, now).await? {
                let settlement =
                    billing::settle(job_id.as_str(), job.api_key_id, &job.operator_wallet, job.held_micros, cost);
                state.store().post(&settlement, now).await.map_err(|e| ApiError::internal(&e))?;
                state.store().record_job_outcome(&node_text, true).await?;
                state.metrics().jobs_completed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(target: "sgl::events::job", job_id = %job_id, cost_micros = cost, "job settled");
            }
            Ok(true)
        }
        Finish::Failed { reason, node_at_fault } => {
            let before_output = job.next_seq == 0;
            let _ = job.events.try_send(JobEvent::Failed { reason: reason.clone(), before_output });
            release(state, job_id, &job, &reason, node_at_fault).await
        }
    }
}

async fn release(
    state: &AppState,
    job_id: &JobId,
    job: &LiveJob,
    reason: &str,
    node_at_fault: bool,
) -> Result<bool, ApiError> {
    let now = state.now_ms();
    if state.store().finish_job(job_id.as_str(), &JobEnd::Failed { error: reason }, now).await? {
        let release = billing::release(job_id.as_str(), job.api_key_id, job.held_micros);
        state.store().post(&release, now).await.map_err(|e| ApiError::internal(&e))?;
        state.metrics().jobs_failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if node_at_fault {
            state.store().record_job_outcome(&job.node_id.to_string(), false).await?;
        }
        tracing::info!(target: "sgl::events::job", job_id = %job_id, reason, "job failed, escrow released");
    }
    Ok(true)
}

/// For a heartbeat: marks the jobs the node lists as acknowledged, fails acknowledged jobs it
/// no longer lists (ghosts), and returns the unacknowledged jobs to (re)deliver.
pub async fn reconcile(state: &AppState, node_id: NodeId, active: &[JobId]) -> Result<Vec<PendingJob>, ApiError> {
    let now = state.now_ms();
    let active: HashSet<&JobId> = active.iter().collect();
    let mut ghosts = Vec::new();
    let mut deliver = Vec::new();
    for (job_id, job) in state.jobs().lock().iter_mut().filter(|(_, job)| job.node_id == node_id) {
        if active.contains(job_id) {
            job.acked = true;
        } else if job.acked && job.delivered_at.is_some_and(|at| now - at >= GHOST_GRACE_MS) {
            ghosts.push(job_id.clone());
        } else if !job.acked {
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

/// Fails every live job older than the configured job timeout.
pub async fn reap(state: &AppState) -> Result<usize, ApiError> {
    let timeout_ms = i64::try_from(state.config().job_timeout_secs).unwrap_or(i64::MAX).saturating_mul(1000);
    let now = state.now_ms();
    let stale: Vec<JobId> = state
        .jobs()
        .lock()
        .iter()
        .filter(|(_, job)| now - job.dispatched_at > timeout_ms)
        .map(|(id, _)| id.clone())
        .collect();
    for job_id in &stale {
        let reason = "the node did not finish the job in time".to_owned();
        finish(state, job_id, Finish::Failed { reason, node_at_fault: true }).await?;
    }
    Ok(stale.len())
}

/// At start: jobs a previous process left dispatched can no longer reach their callers; release
/// their escrow.
pub async fn release_orphans(state: &AppState) -> Result<usize, ApiError> {
    let orphans = state.store().stale_jobs(i64::MAX).await?;
    let now = state.now_ms();
    for job in &orphans {
        let end = JobEnd::Failed { error: "the coordinator restarted while the job ran" };
        if state.store().finish_job(&job.id, &end, now).await? {
            let release = billing::release(&job.id, job.api_key_id, job.held_micros);
            state.store().post(&release, now).await.map_err(|e| ApiError::internal(&e))?;
        }
    }
    Ok(orphans.len())
}
