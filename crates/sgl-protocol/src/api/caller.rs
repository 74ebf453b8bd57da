//! The caller API (sgl-protocol.md §4): discovery, reservations, sealed chat and its stream
//! events, legacy jobs and embeddings. The OpenAI shapes are in [`super::openai`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::inference::Usage;
use super::sealed::{SealedInput, SealedResult};
use crate::ids::{JobId, NodeId, ReservationToken};

/// Header the grid reads for credit billing (the SDKs also send `Authorization: Bearer`).
pub const HEADER_API_KEY: &str = "X-API-Key";
/// x402 v1 payment header as the seed SDKs spell it.
pub const HEADER_X_PAYMENT: &str = "X-Payment";
/// SSE event name of a relayed stream that the grid aborted; its `data:` is an
/// [`super::error::ErrorBody`].
pub const SSE_EVENT_ERROR: &str = "error";

/// Capacity of one tier in `/grid/capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierCapacity {
    /// The tier.
    pub tee_type: String,
    /// Registered nodes.
    pub total_nodes: u64,
    /// Nodes heartbeating.
    pub active_nodes: u64,
    /// Nodes with a free slot.
    pub available_nodes: u64,
}

/// `GET /grid/capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapacityResponse {
    /// Registered nodes.
    pub total_nodes: u64,
    /// Nodes heartbeating.
    pub active_nodes: u64,
    /// Nodes with a free slot.
    pub available_nodes: u64,
    /// Per tier.
    pub by_tee_type: Vec<TierCapacity>,
    /// RFC 3339 time of the snapshot.
    pub updated_at: String,
    /// Per served model: slots, busy slots and requests waiting.
    #[serde(default)]
    pub models: Vec<ModelCapacity>,
    /// Every slot of every eligible node is busy: a new request waits (or, past the line's
    /// bounds, gets a 503).
    #[serde(default)]
    pub at_capacity: bool,
    /// Requests waiting for a slot, all models.
    #[serde(default)]
    pub queue_depth: u64,
}

/// Capacity of one model in `/grid/capacity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelCapacity {
    /// The model.
    pub model: String,
    /// Eligible nodes serving it.
    pub nodes: u64,
    /// Their job slots.
    pub slots: u64,
    /// Of those, running a job.
    pub busy_slots: u64,
    /// Requests waiting for one of its slots.
    pub waiting: u64,
    /// Every slot is busy.
    pub at_capacity: bool,
}

/// Prices per 1k tokens, as discovery reports them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PricePer1k {
    /// USD per 1k input tokens.
    pub price_per_1k_input_tokens_usd: f64,
    /// USD per 1k output tokens.
    pub price_per_1k_output_tokens_usd: f64,
}

/// One model in `/grid/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GridModel {
    /// The model id.
    pub id: String,
    /// Who serves it.
    pub owned_by: String,
    /// Live nodes serving it.
    pub sgl_node_count: u64,
    /// Tiers of those nodes.
    pub sgl_tee_types: Vec<String>,
    /// The reference price.
    pub sgl_pricing: PricePer1k,
}

/// `GET /grid/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GridModelsResponse {
    /// The models.
    pub models: Vec<GridModel>,
}

/// One entry of `/grid/pricing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelPricing {
    /// The model.
    pub model: String,
    /// USD per 1k input tokens.
    pub price_per_1k_input_tokens_usd: f64,
    /// USD per 1k output tokens.
    pub price_per_1k_output_tokens_usd: f64,
}

/// `GET /grid/pricing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PricingResponse {
    /// One entry per model.
    pub pricing: Vec<ModelPricing>,
}

/// Query of `GET /v1/providers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProvidersQuery {
    /// The model.
    #[schema(min_length = 1, pattern = "\\S")]
    pub model: String,
    /// A cluster slug, such as `gpu-eu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub cluster: Option<String>,
    /// Only providers at or under this blended USD per 1M tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
    /// Ours: providers of `model` as an embedding model (`embedding`) rather than for chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<super::node::JobType>,
}

/// One provider in `/v1/providers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Provider {
    /// The node.
    pub node_id: NodeId,
    /// USD per 1M input tokens.
    pub input_per_m: f64,
    /// USD per 1M output tokens.
    pub output_per_m: f64,
    /// Blended USD per 1k tokens, the sort key.
    pub blended_per_1k: f64,
    /// Whether the operator set a custom price.
    pub is_custom: bool,
    /// Reputation score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation: Option<f64>,
    /// Current load, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<f64>,
    /// Parallel slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_jobs: Option<u32>,
    /// Tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tee_type: Option<String>,
    /// Heartbeating now.
    pub online: bool,
}

/// `GET /v1/providers` response, cheapest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProvidersResponse {
    /// The model asked about.
    pub model: String,
    /// The cluster asked about.
    pub cluster: Option<String>,
    /// Number of providers.
    pub count: u64,
    /// The providers.
    pub providers: Vec<Provider>,
}

/// `POST /v1/reserve` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReserveRequest {
    /// The model.
    #[schema(min_length = 1, pattern = "\\S")]
    pub model: String,
    /// A cluster slug, such as `gpu-eu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")]
    pub cluster: Option<String>,
    /// A specific node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// Blended USD per 1M tokens cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0)]
    pub max_price: Option<f64>,
    /// Pay in the cluster's coin (TS SDK sends it here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_in_coin: Option<bool>,
    /// Ours: what the reservation is for; `embedding` reserves a node serving `model` as an
    /// embedding model, for a sealed `POST /v1/embeddings`. Chat (`inference`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<super::node::JobType>,
}

/// `POST /v1/reserve` response. The seed fields plus, ours, the keybind signature and its
/// version, so the caller can check that the X25519 key really is the node's (fixes S1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReserveResponse {
    /// Single use, names one node.
    pub reservation_token: ReservationToken,
    /// The node.
    pub node_id: NodeId,
    /// The node's X25519 key, base58; absent means the node cannot take sealed requests.
    #[serde(default)]
    pub node_x25519_pubkey: Option<String>,
    /// The node's ed25519 identity key, base58.
    pub node_ed25519_pubkey: Option<String>,
    /// Tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tee_type: Option<String>,
    /// Whether attestation passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_verified: Option<bool>,
    /// Milliseconds the reservation stays valid.
    pub expires_in_ms: u64,
    /// Ours: the keybind signature, base58.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_public_key_signature: Option<String>,
    /// Ours: the keybind version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
    /// Ours: sha256 hex of the node's served GGUF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
}

/// `POST /v1/chat/completions`, sealed form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealedChatRequest {
    /// From `/v1/reserve`.
    pub reservation_token: ReservationToken,
    /// Cleartext cap used for quoting (the sealed one is what the node honours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// The sealed request.
    pub enc: SealedInput,
    /// Ask for a stream (the sealed request must say so too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Pay in the cluster's coin (Python SDK sends it here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_in_coin: Option<bool>,
}

/// `POST /v1/chat/completions` sealed non-stream response. Ours adds everything needed to
/// verify the node's signature without trusting the coordinator (fixes S2, S3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealedChatResponse {
    /// Job id; the envelope signs it.
    pub id: JobId,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    /// The sealed reply.
    pub sealed_result: SealedResult,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Ours: the node that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    /// Ours: the node's result envelope signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_envelope_signature: Option<String>,
    /// Ours: `v1` or `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_envelope_version: Option<String>,
    /// Ours: sha256 hex of the served GGUF (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// Ours: proof of execution (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_of_execution: Option<String>,
}

/// One `data:` event of a sealed stream relayed as SSE. The seed relay renames the node's
/// `ciphertext` and `ephemeral_public_key` to `ct` and `eph`; ours adds the signature and the
/// signed fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealedStreamEvent {
    /// Position from 0.
    pub seq: u64,
    /// The chunk's `b58(nonce24 || ct || tag)`.
    pub ct: String,
    /// The stream's ephemeral key, on seq 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eph: Option<String>,
    /// The last chunk; absent means false.
    #[serde(rename = "final", default)]
    pub is_final: bool,
    /// Ours: the node's signature over this chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// Ours: `v1` or `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig_version: Option<String>,
    /// Ours: job id, which the signature covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// Ours: the node that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    /// Ours: usage, on the final chunk (signed in v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Ours: sha256 hex of the served GGUF (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// Ours: proof of execution of this chunk (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_of_execution: Option<String>,
}

/// `POST /grid/jobs` request (legacy, plaintext to the coordinator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateJobRequest {
    /// The model.
    pub model: String,
    /// The input (messages or prompt).
    pub input: Value,
    /// Paying wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitter_wallet: Option<String>,
    /// Its chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitter_chain: Option<String>,
}

/// `POST /grid/jobs` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateJobResponse {
    /// The job.
    pub job_id: JobId,
    /// Its state.
    pub status: String,
    /// The model.
    pub model: String,
    /// The node, once assigned.
    pub node_id: Option<NodeId>,
    /// The node's tier.
    pub tee_type: Option<String>,
    /// Estimated cost.
    pub estimated_cost_usd: Option<f64>,
    /// RFC 3339.
    pub created_at: String,
}

/// `GET /grid/jobs/{id}` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobStatusResponse {
    /// The job.
    pub id: JobId,
    /// Its state.
    pub status: String,
    /// The model.
    pub model: String,
    /// The node.
    pub node_id: Option<NodeId>,
    /// The node's tier.
    pub tee_type: Option<String>,
    /// The plaintext result.
    pub result: Option<Value>,
    /// The raw result string.
    pub encrypted_result: Option<String>,
    /// The node's result signature.
    pub attestation_proof: Option<String>,
    /// What it cost.
    pub cost_usd: Option<f64>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub completed_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// `GET /grid/jobs/{id}/attestation` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobAttestationResponse {
    /// The node.
    pub node_id: NodeId,
    /// Its tier.
    pub tee_type: Option<String>,
    /// The job.
    pub job_id: JobId,
    /// The node's signature.
    pub attestation_signature: Option<String>,
    /// The report.
    pub attestation_report: Option<Value>,
    /// Whether the coordinator verified it.
    pub verified: bool,
    /// RFC 3339.
    pub verified_at: Option<String>,
}

/// Embedding input: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
}

/// `POST /v1/embeddings` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingsRequest {
    /// The model.
    pub model: String,
    /// The text(s).
    pub input: EmbeddingInput,
    /// Output dimensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// `query` or `document`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_type: Option<String>,
    /// `standard` or `confidential` (attested nodes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

/// One embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Embedding {
    /// Always `embedding`.
    pub object: String,
    /// Position in the input.
    pub index: u32,
    /// The vector.
    pub embedding: Vec<f32>,
}

/// Usage of an embeddings call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingsUsage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Same as `prompt_tokens`.
    pub total_tokens: u64,
}

/// `POST /v1/embeddings` response, OpenAI's list shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingsResponse {
    /// Always `list`.
    pub object: String,
    /// The embeddings.
    pub data: Vec<Embedding>,
    /// The model.
    pub model: String,
    /// Token counts.
    pub usage: EmbeddingsUsage,
}
