//! The grid operator's overview (ours): `GET /grid/admin/overview`, behind the grid's admin
//! token, what the dashboard's admin page shows. Every figure comes from the data `/metrics`
//! exposes (the same counters and histogram) or from the store, never from a second count.

use serde::{Deserialize, Serialize};

use super::caller::CapacityResponse;
use super::operator::SlashInfo;

/// The header, or `Authorization: Bearer`, carrying the admin token.
pub const HEADER_ADMIN_TOKEN: &str = "X-Admin-Token";

/// Request latency percentiles, read from the `sgl_http_request_seconds` histogram: each is the
/// upper bound of the bucket the percentile falls in (`None` past the last finite bucket or
/// before any request).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LatencyPercentiles {
    /// Requests observed.
    pub count: u64,
    /// Median, seconds.
    pub p50_seconds: Option<f64>,
    /// 95th percentile, seconds.
    pub p95_seconds: Option<f64>,
    /// 99th percentile, seconds.
    pub p99_seconds: Option<f64>,
    /// Mean, seconds.
    pub mean_seconds: Option<f64>,
}

/// Jobs finished, as `sgl_jobs_total` counts them, and the recent rate from the job records.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRates {
    /// Jobs settled with a verified result since this process started.
    pub completed_total: u64,
    /// Jobs failed since this process started.
    pub failed_total: u64,
    /// Jobs (chat) finished over the last minute, per second, every replica's.
    pub per_second_last_minute: f64,
}

/// The ledger audit (`sgl-grid admin ledger check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerStatus {
    /// Every invariant holds.
    pub sound: bool,
    /// Transactions checked.
    pub transactions: i64,
    /// What is wrong, one line each (empty when sound).
    pub problems: Vec<String>,
}

/// One refused result: a signature that did not verify, or a sealed result that did not open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TamperEvent {
    /// RFC 3339.
    pub at: String,
    /// The node.
    pub node_id: String,
    /// The job.
    pub job_id: String,
    /// Why it was refused.
    pub reason: String,
}

/// `GET /grid/admin/overview` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminOverview {
    /// RFC 3339 time of the snapshot.
    pub at: String,
    /// Capacity by model and queue depth, as `GET /grid/capacity` answers it.
    pub capacity: CapacityResponse,
    /// Jobs finished.
    pub jobs: JobRates,
    /// HTTP request latency.
    pub latency: LatencyPercentiles,
    /// The ledger's audit.
    pub ledger: LedgerStatus,
    /// The newest refused results, newest first (at most 20).
    pub tamper_events: Vec<TamperEvent>,
    /// The newest slashes of any operator, newest first (at most 20), with the wallet.
    pub slashes: Vec<WalletSlash>,
}

/// A slash and the operator wallet it took from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WalletSlash {
    /// The operator's wallet.
    pub wallet: String,
    /// The slash.
    #[serde(flatten)]
    pub slash: SlashInfo,
}
