//! Choosing nodes: which live nodes may take a job for a model, at what effective price, and
//! in which order (cheapest first, then most reputable, then least loaded).

use sgl_protocol::api::node::JobType;

use crate::config::{Config, ReferencePrice};
use crate::registry::LiveNode;
use crate::service::pricing::blended_per_m;

/// A node that can take the job, with its effective price.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The node's live state.
    pub node: LiveNode,
    /// What the caller pays on this node.
    pub price: ReferencePrice,
    /// Whether the operator set the price.
    pub is_custom: bool,
}

impl Candidate {
    /// Blended USD per 1M tokens.
    pub fn blended_per_m(&self) -> f64 {
        blended_per_m(self.price)
    }
}

/// The effective price of `model` on `node`.
pub fn effective_price(config: &Config, node: &LiveNode, model: &str) -> (ReferencePrice, bool) {
    match node.custom_prices.get(model) {
        Some(custom) => (ReferencePrice { input_per_m: custom.input_per_m, output_per_m: custom.output_per_m }, true),
        None => (config.reference_price(model), false),
    }
}

/// What a request needs from a node.
#[derive(Debug, Clone, Copy)]
pub struct Requirement<'a> {
    /// What the job is: chat, or embeddings.
    pub job_type: JobType,
    /// The model.
    pub model: &'a str,
    /// Only nodes at or under this blended USD per 1M tokens.
    pub max_price: Option<f64>,
    /// An estimate of the prompt's tokens; the node's per-slot context must exceed it.
    pub prompt_tokens: u64,
    /// Only nodes of this cluster (any node when `None`).
    pub cluster: Option<&'a str>,
}

impl<'a> Requirement<'a> {
    /// Any node serving `model` for chat.
    pub fn model(model: &'a str) -> Self {
        Self { job_type: JobType::Inference, model, max_price: None, prompt_tokens: 0, cluster: None }
    }
}

/// Estimates a prompt's tokens from its size in bytes: about four bytes a token for typical
/// text, which is what llama.cpp tokenizers give for English and code.
pub fn estimate_tokens(n_bytes: u64) -> u64 {
    n_bytes / 4
}

/// Nodes able to serve the requirement now, ranked.
pub fn rank(config: &Config, nodes: Vec<LiveNode>, wanted: &Requirement<'_>, now_ms: i64) -> Vec<Candidate> {
    let mut candidates: Vec<Candidate> = nodes
        .into_iter()
        .filter_map(|node| {
            let (price, is_custom) = qualifies(config, &node, wanted, now_ms)?;
            Some(Candidate { node, price, is_custom })
        })
        .collect();
    candidates.sort_by(|a, b| order((&a.node, a.price), (&b.node, b.price)));
    candidates
}

/// The first candidate [`rank`] would list among those `usable` accepts (given the node and
/// its effective price), copying only that node: a request needs one node, and copying every
/// live node to rank them all cost milliseconds per request with thousands of nodes.
pub fn best<'a>(
    config: &Config,
    nodes: impl IntoIterator<Item = &'a LiveNode>,
    wanted: &Requirement<'_>,
    now_ms: i64,
    usable: impl Fn(&LiveNode, ReferencePrice) -> bool,
) -> Option<Candidate> {
    nodes
        .into_iter()
        .filter_map(|node| {
            let (price, is_custom) = qualifies(config, node, wanted, now_ms)?;
            usable(node, price).then_some((node, price, is_custom))
        })
        // `min_by` keeps the first of equals, as the stable sort in `rank` does.
        .min_by(|a, b| order((a.0, a.1), (b.0, b.1)))
        .map(|(node, price, is_custom)| Candidate { node: node.clone(), price, is_custom })
}

/// Whether `node` could take `want` if it had a free slot: it serves the model, is eligible,
/// fits the prompt, the cluster and the price, and the request accepts it. What decides whether
/// a request waits for a slot or is refused at once.
pub(crate) fn fits_ignoring_load(
    config: &Config,
    node: &LiveNode,
    want: &crate::admission::Want,
    now_ms: i64,
    timeout_ms: i64,
) -> bool {
    let wanted = want.requirement();
    node.may_serve(wanted.job_type, wanted.model, now_ms, timeout_ms)
        && node.max_concurrent_jobs > 0
        && suits(config, node, &wanted).is_some_and(|(price, _)| want.accepts(node, price))
}

/// The node's effective price if it may take the job now.
pub(crate) fn qualifies(
    config: &Config,
    node: &LiveNode,
    wanted: &Requirement<'_>,
    now_ms: i64,
) -> Option<(ReferencePrice, bool)> {
    let can = node.can_serve(wanted.job_type, wanted.model, now_ms, config.node_timeout_ms());
    can.then(|| suits(config, node, wanted)).flatten()
}

/// Whether a prompt of `prompt_tokens` fits in `node`'s context per slot.
pub fn holds(node: &LiveNode, prompt_tokens: u64) -> bool {
    u64::from(node.context_size) > prompt_tokens
}

/// The node's effective price if its context, cluster and price suit `wanted` (whether it
/// serves the model, is eligible and has a free slot aside).
fn suits(config: &Config, node: &LiveNode, wanted: &Requirement<'_>) -> Option<(ReferencePrice, bool)> {
    if !holds(node, wanted.prompt_tokens)
        || wanted.cluster.is_some_and(|cluster| node.cluster.as_deref() != Some(cluster))
    {
        return None;
    }
    let (price, is_custom) = effective_price(config, node, wanted.model);
    wanted.max_price.is_none_or(|cap| blended_per_m(price) <= cap).then_some((price, is_custom))
}

/// Where `node_id` stands among the eligible nodes serving `model` in the scheduler's own order
/// (free slots aside): its position from 1 and how many there are; `None` when it is not one of
/// them.
pub fn position<'a>(
    config: &Config,
    nodes: impl IntoIterator<Item = &'a LiveNode>,
    node_id: &sgl_protocol::ids::NodeId,
    model: &str,
    now_ms: i64,
) -> Option<(u32, u32)> {
    let mut serving: Vec<(&LiveNode, ReferencePrice)> = nodes
        .into_iter()
        .filter(|node| node.may_serve(JobType::Inference, model, now_ms, config.node_timeout_ms()))
        .map(|node| (node, effective_price(config, node, model).0))
        .collect();
    serving.sort_by(|a, b| order(*a, *b));
    let at = serving.iter().position(|(node, _)| node.node_id == *node_id)?;
    Some((u32::try_from(at + 1).ok()?, u32::try_from(serving.len()).ok()?))
}

/// Cheapest first, then most reputable, then least loaded.
fn order(a: (&LiveNode, ReferencePrice), b: (&LiveNode, ReferencePrice)) -> std::cmp::Ordering {
    let load = |node: &LiveNode| f64::from(node.busy()) / f64::from(node.max_concurrent_jobs.max(1));
    blended_per_m(a.1)
        .total_cmp(&blended_per_m(b.1))
        .then(b.0.reputation.total_cmp(&a.0.reputation))
        .then(load(a.0).total_cmp(&load(b.0)))
}

#[cfg(test)]
mod tests;
