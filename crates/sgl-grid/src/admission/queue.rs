//! The waiting line of one model: requests that found every node able to serve them busy, in
//! first-come order per API key and in turns across keys, so one key sending a thousand
//! requests does not push another key's one request to the back.

use std::collections::{HashMap, VecDeque};

use sgl_protocol::api::node::JobType;
use sgl_protocol::ids::NodeId;
use tokio::sync::oneshot;

use super::Slot;
use crate::config::ReferencePrice;
use crate::registry::LiveNode;
use crate::service::schedule::{Candidate, Requirement};

/// What a waiting request needs from a node.
pub struct Want {
    /// Chat or embeddings.
    pub job_type: JobType,
    /// The model.
    pub model: String,
    /// Only nodes of this cluster.
    pub cluster: Option<String>,
    /// Only nodes at or under this blended USD per 1M tokens.
    pub max_price: Option<f64>,
    /// The prompt's estimated tokens, which the node's context must exceed.
    pub prompt_tokens: u64,
    /// Only this node (a sealed request's reserved node).
    pub node: Option<NodeId>,
    /// The caller's own limits on a node and its price (nodes already tried, a price cap).
    pub usable: NodeFilter,
}

/// A caller's own test of a node at its price.
pub type NodeFilter = Box<dyn Fn(&LiveNode, ReferencePrice) -> bool + Send + Sync>;

impl std::fmt::Debug for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Want").field("model", &self.model).field("node", &self.node).finish_non_exhaustive()
    }
}

impl Want {
    /// Any node serving `model` for chat.
    pub fn model(model: &str) -> Self {
        Self {
            job_type: JobType::Inference,
            model: model.to_owned(),
            cluster: None,
            max_price: None,
            prompt_tokens: 0,
            node: None,
            usable: Box::new(|_, _| true),
        }
    }

    /// Any node serving `model` as an embedding model.
    pub fn embedding(model: &str) -> Self {
        Self { job_type: JobType::Embedding, ..Self::model(model) }
    }

    /// The scheduler's view of it.
    pub fn requirement(&self) -> Requirement<'_> {
        Requirement {
            job_type: self.job_type,
            model: &self.model,
            max_price: self.max_price,
            prompt_tokens: self.prompt_tokens,
            cluster: self.cluster.as_deref(),
        }
    }

    /// Whether `node`, at `price`, is one this request may use (its slots aside).
    pub fn accepts(&self, node: &LiveNode, price: ReferencePrice) -> bool {
        self.node.is_none_or(|id| id == node.node_id) && (self.usable)(node, price)
    }
}

/// A request waiting for a slot.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) id: u64,
    pub(crate) key: i64,
    pub(crate) want: Want,
    pub(crate) since_ms: i64,
    pub(crate) handoff: oneshot::Sender<(Candidate, Slot)>,
}

/// One model's waiting requests.
#[derive(Debug, Default)]
pub(crate) struct Line {
    by_key: HashMap<i64, VecDeque<Waiter>>,
    /// Keys with waiting requests, the next to be served first.
    turns: VecDeque<i64>,
    len: usize,
}

impl Line {
    /// Requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds `waiter` behind its key's earlier requests.
    pub(crate) fn push(&mut self, waiter: Waiter) {
        let queue = self.by_key.entry(waiter.key).or_default();
        if queue.is_empty() {
            self.turns.push_back(waiter.key);
        }
        queue.push_back(waiter);
        self.len += 1;
    }

    /// Takes out the waiter `id` (one that gave up); false when it is not here.
    pub(crate) fn remove(&mut self, key: i64, id: u64) -> bool {
        let Some(queue) = self.by_key.get_mut(&key) else { return false };
        let Some(position) = queue.iter().position(|w| w.id == id) else { return false };
        queue.remove(position);
        self.len -= 1;
        if queue.is_empty() {
            self.by_key.remove(&key);
            self.turns.retain(|k| *k != key);
        }
        true
    }

    /// The next waiter `fits` accepts: keys in turn, each key's requests in order of arrival.
    /// The key served goes to the back of the turns.
    pub(crate) fn take(&mut self, fits: impl Fn(&Want) -> bool) -> Option<Waiter> {
        let (turn, position) = self.turns.iter().enumerate().find_map(|(turn, key)| {
            let position = self.by_key.get(key)?.iter().position(|w| fits(&w.want))?;
            Some((turn, position))
        })?;
        let key = self.turns.remove(turn)?;
        let queue = self.by_key.get_mut(&key)?;
        let waiter = queue.remove(position)?;
        self.len -= 1;
        if queue.is_empty() {
            self.by_key.remove(&key);
        } else {
            self.turns.push_back(key);
        }
        Some(waiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(id: u64, key: i64, model: &str) -> (Waiter, oneshot::Receiver<(Candidate, Slot)>) {
        let (handoff, receiver) = oneshot::channel();
        (Waiter { id, key, want: Want::model(model), since_ms: 0, handoff }, receiver)
    }

    #[test]
    fn keys_take_turns_and_each_key_keeps_its_order() {
        let mut line = Line::default();
        let mut receivers = Vec::new();
        // Key 1 queues three requests before key 2's one and key 3's two.
        for (id, key) in [(1, 1), (2, 1), (3, 1), (4, 2), (5, 3), (6, 3)] {
            let (w, r) = waiter(id, key, "m");
            line.push(w);
            receivers.push(r);
        }
        let order: Vec<u64> = std::iter::from_fn(|| line.take(|_| true).map(|w| w.id)).collect();
        assert_eq!(order, [1, 4, 5, 2, 6, 3]);
        assert_eq!(line.len(), 0);
    }

    #[test]
    fn a_waiter_the_node_does_not_suit_is_skipped_not_lost() {
        let mut line = Line::default();
        let (a, _ra) = waiter(1, 1, "other");
        let (b, _rb) = waiter(2, 2, "m");
        line.push(a);
        line.push(b);
        assert_eq!(line.take(|want| want.model == "m").map(|w| w.id), Some(2));
        assert_eq!(line.len(), 1);
        assert!(line.remove(1, 1), "the skipped one is still waiting");
        assert!(!line.remove(1, 1));
        assert_eq!(line.len(), 0);
    }
}
