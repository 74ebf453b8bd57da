//! General compute as a durable queue (issue 16): jobs, their slices, and each node's attempt
//! at a slice, with the money each step moves.
//!
//! A job's escrow is held from its payer at submit (`attempt_hold × slices × redundancy`),
//! each accepted attempt is paid from it by the job's fee split, and what is left goes back when
//! the job ends (done, failed or cancelled): one ledger transaction per event, in the database
//! transaction that changes the rows. The rules that decide a slice are pure ([`quorum`]); the
//! grid's service applies reputation and slashing to what a decision returns.
//!
//! States are `sgl_protocol::api::compute::{WorkState, AttemptState}`, stored by name.

use sgl_protocol::api::compute::{AttemptState, WorkState};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ledger::{Account, NewTransaction, PostError, TransactionKind};
use crate::settlement::Shares;
use crate::{Store, StoreError};

mod ends;
mod lease;
pub mod quorum;
mod secrets;
mod verdict;
mod views;

pub use ends::EndedAttempt;
pub use lease::{LeaseAsk, LeasedAttempt};
pub use verdict::{AttemptOutcome, ReceiptIn, SliceVerdict, attempt_cost};

/// Who pays a job's escrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Funding {
    /// An API key's credits.
    Credits {
        /// The paying key.
        api_key_id: i64,
        /// Its account (root key), which owns the job.
        account_id: i64,
    },
    /// The grid itself, for a canary: from `external:canary`, which may go negative.
    Canary,
}

impl Funding {
    fn account(self) -> Account {
        match self {
            Funding::Credits { api_key_id, .. } => Account::Credits { api_key_id },
            Funding::Canary => Account::External { source: "canary".to_owned(), asset: crate::ledger::Asset::Usd },
        }
    }
}

/// A job to enqueue; the grid has verified its bundle.
#[derive(Debug, Clone)]
pub struct NewComputeJob<'a> {
    /// Its id (`cj_…`).
    pub id: &'a str,
    /// Who pays.
    pub funding: Funding,
    /// The requester's base58 key.
    pub requester: &'a str,
    /// Its class's wire name.
    pub class: &'a str,
    /// SHA-256 of the manifest, hex.
    pub bundle_hash: &'a str,
    /// The exact manifest text.
    pub manifest: &'a str,
    /// `manifest.sig` as JSON.
    pub signature: &'a str,
    /// Nodes per slice.
    pub redundancy: u32,
    /// Slices.
    pub slice_count: u32,
    /// Micro-USD per 10^9 fuel.
    pub price_micros_per_gfuel: i64,
    /// The most one attempt can be paid: its fuel limit at the price, rounded up.
    pub attempt_hold_micros: i64,
    /// How long a lease lasts without the node's receipt.
    pub lease_ms: i64,
    /// A canary's node: only it may lease the job.
    pub target_node: Option<&'a str>,
    /// A canary's known answer (JSON the grid compares receipts with).
    pub expected: Option<&'a str>,
    /// An `llm` job's model (SHA-256 of its GGUF): only nodes serving it lease the job.
    pub model_sha256: Option<&'a str>,
    /// A native-class job's engine and version: only nodes announcing it lease the job.
    pub engine: Option<&'a str>,
}

impl NewComputeJob<'_> {
    /// Everything held: one attempt's hold per slice per redundancy.
    pub fn escrow_micros(&self) -> Result<i64, StoreError> {
        let attempts = i64::from(self.slice_count) * i64::from(self.redundancy);
        self.attempt_hold_micros.checked_mul(attempts).ok_or(StoreError::OutOfRange("compute escrow"))
    }
}

/// A compute operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComputeError {
    /// The payer cannot cover the escrow.
    #[error("insufficient credits: the job holds {needed} micro-USD in escrow, the key has {available}")]
    InsufficientCredits {
        /// The escrow.
        needed: i64,
        /// The key's credits.
        available: i64,
    },
    /// No such job (or not the caller's), or no such attempt for this node.
    #[error("not found")]
    NotFound,
    /// The attempt is no longer the node's to report (expired, cancelled, already reported).
    #[error("the attempt is {0}, not leased or running")]
    NotLive(&'static str),
    /// The job already ended.
    #[error("the job already ended ({0})")]
    Ended(&'static str),
    /// The attempt's secrets were given already.
    #[error("the attempt's secrets were given already")]
    AlreadyGiven,
    /// A ledger movement was refused.
    #[error(transparent)]
    Post(#[from] PostError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ComputeError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeJobRecord {
    /// Its id.
    pub id: String,
    /// The paying key (none for canaries).
    pub api_key_id: Option<i64>,
    /// The owning account (none for canaries).
    pub account_id: Option<i64>,
    /// The requester's key.
    pub requester: String,
    /// The class's wire name.
    pub class: String,
    /// SHA-256 of the manifest.
    pub bundle_hash: String,
    /// The exact manifest text.
    pub manifest: String,
    /// `manifest.sig` as JSON.
    pub signature: String,
    /// Nodes per slice.
    pub redundancy: u32,
    /// Slices.
    pub slice_count: u32,
    /// Micro-USD per 10^9 fuel.
    pub price_micros_per_gfuel: i64,
    /// The most one attempt is paid.
    pub attempt_hold_micros: i64,
    /// Held at submit.
    pub escrow_micros: i64,
    /// Paid out so far.
    pub charged_micros: i64,
    /// Given back when it ended.
    pub refunded_micros: i64,
    /// Its state.
    pub state: WorkState,
    /// A canary's node.
    pub target_node: Option<String>,
    /// A canary's known answer.
    pub expected: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Submitted, ms.
    pub created_at: i64,
    /// Ended, ms.
    pub ended_at: Option<i64>,
    /// Slices done.
    pub slices_done: u32,
}

/// A slice as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceRecord {
    /// Its index.
    pub index: u32,
    /// Its state.
    pub state: WorkState,
    /// Receipts it wants before deciding.
    pub wanted: u32,
    /// Attempts made.
    pub attempts: u32,
    /// The accepted digest.
    pub result_digest: Option<String>,
}

/// An attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Its id.
    pub id: i64,
    /// The job.
    pub job_id: String,
    /// The slice.
    pub slice: u32,
    /// Its number in the slice, from 1.
    pub attempt: u32,
    /// The node.
    pub node_id: String,
    /// The node's operator wallet.
    pub operator: String,
    /// Its state.
    pub state: AttemptState,
    /// Leased, ms.
    pub leased_at: i64,
    /// The lease's end, ms.
    pub expires_at: i64,
    /// Ended, ms.
    pub ended_at: Option<i64>,
    /// The receipt's result digest.
    pub result_digest: Option<String>,
    /// The receipt's fuel.
    pub fuel: Option<i64>,
    /// The receipt (JSON).
    pub receipt: Option<String>,
    /// The guest's stdout.
    pub stdout: Option<String>,
    /// The guest's stderr.
    pub stderr: Option<String>,
    /// Why it failed or expired.
    pub error: Option<String>,
    /// What it was paid.
    pub charged_micros: i64,
    /// Its sealed secrets are on the grid (only while it is live).
    pub has_secrets: bool,
}

fn u32_of(row: &AnyRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| StoreError::OutOfRange("a compute count"))
}

fn work_state(name: &str) -> Result<WorkState, StoreError> {
    WorkState::from_name(name).ok_or_else(|| StoreError::Invariant(format!("unknown work state {name:?}")))
}

fn attempt_state(name: &str) -> Result<AttemptState, StoreError> {
    AttemptState::from_name(name).ok_or_else(|| StoreError::Invariant(format!("unknown attempt state {name:?}")))
}

const JOB_COLUMNS: &str = "id, api_key_id, account_id, requester, class, bundle_hash, manifest, signature, \
     redundancy, slice_count, price_micros_per_gfuel, attempt_hold_micros, escrow_micros, charged_micros, \
     refunded_micros, state, target_node, expected, error, created_at, ended_at, \
     (SELECT CAST(COUNT(*) AS BIGINT) FROM compute_slices s WHERE s.job_id = compute_jobs.id AND s.state = 'done') \
     AS slices_done";

fn job_of(row: &AnyRow) -> Result<ComputeJobRecord, StoreError> {
    Ok(ComputeJobRecord {
        id: row.try_get("id")?,
        api_key_id: row.try_get("api_key_id")?,
        account_id: row.try_get("account_id")?,
        requester: row.try_get("requester")?,
        class: row.try_get("class")?,
        bundle_hash: row.try_get("bundle_hash")?,
        manifest: row.try_get("manifest")?,
        signature: row.try_get("signature")?,
        redundancy: u32_of(row, "redundancy")?,
        slice_count: u32_of(row, "slice_count")?,
        price_micros_per_gfuel: row.try_get("price_micros_per_gfuel")?,
        attempt_hold_micros: row.try_get("attempt_hold_micros")?,
        escrow_micros: row.try_get("escrow_micros")?,
        charged_micros: row.try_get("charged_micros")?,
        refunded_micros: row.try_get("refunded_micros")?,
        state: work_state(&row.try_get::<String, _>("state")?)?,
        target_node: row.try_get("target_node")?,
        expected: row.try_get("expected")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        ended_at: row.try_get("ended_at")?,
        slices_done: u32_of(row, "slices_done")?,
    })
}

const ATTEMPT_COLUMNS: &str = "id, job_id, slice, attempt, node_id, operator, state, leased_at, expires_at, \
     ended_at, result_digest, fuel, receipt, stdout, stderr, error, charged_micros, \
     CASE WHEN secrets IS NULL THEN 0 ELSE 1 END AS has_secrets";

fn attempt_of(row: &AnyRow) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        id: row.try_get("id")?,
        job_id: row.try_get("job_id")?,
        slice: u32_of(row, "slice")?,
        attempt: u32_of(row, "attempt")?,
        node_id: row.try_get("node_id")?,
        operator: row.try_get("operator")?,
        state: attempt_state(&row.try_get::<String, _>("state")?)?,
        leased_at: row.try_get("leased_at")?,
        expires_at: row.try_get("expires_at")?,
        ended_at: row.try_get("ended_at")?,
        result_digest: row.try_get("result_digest")?,
        fuel: row.try_get("fuel")?,
        receipt: row.try_get("receipt")?,
        stdout: row.try_get("stdout")?,
        stderr: row.try_get("stderr")?,
        error: row.try_get("error")?,
        charged_micros: row.try_get("charged_micros")?,
        has_secrets: row.try_get::<i64, _>("has_secrets")? != 0,
    })
}

/// The compute fee split: the operator's share in basis points, the rest to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputeShares(Shares);

impl ComputeShares {
    /// `operator_bps` (9900 = 99 %) to the operator, the rest to the platform.
    pub fn new(operator_bps: u32) -> Result<Self, crate::settlement::InvalidShares> {
        let platform = crate::settlement::BASIS_POINTS.saturating_sub(operator_bps);
        Shares::new(operator_bps, platform, 0).map(Self)
    }

    pub(crate) fn shares(self) -> Shares {
        self.0
    }
}

impl Default for ComputeShares {
    /// 99 % to the operator, 1 % to the platform (the OpenGrid economics).
    fn default() -> Self {
        Self(Shares::new(9_900, 100, 0).unwrap_or_default())
    }
}

impl Store {
    /// Enqueues a job and holds its escrow from its payer, in one transaction.
    pub async fn submit_compute_job(&self, job: &NewComputeJob<'_>, now_ms: i64) -> Result<(), ComputeError> {
        let escrow = job.escrow_micros()?;
        let mut tx = self.pool().begin().await?;
        let (api_key_id, account_id) = match job.funding {
            Funding::Credits { api_key_id, account_id } => (Some(api_key_id), Some(account_id)),
            Funding::Canary => (None, None),
        };
        sqlx::query(
            "INSERT INTO compute_jobs (id, api_key_id, account_id, requester, class, bundle_hash, manifest, signature, \
             redundancy, slice_count, price_micros_per_gfuel, attempt_hold_micros, lease_ms, escrow_micros, state, \
             target_node, expected, created_at, model_sha256, engine) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'queued', $15, $16, $17, $18, $19)",
        )
        .bind(job.id)
        .bind(api_key_id)
        .bind(account_id)
        .bind(job.requester)
        .bind(job.class)
        .bind(job.bundle_hash)
        .bind(job.manifest)
        .bind(job.signature)
        .bind(i64::from(job.redundancy))
        .bind(i64::from(job.slice_count))
        .bind(job.price_micros_per_gfuel)
        .bind(job.attempt_hold_micros)
        .bind(job.lease_ms)
        .bind(escrow)
        .bind(job.target_node)
        .bind(job.expected)
        .bind(now_ms)
        .bind(job.model_sha256)
        .bind(job.engine)
        .execute(&mut *tx)
        .await?;
        for index in 0..job.slice_count {
            sqlx::query("INSERT INTO compute_slices (job_id, idx, state, wanted) VALUES ($1, $2, 'queued', $3)")
                .bind(job.id)
                .bind(i64::from(index))
                .bind(i64::from(job.redundancy))
                .execute(&mut *tx)
                .await?;
        }
        if escrow > 0 {
            let hold = NewTransaction::from_amounts(
                format!("hold:compute:{}", job.id),
                TransactionKind::EscrowHold,
                format!("escrow of compute job {}", job.id),
                [(job.funding.account(), -escrow), (Account::Escrow { job_id: job.id.to_owned() }, escrow)],
            );
            match self.post_in(&mut tx, &hold, now_ms).await {
                Err(PostError::InsufficientFunds { balance, .. }) => {
                    return Err(ComputeError::InsufficientCredits { needed: escrow, available: balance });
                }
                other => {
                    other?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
