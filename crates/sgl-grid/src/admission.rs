//! Admission: a job slot on a node is claimed in the same critical section that chooses the
//! node, under the registry's lock, and counted from that moment. Before, the choice read the
//! node's free slots and the count went up only after the job's row was written (an awaited
//! insert), so concurrent callers all saw the same slot free: 200 of them were dispatched to
//! one one-slot node. A [`Slot`] that is never handed to a job gives itself back when dropped.

use sgl_protocol::ids::NodeId;

use crate::registry::LiveNode;
use crate::service::schedule::{Candidate, Requirement, best};
use crate::state::AppState;

/// One claimed job slot on one node, counted in its `jobs_in_flight`.
#[derive(Debug)]
pub struct Slot {
    state: AppState,
    node_id: NodeId,
    held: bool,
}

impl Slot {
    /// The node the slot is on.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Hands the slot to the job dispatched in it: the job gives it back when it finishes
    /// (`jobs::finish`).
    pub(crate) fn into_job(mut self) {
        self.held = false;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.held
            && let Some(node) = self.state.registry().lock().get_mut(&self.node_id)
        {
            node.jobs_in_flight = node.jobs_in_flight.saturating_sub(1);
        }
    }
}

/// The best node for `wanted` among those `usable` accepts, with a slot claimed on it; `None`
/// when no node qualifies or every qualifying node is full.
pub fn claim_best(
    state: &AppState,
    wanted: &Requirement<'_>,
    usable: impl Fn(&LiveNode, crate::config::ReferencePrice) -> bool,
) -> Option<(Candidate, Slot)> {
    let now = state.now_ms();
    let mut nodes = state.registry().lock();
    let candidate = best(state.config(), nodes.values(), wanted, now, usable)?;
    let node_id = candidate.node.node_id;
    nodes.get_mut(&node_id)?.jobs_in_flight += 1;
    Some((candidate, Slot { state: state.clone(), node_id, held: true }))
}

/// A slot on `node_id` for `model` (a sealed request's reserved node), with the node's state;
/// `None` when the node cannot serve the model now or is full.
pub fn claim(state: &AppState, node_id: NodeId, model: &str) -> Option<(LiveNode, Slot)> {
    let (now, timeout_ms) = (state.now_ms(), state.config().node_timeout_ms());
    let mut nodes = state.registry().lock();
    let node = nodes.get_mut(&node_id).filter(|node| node.can_serve(model, now, timeout_ms))?;
    node.jobs_in_flight += 1;
    Some((node.clone(), Slot { state: state.clone(), node_id, held: true }))
}
