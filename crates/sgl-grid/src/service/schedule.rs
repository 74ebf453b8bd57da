//! Choosing nodes: which live nodes may take a job for a model, at what effective price, and
//! in which order (cheapest first, then most reputable, then least loaded).

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
    /// The model.
    pub model: &'a str,
    /// Only nodes at or under this blended USD per 1M tokens.
    pub max_price: Option<f64>,
    /// An estimate of the prompt's tokens; the node's per-slot context must exceed it.
    pub prompt_tokens: u64,
}

impl<'a> Requirement<'a> {
    /// Any node serving `model`.
    pub fn model(model: &'a str) -> Self {
        Self { model, max_price: None, prompt_tokens: 0 }
    }
}

/// Estimates a prompt's tokens from its size in bytes: about four bytes a token for typical
/// text, which is what llama.cpp tokenizers give for English and code.
pub fn estimate_tokens(n_bytes: u64) -> u64 {
    n_bytes / 4
}

/// Nodes able to serve the requirement now, ranked.
pub fn rank(config: &Config, nodes: Vec<LiveNode>, wanted: &Requirement<'_>, now_ms: i64) -> Vec<Candidate> {
    let (model, max_price) = (wanted.model, wanted.max_price);
    let timeout_ms = config.node_timeout_ms();
    let mut candidates: Vec<Candidate> = nodes
        .into_iter()
        .filter(|node| node.can_serve(model, now_ms, timeout_ms))
        .filter(|node| u64::from(node.context_size) > wanted.prompt_tokens)
        .map(|node| {
            let (price, is_custom) = effective_price(config, &node, model);
            Candidate { node, price, is_custom }
        })
        .filter(|candidate| max_price.is_none_or(|cap| candidate.blended_per_m() <= cap))
        .collect();
    candidates.sort_by(|a, b| {
        let load = |c: &Candidate| f64::from(c.node.jobs_in_flight) / f64::from(c.node.max_concurrent_jobs.max(1));
        a.blended_per_m()
            .total_cmp(&b.blended_per_m())
            .then(b.node.reputation.total_cmp(&a.node.reputation))
            .then(load(a).total_cmp(&load(b)))
    });
    candidates
}

#[cfg(test)]
mod tests;
