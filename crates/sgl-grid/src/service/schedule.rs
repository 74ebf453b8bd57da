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

/// Nodes able to serve `model` now, under `max_price` (blended USD per 1M) if given, ranked.
pub fn rank(config: &Config, nodes: Vec<LiveNode>, model: &str, max_price: Option<f64>, now_ms: i64) -> Vec<Candidate> {
    let timeout_ms = i64::try_from(config.node_timeout_secs).unwrap_or(i64::MAX).saturating_mul(1000);
    let mut candidates: Vec<Candidate> = nodes
        .into_iter()
        .filter(|node| node.can_serve(model, now_ms, timeout_ms))
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
