//! Nodes' live state as rows (`live_nodes`), so a replica that starts can schedule at once
//! instead of after the nodes' next heartbeats. The replica that takes a heartbeat writes the
//! node's state when it changed, or every third of the node timeout to keep its time fresh (so
//! a live node's row is never older than the timeout), in one batch per tick; a joining
//! replica reads the rows of nodes seen within the node timeout.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use sgl_grid_store::StoreError;
use sgl_protocol::ids::NodeId;

use super::{Cluster, locked};
use crate::registry::LiveNode;
use crate::state::AppState;

/// Rows of nodes not heard for this long are deleted by the leader.
pub(super) const ROW_KEPT_MS: i64 = 3_600_000;

/// What a replica still has to write, and what it last wrote (when, and a hash of the state).
#[derive(Debug, Default)]
pub(super) struct Rows {
    due: HashMap<NodeId, LiveNode>,
    written: HashMap<NodeId, (i64, u64)>,
}

/// The state that matters to another replica: without the time and this replica's counts.
fn fingerprint(node: &LiveNode) -> u64 {
    let steady = LiveNode { last_seen_ms: 0, jobs_in_flight: 0, elsewhere: 0, ..node.clone() };
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&steady).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

impl Cluster {
    /// Notes `node`'s state, heard here at `now_ms`, for writing if it changed (or `force`) or
    /// was last written `row_every_ms` ago.
    pub(super) fn note_row(&self, node: &LiveNode, now_ms: i64, force: bool) {
        let print = fingerprint(node);
        let mut rows = locked(&self.rows);
        let fresh =
            rows.written.get(&node.node_id).is_some_and(|(at, seen)| *seen == print && now_ms - at < self.row_every_ms);
        if force || !fresh {
            rows.due.insert(node.node_id, node.clone());
            rows.written.insert(node.node_id, (now_ms, print));
        }
    }
}

/// Writes the rows due, in one statement.
pub(super) async fn write_due(state: &AppState) -> Result<usize, StoreError> {
    let Some(cluster) = state.cluster() else { return Ok(0) };
    let due: Vec<LiveNode> = locked(&cluster.rows).due.drain().map(|(_, node)| node).collect();
    let rows: Vec<(String, String, i64)> = due
        .iter()
        .filter_map(|node| Some((node.node_id.to_string(), serde_json::to_string(node).ok()?, node.last_seen_ms)))
        .collect();
    cluster.bus.write_live_nodes(&rows).await?;
    Ok(rows.len())
}

/// Fills the registry with the nodes seen within the node timeout that it does not know yet.
pub(super) async fn load(state: &AppState) -> Result<usize, StoreError> {
    let Some(cluster) = state.cluster() else { return Ok(0) };
    let since = state.now_ms() - state.config().node_timeout_ms();
    let mut loaded = 0;
    for (text, last_seen_ms) in cluster.bus.live_nodes(since).await? {
        let Ok(node) = serde_json::from_str::<LiveNode>(&text) else { continue };
        let node = LiveNode { last_seen_ms, jobs_in_flight: 0, elsewhere: 0, ..node };
        if let std::collections::hash_map::Entry::Vacant(entry) = state.registry().lock().entry(node.node_id) {
            entry.insert(node);
            loaded += 1;
        }
    }
    Ok(loaded)
}
