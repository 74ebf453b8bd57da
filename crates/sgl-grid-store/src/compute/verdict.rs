//! What happens to a slice when a node reports: a receipt (decided by [`super::quorum`]), a
//! failure, an expired lease; and to a job when it ends: its unused escrow goes back. Each
//! report is one database transaction, with the ledger movements it causes.

use sgl_protocol::api::compute::{AttemptState, WorkState};
use sqlx::{Any, Row, Transaction};

use super::quorum::{self, Decision, Vote};
use super::{ComputeError, ComputeShares, Funding, u32_of, work_state};
use crate::ledger::{Account, NewTransaction, TransactionKind};
use crate::settlement::Recipient;
use crate::{Store, StoreError};

/// A node's receipt for its attempt, already verified by the grid (signature, digests, blobs).
#[derive(Debug, Clone, Copy)]
pub struct ReceiptIn<'a> {
    /// The attempt.
    pub attempt_id: i64,
    /// The node reporting; it must hold the attempt.
    pub node_id: &'a str,
    /// The receipt's result digest.
    pub result_digest: &'a str,
    /// The receipt's fuel.
    pub fuel: Option<i64>,
    /// The receipt (JSON), kept as evidence.
    pub receipt: &'a str,
    /// The guest's stdout.
    pub stdout: &'a str,
    /// The guest's stderr.
    pub stderr: &'a str,
    /// For a canary, whether the receipt carries the known answer.
    pub matches_expected: Option<bool>,
}

/// A node whose attempt a decision accepted or rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The attempt.
    pub attempt_id: i64,
    /// Its node.
    pub node_id: String,
    /// Its operator.
    pub operator: String,
    /// Its receipt (JSON), for evidence.
    pub receipt: Option<String>,
    /// What it was paid.
    pub charged_micros: i64,
}

/// What one report changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceVerdict {
    /// The job.
    pub job_id: String,
    /// The slice.
    pub slice: u32,
    /// The reporting attempt's state afterwards.
    pub attempt_state: AttemptState,
    /// Attempts accepted (and paid) by this report.
    pub accepted: Vec<AttemptOutcome>,
    /// Attempts rejected by this report.
    pub rejected: Vec<AttemptOutcome>,
    /// Whether the slice was a canary (its answer known, not voted).
    pub canary: bool,
    /// The job's state afterwards.
    pub job_state: WorkState,
}

/// The most attempts a slice of redundancy `r` gets: its `r`, as many tie-breaks, and three
/// for nodes that fail or vanish.
pub(crate) fn attempt_budget(redundancy: u32) -> u32 {
    redundancy.saturating_mul(2).saturating_add(3)
}

/// What a job's money is.
struct JobMoney {
    redundancy: u32,
    price: i64,
    hold: i64,
    canary: bool,
}

async fn job_money(tx: &mut Transaction<'_, Any>, job_id: &str) -> Result<JobMoney, ComputeError> {
    let row = sqlx::query(
        "SELECT redundancy, price_micros_per_gfuel, attempt_hold_micros, target_node FROM compute_jobs WHERE id = $1",
    )
    .bind(job_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(JobMoney {
        redundancy: u32_of(&row, "redundancy")?,
        price: row.try_get("price_micros_per_gfuel")?,
        hold: row.try_get("attempt_hold_micros")?,
        canary: row.try_get::<Option<String>, _>("target_node")?.is_some(),
    })
}

/// What an attempt of `fuel` is paid at `price` micro-USD per 10^9 fuel: rounded up, never
/// above the attempt's hold.
pub fn attempt_cost(fuel: i64, price: i64, hold: i64) -> i64 {
    let exact = i128::from(fuel.max(0)) * i128::from(price.max(0));
    let cost = (exact + 999_999_999) / 1_000_000_000;
    i64::try_from(cost).unwrap_or(i64::MAX).min(hold)
}

impl Store {
    /// Records a receipt and decides its slice if it can, paying accepted attempts and ending
    /// the job when its last slice is decided.
    pub async fn submit_compute_receipt(
        &self,
        receipt: &ReceiptIn<'_>,
        shares: ComputeShares,
        now_ms: i64,
    ) -> Result<SliceVerdict, ComputeError> {
        let mut tx = self.pool().begin().await?;
        let (job_id, slice) = self.lock_live_attempt(&mut tx, receipt.attempt_id, receipt.node_id).await?;
        sqlx::query(
            "UPDATE compute_attempts SET state = 'submitted', result_digest = $1, fuel = $2, receipt = $3, \
             stdout = $4, stderr = $5, ended_at = $6, secrets = NULL WHERE id = $7",
        )
        .bind(receipt.result_digest)
        .bind(receipt.fuel)
        .bind(receipt.receipt)
        .bind(receipt.stdout)
        .bind(receipt.stderr)
        .bind(now_ms)
        .bind(receipt.attempt_id)
        .execute(&mut *tx)
        .await?;
        let money = job_money(&mut tx, &job_id).await?;
        let decision = match receipt.matches_expected {
            Some(true) => Decision::Accept {
                digest: receipt.result_digest.to_owned(),
                agreeing: vec![receipt.attempt_id],
                dissenting: vec![],
            },
            Some(false) => {
                Decision::Accept { digest: String::new(), agreeing: vec![], dissenting: vec![receipt.attempt_id] }
            }
            None => self.vote(&mut tx, &job_id, slice, money.redundancy).await?,
        };
        let mut verdict = SliceVerdict {
            job_id: job_id.clone(),
            slice,
            attempt_state: AttemptState::Submitted,
            accepted: vec![],
            rejected: vec![],
            canary: money.canary,
            job_state: WorkState::Queued,
        };
        self.apply(&mut tx, &mut verdict, &money, decision, shares, now_ms).await?;
        verdict.attempt_state = attempt_state_of(&mut tx, receipt.attempt_id).await?;
        verdict.job_state = self.settle_job_state(&mut tx, &job_id, now_ms).await?;
        tx.commit().await?;
        Ok(verdict)
    }

    /// Locks the slice of a live attempt the node holds (slice row first, as leasing does),
    /// then the attempt; refuses an attempt that is not the node's or no longer live.
    pub(crate) async fn lock_live_attempt(
        &self,
        tx: &mut Transaction<'_, Any>,
        attempt_id: i64,
        node_id: &str,
    ) -> Result<(String, u32), ComputeError> {
        let row = sqlx::query("SELECT job_id, slice FROM compute_attempts WHERE id = $1 AND node_id = $2")
            .bind(attempt_id)
            .bind(node_id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(ComputeError::NotFound)?;
        let (job_id, slice): (String, u32) = (row.try_get("job_id")?, u32_of(&row, "slice")?);
        let lock = format!("SELECT state FROM compute_slices WHERE job_id = $1 AND idx = $2{}", self.row_lock());
        sqlx::query(&lock).bind(&job_id).bind(i64::from(slice)).fetch_one(&mut **tx).await?;
        let state = attempt_state_of(tx, attempt_id).await?;
        if !state.is_live() {
            return Err(ComputeError::NotLive(state.as_str()));
        }
        Ok((job_id, slice))
    }

    async fn vote(
        &self,
        tx: &mut Transaction<'_, Any>,
        job_id: &str,
        slice: u32,
        redundancy: u32,
    ) -> Result<Decision, ComputeError> {
        let rows = sqlx::query(
            "SELECT id, result_digest FROM compute_attempts WHERE job_id = $1 AND slice = $2 AND state = 'submitted' \
             ORDER BY attempt",
        )
        .bind(job_id)
        .bind(i64::from(slice))
        .fetch_all(&mut **tx)
        .await?;
        let votes = rows
            .iter()
            .map(|row| Ok(Vote { attempt_id: row.try_get("id")?, digest: row.try_get("result_digest")? }))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let slice_row = sqlx::query("SELECT wanted, attempts FROM compute_slices WHERE job_id = $1 AND idx = $2")
            .bind(job_id)
            .bind(i64::from(slice))
            .fetch_one(&mut **tx)
            .await?;
        let (wanted, made) = (u32_of(&slice_row, "wanted")?, u32_of(&slice_row, "attempts")?);
        let budget_left = attempt_budget(redundancy).saturating_sub(made);
        Ok(quorum::decide(redundancy, wanted, budget_left, &votes))
    }

    /// Carries out a decision on one slice.
    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        verdict: &mut SliceVerdict,
        money: &JobMoney,
        decision: Decision,
        shares: ComputeShares,
        now_ms: i64,
    ) -> Result<(), ComputeError> {
        let (job_id, slice) = (verdict.job_id.clone(), verdict.slice);
        match decision {
            Decision::Wait => refresh_slice(tx, &job_id, slice).await?,
            Decision::Widen => {
                sqlx::query("UPDATE compute_slices SET wanted = wanted + 1 WHERE job_id = $1 AND idx = $2")
                    .bind(&job_id)
                    .bind(i64::from(slice))
                    .execute(&mut **tx)
                    .await?;
                refresh_slice(tx, &job_id, slice).await?;
            }
            Decision::Fail => {
                let reason = format!("slice {slice}: no majority among its receipts after every attempt");
                self.fail_slice_in(tx, &job_id, slice, &reason, now_ms).await?;
            }
            Decision::Accept { digest, agreeing, dissenting } => {
                let paid_at_most = usize::try_from(money.redundancy).unwrap_or(usize::MAX);
                for (rank, attempt_id) in agreeing.iter().enumerate() {
                    let pay = rank < paid_at_most;
                    verdict.accepted.push(self.accept_in(tx, &job_id, *attempt_id, money, pay, shares, now_ms).await?);
                }
                for attempt_id in dissenting {
                    verdict
                        .rejected
                        .push(self.end_attempt_in(tx, attempt_id, AttemptState::Rejected, None, now_ms).await?);
                }
                if verdict.accepted.is_empty() {
                    // A canary answered wrongly: the grid's own job ends there.
                    let reason = format!("slice {slice}: the known answer was not returned");
                    self.fail_slice_in(tx, &job_id, slice, &reason, now_ms).await?;
                } else {
                    self.cancel_live_in(tx, &job_id, Some(slice), "the slice was decided without it", now_ms).await?;
                    sqlx::query(
                        "UPDATE compute_slices SET state = 'done', result_digest = $1 WHERE job_id = $2 AND idx = $3",
                    )
                    .bind(&digest)
                    .bind(&job_id)
                    .bind(i64::from(slice))
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Accepts one attempt and, when `pay`, pays it by its fuel from the job's escrow.
    #[allow(clippy::too_many_arguments)]
    async fn accept_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        job_id: &str,
        attempt_id: i64,
        money: &JobMoney,
        pay: bool,
        shares: ComputeShares,
        now_ms: i64,
    ) -> Result<AttemptOutcome, ComputeError> {
        let row = sqlx::query("SELECT fuel, operator FROM compute_attempts WHERE id = $1")
            .bind(attempt_id)
            .fetch_one(&mut **tx)
            .await?;
        let (fuel, operator): (Option<i64>, String) = (row.try_get("fuel")?, row.try_get("operator")?);
        let cost = if pay { attempt_cost(fuel.unwrap_or(0), money.price, money.hold) } else { 0 };
        if cost > 0 {
            let split = self.share_in(tx, shares.shares(), cost, &operator).await?;
            let mut postings = vec![(Account::Escrow { job_id: job_id.to_owned() }, -cost)];
            postings.extend(Recipient::ALL.iter().map(|r| (r.account(&operator), *split.paid.get(*r))));
            postings.push((Account::Rounding, split.rounding));
            let payment = NewTransaction::from_amounts(
                format!("settle:compute:{attempt_id}"),
                TransactionKind::Settlement,
                format!("compute job {job_id}, attempt {attempt_id}"),
                postings,
            );
            self.post_in(tx, &payment, now_ms).await?;
            sqlx::query("UPDATE compute_jobs SET charged_micros = charged_micros + $1 WHERE id = $2")
                .bind(cost)
                .bind(job_id)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("UPDATE compute_attempts SET charged_micros = $1 WHERE id = $2")
            .bind(cost)
            .bind(attempt_id)
            .execute(&mut **tx)
            .await?;
        self.end_attempt_in(tx, attempt_id, AttemptState::Accepted, None, now_ms).await
    }

    /// Moves an attempt to a final state and returns who it was.
    pub(crate) async fn end_attempt_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        attempt_id: i64,
        state: AttemptState,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<AttemptOutcome, ComputeError> {
        let row = sqlx::query(
            "UPDATE compute_attempts SET state = $1, error = COALESCE($2, error), ended_at = COALESCE(ended_at, $3), \
             secrets = NULL WHERE id = $4 RETURNING node_id, operator, receipt, charged_micros",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now_ms)
        .bind(attempt_id)
        .fetch_one(&mut **tx)
        .await?;
        Ok(AttemptOutcome {
            attempt_id,
            node_id: row.try_get("node_id")?,
            operator: row.try_get("operator")?,
            receipt: row.try_get("receipt")?,
            charged_micros: row.try_get("charged_micros")?,
        })
    }

    /// Cancels the live attempts of a job (of one slice, when named).
    pub(crate) async fn cancel_live_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        job_id: &str,
        slice: Option<u32>,
        why: &str,
        now_ms: i64,
    ) -> Result<(), ComputeError> {
        sqlx::query(
            "UPDATE compute_attempts SET state = 'cancelled', error = $1, ended_at = $2, secrets = NULL \
             WHERE job_id = $3 AND ($4 < 0 OR slice = $4) AND state IN ('leased', 'running', 'submitted')",
        )
        .bind(why)
        .bind(now_ms)
        .bind(job_id)
        .bind(slice.map_or(-1, i64::from))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Fails a slice, and with it the job.
    pub(crate) async fn fail_slice_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        job_id: &str,
        slice: u32,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), ComputeError> {
        sqlx::query("UPDATE compute_slices SET state = 'failed' WHERE job_id = $1 AND idx = $2")
            .bind(job_id)
            .bind(i64::from(slice))
            .execute(&mut **tx)
            .await?;
        self.end_job_in(tx, job_id, WorkState::Failed, Some(reason), now_ms).await
    }

    /// Ends a job (failed or cancelled: its open slices and live attempts too; done: its last
    /// slice was decided) and gives its unused escrow back to whoever paid it.
    pub(crate) async fn end_job_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        job_id: &str,
        state: WorkState,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), ComputeError> {
        if state != WorkState::Done {
            sqlx::query(
                "UPDATE compute_slices SET state = $1 WHERE job_id = $2 AND state NOT IN ('done', 'failed', 'cancelled')",
            )
            .bind(WorkState::Cancelled.as_str())
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
            self.cancel_live_in(tx, job_id, None, reason.unwrap_or("the job ended"), now_ms).await?;
        }
        let row =
            sqlx::query("SELECT api_key_id, account_id, escrow_micros, charged_micros FROM compute_jobs WHERE id = $1")
                .bind(job_id)
                .fetch_one(&mut **tx)
                .await?;
        let funding = match (row.try_get::<Option<i64>, _>("api_key_id")?, row.try_get::<Option<i64>, _>("account_id")?)
        {
            (Some(api_key_id), Some(account_id)) => Funding::Credits { api_key_id, account_id },
            _ => Funding::Canary,
        };
        let left = row.try_get::<i64, _>("escrow_micros")? - row.try_get::<i64, _>("charged_micros")?;
        if left > 0 {
            let release = NewTransaction::from_amounts(
                format!("release:compute:{job_id}"),
                TransactionKind::Release,
                format!("unused escrow of compute job {job_id}"),
                [(Account::Escrow { job_id: job_id.to_owned() }, -left), (funding.account(), left)],
            );
            self.post_in(tx, &release, now_ms).await?;
        }
        sqlx::query(
            "UPDATE compute_jobs SET state = $1, error = $2, refunded_micros = $3, ended_at = $4 WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(left.max(0))
        .bind(now_ms)
        .bind(job_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Refreshes the job's state from its slices, ending it when every slice is done.
    pub(crate) async fn settle_job_state(
        &self,
        tx: &mut Transaction<'_, Any>,
        job_id: &str,
        now_ms: i64,
    ) -> Result<WorkState, ComputeError> {
        let state = refresh_job(tx, job_id).await?;
        if state == WorkState::Done {
            let ended: Option<i64> = sqlx::query("SELECT ended_at FROM compute_jobs WHERE id = $1")
                .bind(job_id)
                .fetch_one(&mut **tx)
                .await?
                .try_get("ended_at")?;
            if ended.is_none() {
                self.end_job_in(tx, job_id, WorkState::Done, None, now_ms).await?;
            }
        }
        Ok(state)
    }
}

async fn attempt_state_of(tx: &mut Transaction<'_, Any>, attempt_id: i64) -> Result<AttemptState, ComputeError> {
    let row =
        sqlx::query("SELECT state FROM compute_attempts WHERE id = $1").bind(attempt_id).fetch_one(&mut **tx).await?;
    Ok(super::attempt_state(&row.try_get::<String, _>("state")?)?)
}

/// Sets an undecided slice's state from its attempts: running or leased while a node holds it,
/// queued while it wants more receipts than it has, verifying otherwise.
pub(crate) async fn refresh_slice(tx: &mut Transaction<'_, Any>, job_id: &str, slice: u32) -> Result<(), StoreError> {
    let row = sqlx::query(
        "SELECT s.state AS state, s.wanted AS wanted, \
         (SELECT COUNT(*) FROM compute_attempts a WHERE a.job_id = s.job_id AND a.slice = s.idx AND a.state = 'running') AS running, \
         (SELECT COUNT(*) FROM compute_attempts a WHERE a.job_id = s.job_id AND a.slice = s.idx AND a.state = 'leased') AS leased, \
         (SELECT COUNT(*) FROM compute_attempts a WHERE a.job_id = s.job_id AND a.slice = s.idx AND a.state = 'submitted') AS submitted \
         FROM compute_slices s WHERE s.job_id = $1 AND s.idx = $2",
    )
    .bind(job_id)
    .bind(i64::from(slice))
    .fetch_one(&mut **tx)
    .await?;
    if work_state(&row.try_get::<String, _>("state")?)?.is_final() {
        return Ok(());
    }
    let count = |column: &str| row.try_get::<i64, _>(column);
    let state = if count("running")? > 0 {
        WorkState::Running
    } else if count("leased")? > 0 {
        WorkState::Leased
    } else if count("submitted")? < count("wanted")? {
        WorkState::Queued
    } else {
        WorkState::Verifying
    };
    sqlx::query("UPDATE compute_slices SET state = $1 WHERE job_id = $2 AND idx = $3")
        .bind(state.as_str())
        .bind(job_id)
        .bind(i64::from(slice))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets a job's state from its slices (unless it ended): done when all are, queued while none
/// has started, else running, leased or verifying by the most active slice. Returns it.
pub(crate) async fn refresh_job(tx: &mut Transaction<'_, Any>, job_id: &str) -> Result<WorkState, StoreError> {
    let current = sqlx::query("SELECT state FROM compute_jobs WHERE id = $1").bind(job_id).fetch_one(&mut **tx).await?;
    let current = work_state(&current.try_get::<String, _>("state")?)?;
    if current.is_final() {
        return Ok(current);
    }
    let rows =
        sqlx::query("SELECT state FROM compute_slices WHERE job_id = $1").bind(job_id).fetch_all(&mut **tx).await?;
    let states =
        rows.iter().map(|row| work_state(&row.try_get::<String, _>("state")?)).collect::<Result<Vec<_>, _>>()?;
    let open: Vec<WorkState> = states.iter().copied().filter(|s| *s != WorkState::Done).collect();
    let state = if open.is_empty() {
        WorkState::Done
    } else if open.contains(&WorkState::Running) {
        WorkState::Running
    } else if open.contains(&WorkState::Leased) {
        WorkState::Leased
    } else if open.iter().all(|s| *s == WorkState::Queued) && states.len() == open.len() {
        WorkState::Queued
    } else if open.contains(&WorkState::Verifying) {
        WorkState::Verifying
    } else {
        WorkState::Running
    };
    if state != current && state != WorkState::Done {
        sqlx::query("UPDATE compute_jobs SET state = $1 WHERE id = $2")
            .bind(state.as_str())
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(state)
}
