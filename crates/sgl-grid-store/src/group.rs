//! Group commit of job writes: many jobs' dispatches and ends in one database transaction.
//!
//! A job writes twice: at dispatch (its row and the hold of its quote) and at its end (its row,
//! its settlement or release, its node's record). Written one by one, each write is a
//! transaction of ten to forty statements, and the single SQLite connection (or the rows every
//! job locks on PostgreSQL: the caller's credits, the recipients' carries) serialises them.
//! [`Store::write_jobs`] takes every write waiting at that moment and does them together:
//! each account, carry and node read and written once per group, postings inserted many rows
//! per statement. Each write's effect is exactly what it would have been alone, in the order
//! given; a hold the credits cannot cover is refused on its own, without its job and without
//! disturbing the others. If the group as a whole cannot be written (a database error, a key
//! already used), it rolls back and every write is done on its own instead.

mod postings;

use std::collections::{BTreeMap, HashSet};

use sqlx::{Any, Row, Transaction};

use crate::jobs::{JobEnd, JobMovement, JobStatus, NewJob};
use crate::ledger::{NewTransaction, PostError};
use crate::reputation::{self, Outcome};
use crate::settlement::{Carry, PerRecipient, Recipient, Settlement};
use crate::{Store, StoreError};

/// Most writes in one group: keeps every statement's parameters far below both databases'
/// limits (SQLite 32,766, PostgreSQL 65,535).
pub const MAX_GROUP: usize = 128;

/// A job dispatched, owned so that it can wait in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedJob {
    /// The job's id.
    pub id: String,
    /// The node running it.
    pub node_id: String,
    /// Who pays.
    pub api_key_id: i64,
    /// The model.
    pub model: String,
    /// The caller sealed the request itself.
    pub sealed_by_caller: bool,
    /// Streamed.
    pub stream: bool,
    /// The completion cap the hold assumed.
    pub max_tokens: i64,
    /// Micro-dollars held.
    pub held_micros: i64,
    /// The replica that dispatched it (`None` on SQLite).
    pub replica: Option<String>,
}

impl StartedJob {
    /// The row to insert.
    pub fn record(&self) -> NewJob<'_> {
        NewJob {
            id: &self.id,
            node_id: &self.node_id,
            api_key_id: self.api_key_id,
            model: &self.model,
            sealed_by_caller: self.sealed_by_caller,
            stream: self.stream,
            max_tokens: self.max_tokens,
            held_micros: self.held_micros,
            replica: self.replica.as_deref(),
        }
    }
}

/// How a job ended, owned (see [`JobEnd`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedJob {
    /// Completed and billed.
    Completed {
        /// Prompt tokens.
        prompt_tokens: i64,
        /// Completion tokens.
        completion_tokens: i64,
        /// Micro-dollars billed.
        billed_micros: i64,
    },
    /// Failed, nothing billed.
    Failed {
        /// Why.
        error: String,
    },
    /// A stream cut short, billed for what was delivered.
    Cut {
        /// Why.
        error: String,
        /// Completion tokens delivered.
        completion_tokens: i64,
        /// Micro-dollars billed.
        billed_micros: i64,
    },
}

impl EndedJob {
    /// The row's new status, error, prompt tokens, completion tokens and bill (`None`: kept).
    fn columns(&self) -> (&'static str, Option<&str>, Option<i64>, Option<i64>, Option<i64>) {
        let (completed, failed) = (JobStatus::Completed.as_str(), JobStatus::Failed.as_str());
        match self {
            Self::Completed { prompt_tokens, completion_tokens, billed_micros } => {
                (completed, None, Some(*prompt_tokens), Some(*completion_tokens), Some(*billed_micros))
            }
            Self::Failed { error } => (failed, Some(error), None, None, None),
            Self::Cut { error, completion_tokens, billed_micros } => {
                (failed, Some(error), None, Some(*completion_tokens), Some(*billed_micros))
            }
        }
    }

    /// The end as the job's row takes it.
    pub fn end(&self) -> JobEnd<'_> {
        match self {
            Self::Completed { prompt_tokens, completion_tokens, billed_micros } => JobEnd::Completed {
                prompt_tokens: *prompt_tokens,
                completion_tokens: *completion_tokens,
                billed_micros: *billed_micros,
            },
            Self::Failed { error } => JobEnd::Failed { error },
            Self::Cut { error, completion_tokens, billed_micros } => {
                JobEnd::Cut { error, completion_tokens: *completion_tokens, billed_micros: *billed_micros }
            }
        }
    }
}

/// One write of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobWrite {
    /// Records a dispatched job and holds its quote ([`Store::insert_job_with_hold`]).
    Start {
        /// The job.
        job: StartedJob,
        /// The hold.
        hold: NewTransaction,
    },
    /// Ends a dispatched job with its money and its node's record ([`Store::finish_job_scored`]).
    End {
        /// The job's id.
        job_id: String,
        /// How it ended.
        end: EndedJob,
        /// Its settlement or release.
        movement: JobMovement,
        /// The node's id and whether the job counts for it (true) or against it (false).
        outcome: Option<(String, bool)>,
    },
}

/// What one write came to: a start is `Ok(true)` or refused (say, the credits do not cover the
/// hold); an end is `Ok(true)`, or `Ok(false)` when the job had already ended (nothing changed).
pub type WriteOutcome = Result<bool, PostError>;

/// How a group was written.
#[derive(Debug)]
pub enum Commit {
    /// In one transaction.
    Together,
    /// One by one, as more than [`MAX_GROUP`] writes.
    OneByOne,
    /// One by one because the group could not be written whole, for this reason.
    Fallback(PostError),
}

impl Store {
    /// Does `writes` in one transaction if it can, else one by one; one outcome per write, in
    /// order, and how they were written. See the module documentation.
    pub async fn write_jobs(&self, writes: &[JobWrite], now_ms: i64) -> (Vec<WriteOutcome>, Commit) {
        // One write alone goes the group's way too: a dozen statements instead of forty.
        let commit = if !writes.is_empty() && writes.len() <= MAX_GROUP {
            match self.write_group(writes, now_ms).await {
                Ok(outcomes) => return (outcomes, Commit::Together),
                Err(error) => Commit::Fallback(error),
            }
        } else {
            Commit::OneByOne
        };
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            outcomes.push(self.write_alone(write, now_ms).await);
        }
        (outcomes, commit)
    }

    async fn write_alone(&self, write: &JobWrite, now_ms: i64) -> WriteOutcome {
        match write {
            JobWrite::Start { job, hold } => {
                self.insert_job_with_hold(&job.record(), hold, now_ms).await.map(|()| true)
            }
            JobWrite::End { job_id, end, movement, outcome } => {
                let outcome = outcome.as_ref().map(|(node, completed)| (node.as_str(), *completed));
                self.finish_job_scored(job_id, &end.end(), movement, outcome, now_ms).await
            }
        }
    }

    async fn write_group(&self, writes: &[JobWrite], now_ms: i64) -> Result<Vec<WriteOutcome>, PostError> {
        let mut tx = self.pool().begin().await?;
        let ended = self.end_rows(&mut tx, writes, now_ms).await?;
        let settlements: Vec<&Settlement> = writes
            .iter()
            .zip(&ended)
            .filter_map(|(write, ended)| match write {
                JobWrite::End { movement: JobMovement::Settle(settlement), .. } if *ended => Some(settlement),
                _ => None,
            })
            .collect();
        let settled = self.settle_group(&mut tx, &settlements).await?;
        let movements = movements(writes, &ended, settled)?;
        let posted = self.post_group(&mut tx, movements.iter().map(|(_, t)| t), now_ms).await?;
        let mut outcomes: Vec<WriteOutcome> = writes
            .iter()
            .zip(&ended)
            .map(|(write, ended)| Ok(matches!(write, JobWrite::Start { .. }) || *ended))
            .collect();
        for ((index, _), result) in movements.iter().zip(posted) {
            match (result, &writes[*index]) {
                (Ok(()), _) => {}
                // A hold refused leaves its job out; any other refusal undoes the group.
                (Err(refusal), JobWrite::Start { .. }) => outcomes[*index] = Err(refusal),
                (Err(refusal), JobWrite::End { .. }) => return Err(refusal),
            }
        }
        let started = writes.iter().zip(&outcomes).filter_map(|(write, outcome)| match write {
            JobWrite::Start { job, .. } if outcome.is_ok() => Some(job),
            _ => None,
        });
        insert_jobs(self.mark(), &mut tx, started.collect(), now_ms).await?;
        let scored = writes.iter().zip(&ended).filter_map(|(write, ended)| match write {
            JobWrite::End { outcome: Some((node, completed)), .. } if *ended => Some((node.as_str(), *completed)),
            _ => None,
        });
        self.score_nodes(&mut tx, scored.collect(), now_ms).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Ends the rows of the group's ends in one statement; true for each end whose job was still
    /// dispatched (a job ended twice in one group ends once; always false for starts).
    async fn end_rows(
        &self,
        tx: &mut Transaction<'_, Any>,
        writes: &[JobWrite],
        now_ms: i64,
    ) -> Result<Vec<bool>, PostError> {
        let mut seen = HashSet::new();
        let ends: Vec<(&str, &EndedJob)> = writes
            .iter()
            .filter_map(|write| match write {
                JobWrite::End { job_id, end, .. } if seen.insert(job_id.as_str()) => Some((job_id.as_str(), end)),
                _ => None,
            })
            .collect();
        let mut ended: HashSet<String> = HashSet::new();
        if !ends.is_empty() {
            let mark = self.mark();
            let sql = format!(
                "UPDATE jobs SET status = ended.status, error = ended.error, \
                 prompt_tokens = COALESCE(ended.prompt_tokens, jobs.prompt_tokens), \
                 completion_tokens = COALESCE(ended.completion_tokens, jobs.completion_tokens), \
                 billed_micros = COALESCE(ended.billed_micros, jobs.billed_micros), finished_at = {mark}1 \
                 FROM (SELECT column1 AS id, column2 AS status, column3 AS error, column4 AS prompt_tokens, \
                 column5 AS completion_tokens, column6 AS billed_micros FROM (VALUES {}) AS v) AS ended \
                 WHERE jobs.id = ended.id AND jobs.status = 'dispatched' RETURNING jobs.id",
                postings::rows(mark, ends.len(), 6, 2, "")
            );
            let query = ends.iter().fold(sqlx::query(&sql).bind(now_ms), |query, (id, end)| {
                let columns = end.columns();
                query.bind(*id).bind(columns.0).bind(columns.1).bind(columns.2).bind(columns.3).bind(columns.4)
            });
            for row in query.fetch_all(&mut **tx).await? {
                ended.insert(row.try_get("id")?);
            }
        }
        let mut counted = HashSet::new();
        Ok(writes
            .iter()
            .map(|write| match write {
                JobWrite::End { job_id, .. } => ended.contains(job_id) && counted.insert(job_id.as_str()),
                JobWrite::Start { .. } => false,
            })
            .collect())
    }

    /// The transactions of `settlements`, in order, each split with the carries the ones before
    /// it left; every carry read and locked once and written once.
    async fn settle_group(
        &self,
        tx: &mut Transaction<'_, Any>,
        settlements: &[&Settlement],
    ) -> Result<Vec<NewTransaction>, PostError> {
        if settlements.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = settlements
            .iter()
            .flat_map(|settlement| {
                let accounts = settlement.accounts();
                Recipient::ALL.map(|recipient| accounts.get(recipient).to_string())
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut carries = self.lock_carries(tx, &names).await?;
        let before = carries.clone();
        let mut transactions = Vec::with_capacity(settlements.len());
        for settlement in settlements {
            let accounts = settlement.accounts();
            let name = |recipient: Recipient| accounts.get(recipient).to_string();
            let current = PerRecipient::from_fn(|recipient| carries.get(&name(recipient)).copied().unwrap_or_default());
            let split = settlement.split(current);
            for recipient in Recipient::ALL {
                carries.insert(name(recipient), *split.carries.get(recipient));
            }
            transactions.push(settlement.transaction(&split));
        }
        let moved: Vec<(&String, i64)> = carries
            .iter()
            .filter(|(name, carry)| before.get(*name) != Some(*carry))
            .map(|(name, carry)| (name, carry.units()))
            .collect();
        if !moved.is_empty() {
            let sql = format!(
                "UPDATE settlement_carries SET carry = moved.carry \
                 FROM (SELECT column1 AS account, column2 AS carry FROM (VALUES {}) AS v) AS moved \
                 WHERE settlement_carries.account = moved.account",
                postings::rows(self.mark(), moved.len(), 2, 1, "")
            );
            let query = moved.iter().fold(sqlx::query(&sql), |query, (name, units)| query.bind(*name).bind(*units));
            query.execute(&mut **tx).await?;
        }
        Ok(transactions)
    }

    /// Creates the carries named (sorted) if needed, locks them in that order (PostgreSQL) and
    /// reads them.
    async fn lock_carries(
        &self,
        tx: &mut Transaction<'_, Any>,
        names: &[String],
    ) -> Result<BTreeMap<String, Carry>, PostError> {
        let insert = format!(
            "INSERT INTO settlement_carries (account, carry) VALUES {} ON CONFLICT (account) DO NOTHING",
            postings::rows(self.mark(), names.len(), 1, 1, "0")
        );
        names.iter().fold(sqlx::query(&insert), |query, name| query.bind(name)).execute(&mut **tx).await?;
        let select = format!(
            "SELECT account, carry FROM settlement_carries WHERE account IN ({}) ORDER BY account{}",
            postings::list(self.mark(), names.len(), 1),
            self.row_lock()
        );
        let rows = names.iter().fold(sqlx::query(&select), |query, name| query.bind(name)).fetch_all(&mut **tx).await?;
        rows.iter()
            .map(|row| {
                let units: i64 = row.try_get("carry")?;
                let carry = Carry::new(units).ok_or(StoreError::OutOfRange("settlement carry"))?;
                Ok((row.try_get("account")?, carry))
            })
            .collect()
    }

    /// Counts each ended job for or against its node and moves its reputation, as
    /// [`Store::finish_job_scored`] does one at a time; each node read and written once.
    async fn score_nodes(
        &self,
        tx: &mut Transaction<'_, Any>,
        scored: Vec<(&str, bool)>,
        now_ms: i64,
    ) -> Result<(), PostError> {
        let mut per_node: BTreeMap<&str, Vec<bool>> = BTreeMap::new();
        for (node, completed) in scored {
            per_node.entry(node).or_default().push(completed);
        }
        if per_node.is_empty() {
            return Ok(());
        }
        let select = format!(
            "SELECT id, reputation, reputation_at FROM nodes WHERE id IN ({}) ORDER BY id{}",
            postings::list(self.mark(), per_node.len(), 1),
            self.row_lock()
        );
        let rows = per_node.keys().fold(sqlx::query(&select), |query, id| query.bind(*id)).fetch_all(&mut **tx).await?;
        let mut scores = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            let Some(outcomes) = per_node.get(id.as_str()) else { continue };
            let mut value = reputation::decayed(row.try_get("reputation")?, row.try_get("reputation_at")?, now_ms);
            for completed in outcomes {
                value = reputation::after(value, if *completed { Outcome::Completed } else { Outcome::Failed });
            }
            let completed = outcomes.iter().filter(|completed| **completed).count();
            let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            scores.push((id, count(completed), count(outcomes.len() - completed), value));
        }
        if scores.is_empty() {
            return Ok(());
        }
        let mark = self.mark();
        let sql = format!(
            "UPDATE nodes SET jobs_completed = jobs_completed + scored.completed, jobs_failed = jobs_failed + scored.failed, \
             reputation = scored.reputation, reputation_at = {mark}1 \
             FROM (SELECT column1 AS id, column2 AS completed, column3 AS failed, column4 AS reputation \
             FROM (VALUES {}) AS v) AS scored WHERE nodes.id = scored.id",
            postings::rows(mark, scores.len(), 4, 2, "")
        );
        let query = scores.iter().fold(sqlx::query(&sql).bind(now_ms), |query, (id, completed, failed, value)| {
            query.bind(id).bind(*completed).bind(*failed).bind(*value)
        });
        query.execute(&mut **tx).await?;
        Ok(())
    }
}

/// The ledger movement of each write that moves money, with the write's index, in order: a
/// start's hold, an end's release, or the next of `settled` (the group's settlements, in
/// order) for an end that settles. Ends whose job had already ended move nothing.
fn movements(
    writes: &[JobWrite],
    ended: &[bool],
    settled: Vec<NewTransaction>,
) -> Result<Vec<(usize, NewTransaction)>, StoreError> {
    let mut settled = settled.into_iter();
    let mut movements = Vec::new();
    for (index, (write, ended)) in writes.iter().zip(ended).enumerate() {
        let movement = match write {
            JobWrite::Start { hold, .. } => hold.clone(),
            JobWrite::End { movement: JobMovement::Release(release), .. } if *ended => release.clone(),
            JobWrite::End { movement: JobMovement::Settle(_), .. } if *ended => {
                settled.next().ok_or(StoreError::Invariant("a settlement went missing".into()))?
            }
            JobWrite::End { .. } => continue,
        };
        movements.push((index, movement));
    }
    Ok(movements)
}

/// Inserts the rows of `jobs`, many per statement.
async fn insert_jobs(
    mark: char,
    tx: &mut Transaction<'_, Any>,
    jobs: Vec<&StartedJob>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    if jobs.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO jobs (id, node_id, api_key_id, model, sealed_by_caller, stream, max_tokens, held_micros, replica, created_at, status) \
         VALUES {}",
        postings::rows(mark, jobs.len(), 10, 1, "'dispatched'")
    );
    let query = jobs.iter().fold(sqlx::query(&sql), |query, job| {
        query
            .bind(&job.id)
            .bind(&job.node_id)
            .bind(job.api_key_id)
            .bind(&job.model)
            .bind(i64::from(job.sealed_by_caller))
            .bind(i64::from(job.stream))
            .bind(job.max_tokens)
            .bind(job.held_micros)
            .bind(job.replica.as_deref())
            .bind(now_ms)
    });
    query.execute(&mut **tx).await?;
    Ok(())
}
