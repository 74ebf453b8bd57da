//! General compute over HTTP (`docs/protocol.md` §11): blobs, the requester's job API
//! (`/v1/jobs`), and the node's side (`/grid/compute/...`): leasing slices and returning receipts.

use serde::{Deserialize, Serialize};

use crate::compute::bundle::BundleSignature;
use crate::compute::receipt::{OutputFile, Receipt};
use crate::compute::{Digest, JobClass};
use crate::ids::{JobId, NodeId};

/// `PUT /v1/blobs/{sha256}` (and a node's `PUT /grid/blobs/{sha256}`) response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlobStored {
    /// The blob's name.
    pub sha256: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// False when the grid already had it (nothing was written).
    pub created: bool,
}

/// `POST /v1/jobs` request: a signed manifest whose files and inputs are already blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJobRequest {
    /// The exact text of `manifest.json`, as signed.
    pub manifest: String,
    /// `manifest.sig`.
    pub signature: BundleSignature,
}

/// Where a job, a slice or an attempt is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkState {
    /// Waiting for a node.
    Queued,
    /// A node holds a lease and has not started.
    Leased,
    /// Running on a node.
    Running,
    /// Receipts are in and are being compared (a slice waits here for its quorum).
    Verifying,
    /// Verified and paid.
    Done,
    /// Given up on: nothing was charged for this slice (a failed job keeps what its accepted
    /// slices were paid; the rest of its escrow went back).
    Failed,
    /// Cancelled by the requester; the unused escrow went back.
    Cancelled,
}

impl WorkState {
    /// Every state, in the order a slice goes through them.
    pub const ALL: [WorkState; 7] = [
        WorkState::Queued,
        WorkState::Leased,
        WorkState::Running,
        WorkState::Verifying,
        WorkState::Done,
        WorkState::Failed,
        WorkState::Cancelled,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkState::Queued => "queued",
            WorkState::Leased => "leased",
            WorkState::Running => "running",
            WorkState::Verifying => "verifying",
            WorkState::Done => "done",
            WorkState::Failed => "failed",
            WorkState::Cancelled => "cancelled",
        }
    }

    /// The state named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether nothing more will happen to it.
    pub const fn is_final(self) -> bool {
        matches!(self, WorkState::Done | WorkState::Failed | WorkState::Cancelled)
    }
}

/// What became of one node's attempt at a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// The node holds the lease.
    Leased,
    /// The node said it started.
    Running,
    /// Its receipt is in; the slice's quorum is not decided yet.
    Submitted,
    /// Its result is the slice's accepted result; it was paid.
    Accepted,
    /// Its result disagreed with the accepted one.
    Rejected,
    /// The node went silent or the lease ran out; the slice went back to the queue.
    Expired,
    /// The node reported that it could not run it.
    Failed,
    /// The job was cancelled or the slice decided without it.
    Cancelled,
}

impl AttemptState {
    /// Every state.
    pub const ALL: [AttemptState; 8] = [
        AttemptState::Leased,
        AttemptState::Running,
        AttemptState::Submitted,
        AttemptState::Accepted,
        AttemptState::Rejected,
        AttemptState::Expired,
        AttemptState::Failed,
        AttemptState::Cancelled,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptState::Leased => "leased",
            AttemptState::Running => "running",
            AttemptState::Submitted => "submitted",
            AttemptState::Accepted => "accepted",
            AttemptState::Rejected => "rejected",
            AttemptState::Expired => "expired",
            AttemptState::Failed => "failed",
            AttemptState::Cancelled => "cancelled",
        }
    }

    /// The state named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the node still holds the lease.
    pub const fn is_live(self) -> bool {
        matches!(self, AttemptState::Leased | AttemptState::Running)
    }
}

/// One node's attempt at a slice, as the requester sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// Its number within the slice, from 1.
    pub attempt: u32,
    /// Its id (where its secrets are posted).
    pub attempt_id: i64,
    /// The node.
    pub node_id: NodeId,
    /// Its state.
    pub state: AttemptState,
    /// Its result digest, once its receipt is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_digest: Option<Digest>,
    /// Fuel it used, once its receipt is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Why it failed or expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it was paid, micro-USD (the node's share and the protocol fee together).
    pub charged_micros: i64,
    /// When the node leased it, RFC 3339.
    pub leased_at: String,
    /// When it ended (its receipt, failure or expiry), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// For a job with secrets, while the node waits for them: where to seal them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_to: Option<SecretsTarget>,
}

/// The node an attempt's secrets are sealed to, with the binding of its encryption key to its
/// identity, which the requester checks before sealing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretsTarget {
    /// The node's ed25519 identity key, base58.
    pub node_public_key: String,
    /// The node's X25519 key, base58.
    pub encryption_public_key: String,
    /// The keybind signature over it.
    pub encryption_public_key_signature: String,
    /// The keybind's key version.
    pub key_version: u32,
}

/// One secret, sealed to the node of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedSecret {
    /// Its name (a file under `/secrets`), as the manifest declares it.
    pub name: String,
    /// The sealed `{"job_id", "slice", "attempt", "name", "value"}`.
    pub enc: crate::api::sealed::SealedInput,
}

/// `POST /v1/jobs/{id}/attempts/{attempt_id}/secrets` request, and
/// `GET /grid/compute/attempts/{id}/secrets` response: every secret the manifest declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptSecrets {
    /// The sealed secrets.
    pub secrets: Vec<SealedSecret>,
}

/// One slice of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SliceView {
    /// Its index in the manifest.
    pub index: u32,
    /// Its state.
    pub state: WorkState,
    /// The accepted result's digest, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_digest: Option<Digest>,
    /// Every attempt so far.
    pub attempts: Vec<AttemptView>,
}

/// `GET /v1/jobs/{id}` response (and each item of `GET /v1/jobs`, without slices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    /// The job's id.
    pub id: JobId,
    /// Always `job`.
    pub object: String,
    /// Its class.
    pub class: JobClass,
    /// Its state: done when every slice is; failed or cancelled when it ended so; otherwise
    /// queued while no slice has started, else running, leased or verifying by its most active
    /// slice.
    pub state: WorkState,
    /// SHA-256 of its manifest.
    pub bundle_hash: Digest,
    /// Nodes of different operators per slice.
    pub redundancy: u32,
    /// Slices in total.
    pub slice_count: u32,
    /// Slices done.
    pub slices_done: u32,
    /// The price it runs at, micro-USD per 10^9 fuel.
    pub price_micros_per_gfuel: u64,
    /// Held in escrow at submit, micro-USD.
    pub escrow_micros: i64,
    /// Paid out so far.
    pub charged_micros: i64,
    /// Given back (after it ended).
    pub refunded_micros: i64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was submitted, RFC 3339.
    pub created_at: String,
    /// When it ended, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Its slices (only in `GET /v1/jobs/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<SliceView>,
    /// Only in the answer to a `POST /v1/jobs` paid with x402 or MPP without an API key: a new
    /// key of the paying wallet's account, shown once, to follow, download and cancel the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_api_key: Option<crate::ids::ApiKey>,
}

/// `GET /v1/jobs` response, OpenAI's list shape, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    /// Always `list`.
    pub object: String,
    /// The jobs.
    pub data: Vec<JobView>,
}

/// One slice's accepted outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SliceResult {
    /// The slice's index.
    pub index: u32,
    /// The accepted result digest.
    pub result_digest: Digest,
    /// The guest's exit code.
    pub exit_code: i32,
    /// The files, each a blob (`GET /v1/blobs/{sha256}`).
    pub outputs: Vec<OutputFile>,
    /// The receipts that agreed, the evidence of the result.
    pub receipts: Vec<Receipt>,
}

/// `GET /v1/jobs/{id}/result` response (409 until the job is done).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResult {
    /// The job.
    pub job_id: JobId,
    /// Each slice's result, by index.
    pub slices: Vec<SliceResult>,
    /// The base58 ed25519 key of every node whose receipt is listed, so callers can check the
    /// receipts' signatures.
    #[serde(default)]
    pub public_keys: std::collections::BTreeMap<NodeId, String>,
}

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

/// One attempt's captured output (an item of `GET /v1/jobs/{id}/logs`, or one SSE `log` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobLog {
    /// The slice.
    pub slice: u32,
    /// The attempt.
    pub attempt: u32,
    /// The node that ran it.
    pub node_id: NodeId,
    /// Which stream.
    pub stream: LogStream,
    /// The text (capped by the node's sandbox).
    pub text: String,
}

/// `POST /grid/compute/lease` request: a node asks for work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// The classes it runs now.
    pub classes: Vec<JobClass>,
    /// How many slices it takes at most.
    pub slots: u32,
}

/// A slice leased to a node: everything it needs to fetch, verify and run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lease {
    /// The attempt's id, used in the node's later posts.
    pub attempt_id: i64,
    /// The job.
    pub job_id: JobId,
    /// The slice's index.
    pub slice: u32,
    /// The attempt's number.
    pub attempt: u32,
    /// The exact manifest text, which the node verifies against `signature`.
    pub manifest: String,
    /// The requester's signature.
    pub signature: BundleSignature,
    /// The guest's fixed wall clock, Unix seconds (the job's submission time).
    pub start_unix: u64,
    /// When the lease runs out unless the node reports, RFC 3339.
    pub expires_at: String,
    /// For a chained class (`train`): the outputs of the previous slice's accepted result, which
    /// the node fetches by hash and gives the guest under `/in/prev/`; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carry: Vec<OutputFile>,
}

/// `POST /grid/compute/lease` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaseResponse {
    /// The slices leased, possibly none.
    pub leases: Vec<Lease>,
}

/// `POST /grid/compute/attempts/{id}/receipt` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPost {
    /// The signed receipt; every output is already a blob.
    pub receipt: Receipt,
    /// The guest's stdout, capped.
    #[serde(default)]
    pub stdout: String,
    /// The guest's stderr, capped.
    #[serde(default)]
    pub stderr: String,
}

/// `POST /grid/compute/attempts/{id}/fail` request: the node could not run its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptFailure {
    /// Why, for the requester.
    pub reason: String,
    /// The guest's stderr so far, capped.
    #[serde(default)]
    pub stderr: String,
}

/// The grid's answer to a receipt or a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptAck {
    /// The attempt's state after the post.
    pub state: AttemptState,
}
