//! Reading jobs, slices and attempts back.

use sqlx::Row;

use super::{
    ATTEMPT_COLUMNS, AttemptRecord, ComputeJobRecord, JOB_COLUMNS, SliceRecord, attempt_of, job_of, u32_of, work_state,
};
use crate::{Store, StoreError};

impl Store {
    /// A job by id.
    pub async fn compute_job(&self, id: &str) -> Result<Option<ComputeJobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM compute_jobs WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?.as_ref().map(job_of).transpose()
    }

    /// An account's jobs, newest first, at most `limit`.
    pub async fn compute_jobs_of_account(
        &self,
        account_id: i64,
        limit: i64,
    ) -> Result<Vec<ComputeJobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM compute_jobs WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        sqlx::query(&sql).bind(account_id).bind(limit).fetch_all(self.pool()).await?.iter().map(job_of).collect()
    }

    /// A job's slices by index.
    pub async fn compute_slices(&self, job_id: &str) -> Result<Vec<SliceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, state, wanted, attempts, result_digest FROM compute_slices WHERE job_id = $1 ORDER BY idx",
        )
        .bind(job_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SliceRecord {
                    index: u32_of(row, "idx")?,
                    state: work_state(&row.try_get::<String, _>("state")?)?,
                    wanted: u32_of(row, "wanted")?,
                    attempts: u32_of(row, "attempts")?,
                    result_digest: row.try_get("result_digest")?,
                })
            })
            .collect()
    }

    /// A job's attempts, by slice and number.
    pub async fn compute_attempts(&self, job_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM compute_attempts WHERE job_id = $1 ORDER BY slice, attempt");
        sqlx::query(&sql).bind(job_id).fetch_all(self.pool()).await?.iter().map(attempt_of).collect()
    }

    /// One attempt.
    pub async fn compute_attempt(&self, id: i64) -> Result<Option<AttemptRecord>, StoreError> {
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM compute_attempts WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?.as_ref().map(attempt_of).transpose()
    }

    /// Canaries for `node_id` that have not ended.
    pub async fn open_canaries(&self, node_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM compute_jobs WHERE target_node = $1 \
             AND state NOT IN ('done', 'failed', 'cancelled')",
        )
        .bind(node_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The nodes holding live attempts.
    pub async fn nodes_with_live_attempts(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT node_id FROM compute_attempts WHERE state IN ('leased', 'running')")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|row| row.try_get("node_id").map_err(StoreError::from)).collect()
    }

    /// The attempts a node ran that were accepted, and all it ended.
    pub async fn compute_attempts_of_node(&self, node_id: &str) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS ended, \
             CAST(COALESCE(SUM(CASE WHEN state = 'accepted' THEN 1 ELSE 0 END), 0) AS BIGINT) AS accepted \
             FROM compute_attempts WHERE node_id = $1 AND ended_at IS NOT NULL",
        )
        .bind(node_id)
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("accepted")?, row.try_get("ended")?))
    }
}
