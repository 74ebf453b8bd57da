//! Each replica's ticker: it tells the store it is alive, repeats its loads to the others,
//! contends for the leader's advisory lock, and, while it leads, does what must run once per
//! grid: the jobs of a dead replica are ended (their callers' connections died with it), and
//! old bus payloads, expired reservations and long-gone nodes' live state are deleted. Each
//! tick also writes the nodes' live state this replica heard (`live`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use sgl_protocol::api::node::ServerMessage;

use super::{Message, expire_loads, own_loads};
use crate::jobs::JobError;
use crate::state::AppState;

/// A replica not heard from for this long is dead: the leader ends its jobs.
pub const REPLICA_TIMEOUT_MS: i64 = 10_000;
/// How often a replica beats, repeats its loads and checks its leadership.
const TICK: Duration = Duration::from_secs(1);
/// How long a large bus payload is kept for its readers.
const PAYLOAD_KEPT_MS: i64 = 60_000;

/// Runs the ticker until the task is aborted.
pub(super) async fn run(state: AppState) {
    let Some(cluster) = state.cluster() else { return };
    let mut leadership = state.store().leadership();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        beat(&state).await;
        if let Err(error) = super::live::write_due(&state).await {
            tracing::warn!(%error, "writing nodes' live state failed");
        }
        cluster.send(Message::Loads { from: cluster.id().to_owned(), full: true, loads: own_loads(&state, None) });
        expire_loads(&state);
        let leads = match leadership.as_mut() {
            Some(leadership) => leadership.check().await,
            None => false,
        };
        if leads != cluster.leading.swap(leads, Ordering::Relaxed) {
            tracing::info!(replica = cluster.id(), leads, "leadership changed");
        }
        if leads {
            match lead(&state).await {
                Ok(0) => {}
                Ok(n_jobs) => tracing::warn!(n_jobs, "ended the jobs of a coordinator replica that stopped"),
                Err(error) => tracing::warn!(%error, "the leader's duties failed"),
            }
        }
    }
}

/// Tells the store this replica is alive; registers it again if it had been declared dead (its
/// jobs were ended meanwhile: they will not be billed twice, as a job ends only once).
async fn beat(state: &AppState) {
    let Some(cluster) = state.cluster() else { return };
    let now = state.now_ms();
    match state.store().touch_replica(cluster.id(), now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::error!(replica = cluster.id(), "this replica was declared dead; registering it again");
            let _ = state.store().register_replica(cluster.id(), now).await;
        }
        Err(error) => tracing::warn!(%error, "could not tell the store this replica is alive"),
    }
}

/// The leader's duties, once: ends the jobs of replicas silent for [`REPLICA_TIMEOUT_MS`] (a
/// stream is billed for the tokens it had delivered, anything else released; their nodes are
/// told to stop), then forgets those replicas; purges old bus payloads and expired
/// reservations. Returns the number of jobs ended.
pub async fn lead(state: &AppState) -> Result<usize, JobError> {
    let Some(cluster) = state.cluster() else { return Ok(0) };
    let now = state.now_ms();
    let mut ended = 0;
    for replica in state.store().silent_replicas(now - REPLICA_TIMEOUT_MS).await? {
        if replica == cluster.id() {
            continue;
        }
        for job in state.store().jobs_of_replica(&replica).await? {
            crate::jobs::end_orphan(state, &job, "the coordinator replica holding the job stopped").await?;
            if let (Ok(node_id), Ok(job_id)) = (job.node_id.parse(), job.id.parse()) {
                super::push(state, node_id, ServerMessage::Cancel { job_id });
            }
            ended += 1;
            cluster.stats.orphans_ended.fetch_add(1, Ordering::Relaxed);
        }
        state.store().remove_replica(&replica).await?;
        tracing::info!(replica, "forgot a coordinator replica that stopped");
    }
    cluster.bus.purge(now - PAYLOAD_KEPT_MS).await?;
    cluster.bus.purge_live_nodes(now - super::live::ROW_KEPT_MS).await?;
    state.store().purge_reservations(now).await?;
    Ok(ended)
}
