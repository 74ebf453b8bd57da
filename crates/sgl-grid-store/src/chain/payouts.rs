//! Operator payouts on the chain. A payout leaves the ledger when it is asked for (its
//! earnings move out in the same database transaction that queues it), and the leader pays the
//! queue in batches through `Escrow.payBatch`: it names a batch here first (so a leader that
//! stops after sending finds the batch again and asks the chain whether it was paid), then
//! records the mined transaction. Nothing is queued twice (the payout's id is its ledger key)
//! and nothing is batched twice (a payout belongs to one batch).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ledger::{NewTransaction, PostError, Posted};
use crate::{Store, StoreError};

/// A payout to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChainPayout {
    /// Its id: the ledger key of the transaction that moved it out of the earnings.
    pub id: String,
    /// The operator wallet it is paid from.
    pub wallet: String,
    /// The receiving address, `0x…` checksummed.
    pub to: String,
    /// Micro-USD (USDC units).
    pub amount: i64,
}

/// A payout as stored, with its batch once it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPayout {
    /// Its id.
    pub id: String,
    /// The operator wallet.
    pub wallet: String,
    /// The receiving address.
    pub to: String,
    /// Micro-USD.
    pub amount: i64,
    /// When it was asked for, Unix ms.
    pub created_at: i64,
    /// Its batch, `0x…` 32 bytes, once batched.
    pub batch_id: Option<String>,
    /// The batch's transaction, once mined.
    pub tx_hash: Option<String>,
}

/// A batch to pay (or to find paid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutBatch {
    /// `0x…` 32 bytes, as `payBatch` takes it.
    pub batch_id: String,
    /// `(to, amount)` in the order they were asked for.
    pub payouts: Vec<(String, i64)>,
}

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutBatchRecord {
    /// `0x…` 32 bytes.
    pub batch_id: String,
    /// How many payouts it pays.
    pub payouts: i64,
    /// What it pays in all, micro-USD.
    pub total: i64,
    /// Its transaction, once mined.
    pub tx_hash: Option<String>,
}

const PAYOUT_COLUMNS: &str = "p.id, p.wallet, p.to_address, p.amount, p.created_at, p.batch_id, b.tx_hash FROM chain_payouts p \
     LEFT JOIN chain_payout_batches b ON b.batch_id = p.batch_id";

fn payout_of(row: &AnyRow) -> Result<ChainPayout, StoreError> {
    Ok(ChainPayout {
        id: row.try_get("id")?,
        wallet: row.try_get("wallet")?,
        to: row.try_get("to_address")?,
        amount: row.try_get("amount")?,
        created_at: row.try_get("created_at")?,
        batch_id: row.try_get("batch_id")?,
        tx_hash: row.try_get("tx_hash")?,
    })
}

impl Store {
    /// Posts `out` (the payout leaving the earnings) and queues `payout` for the chain in one
    /// database transaction. A repeated `out` (its idempotency key) queues nothing again.
    pub async fn queue_chain_payout(
        &self,
        out: &NewTransaction,
        payout: &NewChainPayout,
        now_ms: i64,
    ) -> Result<Posted, PostError> {
        let mut tx = self.pool().begin().await?;
        let posted = self.post_in(&mut tx, out, now_ms).await?;
        if matches!(posted, Posted::Applied(_)) {
            sqlx::query(
                "INSERT INTO chain_payouts (id, wallet, to_address, amount, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&payout.id)
            .bind(&payout.wallet)
            .bind(&payout.to)
            .bind(payout.amount)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(posted)
    }

    /// The batch to pay next: a batch named before and not yet recorded paid (the leader
    /// stopped after naming it), or else up to `limit` queued payouts named `batch_id` now.
    /// `None` when nothing waits.
    pub async fn next_payout_batch(
        &self,
        batch_id: &str,
        limit: i64,
        now_ms: i64,
    ) -> Result<Option<PayoutBatch>, StoreError> {
        let unpaid = sqlx::query("SELECT batch_id FROM chain_payout_batches WHERE tx_hash IS NULL ORDER BY created_at")
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = unpaid {
            let batch_id: String = row.try_get("batch_id")?;
            return Ok(Some(self.payout_batch(&batch_id).await?));
        }
        let mut tx = self.pool().begin().await?;
        let rows =
            sqlx::query("SELECT id, amount FROM chain_payouts WHERE batch_id IS NULL ORDER BY created_at, id LIMIT $1")
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut total = 0_i64;
        for row in &rows {
            let id: String = row.try_get("id")?;
            total = total.saturating_add(row.try_get::<i64, _>("amount")?);
            sqlx::query("UPDATE chain_payouts SET batch_id = $2 WHERE id = $1 AND batch_id IS NULL")
                .bind(&id)
                .bind(batch_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO chain_payout_batches (batch_id, payouts, total, created_at) VALUES ($1, $2, $3, $4)")
            .bind(batch_id)
            .bind(i64::try_from(rows.len()).unwrap_or(i64::MAX))
            .bind(total)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(self.payout_batch(batch_id).await?))
    }

    async fn payout_batch(&self, batch_id: &str) -> Result<PayoutBatch, StoreError> {
        let rows =
            sqlx::query("SELECT to_address, amount FROM chain_payouts WHERE batch_id = $1 ORDER BY created_at, id")
                .bind(batch_id)
                .fetch_all(self.pool())
                .await?;
        let payouts = rows
            .iter()
            .map(|row| Ok((row.try_get("to_address")?, row.try_get("amount")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(PayoutBatch { batch_id: batch_id.to_owned(), payouts })
    }

    /// Records batch `batch_id` paid by `tx_hash`. Returns false when it already was.
    pub async fn record_payout_batch_paid(
        &self,
        batch_id: &str,
        tx_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE chain_payout_batches SET tx_hash = $2, paid_at = $3 WHERE batch_id = $1 AND tx_hash IS NULL",
        )
        .bind(batch_id)
        .bind(tx_hash)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `wallet`'s payouts on the chain, newest first.
    pub async fn chain_payouts(&self, wallet: &str, limit: i64) -> Result<Vec<ChainPayout>, StoreError> {
        let sql = format!("SELECT {PAYOUT_COLUMNS} WHERE p.wallet = $1 ORDER BY p.created_at DESC, p.id LIMIT $2");
        let rows = sqlx::query(&sql).bind(wallet).bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(payout_of).collect()
    }

    /// Every payout batch, oldest first.
    pub async fn payout_batches(&self) -> Result<Vec<PayoutBatchRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT batch_id, payouts, total, tx_hash FROM chain_payout_batches ORDER BY created_at")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|row| {
                Ok(PayoutBatchRecord {
                    batch_id: row.try_get("batch_id")?,
                    payouts: row.try_get("payouts")?,
                    total: row.try_get("total")?,
                    tx_hash: row.try_get("tx_hash")?,
                })
            })
            .collect()
    }

    /// Micro-USD queued for the chain and not in a batch yet.
    pub async fn queued_payouts_total(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM chain_payouts WHERE batch_id IS NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("total")?)
    }
}
