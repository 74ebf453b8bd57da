//! What a job asks of a node (`job_type`) and why a node may fail one without fault.

use serde::{Deserialize, Serialize};

/// A chat job's `job_type`, the only one seed nodes run.
pub const JOB_TYPE_INFERENCE: &str = "inference";
/// An embeddings job's `job_type` (ours, `docs/protocol.md` §15).
pub const JOB_TYPE_EMBEDDING: &str = "embedding";

/// What a pushed job asks of a node: `job_type` on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    /// A chat completion.
    #[default]
    Inference,
    /// Embeddings of texts (ours).
    Embedding,
}

impl JobType {
    /// The `job_type` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inference => JOB_TYPE_INFERENCE,
            Self::Embedding => JOB_TYPE_EMBEDDING,
        }
    }

    /// The type a `job_type` string names, if known.
    pub fn from_wire(text: &str) -> Option<Self> {
        match text {
            JOB_TYPE_INFERENCE => Some(Self::Inference),
            JOB_TYPE_EMBEDDING => Some(Self::Embedding),
            _ => None,
        }
    }
}

/// Why a node failed a job, when the fault is not its own (ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailCode {
    /// The sealed input is one the model cannot take (an embedding input over the model's
    /// token limit): the caller's error, which the grid answers with a 400 and does not count
    /// against the node.
    InputRejected,
}
