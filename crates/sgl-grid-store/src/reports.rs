//! Read-only reports for the dashboard and the grid operator: an account's chat usage by key,
//! model and day, what an account received per day, the newest tamper events and slashes of
//! the whole grid, and an operator's nodes. None writes.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ledger::Account;
use crate::nodes::NodeRecord;
use crate::stake::SlashRecord;
use crate::{Store, StoreError};

/// A day in Unix milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// What one key spent on one model on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    /// The key that paid.
    pub api_key_id: i64,
    /// The model.
    pub model: String,
    /// Jobs started that day.
    pub jobs: i64,
    /// Prompt tokens billed.
    pub prompt_tokens: i64,
    /// Completion tokens billed.
    pub completion_tokens: i64,
    /// Micro-dollars billed.
    pub billed_micros: i64,
}

/// One refused result, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperRecord {
    /// The node.
    pub node_id: String,
    /// The job.
    pub job_id: String,
    /// What was wrong (`bad_signature`, ...).
    pub kind: String,
    /// Unix ms.
    pub created_at: i64,
}

impl Store {
    /// Chat usage of the account whose root key is `account`, per day, key and model, for jobs
    /// started at or after `since_ms`; oldest day first.
    pub async fn account_usage(&self, account: i64, since_ms: i64) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(j.created_at / 86400000 AS BIGINT) AS day, j.api_key_id AS api_key_id, j.model AS model, \
             CAST(COUNT(*) AS BIGINT) AS jobs, \
             CAST(COALESCE(SUM(CASE WHEN j.billed_micros IS NULL THEN 0 ELSE j.prompt_tokens END), 0) AS BIGINT) AS prompt_tokens, \
             CAST(COALESCE(SUM(CASE WHEN j.billed_micros IS NULL THEN 0 ELSE j.completion_tokens END), 0) AS BIGINT) AS completion_tokens, \
             CAST(COALESCE(SUM(j.billed_micros), 0) AS BIGINT) AS billed_micros \
             FROM jobs j JOIN api_keys k ON k.id = j.api_key_id \
             WHERE (k.id = $1 OR k.account_id = $1) AND j.created_at >= $2 \
             GROUP BY CAST(j.created_at / 86400000 AS BIGINT), j.api_key_id, j.model \
             ORDER BY day, api_key_id, model",
        )
        .bind(account)
        .bind(since_ms)
        .fetch_all(self.pool())
        .await?;
        let usage = |row: &AnyRow| -> Result<UsageRecord, sqlx::Error> {
            Ok(UsageRecord {
                day: row.try_get("day")?,
                api_key_id: row.try_get("api_key_id")?,
                model: row.try_get("model")?,
                jobs: row.try_get("jobs")?,
                prompt_tokens: row.try_get("prompt_tokens")?,
                completion_tokens: row.try_get("completion_tokens")?,
                billed_micros: row.try_get("billed_micros")?,
            })
        };
        Ok(rows.iter().map(usage).collect::<Result<_, _>>()?)
    }

    /// The newest `limit` tamper events of the whole grid, newest first.
    pub async fn recent_tamper_events(&self, limit: i64) -> Result<Vec<TamperRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT node_id, job_id, kind, created_at FROM tamper_events ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let tamper = |row: &AnyRow| -> Result<TamperRecord, sqlx::Error> {
            Ok(TamperRecord {
                node_id: row.try_get("node_id")?,
                job_id: row.try_get("job_id")?,
                kind: row.try_get("kind")?,
                created_at: row.try_get("created_at")?,
            })
        };
        Ok(rows.iter().map(tamper).collect::<Result<_, _>>()?)
    }

    /// The newest `limit` slashes of any wallet, newest first.
    pub async fn recent_slashes(&self, limit: i64) -> Result<Vec<SlashRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT wallet, node_id, job_id, reason, evidence, amount, created_at FROM slashes \
             ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let slash = |row: &AnyRow| -> Result<SlashRecord, sqlx::Error> {
            Ok(SlashRecord {
                wallet: row.try_get("wallet")?,
                node_id: row.try_get("node_id")?,
                job_id: row.try_get("job_id")?,
                reason: row.try_get("reason")?,
                evidence: row.try_get("evidence")?,
                amount: row.try_get("amount")?,
                created_at: row.try_get("created_at")?,
            })
        };
        Ok(rows.iter().map(slash).collect::<Result<_, _>>()?)
    }

    /// How many chat jobs for `model` created since `since_ms` had a prompt of at least
    /// `tokens` tokens (as billed): prompts a node whose per-slot context is `tokens` could not
    /// have taken.
    pub async fn prompts_at_least(&self, model: &str, since_ms: i64, tokens: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM jobs \
             WHERE model = $1 AND created_at >= $2 AND prompt_tokens >= $3",
        )
        .bind(model)
        .bind(since_ms)
        .bind(tokens)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// What `account` received per UTC day (the sum of its positive postings, by the day of
    /// their transaction) since `since_ms`: `(days since the epoch, micro-units)`, oldest first,
    /// days with nothing absent. For an operator's `earnings:` account, what it earned.
    pub async fn daily_credits(&self, account: &Account, since_ms: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(t.created_at / 86400000 AS BIGINT) AS day, CAST(SUM(p.amount) AS BIGINT) AS total \
             FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE p.account = $1 AND p.amount > 0 AND t.created_at >= $2 \
             GROUP BY CAST(t.created_at / 86400000 AS BIGINT) ORDER BY day",
        )
        .bind(account.to_string())
        .bind(since_ms)
        .fetch_all(self.pool())
        .await?;
        let day =
            |row: &AnyRow| -> Result<(i64, i64), sqlx::Error> { Ok((row.try_get("day")?, row.try_get("total")?)) };
        Ok(rows.iter().map(day).collect::<Result<_, _>>()?)
    }

    /// The nodes registered under `wallet` (compared without case, as EVM addresses are),
    /// oldest first.
    pub async fn wallet_nodes(&self, wallet: &str) -> Result<Vec<NodeRecord>, StoreError> {
        let nodes = self.list_nodes().await?;
        Ok(nodes.into_iter().filter(|node| node.wallet.eq_ignore_ascii_case(wallet)).collect())
    }
}
