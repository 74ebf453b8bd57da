//! An attempt's sealed secrets: posted once by the job's account while the attempt is live,
//! read by the attempt's node, cleared when the attempt ends (by any path). Only ciphertext is
//! ever stored.

use sqlx::Row;

use super::{ComputeError, attempt_state};
use crate::Store;

impl Store {
    /// Stores the sealed secrets of a live attempt of `account_id`'s job, once.
    pub async fn put_attempt_secrets(
        &self,
        job_id: &str,
        account_id: i64,
        attempt_id: i64,
        sealed: &str,
    ) -> Result<(), ComputeError> {
        let mut tx = self.pool().begin().await?;
        let sql = format!(
            "SELECT a.state AS state, a.secrets AS secrets FROM compute_attempts a JOIN compute_jobs j ON j.id = a.job_id \
             WHERE a.id = $1 AND a.job_id = $2 AND j.account_id = $3{}",
            self.row_lock()
        );
        let row = sqlx::query(&sql)
            .bind(attempt_id)
            .bind(job_id)
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ComputeError::NotFound)?;
        let state = attempt_state(&row.try_get::<String, _>("state")?)?;
        if !state.is_live() {
            return Err(ComputeError::NotLive(state.as_str()));
        }
        if row.try_get::<Option<String>, _>("secrets")?.is_some() {
            return Err(ComputeError::AlreadyGiven);
        }
        sqlx::query("UPDATE compute_attempts SET secrets = $1 WHERE id = $2")
            .bind(sealed)
            .bind(attempt_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sealed secrets of `node_id`'s live attempt, once the requester has given them.
    pub async fn attempt_secrets(&self, attempt_id: i64, node_id: &str) -> Result<Option<String>, ComputeError> {
        let row = sqlx::query("SELECT state, secrets FROM compute_attempts WHERE id = $1 AND node_id = $2")
            .bind(attempt_id)
            .bind(node_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(ComputeError::NotFound)?;
        let state = attempt_state(&row.try_get::<String, _>("state")?)?;
        if !state.is_live() {
            return Err(ComputeError::NotLive(state.as_str()));
        }
        Ok(row.try_get("secrets")?)
    }
}
