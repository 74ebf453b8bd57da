//! The SDK's errors: transport, the grid's OpenAI-shaped refusals, and (kept apart, because a
//! caller must never treat them as transient) every way a node's reply can fail verification.

use std::time::Duration;

use sgl_protocol::api::error::{ErrorCode, ErrorType};
use sgl_protocol::compute::Digest;
use sgl_protocol::ids::{JobId, NodeId};

/// Anything a [`crate::Client`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request never got an HTTP answer (connection refused, reset, timed out).
    #[error("cannot reach the grid: {0}")]
    Transport(#[source] reqwest::Error),
    /// The grid answered with an error status and (usually) an OpenAI-shaped error body.
    #[error("the grid refused ({status}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// OpenAI's broad class, when the body had one.
        error_type: Option<ErrorType>,
        /// The machine-readable code, when the body had one.
        code: Option<ErrorCode>,
        /// The grid's message, or the raw body when it was not an error body.
        message: String,
        /// The grid's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The call needs an API key and the client has none.
    #[error("this call needs an API key")]
    MissingApiKey,
    /// A stream was aborted by the grid (an SSE `error` event, or a plain stream's error
    /// chunk); nothing after it can be trusted to arrive.
    #[error("the grid aborted the stream: {message}")]
    StreamAborted {
        /// The machine-readable code, when the event had one.
        code: Option<ErrorCode>,
        /// The grid's message.
        message: String,
    },
    /// A stream sent nothing, not even a keep-alive, for this long.
    #[error("the stream stalled: nothing received for {0:?}")]
    Stalled(Duration),
    /// A plain (unsealed) stream ended without `[DONE]`.
    #[error("the stream ended before [DONE] (truncated)")]
    PlainStreamTruncated,
    /// A 2xx body was not the JSON the endpoint documents.
    #[error("unexpected response from the grid: {0}")]
    UnexpectedResponse(String),
    /// The arguments cannot make a valid request (for example an empty base URL).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A reservation or a sealed reply failed verification: the node, the coordinator or the
    /// network cannot be trusted for this answer. Never retried.
    #[error("verification failed: {0}")]
    Verification(#[from] VerifyError),
    /// A job's event stream ended before its `done` event; reading it again resumes.
    #[error("the job's event stream ended before `done` (truncated)")]
    JobStreamTruncated,
    /// A blob or a job's result failed its checks: the grid (or the network) cannot be trusted
    /// for it. Never retried.
    #[error("verification failed: {0}")]
    JobVerification(#[from] JobVerifyError),
}

impl Error {
    /// Whether this is a verification failure (as opposed to an ordinary failure to get an
    /// answer); the CLI exits 1 for these and 2 for everything else.
    pub fn is_verification(&self) -> bool {
        matches!(self, Self::Verification(_) | Self::JobVerification(_))
    }

    /// The grid's error code, for an API error or an aborted stream.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } | Self::StreamAborted { code, .. } => *code,
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Why a reservation or a sealed reply was refused. Each check has its own variant so that a
/// caller (and the tests) can tell exactly which guarantee broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The reservation carries no keybind (signature, key version, ed25519 key or X25519
    /// key): the coordinator could be handing out its own key (seed weakness S1).
    #[error("the reserved node publishes no key binding ({0} missing); refusing to seal to it")]
    MissingKeybind(&'static str),
    /// The keybind signature does not bind this node id, identity key, X25519 key and version.
    #[error("the node's key binding does not verify; the encryption key may not be the node's")]
    BadKeybind,
    /// A reply or chunk names another node than the one reserved.
    #[error("answered by node {answered}, but node {reserved} was reserved")]
    NodeMismatch {
        /// The node the caller reserved and sealed to.
        reserved: NodeId,
        /// The node the reply names.
        answered: NodeId,
    },
    /// A reply or chunk carries no result signature.
    #[error("the reply carries no node signature")]
    Unsigned,
    /// The node's result signature does not verify over the ciphertext, usage and model hash.
    #[error("the node's signature does not verify (tampered reply, usage or model hash)")]
    BadSignature,
    /// The usage is absent or not covered by the signature (a `v1` envelope, or usage in the
    /// wrong place), so it could have been altered.
    #[error("the usage is not signed by the node ({0})")]
    UsageNotSigned(String),
    /// The model hash the reply claims differs from the one the reservation advertised, or is
    /// not a sha256 hex string.
    #[error("model hash mismatch: reserved {reserved}, reply claims {claimed}")]
    ModelHashMismatch {
        /// What the reservation said the node serves.
        reserved: String,
        /// What the signed reply claims.
        claimed: String,
    },
    /// The proof of execution sent does not match the job, payload and node.
    #[error("the proof of execution does not match the reply")]
    ProofMismatch,
    /// A stream chunk arrived ahead of its turn: one is missing, or chunks were reordered
    /// (a reordering shows first as the later chunk arriving early).
    #[error("stream gap: expected chunk {expected}, got {got}")]
    StreamGap {
        /// The chunk that was due.
        expected: u64,
        /// The chunk that came.
        got: u64,
    },
    /// A stream chunk arrived that was already consumed: a duplicate or replay.
    #[error("stream replay: expected chunk {expected}, got {got} again")]
    StreamDuplicate {
        /// The chunk that was due.
        expected: u64,
        /// The (earlier) chunk that came.
        got: u64,
    },
    /// A chunk arrived after the final chunk.
    #[error("a chunk arrived after the final chunk")]
    StreamAfterFinal,
    /// The stream ended before its final chunk.
    #[error("the stream ended before its final chunk (truncated)")]
    StreamTruncated,
    /// Chunk 0 carried no ephemeral key, or a later chunk named another one.
    #[error("the stream's ephemeral key is missing or changed")]
    StreamKeyChanged,
    /// A chunk names another job than the chunks before it.
    #[error("a chunk of another job was spliced into the stream")]
    StreamSpliced,
    /// The sealed reply or chunk did not decrypt: wrong key, or bytes altered in transit.
    #[error("the sealed reply does not decrypt")]
    Decrypt,
    /// The sealed reply or a verification field is malformed.
    #[error("malformed sealed reply: {0}")]
    UnexpectedShape(String),
}

/// Why a blob or a job's result was refused. Without the nodes' public keys (the grid does not
/// publish them to callers) a receipt's signature cannot be checked here; everything that can
/// be checked from the receipts alone is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobVerifyError {
    /// A blob's bytes do not hash to its name.
    #[error("blob {name} arrived with SHA-256 {actual}; refusing it")]
    BlobMismatch {
        /// The name asked for.
        name: Digest,
        /// The SHA-256 of what arrived.
        actual: Digest,
    },
    /// The result is for another job than the one asked for.
    #[error("asked for the result of job {expected}, got job {got}'s")]
    WrongJob {
        /// The job asked for.
        expected: JobId,
        /// The job the result names.
        got: JobId,
    },
    /// The slices are not listed once each in increasing index order.
    #[error("the result's slices are out of order or repeated (slice {0})")]
    SlicesOutOfOrder(u32),
    /// A slice comes with no receipt at all, so nothing vouches for it.
    #[error("slice {0} has no receipt")]
    NoReceipts(u32),
    /// A receipt names another job or slice than the one it is filed under.
    #[error("slice {slice}: receipt of attempt {attempt} is for another job or slice")]
    ReceiptMisplaced {
        /// The slice it is filed under.
        slice: u32,
        /// The receipt's attempt.
        attempt: u32,
    },
    /// A receipt's outputs are not sorted by path without repeats.
    #[error("slice {slice}: receipt of attempt {attempt} lists its outputs out of order")]
    ReceiptUnsorted {
        /// The slice.
        slice: u32,
        /// The receipt's attempt.
        attempt: u32,
    },
    /// A receipt names an output path that is not a safe relative path (`..`, absolute, …), so
    /// writing it under a directory could land outside it.
    #[error("slice {slice}: receipt of attempt {attempt} names an unsafe output path {path:?}")]
    UnsafePath {
        /// The slice.
        slice: u32,
        /// The receipt's attempt.
        attempt: u32,
        /// The path.
        path: String,
    },
    /// A receipt's result digest is not the digest of its own exit code, fuel and outputs.
    #[error("slice {slice}: receipt of attempt {attempt} has a result digest that does not match its outputs")]
    ReceiptDigest {
        /// The slice.
        slice: u32,
        /// The receipt's attempt.
        attempt: u32,
    },
    /// A receipt's proof of execution is not SHA-256(task ‖ result ‖ node).
    #[error("slice {slice}: receipt of attempt {attempt} has a proof of execution that does not match")]
    ReceiptProof {
        /// The slice.
        slice: u32,
        /// The receipt's attempt.
        attempt: u32,
    },
    /// A receipt's signature does not verify with its node's key.
    #[error("slice {slice}: receipt of attempt {attempt} is not signed by its node's key")]
    ReceiptSignature {
        /// The slice.
        slice: u32,
        /// The attempt.
        attempt: u32,
    },
    /// The result lists no key for a receipt's node.
    #[error("slice {slice}: no public key for node {node_id}, whose receipt is listed")]
    UnknownNode {
        /// The slice.
        slice: u32,
        /// The node.
        node_id: NodeId,
    },
    /// The receipts of a slice disagree on the result or the bundle.
    #[error("slice {0}: its receipts disagree with each other")]
    ReceiptsDisagree(u32),
    /// One node's receipt is counted twice in a slice's quorum.
    #[error("slice {slice}: node {node_id} is counted twice")]
    DuplicateNode {
        /// The slice.
        slice: u32,
        /// The node.
        node_id: NodeId,
    },
    /// A slice's stated result (digest, exit code or outputs) is not what its receipts say.
    #[error("slice {0}: the stated result is not the one its receipts sign")]
    SliceMismatch(u32),
}
