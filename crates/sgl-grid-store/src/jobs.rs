//! Job records: who ran what for whom, what was held in escrow and what was billed. One row per
//! dispatch attempt; a job finishes exactly once.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ledger::{NewTransaction, PostError};
use crate::settlement::Settlement;
use crate::{Store, StoreError};

/// A dispatch attempt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob<'a> {
    /// The job id.
    pub id: &'a str,
    /// The node it went to.
    pub node_id: &'a str,
    /// The paying API key.
    pub api_key_id: i64,
    /// The model.
    pub model: &'a str,
    /// The caller sealed the request (the grid cannot read it).
    pub sealed_by_caller: bool,
    /// Streamed.
    pub stream: bool,
    /// The completion cap the hold was computed from.
    pub max_tokens: i64,
    /// Micro-dollars held in escrow.
    pub held_micros: i64,
    /// The replica that dispatched it (PostgreSQL grids with several; `None` on SQLite).
    pub replica: Option<&'a str>,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Sent to the node, not finished.
    Dispatched,
    /// Finished with a verified result (possibly a partial stream).
    Completed,
    /// Failed; nothing billed.
    Failed,
}

impl JobStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Dispatched => "dispatched",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            _ => Self::Dispatched,
        }
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The job id.
    pub id: String,
    /// The node.
    pub node_id: String,
    /// The paying API key.
    pub api_key_id: i64,
    /// The model.
    pub model: String,
    /// Where it is.
    pub status: JobStatus,
    /// Micro-dollars held.
    pub held_micros: i64,
    /// Micro-dollars billed, once completed.
    pub billed_micros: Option<i64>,
    /// Prompt tokens, once completed.
    pub prompt_tokens: Option<i64>,
    /// Completion tokens, once completed.
    pub completion_tokens: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Completion tokens a stream had delivered to its caller when last recorded.
    pub delivered_tokens: i64,
    /// What those tokens cost, micro-dollars (at most the hold).
    pub delivered_micros: i64,
}

/// The end of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd<'a> {
    /// Completed with these counts and this bill.
    Completed {
        /// Prompt tokens.
        prompt_tokens: i64,
        /// Completion tokens.
        completion_tokens: i64,
        /// Micro-dollars billed.
        billed_micros: i64,
    },
    /// Failed for this reason.
    Failed {
        /// Why.
        error: &'a str,
    },
    /// Failed part-way through a stream: billed for the tokens its caller received.
    Cut {
        /// Why.
        error: &'a str,
        /// Completion tokens delivered.
        completion_tokens: i64,
        /// Micro-dollars billed.
        billed_micros: i64,
    },
}

/// What finishing a job does with its escrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobMovement {
    /// Returns it (a failed job): this transaction, posted as it is.
    Release(NewTransaction),
    /// Bills the delivered cost, shared with the recipients' carries
    /// ([`crate::settlement`]), and returns the rest to the caller.
    Settle(Settlement),
}

pub(crate) const COLUMNS: &str = "id, node_id, api_key_id, model, status, held_micros, billed_micros, prompt_tokens, completion_tokens, error, created_at, delivered_tokens, delivered_micros";

pub(crate) fn record(row: &AnyRow) -> Result<JobRecord, sqlx::Error> {
    Ok(JobRecord {
        id: row.try_get("id")?,
        node_id: row.try_get("node_id")?,
        api_key_id: row.try_get("api_key_id")?,
        model: row.try_get("model")?,
        status: JobStatus::parse(&row.try_get::<String, _>("status")?),
        held_micros: row.try_get("held_micros")?,
        billed_micros: row.try_get("billed_micros")?,
        prompt_tokens: row.try_get("prompt_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        delivered_tokens: row.try_get("delivered_tokens")?,
        delivered_micros: row.try_get("delivered_micros")?,
    })
}

impl Store {
    /// Records a dispatch.
    pub async fn insert_job(&self, job: &NewJob<'_>, now_ms: i64) -> Result<(), StoreError> {
        insert_query(job, now_ms).execute(self.pool()).await?;
        Ok(())
    }

    /// Records a dispatch and posts its escrow hold in one database transaction: both happen
    /// or neither does.
    pub async fn insert_job_with_hold(
        &self,
        job: &NewJob<'_>,
        hold: &NewTransaction,
        now_ms: i64,
    ) -> Result<(), PostError> {
        let mut tx = self.pool().begin().await?;
        insert_query(job, now_ms).execute(&mut *tx).await?;
        self.post_in(&mut tx, hold, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Finishes a dispatched job and posts its settlement (moving the recipients' carries) or
    /// release in one database transaction. Returns false, changing nothing (carries
    /// included), if the job had already finished.
    pub async fn finish_job_with(
        &self,
        id: &str,
        end: &JobEnd<'_>,
        movement: &JobMovement,
        now_ms: i64,
    ) -> Result<bool, PostError> {
        self.finish_job_scored(id, end, movement, None, now_ms).await
    }

    /// [`Store::finish_job_with`], also counting the job for or against its node (`outcome`:
    /// the node's id and whether the job completed) in the same transaction: the job's row, its
    /// money and its node's record end together.
    pub async fn finish_job_scored(
        &self,
        id: &str,
        end: &JobEnd<'_>,
        movement: &JobMovement,
        outcome: Option<(&str, bool)>,
        now_ms: i64,
    ) -> Result<bool, PostError> {
        let mut tx = self.pool().begin().await?;
        let updated = finish_query(id, end, now_ms).execute(&mut *tx).await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        match movement {
            JobMovement::Release(release) => {
                self.post_in(&mut tx, release, now_ms).await?;
            }
            JobMovement::Settle(settlement) => self.settle_in(&mut tx, settlement, now_ms).await?,
        }
        if let Some((node_id, completed)) = outcome {
            self.record_outcome_in(&mut tx, node_id, completed, now_ms).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Finishes a dispatched job; returns false if it had already finished (so callers settle
    /// or release at most once).
    pub async fn finish_job(&self, id: &str, end: &JobEnd<'_>, now_ms: i64) -> Result<bool, StoreError> {
        Ok(finish_query(id, end, now_ms).execute(self.pool()).await?.rows_affected() == 1)
    }

    /// Records what a live stream has delivered so far; an older (smaller) count never
    /// overwrites a newer one, and a finished job is left alone. Returns whether it was written.
    pub async fn record_delivered(&self, id: &str, tokens: i64, micros: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE jobs SET delivered_tokens = $1, delivered_micros = $2 \
             WHERE id = $3 AND status = 'dispatched' AND delivered_tokens < $1",
        )
        .bind(tokens)
        .bind(micros)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// The job with this id.
    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// Jobs still dispatched to a node, oldest first.
    pub async fn dispatched_jobs(&self, node_id: &str) -> Result<Vec<JobRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM jobs WHERE node_id = $1 AND status = 'dispatched' ORDER BY created_at, id");
        let rows = sqlx::query(&sql).bind(node_id).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Jobs still dispatched, held by no replica, that were created before `before_ms`: on
    /// SQLite every job left by a previous process; on PostgreSQL jobs written before replicas
    /// existed (a dead replica's jobs are [`Store::jobs_of_replica`]).
    pub async fn stale_jobs(&self, before_ms: i64) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = 'dispatched' AND replica IS NULL AND created_at < $1 \
             ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql).bind(before_ms).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }
}

/// The update that finishes a dispatched job.
fn finish_query<'q>(
    id: &'q str,
    end: &'q JobEnd<'q>,
    now_ms: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match end {
        JobEnd::Completed { prompt_tokens, completion_tokens, billed_micros } => sqlx::query(
            "UPDATE jobs SET status = $1, prompt_tokens = $2, completion_tokens = $3, billed_micros = $4, finished_at = $5 \
             WHERE id = $6 AND status = 'dispatched'",
        )
        .bind(JobStatus::Completed.as_str())
        .bind(*prompt_tokens)
        .bind(*completion_tokens)
        .bind(*billed_micros)
        .bind(now_ms)
        .bind(id),
        JobEnd::Failed { error } => sqlx::query(
            "UPDATE jobs SET status = $1, error = $2, finished_at = $3 WHERE id = $4 AND status = 'dispatched'",
        )
        .bind(JobStatus::Failed.as_str())
        .bind(*error)
        .bind(now_ms)
        .bind(id),
        JobEnd::Cut { error, completion_tokens, billed_micros } => sqlx::query(
            "UPDATE jobs SET status = $1, error = $2, completion_tokens = $3, billed_micros = $4, finished_at = $5 \
             WHERE id = $6 AND status = 'dispatched'",
        )
        .bind(JobStatus::Failed.as_str())
        .bind(*error)
        .bind(*completion_tokens)
        .bind(*billed_micros)
        .bind(now_ms)
        .bind(id),
    }
}

/// The insert that records a dispatch.
fn insert_query<'q>(
    job: &'q NewJob<'q>,
    now_ms: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(
        "INSERT INTO jobs (id, node_id, api_key_id, model, sealed_by_caller, stream, status, max_tokens, held_micros, created_at, replica) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(job.id)
    .bind(job.node_id)
    .bind(job.api_key_id)
    .bind(job.model)
    .bind(i64::from(job.sealed_by_caller))
    .bind(i64::from(job.stream))
    .bind(JobStatus::Dispatched.as_str())
    .bind(job.max_tokens)
    .bind(job.held_micros)
    .bind(now_ms)
    .bind(job.replica)
}
