//! Leasing slices to nodes: the oldest work first (a node's own canaries before anything),
//! each slice to nodes of different operators, never more live or agreeing attempts than the
//! slice wants; a job bound to a market order only to its lease's node (none while the order
//! is open). On PostgreSQL the slice rows are taken `FOR UPDATE SKIP LOCKED`, so replicas
//! leasing at the same moment never hand out the same attempt twice.

use sqlx::Row;

use super::verdict::{refresh_job, refresh_slice};
use super::{ComputeError, u32_of};
use crate::{Backend, Store};

/// A node asking for work.
#[derive(Debug, Clone, Copy)]
pub struct LeaseAsk<'a> {
    /// The node.
    pub node_id: &'a str,
    /// Its operator's wallet: a slice never goes to two nodes of one operator.
    pub operator: &'a str,
    /// The classes it runs (wire names).
    pub classes: &'a [&'a str],
    /// How many slices it takes at most.
    pub slots: u32,
    /// The SHA-256 of the model it serves, if any: `llm` jobs pinning another are not for it.
    pub model_sha256: Option<&'a str>,
    /// The engines it announces (`onnxruntime 1.32.0`): jobs pinning another are not for it.
    pub engines: &'a [&'a str],
}

/// A slice leased to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedAttempt {
    /// The attempt's id.
    pub attempt_id: i64,
    /// The job.
    pub job_id: String,
    /// The job's class (its wire name).
    pub class: String,
    /// The slice's index.
    pub slice: u32,
    /// The attempt's number.
    pub attempt: u32,
    /// The exact manifest text.
    pub manifest: String,
    /// `manifest.sig` as JSON.
    pub signature: String,
    /// The job's submission, ms (the guest's fixed clock).
    pub created_at: i64,
    /// When the lease runs out, ms.
    pub expires_at: i64,
}

/// Attempts that count toward what a slice wants: live, or in with a receipt not rejected.
pub(crate) const COUNTED: &str = "('leased', 'running', 'submitted', 'accepted')";

impl Store {
    /// Leases up to `ask.slots` slices to the node, one transaction per slice.
    pub async fn lease_compute(&self, ask: &LeaseAsk<'_>, now_ms: i64) -> Result<Vec<LeasedAttempt>, ComputeError> {
        let mut leased = Vec::new();
        if ask.classes.is_empty() {
            return Ok(leased);
        }
        for _ in 0..ask.slots {
            match self.lease_one(ask, now_ms).await? {
                Some(attempt) => leased.push(attempt),
                None => break,
            }
        }
        Ok(leased)
    }

    async fn lease_one(&self, ask: &LeaseAsk<'_>, now_ms: i64) -> Result<Option<LeasedAttempt>, ComputeError> {
        let sql = self.next_slice_sql(ask.classes.len(), ask.engines.len());
        let mut tx = self.pool().begin().await?;
        let mut query = sqlx::query(&sql).bind(ask.node_id).bind(ask.operator).bind(ask.model_sha256.unwrap_or(""));
        for word in ask.classes.iter().chain(ask.engines) {
            query = query.bind(*word);
        }
        let Some(row) = query.fetch_optional(&mut *tx).await? else { return Ok(None) };
        let job_id: String = row.try_get("job_id")?;
        let slice = u32_of(&row, "idx")?;
        let attempt = u32_of(&row, "attempts")? + 1;
        let expires_at = now_ms.saturating_add(row.try_get::<i64, _>("lease_ms")?);
        let at = (now_ms, expires_at);
        let attempt_id = insert_attempt(&mut tx, ask, &job_id, (slice, attempt), at).await?;
        tx.commit().await?;
        Ok(Some(LeasedAttempt {
            attempt_id,
            job_id,
            class: row.try_get("class")?,
            slice,
            attempt,
            manifest: row.try_get("manifest")?,
            signature: row.try_get("signature")?,
            created_at: row.try_get("created_at")?,
            expires_at,
        }))
    }

    /// The oldest slice the node may take (its canaries first), locked on PostgreSQL; the
    /// node, its operator and its model are `$1`–`$3`, the classes from `$4`, then the engines.
    /// A slice of a chained job (`train`) waits until the slice before it is done.
    fn next_slice_sql(&self, classes: usize, engines: usize) -> String {
        let params = |from: usize, count: usize| (from..from + count).map(|i| format!("${i}")).collect::<Vec<_>>();
        let engine = match engines {
            0 => "j.engine IS NULL".to_owned(),
            n => format!("(j.engine IS NULL OR j.engine IN ({}))", params(4 + classes, n).join(", ")),
        };
        let classes = params(4, classes).join(", ");
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE OF s SKIP LOCKED",
        };
        format!(
            "SELECT s.job_id AS job_id, s.idx AS idx, s.attempts AS attempts, j.lease_ms AS lease_ms, \
             j.manifest AS manifest, j.signature AS signature, j.created_at AS created_at, j.class AS class \
             FROM compute_slices s JOIN compute_jobs j ON j.id = s.job_id \
             WHERE s.state IN ('queued', 'leased', 'running', 'verifying') \
             AND j.state NOT IN ('done', 'failed', 'cancelled') AND j.class IN ({classes}) \
             AND (j.target_node IS NULL OR j.target_node = $1) \
             AND (j.market_node IS NULL OR j.market_node = $1) \
             AND (j.model_sha256 IS NULL OR j.model_sha256 = $3) AND {engine} \
             AND (j.class <> 'train' OR s.idx = 0 OR EXISTS (SELECT 1 FROM compute_slices p \
                  WHERE p.job_id = s.job_id AND p.idx = s.idx - 1 AND p.state = 'done')) \
             AND (SELECT COUNT(*) FROM compute_attempts a WHERE a.job_id = s.job_id AND a.slice = s.idx \
                  AND a.state IN {COUNTED}) < s.wanted \
             AND NOT EXISTS (SELECT 1 FROM compute_attempts a WHERE a.job_id = s.job_id AND a.slice = s.idx \
                  AND a.operator = $2 AND a.state NOT IN ('expired', 'failed', 'cancelled')) \
             ORDER BY CASE WHEN j.target_node IS NULL THEN 1 ELSE 0 END, j.created_at, s.job_id, s.idx \
             LIMIT 1{lock}"
        )
    }

    /// The node started its leased attempt. False when it is not leased to that node (any more).
    pub async fn start_compute_attempt(&self, attempt_id: i64, node_id: &str) -> Result<bool, ComputeError> {
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE compute_attempts SET state = 'running' WHERE id = $1 AND node_id = $2 AND state = 'leased' \
             RETURNING job_id, slice",
        )
        .bind(attempt_id)
        .bind(node_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = updated else { return Ok(false) };
        let job_id: String = row.try_get("job_id")?;
        refresh_slice(&mut tx, &job_id, u32_of(&row, "slice")?).await?;
        refresh_job(&mut tx, &job_id).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Records the attempt `(slice, number)` of `job_id` leased to the node, leased at `at.0` until
/// `at.1`, and refreshes the slice and the job. Returns the attempt's id.
async fn insert_attempt(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ask: &LeaseAsk<'_>,
    job_id: &str,
    (slice, attempt): (u32, u32),
    at: (i64, i64),
) -> Result<i64, ComputeError> {
    let inserted = sqlx::query(
        "INSERT INTO compute_attempts (job_id, slice, attempt, node_id, operator, state, leased_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, 'leased', $6, $7) RETURNING id",
    )
    .bind(job_id)
    .bind(i64::from(slice))
    .bind(i64::from(attempt))
    .bind(ask.node_id)
    .bind(ask.operator)
    .bind(at.0)
    .bind(at.1)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("UPDATE compute_slices SET attempts = $1 WHERE job_id = $2 AND idx = $3")
        .bind(i64::from(attempt))
        .bind(job_id)
        .bind(i64::from(slice))
        .execute(&mut **tx)
        .await?;
    refresh_slice(tx, job_id, slice).await?;
    refresh_job(tx, job_id).await?;
    Ok(inserted.try_get("id")?)
}
