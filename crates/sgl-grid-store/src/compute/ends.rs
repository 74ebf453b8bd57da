//! Attempts that end without a receipt (the node failed, or its lease ran out) and jobs the
//! requester cancels. A slice whose attempt ended this way goes back to the queue until its
//! attempt budget is spent; then it fails, and the job with it.

use sgl_protocol::api::compute::{AttemptState, WorkState};
use sqlx::Row;

use super::verdict::{attempt_budget, refresh_slice};
use super::{ComputeError, u32_of, work_state};
use crate::Store;

/// An attempt that ended without a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedAttempt {
    /// The attempt.
    pub attempt_id: i64,
    /// The job.
    pub job_id: String,
    /// The node.
    pub node_id: String,
    /// The job's state afterwards.
    pub job_state: WorkState,
}

impl Store {
    /// The node reports it could not run its attempt.
    pub async fn fail_compute_attempt(
        &self,
        attempt_id: i64,
        node_id: &str,
        reason: &str,
        stderr: &str,
        now_ms: i64,
    ) -> Result<EndedAttempt, ComputeError> {
        self.end_without_receipt(attempt_id, Some(node_id), AttemptState::Failed, reason, stderr, now_ms).await
    }

    /// Expires every live attempt whose lease ran out by `now_ms` or whose node is in `silent`.
    pub async fn expire_compute_leases(
        &self,
        silent: &[String],
        now_ms: i64,
    ) -> Result<Vec<EndedAttempt>, ComputeError> {
        let rows = sqlx::query(
            "SELECT id, node_id, expires_at FROM compute_attempts WHERE state IN ('leased', 'running') ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut ended = Vec::new();
        for row in rows {
            let (id, node_id, expires_at): (i64, String, i64) =
                (row.try_get("id")?, row.try_get("node_id")?, row.try_get("expires_at")?);
            let reason = if expires_at <= now_ms {
                "the lease ran out before the node reported"
            } else if silent.contains(&node_id) {
                "the node went silent"
            } else {
                continue;
            };
            match self.end_without_receipt(id, None, AttemptState::Expired, reason, "", now_ms).await {
                Ok(attempt) => ended.push(attempt),
                // The node reported meanwhile.
                Err(ComputeError::NotLive(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(ended)
    }

    async fn end_without_receipt(
        &self,
        attempt_id: i64,
        node_id: Option<&str>,
        state: AttemptState,
        reason: &str,
        stderr: &str,
        now_ms: i64,
    ) -> Result<EndedAttempt, ComputeError> {
        let mut tx = self.pool().begin().await?;
        let owner = match node_id {
            Some(node) => node.to_owned(),
            None => sqlx::query("SELECT node_id FROM compute_attempts WHERE id = $1")
                .bind(attempt_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(ComputeError::NotFound)?
                .try_get("node_id")?,
        };
        let (job_id, slice) = self.lock_live_attempt(&mut tx, attempt_id, &owner).await?;
        sqlx::query("UPDATE compute_attempts SET stderr = $1 WHERE id = $2")
            .bind(stderr)
            .bind(attempt_id)
            .execute(&mut *tx)
            .await?;
        self.end_attempt_in(&mut tx, attempt_id, state, Some(reason), now_ms).await?;
        let row = sqlx::query(
            "SELECT s.attempts AS attempts, j.redundancy AS redundancy FROM compute_slices s \
             JOIN compute_jobs j ON j.id = s.job_id WHERE s.job_id = $1 AND s.idx = $2",
        )
        .bind(&job_id)
        .bind(i64::from(slice))
        .fetch_one(&mut *tx)
        .await?;
        if u32_of(&row, "attempts")? >= attempt_budget(u32_of(&row, "redundancy")?) {
            let why = format!("slice {slice}: every attempt failed or expired (last: {reason})");
            self.fail_slice_in(&mut tx, &job_id, slice, &why, now_ms).await?;
        } else {
            refresh_slice(&mut tx, &job_id, slice).await?;
        }
        let job_state = self.settle_job_state(&mut tx, &job_id, now_ms).await?;
        tx.commit().await?;
        Ok(EndedAttempt { attempt_id, job_id, node_id: owner, job_state })
    }

    /// Cancels a job of `account_id`'s: its open slices and live attempts end, its unused
    /// escrow goes back. Returns the nodes whose attempts were cancelled.
    pub async fn cancel_compute_job(
        &self,
        job_id: &str,
        account_id: i64,
        now_ms: i64,
    ) -> Result<Vec<String>, ComputeError> {
        let mut tx = self.pool().begin().await?;
        let lock = format!("SELECT idx FROM compute_slices WHERE job_id = $1 ORDER BY idx{}", self.row_lock());
        sqlx::query(&lock).bind(job_id).fetch_all(&mut *tx).await?;
        let row = sqlx::query("SELECT state FROM compute_jobs WHERE id = $1 AND account_id = $2")
            .bind(job_id)
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ComputeError::NotFound)?;
        let state = work_state(&row.try_get::<String, _>("state")?)?;
        if state.is_final() {
            return Err(ComputeError::Ended(state.as_str()));
        }
        let nodes = sqlx::query(
            "SELECT DISTINCT node_id FROM compute_attempts WHERE job_id = $1 AND state IN ('leased', 'running')",
        )
        .bind(job_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("node_id"))
        .collect::<Result<Vec<String>, _>>()?;
        self.end_job_in(&mut tx, job_id, WorkState::Cancelled, Some("cancelled by the requester"), now_ms).await?;
        tx.commit().await?;
        Ok(nodes)
    }
}
