//! The live view of nodes, refreshed by every heartbeat: what each serves now, its published
//! keys, its capacity and its jobs in flight. Persistent facts (identity, wallet, flags,
//! reputation) stay in the store; this is what a scheduler needs in memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sgl_grid_store::nodes::CustomPrice;
use sgl_protocol::api::node::{JobType, KeybindClaim, NotServingReason};
use sgl_protocol::ids::NodeId;

/// What the coordinator knows about a node from its last heartbeat. Replicas send it to each
/// other as it is (`cluster`), so it serialises.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveNode {
    /// The node.
    pub node_id: NodeId,
    /// Base58 ed25519 identity key (from registration).
    pub public_key: String,
    /// The operator's wallet.
    pub wallet: String,
    /// The declared tier.
    pub tee_type: String,
    /// Models served right now; empty while the node's engine is unhealthy.
    pub models: Vec<String>,
    /// Base58 X25519 key.
    pub encryption_key: String,
    /// The verified keybind, if the node sent one.
    pub keybind: Option<KeybindClaim>,
    /// Per-slot context size.
    pub context_size: u32,
    /// Parallel slots, clamped to 1..=16.
    pub max_concurrent_jobs: u32,
    /// The operator's reserved share (seed semantics).
    pub current_load: f64,
    /// sha256 hex of the node binary.
    pub binary_hash: String,
    /// sha256 hex of the served GGUF.
    pub model_sha256: Option<String>,
    /// When the last heartbeat arrived.
    pub last_seen_ms: i64,
    /// Jobs this replica dispatched to it and that have not finished.
    pub jobs_in_flight: u32,
    /// Jobs other replicas dispatched to it and that have not finished, as they last said
    /// (always 0 on a grid of one process).
    #[serde(skip)]
    pub elsewhere: u32,
    /// In maintenance.
    pub off_grid: bool,
    /// Where the node stands with attestation.
    pub attestation: Attestation,
    /// Reputation, 0..=1.
    pub reputation: f64,
    /// The binary is on the allowlist (or the allowlist is empty).
    pub binary_allowed: bool,
    /// The operator's stake meets the minimum.
    pub staked: bool,
    /// The operator's custom prices by model.
    pub custom_prices: HashMap<String, CustomPrice>,
    /// It has signed a v2 result envelope, so v1 from it is a downgrade.
    pub signs_v2: bool,
    /// The cluster its operator put it in, if any.
    pub cluster: Option<String>,
    /// The general-compute classes it runs.
    #[serde(default)]
    pub workloads: Vec<sgl_protocol::compute::JobClass>,
    /// The engines (name and version) its native classes run.
    #[serde(default)]
    pub engines: Vec<String>,
    /// The embedding models it serves, apart from its chat `models`.
    #[serde(default)]
    pub embedding_models: Vec<sgl_protocol::api::embeddings::EmbeddingModel>,
}

/// A live node's attestation, as checked against its heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Attestation {
    /// Never attested, or the last attestation failed.
    Missing,
    /// Attested, and the heartbeat reports the binary that was attested.
    Verified,
    /// Attested with another binary than the one the heartbeat reports.
    BinaryChanged,
}

impl Attestation {
    /// The state for a node whose record says `attested` with `attested_binary`, beating with
    /// `binary_hash` (hex, any case).
    pub fn of(attested: bool, attested_binary: Option<&str>, binary_hash: &str) -> Self {
        match (attested, attested_binary) {
            (true, Some(hash)) if hash.eq_ignore_ascii_case(binary_hash) => Self::Verified,
            (true, _) => Self::BinaryChanged,
            (false, _) => Self::Missing,
        }
    }
}

impl LiveNode {
    /// Passed attestation with the binary it runs now.
    pub fn attested(&self) -> bool {
        self.attestation == Attestation::Verified
    }

    /// Why the node may not receive any work now, whatever the model (empty: eligible).
    pub fn not_serving(&self, now_ms: i64, timeout_ms: i64) -> Vec<NotServingReason> {
        let mut reasons = Vec::new();
        if !self.is_online(now_ms, timeout_ms) {
            reasons.push(NotServingReason::Offline);
        }
        if self.off_grid {
            reasons.push(NotServingReason::OffGrid);
        }
        match self.attestation {
            Attestation::Verified => {}
            Attestation::Missing => reasons.push(NotServingReason::NotAttested),
            Attestation::BinaryChanged => reasons.push(NotServingReason::BinaryChanged),
        }
        if !self.binary_allowed {
            reasons.push(NotServingReason::BinaryNotAllowed);
        }
        if !self.staked {
            reasons.push(NotServingReason::BelowStake);
        }
        if self.models.is_empty() && self.embedding_models.is_empty() {
            reasons.push(NotServingReason::NoModel);
        }
        reasons
    }

    /// Eligible for work of some model it lists: online, on the grid, attested with the binary
    /// it runs, allowed and staked.
    pub fn is_eligible(&self, now_ms: i64, timeout_ms: i64) -> bool {
        self.is_online(now_ms, timeout_ms) && !self.off_grid && self.attested() && self.binary_allowed && self.staked
    }

    /// Heard from within `timeout_ms`.
    pub fn is_online(&self, now_ms: i64, timeout_ms: i64) -> bool {
        now_ms - self.last_seen_ms <= timeout_ms
    }

    /// Eligible and serving `model`, whatever its free slots.
    pub fn may_serve(&self, job_type: JobType, model: &str, now_ms: i64, timeout_ms: i64) -> bool {
        self.is_eligible(now_ms, timeout_ms) && self.serves(job_type, model)
    }

    /// Whether it serves `model` for jobs of `job_type`: a chat model, or an embedding model.
    pub fn serves(&self, job_type: JobType, model: &str) -> bool {
        match job_type {
            JobType::Inference => self.models.iter().any(|m| m == model),
            JobType::Embedding => self.embedding_model(model).is_some(),
        }
    }

    /// Its embedding model called `model`.
    pub fn embedding_model(&self, model: &str) -> Option<&sgl_protocol::api::embeddings::EmbeddingModel> {
        self.embedding_models.iter().find(|m| m.name == model)
    }

    /// May receive a job of `job_type` for `model` now: [`LiveNode::may_serve`] with a free
    /// slot.
    pub fn can_serve(&self, job_type: JobType, model: &str, now_ms: i64, timeout_ms: i64) -> bool {
        self.may_serve(job_type, model, now_ms, timeout_ms) && self.busy() < self.max_concurrent_jobs
    }

    /// Its slots in use, by every replica.
    pub fn busy(&self) -> u32 {
        self.jobs_in_flight.saturating_add(self.elsewhere)
    }
}

/// All live nodes.
#[derive(Debug, Default)]
pub struct Registry {
    nodes: Mutex<HashMap<NodeId, LiveNode>>,
}

impl Registry {
    /// Locks the map. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, LiveNode>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of one node's live state.
    pub fn get(&self, node_id: &NodeId) -> Option<LiveNode> {
        self.lock().get(node_id).cloned()
    }

    /// Applies `change` to the live node with this id, if it is live.
    pub fn update(&self, node_id: &str, change: impl FnOnce(&mut LiveNode)) {
        if let Ok(node_id) = node_id.parse::<NodeId>()
            && let Some(live) = self.lock().get_mut(&node_id)
        {
            change(live);
        }
    }

    /// Copies of every live node, keyed by the dashed id the store uses.
    pub fn snapshot_by_id(&self) -> HashMap<String, LiveNode> {
        self.lock().values().map(|node| (node.node_id.to_string(), node.clone())).collect()
    }

    /// Copies of every live node.
    pub fn snapshot(&self) -> Vec<LiveNode> {
        self.lock().values().cloned().collect()
    }
}
