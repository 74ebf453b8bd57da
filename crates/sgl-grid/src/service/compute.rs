//! General compute, the domain (issue 16): checking and enqueueing signed jobs
//! ([`submit`]), leasing slices to nodes and slipping in canaries ([`lease`], [`canary`]),
//! taking their receipts and failures and acting on the verdicts ([`report`]), and what a
//! requester sees ([`views`]). The queue and its money are in `sgl_grid_store::compute`.

use sgl_grid_store::StoreError;
use sgl_grid_store::compute::ComputeError;
use sgl_protocol::compute::bundle::BundleError;
use sgl_protocol::compute::receipt::ReceiptError;

use crate::blobs::BlobError;

pub mod canary;
pub mod lease;
pub mod report;
pub mod secrets;
pub mod submit;
pub mod views;

/// A compute request was refused; nothing changed and nothing was charged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkError {
    /// The bundle is malformed or its signature does not verify.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The bundle asks for more than the grid allows, or names something it cannot run.
    #[error("{0}")]
    Refused(String),
    /// A file, input or output the request names is not a blob on the grid.
    #[error("blob {0} is not on the grid: upload it first (PUT /v1/blobs/{0})")]
    MissingBlob(String),
    /// An output a receipt names is not a blob of that size on the grid.
    #[error("output blob {0} is not on the grid with the receipt's size: upload it first (PUT /grid/blobs/{0})")]
    MissingOutput(String),
    /// The grid's price is above the manifest's cap.
    #[error("the grid's price, {price} micro-USD per 10^9 fuel, is above the bundle's cap of {cap}")]
    PriceAboveCap {
        /// The grid's price.
        price: u64,
        /// The manifest's cap.
        cap: u64,
    },
    /// The payer's credits do not cover the escrow.
    #[error("insufficient credits: the job holds {needed} micro-USD in escrow, the key has {available}")]
    InsufficientCredits {
        /// The escrow.
        needed: i64,
        /// The key's credits.
        available: i64,
    },
    /// No such job for this caller, or no such attempt for this node.
    #[error("no such job")]
    NotFound,
    /// The job has not produced what was asked yet, or already ended.
    #[error("{0}")]
    Conflict(String),
    /// A receipt does not hold together or was not signed by the node.
    #[error("the receipt does not verify: {0}")]
    BadReceipt(#[from] ReceiptError),
    /// A receipt names another job, slice, attempt, node or bundle than the lease.
    #[error("the receipt does not match its lease: {0}")]
    ReceiptMismatch(&'static str),
    /// Blob storage failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A queue operation failed.
    #[error(transparent)]
    Queue(ComputeError),
}

impl From<ComputeError> for WorkError {
    fn from(error: ComputeError) -> Self {
        match error {
            ComputeError::InsufficientCredits { needed, available } => Self::InsufficientCredits { needed, available },
            ComputeError::NotFound => Self::NotFound,
            ComputeError::NotLive(state) => Self::Conflict(format!("the attempt is {state}, not leased or running")),
            ComputeError::Ended(state) => Self::Conflict(format!("the job already ended ({state})")),
            ComputeError::AlreadyGiven => Self::Conflict("the attempt's secrets were given already".into()),
            ComputeError::Store(error) => Self::Store(error),
            other => Self::Queue(other),
        }
    }
}

/// The size of blob `digest` on the grid, if it has it (the store's file I/O off the runtime).
pub async fn blob_size(
    state: &crate::state::AppState,
    digest: sgl_protocol::compute::Digest,
) -> Result<Option<u64>, WorkError> {
    let blobs = state.blobs().clone();
    tokio::task::spawn_blocking(move || blobs.size(&digest))
        .await
        .map_err(|_| WorkError::Refused("blob lookup was interrupted".into()))?
        .map_err(WorkError::from)
}

/// A fresh compute job id.
pub fn new_job_id() -> String {
    format!("cj_{}", uuid::Uuid::new_v4().simple())
}

/// Ends the leases of nodes gone silent (seen, then not heard from within the node timeout)
/// and leases that ran out, so their slices go back to the queue. Done by the leader. A node
/// this process has not seen at all (it just started) keeps its leases until they run out.
pub async fn reap(state: &crate::state::AppState) -> Result<usize, WorkError> {
    if !state.leads() {
        return Ok(0);
    }
    let (now, timeout) = (state.now_ms(), state.config().node_timeout_ms());
    let holders = state.store().nodes_with_live_attempts().await?;
    let live = state.registry().snapshot_by_id();
    let silent: Vec<String> =
        holders.into_iter().filter(|id| live.get(id).is_some_and(|node| !node.is_online(now, timeout))).collect();
    let expired = state.store().expire_compute_leases(&silent, now).await?;
    for attempt in &expired {
        tracing::info!(
            target: "sgl::events::compute", job = %attempt.job_id, node = %attempt.node_id,
            job_state = attempt.job_state.as_str(), "lease expired"
        );
    }
    Ok(expired.len())
}
