//! Admission: which request gets which node's slot, and when.
//!
//! A job slot is claimed in the same critical section that chooses the node, under the
//! registry's lock, and counted from that moment; a [`Slot`] never handed to a job gives itself
//! back when dropped. (Before, the count went up only after the job's row was written, and
//! concurrent callers all saw the same slot free: 200 of them were sent to one one-slot node.)
//!
//! When every node that could serve a request is busy, the request waits in its model's
//! `queue::Line` (bounded; keys take turns) for up to the configured time. A slot that frees
//! is handed straight to the next waiter the node suits, in the same critical section, so a
//! newcomer cannot take it first. Lock order: the registry, then the waiting lines.

mod queue;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sgl_protocol::ids::NodeId;
use tokio::sync::oneshot;

use self::queue::{Line, Waiter};
pub use self::queue::{NodeFilter, Want};
use crate::registry::LiveNode;
use crate::service::schedule::{Candidate, best, effective_price, fits_ignoring_load, qualifies};
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
    /// ([`give_back`]).
    pub(crate) fn into_job(mut self) {
        self.held = false;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.held {
            give_back(&self.state, self.node_id);
        }
    }
}

/// Why a request got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No node could serve it even if one were free (or the reserved node is gone).
    NoNode,
    /// Every suitable node is busy and the model's waiting line is full.
    LineFull,
    /// It waited the configured time and no suitable slot freed.
    TimedOut,
}

/// The waiting lines of every model.
#[derive(Debug, Default)]
pub struct Admission {
    lines: Mutex<HashMap<String, Line>>,
    next_id: AtomicU64,
}

impl Admission {
    fn lines(&self) -> MutexGuard<'_, HashMap<String, Line>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests waiting for `model`.
    pub fn waiting(&self, model: &str) -> usize {
        self.lines().get(model).map_or(0, Line::len)
    }

    /// Requests waiting, all models.
    pub fn waiting_total(&self) -> usize {
        self.lines().values().map(Line::len).sum()
    }
}

/// The best node for `want` with a slot claimed on it, waiting in line for up to the configured
/// time when every suitable node is busy. `key` is the paying API key, whose requests take
/// turns with other keys'.
pub async fn admit(state: &AppState, key: i64, want: Want) -> Result<(Candidate, Slot), Refusal> {
    let limits = state.config().admission;
    let model = want.model.clone();
    let (id, mut handoff) = {
        let now = state.now_ms();
        let mut nodes = state.registry().lock();
        let usable = |node: &LiveNode, price| want.accepts(node, price);
        if let Some(candidate) = best(state.config(), nodes.values(), &want.requirement(), now, usable) {
            let node_id = candidate.node.node_id;
            let node = nodes.get_mut(&node_id).ok_or(Refusal::NoNode)?;
            node.jobs_in_flight += 1;
            load_changed(state, node_id);
            return Ok((candidate, Slot { state: state.clone(), node_id, held: true }));
        }
        let timeout_ms = state.config().node_timeout_ms();
        if !nodes.values().any(|node| fits_ignoring_load(state.config(), node, &want, now, timeout_ms)) {
            return Err(Refusal::NoNode);
        }
        let mut lines = state.admission().lines();
        let line = lines.entry(model.clone()).or_default();
        if limits.wait_secs == 0 || line.len() >= limits.max_waiting_per_model {
            return Err(Refusal::LineFull);
        }
        let id = state.admission().next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        line.push(Waiter { id, key, want, since_ms: now, handoff: sender });
        (id, receiver)
    };
    state.metrics().observe_queued();
    let mut waiting = Waiting { state, model: &model, key, id, done: false };
    let wait = Duration::from_millis(u64::try_from(limits.wait_ms()).unwrap_or(0));
    let claimed = match tokio::time::timeout(wait, &mut handoff).await {
        Ok(Ok(claimed)) => Some(claimed),
        // Timed out: unless a slot was handed over meanwhile, leave the line.
        _ => {
            let left = waiting.leave();
            if left { None } else { handoff.try_recv().ok() }
        }
    };
    waiting.done = true;
    claimed.ok_or(Refusal::TimedOut)
}

/// A place in a waiting line, left when the waiting request is dropped (its caller went away).
struct Waiting<'a> {
    state: &'a AppState,
    model: &'a str,
    key: i64,
    id: u64,
    done: bool,
}

impl Waiting<'_> {
    /// Leaves the line; false when the request was no longer in it (it was handed a slot).
    fn leave(&mut self) -> bool {
        self.done = true;
        let mut lines = self.state.admission().lines();
        let left = lines.get_mut(self.model).is_some_and(|line| line.remove(self.key, self.id));
        if lines.get(self.model).is_some_and(|line| line.len() == 0) {
            lines.remove(self.model);
        }
        left
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.leave();
        }
    }
}

/// Whether some node could serve `want` if it had a free slot (so a request waits rather than
/// being refused).
pub fn could_serve(state: &AppState, want: &Want) -> bool {
    let (now, timeout_ms) = (state.now_ms(), state.config().node_timeout_ms());
    state.registry().lock().values().any(|node| fits_ignoring_load(state.config(), node, want, now, timeout_ms))
}

/// A job (or an unused [`Slot`]) on `node_id` ended: its slot goes to the next request waiting
/// for it, or back to the node.
pub(crate) fn give_back(state: &AppState, node_id: NodeId) {
    let mut nodes = state.registry().lock();
    if let Some(node) = nodes.get_mut(&node_id) {
        node.jobs_in_flight = node.jobs_in_flight.saturating_sub(1);
    }
    load_changed(state, node_id);
    hand_over(state, &mut nodes, node_id);
}

/// Tells the other replicas, if any, that this one's jobs on `node_id` changed in number.
fn load_changed(state: &AppState, node_id: NodeId) {
    if let Some(cluster) = state.cluster() {
        cluster.load_changed(node_id, state.now_ms());
    }
}

/// Offers `node_id`'s free slots to waiting requests: after a heartbeat (a node joined, came
/// back or grew), and from the reaper's tick for anything else that made a node usable again.
pub fn offer(state: &AppState, node_id: NodeId) {
    if state.admission().waiting_total() > 0 {
        hand_over(state, &mut state.registry().lock(), node_id);
    }
}

/// Offers every live node's free slots to waiting requests (the reaper's tick).
pub fn offer_all(state: &AppState) {
    if state.admission().waiting_total() == 0 {
        return;
    }
    let mut nodes = state.registry().lock();
    let ids: Vec<NodeId> = nodes.keys().copied().collect();
    for node_id in ids {
        hand_over(state, &mut nodes, node_id);
    }
}

/// While `node_id` has a free slot and a waiting request it suits, claims the slot for that
/// request and hands it over. Runs under the registry's lock, taking the lines' lock after it.
fn hand_over(state: &AppState, nodes: &mut HashMap<NodeId, LiveNode>, node_id: NodeId) {
    let config = state.config();
    let now = state.now_ms();
    let mut lines = state.admission().lines();
    loop {
        let Some(node) = nodes.get_mut(&node_id) else { return };
        let fits = |want: &Want| {
            qualifies(config, node, &want.requirement(), now).is_some_and(|(price, _)| want.accepts(node, price))
        };
        let Some(waiter) = node.models.iter().find_map(|model| lines.get_mut(model)?.take(fits)) else { return };
        let (price, is_custom) = effective_price(config, node, &waiter.want.model);
        node.jobs_in_flight += 1;
        load_changed(state, node_id);
        let candidate = Candidate { node: node.clone(), price, is_custom };
        let slot = Slot { state: state.clone(), node_id, held: true };
        let waited_ms = now.saturating_sub(waiter.since_ms);
        match waiter.handoff.send((candidate, slot)) {
            Ok(()) => state.metrics().observe_queue_wait(waited_ms),
            Err((_, mut slot)) => {
                // The request gave up as the slot came: take the slot back by hand (dropping it
                // would take the registry's lock, which this thread holds).
                slot.held = false;
                node.jobs_in_flight = node.jobs_in_flight.saturating_sub(1);
            }
        }
    }
}
