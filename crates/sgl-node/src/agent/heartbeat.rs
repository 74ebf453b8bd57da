//! The heartbeat loop (sgl-protocol.md §1.5, §3.8): every interval, run the progress watchdog,
//! gate the advertised model on engine health, send the beat, and apply the answer (envelope
//! version, token rotation, pending jobs). Every 12th beat also asks the grid for this node's
//! status, to learn off-grid and unstaking.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use sgl_protocol::api::node::{
    FailJobRequest, HeartbeatRequest, HeartbeatResponse, KeybindClaim, NodeCapabilities, NodeLifecycle,
};
use sgl_protocol::api::operator::StakeState;
use sgl_protocol::envelope::{ENVELOPE_V2, EnvelopeVersion};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::NodeId;
use sgl_protocol::keybind::sign_keybind;

use super::report::with_retries;
use super::state::Facts;
use super::{AgentError, Shared, lock, now_ms};

/// The key version bound by the keybind (constant, as in the seed).
pub(super) const KEY_VERSION: u32 = 1;
/// Watchdog restarts before the agent gives up and exits (seed `MAX_WEDGE_RESTARTS`).
pub(super) const MAX_WEDGES: u32 = 3;
/// Consecutive failed health probes before the model stops being advertised.
pub(super) const UNHEALTHY_AFTER: u32 = 2;
/// Engine restarts tried while unhealthy before waiting for it to recover by itself.
pub(super) const MAX_ENGINE_RESTARTS: u32 = 5;
/// The grid's view is fetched every this many beats.
const STATUS_EVERY: u64 = 12;

/// The live load: the operator's reserved share plus the busy fraction of the rest.
pub(super) fn current_load(reserved_share: f64, active: u32, slots: u32) -> f64 {
    let reserved = reserved_share.clamp(0.0, 1.0);
    let busy = f64::from(active.min(slots)) / f64::from(slots.max(1));
    reserved + (1.0 - reserved) * busy
}

/// Per-loop memory.
#[derive(Debug, Default)]
struct Loop {
    beats: u64,
    wedges: u32,
    finished_at_last_check: u64,
    unhealthy_streak: u32,
    restarts: u32,
}

/// The parts of every heartbeat that never change: the encryption key and its signed binding.
#[derive(Debug, Clone)]
pub(super) struct FixedClaims {
    encryption_public_key: String,
    keybind: KeybindClaim,
}

impl FixedClaims {
    /// Signs the binding of the node's X25519 key to its identity, once.
    pub(super) fn new(identity: &NodeIdentity, node_id: &NodeId) -> Self {
        let encryption_key = identity.encryption_secret().public_key();
        let signature = sign_keybind(identity, node_id, &encryption_key, KEY_VERSION);
        Self {
            encryption_public_key: encryption_key.to_b58(),
            keybind: KeybindClaim { encryption_public_key_signature: signature, key_version: KEY_VERSION },
        }
    }
}

/// The heartbeat body; `serving` false advertises no model.
fn beat(shared: &Shared, serving: bool) -> HeartbeatRequest {
    HeartbeatRequest {
        current_load: current_load(shared.config.reserved_share, shared.active(), shared.slots),
        available_models: if serving {
            shared.engine.iter().map(|e| e.model_name().to_owned()).collect()
        } else {
            Vec::new()
        },
        encryption_public_key: shared.claims.encryption_public_key.clone(),
        keybind: Some(shared.claims.keybind.clone()),
        capabilities: NodeCapabilities {
            streaming: true,
            context_size: shared.engine.as_ref().map_or(4096, |e| e.context_size()),
        },
        active_job_ids: shared.active_job_ids(),
        binary_hash: shared.config.binary_hash.clone(),
        max_concurrent_jobs: shared.slots,
        model_sha256: shared.engine.as_ref().and_then(|e| e.model_sha256().map(str::to_owned)),
        cluster: shared.config.cluster.clone(),
        workloads: shared.workloads(),
        engines: shared.engines(),
        embedding_models: shared.embedding_models(),
    }
}

/// On shutdown: one last beat that withdraws the model, so the grid stops sending work while
/// running jobs drain. Its answer's jobs are not taken.
pub(super) async fn farewell(shared: &Shared) {
    if let Err(error) = shared.client.heartbeat(&shared.node_id, &shared.token(), &beat(shared, false)).await {
        tracing::debug!(%error, "the farewell heartbeat failed");
    }
}

pub(super) async fn run(shared: Arc<Shared>) -> Result<(), AgentError> {
    let mut memory = Loop::default();
    let mut ws_started = false;
    loop {
        watchdog(&shared, &mut memory).await?;
        let serving = health_gate(&shared, &mut memory);
        shared.save_token();
        let beat = beat(&shared, serving);
        let answer = shared.client.heartbeat(&shared.node_id, &shared.token(), &beat).await;
        let ok = answer.is_ok();
        match answer {
            Ok(response) => apply(&shared, response),
            Err(error) => tracing::warn!(%error, "heartbeat failed"),
        }
        if ok && memory.beats % STATUS_EVERY == 0 {
            refresh_status(&shared).await;
        }
        {
            let mut facts = lock(&shared.facts);
            *facts = Facts { serving, grid_reachable: ok, ..*facts };
        }
        shared.update_state(ok);
        if ok && !ws_started && shared.config.websocket {
            ws_started = true;
            super::ws::start(&shared);
        }
        memory.beats += 1;
        tokio::time::sleep(jittered(shared.config.heartbeat_interval, OsRng.next_u64())).await;
    }
}

/// `interval` moved by up to a tenth either way, by a random 64-bit `draw`: nodes started
/// together (or sent back together by a coordinator's restart) drift apart instead of
/// heartbeating in the same millisecond forever.
fn jittered(interval: Duration, draw: u64) -> Duration {
    let tenth = u64::try_from(interval.as_millis() / 10).unwrap_or(u64::MAX);
    let offset = Duration::from_millis(draw % (2 * tenth).max(1));
    interval.saturating_sub(Duration::from_millis(tenth)) + offset
}

/// Applies a heartbeat answer.
fn apply(shared: &Arc<Shared>, response: HeartbeatResponse) {
    let v2 = EnvelopeVersion::negotiate(&response.accepted_envelope_versions) == EnvelopeVersion::V2;
    shared.envelope_v2.store(v2, Ordering::SeqCst);
    shared.seed_grid.store(!response.accepted_envelope_versions.iter().any(|v| v == ENVELOPE_V2), Ordering::SeqCst);
    if let Some(token) = response.new_auth_token {
        shared.rotate(token);
    }
    if response.pending_jobs.n_malformed > 0 {
        tracing::warn!(n = response.pending_jobs.n_malformed, "skipped malformed pending jobs");
    }
    for job_id in &response.cancelled_job_ids {
        shared.cancel(job_id, "heartbeat");
    }
    for job in response.pending_jobs.jobs {
        shared.offer(job, "heartbeat");
    }
}

/// Asks the grid for this node's status: off-grid and unstaking feed the local state.
async fn refresh_status(shared: &Shared) {
    match shared.client.node_status(&shared.node_id, &shared.token()).await {
        Ok(status) => {
            let mut facts = lock(&shared.facts);
            facts.off_grid = status.status == NodeLifecycle::OffGrid;
            facts.unstaking = is_unstaking(&status);
        }
        Err(error) => tracing::debug!(%error, "could not read the grid's status for this node"),
    }
}

/// A seed grid says `status: "unstaking"`; ours keeps `status` for presence and says it in
/// `stake_state`.
fn is_unstaking(status: &sgl_protocol::api::node::NodeStatusResponse) -> bool {
    status.status == NodeLifecycle::Unstaking || status.stake_state == Some(StakeState::Unstaking)
}

/// Advertises the model unless the engine failed [`UNHEALTHY_AFTER`] probes in a row, and
/// restarts an unhealthy engine a bounded number of times.
fn health_gate(shared: &Shared, memory: &mut Loop) -> bool {
    let Some(engine) = &shared.engine else { return false };
    if engine.is_healthy() {
        memory.unhealthy_streak = 0;
        memory.restarts = 0;
        return true;
    }
    memory.unhealthy_streak += 1;
    if memory.unhealthy_streak < UNHEALTHY_AFTER {
        return true;
    }
    if memory.restarts < MAX_ENGINE_RESTARTS && engine.restart() {
        memory.restarts += 1;
        tracing::warn!(restarts = memory.restarts, "engine unhealthy; restarted it");
    }
    false
}

/// The progress watchdog: jobs running without any progress for `watchdog_after` are
/// abandoned and failed back to the grid (the seed left them to the reaper), the engine is
/// restarted, and after [`MAX_WEDGES`] in a row without a job finishing the agent exits.
async fn watchdog(shared: &Arc<Shared>, memory: &mut Loop) -> Result<(), AgentError> {
    let finished = shared.finished.load(Ordering::SeqCst);
    if finished > memory.finished_at_last_check {
        memory.wedges = 0;
    }
    memory.finished_at_last_check = finished;
    let idle_ms = now_ms().saturating_sub(shared.last_activity_ms.load(Ordering::Relaxed));
    if shared.active() == 0 || idle_ms <= shared.config.watchdog_after.as_millis() as u64 {
        return Ok(());
    }
    memory.wedges += 1;
    if memory.wedges > MAX_WEDGES {
        return Err(AgentError::Wedged(MAX_WEDGES));
    }
    tracing::error!(idle_ms, wedges = memory.wedges, "no inference progress; abandoning running jobs");
    let reason = format!("watchdog: no progress for {} s", idle_ms / 1000);
    abandon_all(shared, &reason).await;
    if let Some(engine) = &shared.engine {
        engine.restart();
    }
    shared.touch();
    Ok(())
}

/// Stops every running job and fails it back to the grid with `reason`.
pub(super) async fn abandon_all(shared: &Arc<Shared>, reason: &str) {
    let abandoned: Vec<_> = lock(&shared.inflight).drain().collect();
    for (job_id, handle) in abandoned {
        if let Some(handle) = handle {
            handle.abort();
        }
        shared.release_slot();
        let body = FailJobRequest { reason: reason.to_owned(), code: None };
        let sent = with_retries("fail", &job_id, serde_json::Value::Null, || async {
            shared.client.fail(&job_id, &shared.token(), &body).await
        })
        .await;
        if let Err(error) = sent {
            tracing::warn!(job_id = %job_id, %error, "could not fail an abandoned job");
        }
    }
    shared.update_state(false);
}

#[cfg(test)]
mod tests {
    //! The live load, and unstaking as either grid says it.

    use super::*;

    #[test]
    fn unstaking_is_read_from_a_seed_or_our_grid() {
        let status = |status: &str, stake: Option<StakeState>| sgl_protocol::api::node::NodeStatusResponse {
            status: status.into(),
            attestation_verified: true,
            reputation_score: 0.5,
            jobs_completed: 0,
            jobs_failed: 0,
            stake_state: stake,
            stake_sgl: None,
            not_serving: None,
        };
        assert!(is_unstaking(&status("unstaking", None)), "a seed grid");
        assert!(is_unstaking(&status("active", Some(StakeState::Unstaking))), "our grid");
        assert!(!is_unstaking(&status("active", Some(StakeState::Staked))));
        assert!(!is_unstaking(&status("active", Some(StakeState::BelowMinimum))));
    }

    #[test]
    fn heartbeats_wait_their_interval_give_or_take_a_tenth() {
        let five = Duration::from_secs(5);
        assert_eq!(jittered(five, 0), Duration::from_millis(4_500));
        assert_eq!(jittered(five, 999), Duration::from_millis(5_499));
        assert_eq!(jittered(five, 1_000), Duration::from_millis(4_500), "wraps within the window");
        assert_ne!(jittered(five, 3), jittered(five, 700), "two nodes drift apart");
        assert_eq!(jittered(Duration::from_millis(5), 7), Duration::from_millis(5), "too short to move");
    }

    #[test]
    fn load_is_the_reserved_share_plus_busy_slots() {
        assert_eq!(current_load(0.0, 0, 2), 0.0);
        assert_eq!(current_load(0.0, 1, 2), 0.5);
        assert_eq!(current_load(0.5, 0, 1), 0.5);
        assert_eq!(current_load(0.5, 1, 1), 1.0);
        assert_eq!(current_load(0.0, 5, 2), 1.0, "never above 1");
    }
}
