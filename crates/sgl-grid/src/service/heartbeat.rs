//! A node's heartbeat: its keybind checked (once per new claim), its live state replaced in the
//! registry (keeping its job count and signing version), its free slots offered to waiting
//! requests, the jobs it should have handed over, and its token rotated when due. No HTTP here:
//! a refusal is a [`HeartbeatError`].

use sgl_grid_store::StoreError;
use sgl_grid_store::nodes::NodeRecord;
use sgl_protocol::api::node::{HeartbeatRequest, HeartbeatResponse, KeybindClaim, PendingJobs, is_cluster_slug};
use sgl_protocol::envelope::{ENVELOPE_V1, ENVELOPE_V2};
use sgl_protocol::identity::{EncryptionPublicKey, NodePublicKey};
use sgl_protocol::ids::{AuthToken, NodeId};
use sgl_protocol::keybind::KeyBinding;

use crate::jobs::JobError;
use crate::registry::{Attestation, LiveNode};
use crate::service::{rfc3339, secrets, stake};
use crate::state::AppState;

/// Why a heartbeat was refused.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// `X-Node-Id` names another node than the token's.
    #[error("this node token belongs to another node")]
    OtherNode,
    /// `encryption_public_key` is not a base58 X25519 key.
    #[error("encryption_public_key must be a base58 X25519 key")]
    BadEncryptionKey,
    /// The keybind signature does not verify.
    #[error("encryption_public_key_signature does not verify; the key was not published")]
    BadKeybind,
    /// `cluster` is not a slug.
    #[error("cluster must be 1 to 64 lowercase letters, digits and inner dashes (a slug such as gpu-eu)")]
    BadCluster,
    /// `model_sha256` is not a sha256 in lowercase hex.
    #[error("model_sha256 must be 64 lowercase hex characters")]
    BadModelHash,
    /// An engine is not a name and a version, or there are too many.
    #[error("engines must be at most 16 entries, each a name and a version such as \"blender 3.4.1\"")]
    BadEngines,
    /// An embedding model is unnamed, has no width, has a bad hash, or there are too many.
    #[error(
        "embedding_models must be at most 8, each with a name of 1 to 128 characters, 1 to 65536 dimensions, a token limit and a sha256 hex model_sha256"
    )]
    BadEmbeddingModels,
    /// The node's own record is unusable (its id or identity key does not parse).
    #[error("the node's record is corrupt: {0}")]
    CorruptRecord(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Handing over or failing the node's jobs failed.
    #[error(transparent)]
    Jobs(#[from] JobError),
}

/// The envelope versions the grid accepts, newest last.
pub fn accepted_envelope_versions() -> Vec<String> {
    vec![ENVELOPE_V1.to_owned(), ENVELOPE_V2.to_owned()]
}

/// Takes `beat` from `node` (authenticated by its token), which says it is `claimed_id`.
pub async fn beat(
    state: &AppState,
    node: NodeRecord,
    claimed_id: &str,
    beat: HeartbeatRequest,
) -> Result<HeartbeatResponse, HeartbeatError> {
    if node.id != claimed_id.trim() {
        return Err(HeartbeatError::OtherNode);
    }
    let node_id: NodeId = node.id.parse().map_err(|_| HeartbeatError::CorruptRecord("node id"))?;
    verify_keybind(state, &node, node_id, &beat)?;
    check_fields(&beat)?;
    let live = live_node(state, &node, node_id, &beat).await?;
    let live = {
        let mut registry = state.registry().lock();
        let entry = registry.entry(node_id).and_modify(|old| {
            *old = LiveNode {
                jobs_in_flight: old.jobs_in_flight,
                elsewhere: old.elsewhere,
                signs_v2: old.signs_v2,
                ..live.clone()
            }
        });
        let stored = entry.or_insert(live);
        // Other replicas get a copy; a grid of one process makes none.
        state.cluster().map(|cluster| (cluster, stored.clone()))
    };
    if let Some((cluster, live)) = live {
        cluster.node_seen_here(live, Some(beat.active_job_ids.clone()), state.now_ms());
    }
    crate::admission::offer(state, node_id);
    state.metrics().heartbeats.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let jobs = crate::jobs::reconcile(state, node_id, &beat.active_job_ids).await?;
    let (new_auth_token, token_expires_at) = rotate_if_due(state, &node).await?;
    Ok(HeartbeatResponse {
        status: "ok".into(),
        pending_jobs: PendingJobs { jobs, n_malformed: 0 },
        new_auth_token,
        token_expires_at,
        accepted_envelope_versions: accepted_envelope_versions(),
        cancelled_job_ids: state.jobs().take_cancelled(&node_id),
    })
}

/// Checks the keybind the node publishes. A node repeats it every few seconds; the exact claim
/// already verified for this node (same key, version and signature) needs no second ed25519
/// verification, which was ~50 µs of every heartbeat (BENCHMARKS.md, scale).
fn verify_keybind(
    state: &AppState,
    node: &NodeRecord,
    node_id: NodeId,
    beat: &HeartbeatRequest,
) -> Result<(), HeartbeatError> {
    let encryption_key =
        EncryptionPublicKey::from_b58(&beat.encryption_public_key).map_err(|_| HeartbeatError::BadEncryptionKey)?;
    let verified_before = |keybind: &KeybindClaim| {
        state.registry().lock().get(&node_id).is_some_and(|live| {
            live.keybind.as_ref() == Some(keybind) && live.encryption_key == beat.encryption_public_key
        })
    };
    let Some(keybind) = beat.keybind.as_ref().filter(|keybind| !verified_before(keybind)) else { return Ok(()) };
    let identity_key =
        NodePublicKey::from_b58(&node.public_key).map_err(|_| HeartbeatError::CorruptRecord("identity key"))?;
    let binding = KeyBinding {
        node_id: &node_id,
        identity_key: &identity_key,
        encryption_key: &encryption_key,
        key_version: keybind.key_version,
    };
    binding.verify(&keybind.encryption_public_key_signature).map_err(|_| HeartbeatError::BadKeybind)
}

/// The heartbeat's own fields a node may get wrong: its cluster slug, model hash, engines and
/// embedding models.
fn check_fields(beat: &HeartbeatRequest) -> Result<(), HeartbeatError> {
    if beat.cluster.as_deref().is_some_and(|slug| !is_cluster_slug(slug)) {
        return Err(HeartbeatError::BadCluster);
    }
    if beat.model_sha256.as_deref().is_some_and(|hash| !sgl_protocol::encoding::is_sha256_hex(hash)) {
        return Err(HeartbeatError::BadModelHash);
    }
    let engine_ok = |engine: &String| sgl_protocol::compute::bundle::is_engine_name(engine);
    if beat.engines.len() > 16 || !beat.engines.iter().all(engine_ok) {
        return Err(HeartbeatError::BadEngines);
    }
    let embedding_ok = |model: &sgl_protocol::api::embeddings::EmbeddingModel| {
        (1..=128).contains(&model.name.len())
            && !model.name.trim().is_empty()
            && (1..=65_536).contains(&model.dimensions)
            && model.max_input_tokens > 0
            && sgl_protocol::encoding::is_sha256_hex(&model.model_sha256)
    };
    if beat.embedding_models.len() > 8 || !beat.embedding_models.iter().all(embedding_ok) {
        return Err(HeartbeatError::BadEmbeddingModels);
    }
    Ok(())
}

/// The node's live state as this heartbeat shows it, with what the store knows: the binary
/// allowlist, its stake, its custom prices (read once, then kept live).
async fn live_node(
    state: &AppState,
    node: &NodeRecord,
    node_id: NodeId,
    beat: &HeartbeatRequest,
) -> Result<LiveNode, HeartbeatError> {
    let allowlist = state.store().allowed_binaries().await?;
    let binary_allowed = allowlist.is_empty() || allowlist.contains(&beat.binary_hash.to_ascii_lowercase());
    let (staked, _) = stake::may_work(state, &node.wallet).await?;
    let known_prices = state.registry().get(&node_id).map(|live| live.custom_prices);
    let custom_prices = match known_prices {
        Some(prices) => prices,
        None => state.store().prices(&node.id).await?.into_iter().collect(),
    };
    let now = state.now_ms();
    Ok(LiveNode {
        node_id,
        public_key: node.public_key.clone(),
        wallet: node.wallet.clone(),
        tee_type: node.tee_type.clone(),
        models: beat.available_models.iter().filter(|m| !m.is_empty()).cloned().collect(),
        encryption_key: beat.encryption_public_key.clone(),
        keybind: beat.keybind.clone(),
        context_size: beat.capabilities.context_size,
        max_concurrent_jobs: beat.max_concurrent_jobs.clamp(1, 16),
        current_load: beat.current_load,
        binary_hash: beat.binary_hash.to_ascii_lowercase(),
        model_sha256: beat.model_sha256.clone(),
        last_seen_ms: now,
        jobs_in_flight: 0,
        elsewhere: 0,
        off_grid: node.off_grid,
        attestation: Attestation::of(node.attested, node.binary_hash.as_deref(), &beat.binary_hash),
        reputation: node.reputation_at(now),
        binary_allowed,
        staked,
        custom_prices,
        signs_v2: false,
        cluster: beat.cluster.clone(),
        workloads: beat.workloads.clone(),
        engines: beat.engines.clone(),
        embedding_models: beat.embedding_models.clone(),
    })
}

/// A fresh token when the node's is in its last quarter, or when the node still uses the
/// previous one (it missed the last rotation): the token and its expiry.
async fn rotate_if_due(state: &AppState, node: &NodeRecord) -> Result<(Option<AuthToken>, Option<String>), StoreError> {
    let (now, ttl_ms) = (state.now_ms(), state.config().token_ttl_ms());
    if !node.via_previous_token && node.token_expires_at - now > ttl_ms / 4 {
        return Ok((None, None));
    }
    let token = secrets::node_token();
    let expires_at = now.saturating_add(ttl_ms);
    state.store().rotate_node_token(node, &secrets::hash(&token), expires_at).await?;
    tracing::info!(target: "sgl::events::node", node_id = %node.id, "node token rotated");
    Ok((Some(AuthToken::new(token)), Some(rfc3339::format(expires_at))))
}
