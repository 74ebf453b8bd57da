//! The grid's capacity now: nodes by tier, and per served model its eligible nodes, slots, busy
//! slots and waiting requests; what `GET /grid/capacity` answers and the admin overview shows.

use std::collections::BTreeMap;

use sgl_grid_store::StoreError;
use sgl_protocol::api::caller::{CapacityResponse, ModelCapacity, TierCapacity};

use crate::registry::LiveNode;
use crate::service::rfc3339;
use crate::state::AppState;

/// The capacity snapshot.
pub async fn snapshot(state: &AppState) -> Result<CapacityResponse, StoreError> {
    let registered = state.store().list_nodes().await?;
    let live = state.registry().snapshot_by_id();
    let now = state.now_ms();
    let timeout_ms = state.config().node_timeout_ms();
    let mut tiers: BTreeMap<String, TierCapacity> = BTreeMap::new();
    for node in &registered {
        let tier = tiers.entry(node.tee_type.clone()).or_insert_with(|| TierCapacity {
            tee_type: node.tee_type.clone(),
            total_nodes: 0,
            active_nodes: 0,
            available_nodes: 0,
        });
        tier.total_nodes += 1;
        let live_node = live.get(&node.id);
        if let Some(l) = live_node.filter(|l| l.is_online(now, timeout_ms) && !node.off_grid) {
            tier.active_nodes += 1;
            if l.busy() < l.max_concurrent_jobs && !l.models.is_empty() {
                tier.available_nodes += 1;
            }
        }
    }
    let sum = |f: fn(&TierCapacity) -> u64| tiers.values().map(f).sum();
    let models = model_capacity(state, live.values(), now, timeout_ms);
    Ok(CapacityResponse {
        total_nodes: sum(|t| t.total_nodes),
        active_nodes: sum(|t| t.active_nodes),
        available_nodes: sum(|t| t.available_nodes),
        by_tee_type: tiers.into_values().collect(),
        updated_at: rfc3339::format(now),
        at_capacity: models.iter().all(|m| m.at_capacity),
        queue_depth: state.admission().waiting_total() as u64,
        models,
    })
}

/// Slots, busy slots and waiting requests of every model eligible nodes serve.
fn model_capacity<'a>(
    state: &AppState,
    live: impl Iterator<Item = &'a LiveNode>,
    now: i64,
    timeout_ms: i64,
) -> Vec<ModelCapacity> {
    let mut models: BTreeMap<String, ModelCapacity> = BTreeMap::new();
    for node in live.filter(|node| node.is_eligible(now, timeout_ms)) {
        for model in &node.models {
            let entry = models.entry(model.clone()).or_insert_with(|| ModelCapacity {
                model: model.clone(),
                nodes: 0,
                slots: 0,
                busy_slots: 0,
                waiting: state.admission().waiting(model) as u64,
                at_capacity: false,
            });
            entry.nodes += 1;
            entry.slots += u64::from(node.max_concurrent_jobs);
            entry.busy_slots += u64::from(node.busy().min(node.max_concurrent_jobs));
        }
    }
    models.into_values().map(|model| ModelCapacity { at_capacity: model.busy_slots >= model.slots, ..model }).collect()
}
