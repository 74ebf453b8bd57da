//! The node API (sgl-protocol.md §1), in the order of a node's life: device login, register,
//! attest, heartbeat, WebSocket push, job results, maintenance, prices, status, allowlist.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::inference::{JobPayload, Usage};
use super::lenient;
use super::operator::StakeState;
use super::sealed::SealedResult;
use crate::ids::{AuthToken, JobId, NodeId, RegistrationCode};
use crate::manifest::CapabilityManifest;

mod job_type;
mod lifecycle;

pub use self::job_type::{FailCode, JOB_TYPE_EMBEDDING, JOB_TYPE_INFERENCE, JobType};
pub use self::lifecycle::NodeLifecycle;

/// Header carrying the node token on every authenticated node call.
pub const HEADER_NODE_AUTH: &str = "X-Node-Auth";
/// Header carrying the node id, on the heartbeat only.
pub const HEADER_NODE_ID: &str = "X-Node-Id";
/// `POST /grid/auth/device/start` request: an empty object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceStartRequest {}

/// `POST /grid/auth/device/start` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceStartResponse {
    /// The secret the node polls with.
    pub device_code: String,
    /// The short code the operator types when approving.
    pub user_code: String,
    /// Where the operator approves.
    pub verify_url: String,
    /// Poll interval in seconds (the node waits at least 2).
    #[serde(default = "default_poll_interval")]
    pub interval: u64,
    /// Seconds until the device code expires; 0 means unknown.
    #[serde(default)]
    pub expires_in: u64,
}

fn default_poll_interval() -> u64 {
    3
}

/// `POST /grid/auth/device/poll` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DevicePollRequest {
    /// From the start response.
    pub device_code: String,
}

/// The state of a device login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DevicePollStatus {
    /// The operator approved; the response carries the registration code.
    Approved,
    /// The login expired.
    Expired,
    /// Anything else: keep polling.
    #[serde(other)]
    Pending,
}

/// `POST /grid/auth/device/poll` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DevicePollResponse {
    /// Approved, expired or pending.
    pub status: DevicePollStatus,
    /// The single-use registration code, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_code: Option<RegistrationCode>,
    /// The wallet that approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_address: Option<String>,
}

/// `POST /grid/auth/device/approve` request (ours): the operator approves a device login by
/// signing [`device_approval_message`] with the Solana-style ed25519 wallet key whose base58
/// public key is `wallet_address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceApproveRequest {
    /// The code the node printed, e.g. `ABCD-EFGH`.
    pub user_code: String,
    /// The approving wallet: a base58 ed25519 public key.
    #[schema(pattern = "^[1-9A-HJ-NP-Za-km-z]{32,44}$")]
    pub wallet_address: String,
    /// Base58 ed25519 signature by the wallet over [`device_approval_message`].
    pub signature: String,
}

/// The exact bytes a wallet signs to approve a device login:
/// `sgl-device-approve:v1:{user_code}:{wallet_address}`.
pub fn device_approval_message(user_code: &str, wallet_address: &str) -> String {
    format!("sgl-device-approve:v1:{user_code}:{wallet_address}")
}

/// `POST /grid/nodes/register` request. Seed fields in seed order; `capability_manifest` is
/// ours (a manifest signed by the new node key, see `docs/protocol.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterNodeRequest {
    /// The operator's staked wallet.
    #[schema(
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub wallet_address: String,
    /// Single-use, wallet-bound code; omitted by `sgl init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_code: Option<RegistrationCode>,
    /// Self-declared tier: `apple_se`, `linux_se`, `tdx_cc`, `none`.
    #[schema(
        max_length = 32,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub tee_type: String,
    /// Models the node intends to serve.
    #[serde(default)]
    pub available_models: Vec<String>,
    /// Base58 ed25519 identity key.
    pub public_key: String,
    /// Logical CPUs.
    pub cpu_cores: u32,
    /// RAM in GiB.
    pub ram_gb: f64,
    /// GPU model name.
    pub gpu_model: String,
    /// Always `["llama.cpp"]` from seed nodes.
    #[serde(default)]
    pub supported_runtimes: Vec<String>,
    /// Our signed capability manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_manifest: Option<CapabilityManifest>,
    /// Ours: the wallet's own consent to register this node, in place of a registration code
    /// (`sgl init --wallet W --wallet-key FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_proof: Option<WalletProof>,
}

/// A wallet's signature over [`registration_message`]: it consents to register the node with
/// this identity key under it, now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WalletProof {
    /// Unix seconds; the grid accepts proofs signed within five minutes of its clock.
    pub signed_at: u64,
    /// EIP-191 `personal_sign` hex for a `0x` wallet, base58 ed25519 for a Solana-style wallet.
    pub signature: String,
}

/// The exact text a wallet signs to register a node:
/// `sgl-register:v1\n{wallet}\n{node public key}\n{signed_at}`. Binding the node's key makes it
/// single-use: a registered key is refused a second time.
pub fn registration_message(wallet: &str, public_key: &str, signed_at: u64) -> String {
    format!("sgl-register:v1\n{wallet}\n{public_key}\n{signed_at}")
}

/// `POST /grid/nodes/register` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisterNodeResponse {
    /// The node's UUID.
    pub node_id: NodeId,
    /// The bearer token for `X-Node-Auth`.
    pub auth_token: AuthToken,
    /// Ours: the result envelope versions this grid verifies. Absent (a seed grid) means `v1`
    /// only; a node signs `v2` only when the grid lists it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_envelope_versions: Vec<String>,
}

/// `POST /grid/nodes/{id}/challenge` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChallengeResponse {
    /// The string to sign, byte for byte.
    pub challenge: String,
    /// When the challenge expires (display only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Seconds until it expires (display only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

/// The hardware report sent at attestation (§5.6). `report_hash` is computed by
/// [`crate::attestation::report_hash`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HardwareReport {
    /// The tier.
    pub tee_type: String,
    /// CPU or chip model.
    pub chip_model: String,
    /// Logical CPUs.
    pub cpu_cores: u32,
    /// RAM in GiB.
    pub memory_gb: f64,
    /// Secure Enclave present.
    pub secure_enclave: bool,
    /// SIP (macOS) or kernel lockdown enabled.
    pub sip_enabled: bool,
    /// OS version.
    #[serde(default)]
    pub os_version: String,
    /// Kernel release.
    #[serde(default)]
    pub kernel_version: String,
    /// Boot session id.
    #[serde(default)]
    pub boot_uuid: String,
    /// Hardware id.
    #[serde(default)]
    pub hardware_uuid: String,
    /// Firmware version.
    #[serde(default)]
    pub firmware_version: String,
    /// Hash of the serial number.
    #[serde(default)]
    pub serial_hash: String,
    /// sha256 hex of the running binary.
    pub binary_hash: String,
    /// See [`crate::attestation::report_hash`].
    pub report_hash: String,
}

/// `POST /grid/nodes/{id}/verify-attestation` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyAttestationRequest {
    /// Base58 ed25519 signature over the challenge string's bytes.
    pub signature: String,
    /// Base58 X25519 key.
    pub encryption_public_key: String,
    /// The report.
    pub hardware_report: HardwareReport,
}

/// `POST /grid/nodes/{id}/verify-attestation` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyAttestationResponse {
    /// Whether the node is now attested.
    pub verified: bool,
    /// A short status or reason.
    pub status: String,
}

/// The keybind as a heartbeat carries it: both fields or neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeybindClaim {
    /// Base58 keybind signature ([`crate::keybind`]).
    pub encryption_public_key_signature: String,
    /// The bound key version.
    pub key_version: u32,
}

/// `capabilities` in a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeCapabilities {
    /// Always true.
    pub streaming: bool,
    /// Per-slot context size in tokens.
    pub context_size: u32,
}

/// `POST /grid/nodes/heartbeat` request, with `X-Node-Auth` and `X-Node-Id`. Seed fields in
/// seed order; `model_sha256` is ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatRequest {
    /// `1 - resource_percent/100`: a static share the operator keeps for itself, as the seed
    /// computes it (not a live load measure).
    pub current_load: f64,
    /// Models served right now (empty while the engine is unhealthy).
    pub available_models: Vec<String>,
    /// Base58 X25519 key.
    pub encryption_public_key: String,
    /// The keybind signature and its version, sent together; omitted when the node id is not a
    /// UUID.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub keybind: Option<KeybindClaim>,
    /// Streaming and context size.
    pub capabilities: NodeCapabilities,
    /// Jobs running right now; the coordinator finalises any dispatched job missing here.
    #[serde(default)]
    pub active_job_ids: Vec<JobId>,
    /// sha256 hex of the running binary; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub binary_hash: String,
    /// Parallel job slots.
    pub max_concurrent_jobs: u32,
    /// Ours: sha256 hex of the served GGUF file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// Ours: the cluster (compute market) the operator put this node in (`sgl start
    /// --cluster SLUG`); callers naming a cluster are served only by its nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Ours: the general-compute classes the node runs now (`sgl start --workloads`); it leases
    /// only these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<crate::compute::JobClass>,
    /// Ours: the engines its native classes run, name and version as found at start
    /// (`onnxruntime 1.32.0`, `blender 3.4.1`); jobs pinning an engine go only to nodes with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<String>,
    /// Ours: the embedding models it serves (`sgl start --embedding-model`), apart from the
    /// chat models of `available_models`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embedding_models: Vec<super::embeddings::EmbeddingModel>,
}

/// Whether `slug` is a cluster slug: 1–64 characters of lowercase ASCII letters, digits and
/// dashes, not starting or ending with a dash.
pub fn is_cluster_slug(slug: &str) -> bool {
    (1..=64).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// A job handed to a node, by heartbeat or WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingJob {
    /// The job id.
    pub id: JobId,
    /// `inference` or, ours, `embedding` (see [`JobType`]); kept as text so that a job of a
    /// type a node does not know still arrives and can be failed with a reason.
    pub job_type: String,
    /// Ignored by nodes, which serve one model.
    #[serde(default)]
    pub model: Option<String>,
    /// The request, sealed or plain, kept as raw JSON so that a job whose payload is bad still
    /// arrives with its id and can be failed with a reason (see [`PendingJob::payload`]).
    #[serde(default)]
    pub input_payload: Option<Value>,
}

impl PendingJob {
    /// Parses the payload. An error here is the node's cue to call `/fail` for this job; a
    /// missing payload is `Ok(None)`.
    pub fn payload(&self) -> Result<Option<JobPayload>, serde_json::Error> {
        self.input_payload.as_ref().filter(|v| !v.is_null()).map(JobPayload::deserialize).transpose()
    }
}

/// The `pending_jobs` list of a heartbeat response. Unlike the seed node, one malformed entry
/// does not discard the whole response (and its token rotation): it is counted and skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingJobs {
    /// The entries that parsed.
    pub jobs: Vec<PendingJob>,
    /// How many entries did not parse.
    pub n_malformed: usize,
}

impl Serialize for PendingJobs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.jobs.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PendingJobs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<Value>::deserialize(deserializer)?;
        let mut pending = Self::default();
        for entry in entries {
            match serde_json::from_value(entry) {
                Ok(job) => pending.jobs.push(job),
                Err(_) => pending.n_malformed += 1,
            }
        }
        Ok(pending)
    }
}

/// `POST /grid/nodes/heartbeat` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatResponse {
    /// A short status, informational.
    pub status: String,
    /// Jobs to run (REST pickup).
    #[serde(default)]
    pub pending_jobs: PendingJobs,
    /// A rotated token; persist it, then use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_auth_token: Option<AuthToken>,
    /// When the new token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<String>,
    /// Ours: as in [`RegisterNodeResponse::accepted_envelope_versions`], so a node learns it
    /// again after a grid upgrade without re-registering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_envelope_versions: Vec<String>,
    /// Ours: jobs whose caller went away since the last heartbeat (also pushed as
    /// [`ServerMessage::Cancel`]): stop them and free their slots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancelled_job_ids: Vec<JobId>,
}

/// A message from the coordinator on `/grid/nodes/{id}/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Run this job.
    Job {
        /// The job.
        job: Box<PendingJob>,
    },
    /// Answer with [`NodeMessage::Pong`].
    Ping,
    /// Ours: the caller of this job went away and the job is finished; stop working on it and
    /// free its slot (nothing more is billed). Seed nodes ignore it.
    Cancel {
        /// The job.
        job_id: JobId,
    },
    /// The token rotated.
    TokenRotated {
        /// The new token.
        new_auth_token: AuthToken,
        /// When it expires.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_expires_at: Option<String>,
    },
    /// Informational.
    JobCompleteAck,
    /// Informational.
    JobFailedAck,
    /// Informational.
    StreamChunkAck,
    /// Informational.
    Error {
        /// What went wrong.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Any other type: ignored, so the coordinator can add messages without breaking nodes.
    #[serde(other)]
    Unknown,
}

/// A message from the node on the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeMessage {
    /// The answer to a ping.
    Pong,
}

/// The two forms of a completed result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CompletedResult {
    /// A sealed job: the reply sealed to the caller.
    Sealed {
        /// The sealed reply.
        sealed_result: SealedResult,
    },
    /// A plain job: the compact result JSON (the seed's misleading name).
    Plain {
        /// `{"content","model","usage"}`, compact, sorted keys.
        encrypted_result: String,
    },
}

/// The node's signature on a result or chunk and, in v2, the claims it covers beyond the
/// payload (`docs/protocol.md` §1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultSignature {
    /// Base58 result envelope signature.
    pub result_envelope_signature: String,
    /// `v1` or `v2`.
    pub result_envelope_version: String,
    /// v2: sha256 hex of the served GGUF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// v2: hex proof of execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_of_execution: Option<String>,
}

/// `POST /grid/jobs/{id}/complete` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompleteJobRequest {
    /// Sealed or plain result.
    #[serde(flatten)]
    pub result: CompletedResult,
    /// Token counts (cleartext; covered by the signature only in v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The node's signature, kind `plain` or `sealed`.
    #[serde(flatten)]
    pub signature: ResultSignature,
}

/// One sealed stream chunk, `POST /grid/jobs/{id}/chunk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamChunkPost {
    /// Position from 0.
    pub seq: u64,
    /// The last chunk.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// `b58(nonce24 || ct || tag)`.
    pub ciphertext: String,
    /// `x25519-xchacha20poly1305-hkdf-v2-stream`.
    pub algorithm: String,
    /// The stream's ephemeral key, on seq 0 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_public_key: Option<String>,
    /// On the final chunk only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The node's signature, kind `stream:{seq}:{0|1}`.
    #[serde(flatten)]
    pub signature: ResultSignature,
}

/// A node reporting that its stream failed: `{"error": true}` (plus our optional reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamErrorPost {
    /// Always true.
    pub error: bool,
    /// Ours: why, for the coordinator's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of `POST /grid/jobs/{id}/chunk`: a chunk or a stream error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ChunkPost {
    /// A chunk.
    Chunk(StreamChunkPost),
    /// The stream failed.
    Error(StreamErrorPost),
}

/// `POST /grid/jobs/{id}/chunk` response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChunkResponse {
    /// The chunk was accepted. The seed does not fix this field's type, so any JSON value is
    /// read (null and false are false) rather than losing `closed` to a parse error.
    #[serde(default, deserialize_with = "lenient::truthy")]
    pub ok: bool,
    /// The caller has gone: stop generating.
    #[serde(default)]
    pub closed: bool,
}

/// `POST /grid/jobs/{id}/fail` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailJobRequest {
    /// Why (see §1.11 for the seed's reasons).
    pub reason: String,
    /// Ours: what kind of failure, when it is not the node's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<FailCode>,
}

/// `POST /grid/nodes/{id}/status` request (maintenance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OffGridRequest {
    /// True to stop receiving work without an offline penalty.
    pub off_grid: bool,
}

/// A price pair in USD per million tokens, camelCase as the seed's prices endpoint sends it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PricePair {
    /// USD per 1M input tokens.
    #[serde(rename = "inputPerM")]
    pub input_per_m: f64,
    /// USD per 1M output tokens.
    #[serde(rename = "outputPerM")]
    pub output_per_m: f64,
}

/// The band a custom price must fall in (ours; the seed's field name is not visible).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceBand {
    /// The lowest allowed price.
    pub min: PricePair,
    /// The highest allowed price.
    pub max: PricePair,
}

/// One model's prices on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeModelPrice {
    /// The model.
    pub model: String,
    /// What callers pay.
    pub effective: PricePair,
    /// The operator's price, if set.
    pub custom: Option<PricePair>,
    /// The grid's suggested price.
    pub reference: PricePair,
    /// The allowed band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<PriceBand>,
}

/// `GET /grid/nodes/{id}/prices` response (public).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodePricesResponse {
    /// One entry per model.
    pub prices: Vec<NodeModelPrice>,
}

/// `POST /grid/nodes/{id}/prices` request: set a custom price or reset to the reference.
/// Only `"reset": true` is a reset; anything else must carry both prices.
#[derive(Debug, Clone, PartialEq)]
pub enum SetPriceRequest {
    /// Back to the suggested price: `{"model", "reset": true}`.
    Reset {
        /// The model.
        model: String,
    },
    /// A custom price, USD per 1M tokens: `{"model", "input_per_m", "output_per_m"}`.
    Set {
        /// The model.
        model: String,
        /// Input price.
        input_per_m: f64,
        /// Output price.
        output_per_m: f64,
    },
}

#[derive(Serialize, Deserialize)]
struct SetPriceWire {
    model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reset: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_per_m: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_per_m: Option<f64>,
}

impl Serialize for SetPriceRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match self {
            Self::Reset { model } => {
                SetPriceWire { model: model.clone(), reset: Some(true), input_per_m: None, output_per_m: None }
            }
            Self::Set { model, input_per_m, output_per_m } => SetPriceWire {
                model: model.clone(),
                reset: None,
                input_per_m: Some(*input_per_m),
                output_per_m: Some(*output_per_m),
            },
        };
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SetPriceRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = SetPriceWire::deserialize(deserializer)?;
        match (wire.reset, wire.input_per_m, wire.output_per_m) {
            (Some(true), _, _) => Ok(Self::Reset { model: wire.model }),
            (_, Some(input_per_m), Some(output_per_m)) => {
                Ok(Self::Set { model: wire.model, input_per_m, output_per_m })
            }
            _ => Err(serde::de::Error::custom("expected \"reset\": true, or both input_per_m and output_per_m")),
        }
    }
}

/// `GET /grid/nodes/{id}` response. Every field has a default, as the seed node reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeStatusResponse {
    /// Lifecycle state: `active`, `offline` or `off_grid` (a seed grid may also say
    /// `unstaking`).
    #[serde(default = "unknown_status")]
    #[schema(value_type = String, example = "active")]
    pub status: NodeLifecycle,
    /// Whether attestation passed.
    #[serde(default)]
    pub attestation_verified: bool,
    /// Reputation score.
    #[serde(default)]
    pub reputation_score: f64,
    /// Completed jobs.
    #[serde(default, alias = "total_jobs_completed")]
    pub jobs_completed: u64,
    /// Failed jobs.
    #[serde(default, alias = "total_jobs_failed")]
    pub jobs_failed: u64,
    /// Ours: the operator's stake, `staked` (at least the minimum), `below_minimum` or
    /// `unstaking`; a state this version does not know reads as none.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "stake_state")]
    pub stake_state: Option<StakeState>,
    /// Ours: the operator wallet's stake in whole SGL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake_sgl: Option<u64>,
    /// Ours: why the grid gives this node no work now (empty when it is eligible), as the
    /// scheduler decides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_serving: Option<Vec<NotServingReason>>,
}

/// Why a node gets no work (ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotServingReason {
    /// No heartbeat within the node timeout.
    Offline,
    /// In maintenance (`sgl off-grid`).
    OffGrid,
    /// Has not passed `sgl attest`.
    NotAttested,
    /// Heartbeats report a binary other than the one attested: attest again.
    BinaryChanged,
    /// The binary is not on the grid's allowlist.
    BinaryNotAllowed,
    /// The operator's stake is below the minimum.
    BelowStake,
    /// The operator asked to unstake.
    Unstaking,
    /// On a grid that runs on a chain: the operator wallet has no bond in the registry.
    NotBonded,
    /// The last heartbeat listed no model.
    NoModel,
    /// A reason this reader does not know.
    #[serde(other)]
    Other,
}

impl NotServingReason {
    /// What the operator can do about it, in one sentence.
    pub fn advice(self) -> &'static str {
        match self {
            Self::Offline => "the grid has not heard from the node recently; is `sgl start` running?",
            Self::OffGrid => "the node is in maintenance; `sgl on-grid` brings it back",
            Self::NotAttested => "the node has not passed attestation; run `sgl attest`",
            Self::BinaryChanged => "the node runs a binary other than the one attested; run `sgl attest` again",
            Self::BinaryNotAllowed => "the node's binary is not on the grid's allowlist; `sgl update` installs one",
            Self::BelowStake => "the operator wallet's stake is below the grid's minimum",
            Self::Unstaking => "the operator wallet is unstaking; nodes get no work during the cooldown",
            Self::NotBonded => {
                "the operator wallet has no bond in the grid's ProviderRegistry; `sgl stake deposit --bond` bonds it"
            }
            Self::NoModel => "the node serves no model now (engine unhealthy or not loaded)",
            Self::Other => "a reason this version of sgl does not know",
        }
    }
}

fn unknown_status() -> NodeLifecycle {
    NodeLifecycle::Other("unknown".to_owned())
}

/// A stake state, or none when the grid says one this version does not know.
fn stake_state<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<StakeState>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|value| serde_json::from_value(value).ok()))
}

/// `GET /grid/nodes/{id}/earnings` response (ours): what the node's operator wallet has earned
/// and not yet withdrawn, in micro-dollars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EarningsResponse {
    /// The operator's wallet, which all its nodes earn into.
    pub wallet: String,
    /// Earned, in micro-dollars (exact).
    pub earnings_micros: i64,
    /// The same in dollars, for display.
    pub earnings_usd: f64,
    /// Jobs this node completed.
    pub jobs_completed: u64,
}

/// `GET /grid/allowed-binaries` response (public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AllowedBinariesResponse {
    /// sha256 hex of each allowed node binary, compared case-insensitively.
    pub hashes: Vec<String>,
}
