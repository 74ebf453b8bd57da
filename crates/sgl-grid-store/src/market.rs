//! The order book (issue 19): orders, bids and leases, and the money each step moves. Every
//! step is one database transaction with at most one ledger transaction, guarded by the state
//! it leaves, so two replicas (or the leader and a request) never apply one event twice.
//!
//! | event | movement | idempotency key |
//! |---|---|---|
//! | place | credits → `escrow:job:{order}`, `streamed(max price, duration)` | `hold:order:{order}` |
//! | match | the hold → `escrow:job:{lease}` (the deposit, `streamed(bid, duration)`) and the rest → credits | `match:order:{order}` |
//! | unfilled or cancelled | the hold → credits, whole | `release:order:{order}` |
//! | settle | the lease's escrow → operator and platform by the compute split, up to what streamed | `stream:lease:{lease}:{paid after}` |
//! | close | what streamed since the last settlement → operator and platform, the rest → credits | `close:lease:{lease}` |
//! | fund on a chain | the lease's escrow (what is unpaid) → `external:chain:escrow` | `chain:fund:lease:{lease}` |
//! | close on a chain | `external:chain:escrow` → credits, what the stream did not pay | `close:lease:{lease}` |
//!
//! `streamed` is [`sgl_protocol::api::market::streamed_micros`]; the split carries its rounding
//! like every settlement ([`crate::settlement`]). A lease never pays more than its deposit: what
//! it has paid is a column moved only forward, to at most the deposit, under a guard on its old
//! value.

use sgl_protocol::api::market::{LostReason, OrderState, Resources, streamed_micros};
use sgl_protocol::compute::JobClass;
use sqlx::{Any, Row, Transaction};

use crate::ledger::{Account, NewTransaction, PostError, TransactionKind};
use crate::{Store, StoreError};

pub mod chain;
mod leases;
pub mod matching;
mod reads;

pub use leases::{LeaseEnd, Matched, Standing};
pub use reads::{BidRecord, LeaseRecord, OrderRecord};

/// An order to record; the grid checked it.
#[derive(Debug, Clone, Copy)]
pub struct NewOrder<'a> {
    /// `mo_…`.
    pub id: &'a str,
    /// The paying key.
    pub api_key_id: i64,
    /// Its account, which owns the order.
    pub account_id: i64,
    /// The requester's wallet (lowercase), if any: its own operator's nodes may not bid.
    pub requester_wallet: Option<&'a str>,
    /// The class of work.
    pub class: JobClass,
    /// What the provider must offer.
    pub resources: Resources,
    /// The lease's duration.
    pub duration_secs: i64,
    /// The most it pays per hour.
    pub max_price_per_hour: i64,
    /// The bid window.
    pub bid_window_secs: u32,
    /// A compute job of the account's to bind.
    pub job_id: Option<&'a str>,
}

impl NewOrder<'_> {
    /// What placing it holds: the maximum price over the whole duration.
    pub fn held_micros(&self) -> i64 {
        streamed_micros(self.max_price_per_hour, self.duration_secs)
    }
}

/// A node's bid to record; the grid checked the node.
#[derive(Debug, Clone, Copy)]
pub struct NewBid<'a> {
    /// The order.
    pub order_id: &'a str,
    /// The node.
    pub node_id: &'a str,
    /// Its operator wallet.
    pub operator: &'a str,
    /// Its price per hour.
    pub price_per_hour: i64,
}

/// A market operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MarketStoreError {
    /// The payer cannot cover the hold.
    #[error("insufficient credits: the order holds {needed} micro-USD, the key has {available}")]
    InsufficientCredits {
        /// The hold.
        needed: i64,
        /// The key's credits.
        available: i64,
    },
    /// The job to bind is not the account's, not of the order's class, not of redundancy 1,
    /// ended, or bound to another order already.
    #[error(
        "job {0} cannot be bound: it must be a job of this account of the order's class, with redundancy 1, not \
         ended and not bound to another order"
    )]
    JobNotBindable(String),
    /// No such order or lease.
    #[error("not found")]
    NotFound,
    /// The order's bid window is over (or it was decided).
    #[error("the order takes no more bids: {0}")]
    Closed(&'static str),
    /// A bid above the order's maximum.
    #[error("the order pays at most {max} micro-USD per hour")]
    AboveMaximum {
        /// The order's maximum price per hour.
        max: i64,
    },
    /// A bid by a node of the requester's own operator wallet.
    #[error("a node may not bid on an order its own operator's wallet placed")]
    OwnOrder,
    /// Not possible in the order's or lease's state (it moved on, or another writer won).
    #[error("it is {0}")]
    Conflict(&'static str),
    /// A ledger movement was refused.
    #[error(transparent)]
    Post(#[from] PostError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MarketStoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl Store {
    /// Records an order, holds its maximum price over its duration from the payer's credits and
    /// reserves its bound job for the market (no node leases it until the match), in one
    /// transaction.
    pub async fn place_market_order(&self, order: &NewOrder<'_>, now_ms: i64) -> Result<(), MarketStoreError> {
        let held = order.held_micros();
        let window_ends_at = now_ms.saturating_add(i64::from(order.bid_window_secs) * 1_000);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO market_orders (id, api_key_id, account_id, requester_wallet, class, cpu_cores, memory_mb, \
             gpus, duration_secs, max_price_per_hour, bid_window_secs, held_micros, job_id, state, created_at, \
             window_ends_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'open', $14, $15)",
        )
        .bind(order.id)
        .bind(order.api_key_id)
        .bind(order.account_id)
        .bind(order.requester_wallet)
        .bind(order.class.as_str())
        .bind(i64::from(order.resources.cpu_cores))
        .bind(i64::from(order.resources.memory_mb))
        .bind(i64::from(order.resources.gpus))
        .bind(order.duration_secs)
        .bind(order.max_price_per_hour)
        .bind(i64::from(order.bid_window_secs))
        .bind(held)
        .bind(order.job_id)
        .bind(now_ms)
        .bind(window_ends_at)
        .execute(&mut *tx)
        .await?;
        if let Some(job_id) = order.job_id {
            reserve_job(&mut tx, job_id, order).await?;
        }
        let hold = NewTransaction::from_amounts(
            format!("hold:order:{}", order.id),
            TransactionKind::EscrowHold,
            format!("hold of market order {}", order.id),
            [
                (Account::Credits { api_key_id: order.api_key_id }, -held),
                (Account::Escrow { job_id: order.id.to_owned() }, held),
            ],
        );
        match self.post_in(&mut tx, &hold, now_ms).await {
            Err(PostError::InsufficientFunds { balance, .. }) => {
                return Err(MarketStoreError::InsufficientCredits { needed: held, available: balance });
            }
            other => {
                other?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a node's bid on an open order, replacing its earlier one (which then counts as
    /// placed now). Refused after the window, above the order's maximum, or from the
    /// requester's own operator wallet.
    pub async fn place_market_bid(&self, bid: &NewBid<'_>, now_ms: i64) -> Result<BidRecord, MarketStoreError> {
        let mut tx = self.pool().begin().await?;
        let lock = format!(
            "SELECT state, window_ends_at, max_price_per_hour, requester_wallet FROM market_orders WHERE id = $1{}",
            self.row_lock()
        );
        let order = sqlx::query(&lock).bind(bid.order_id).fetch_optional(&mut *tx).await?;
        let order = order.ok_or(MarketStoreError::NotFound)?;
        if order.try_get::<String, _>("state")? != OrderState::Open.as_str() {
            return Err(MarketStoreError::Closed("it was matched, found unfilled or cancelled"));
        }
        if now_ms >= order.try_get::<i64, _>("window_ends_at")? {
            return Err(MarketStoreError::Closed("its bid window is over"));
        }
        let max: i64 = order.try_get("max_price_per_hour")?;
        if bid.price_per_hour > max {
            return Err(MarketStoreError::AboveMaximum { max });
        }
        let requester: Option<String> = order.try_get("requester_wallet")?;
        if requester.is_some_and(|wallet| wallet.eq_ignore_ascii_case(bid.operator)) {
            return Err(MarketStoreError::OwnOrder);
        }
        let seq: i64 =
            sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) AS seq FROM market_bids WHERE order_id = $1")
                .bind(bid.order_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("seq")?;
        sqlx::query(
            "INSERT INTO market_bids (order_id, node_id, operator, price_per_hour, placed_at, seq, state) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending') ON CONFLICT (order_id, node_id) DO UPDATE SET \
             price_per_hour = excluded.price_per_hour, placed_at = excluded.placed_at, seq = excluded.seq",
        )
        .bind(bid.order_id)
        .bind(bid.node_id)
        .bind(bid.operator)
        .bind(bid.price_per_hour)
        .bind(now_ms)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        let sql = format!("SELECT {} WHERE b.order_id = $1 AND b.node_id = $2", reads::BID_COLUMNS);
        let row = sqlx::query(&sql).bind(bid.order_id).bind(bid.node_id).fetch_one(&mut *tx).await?;
        let placed = reads::bid_of(&row)?;
        tx.commit().await?;
        Ok(placed)
    }

    /// Cancels the account's open order: its hold back whole, its bids lost, its job back to
    /// every node.
    pub async fn cancel_market_order(
        &self,
        order_id: &str,
        account_id: i64,
        now_ms: i64,
    ) -> Result<OrderRecord, MarketStoreError> {
        let order = self.market_order(order_id).await?.filter(|o| o.account_id == account_id);
        let order = order.ok_or(MarketStoreError::NotFound)?;
        let mut tx = self.pool().begin().await?;
        if !self.decide_order_in(&mut tx, &order, OrderState::Cancelled, order.held_micros, now_ms).await? {
            return Err(MarketStoreError::Conflict("no longer open: it was matched or found unfilled"));
        }
        self.release_order_in(&mut tx, &order, now_ms).await?;
        let pending = sqlx::query("SELECT id FROM market_bids WHERE order_id = $1 AND state = 'pending'")
            .bind(order_id)
            .fetch_all(&mut *tx)
            .await?;
        for row in pending {
            lose_bid_in(&mut tx, row.try_get("id")?, LostReason::OrderCancelled, now_ms).await?;
        }
        tx.commit().await?;
        self.market_order(order_id).await?.ok_or(MarketStoreError::NotFound)
    }

    /// Moves an open order to `state` with `refunded` given back; false if it was not open.
    async fn decide_order_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        order: &OrderRecord,
        state: OrderState,
        refunded: i64,
        now_ms: i64,
    ) -> Result<bool, MarketStoreError> {
        let done = sqlx::query(
            "UPDATE market_orders SET state = $2, decided_at = $3, refunded_micros = $4 WHERE id = $1 AND state = 'open'",
        )
        .bind(&order.id)
        .bind(state.as_str())
        .bind(now_ms)
        .bind(refunded)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives an unfilled or cancelled order's hold back whole and its job back to every node.
    async fn release_order_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        order: &OrderRecord,
        now_ms: i64,
    ) -> Result<(), MarketStoreError> {
        let release = NewTransaction::from_amounts(
            format!("release:order:{}", order.id),
            TransactionKind::Release,
            format!("market order {} not filled: its hold back whole", order.id),
            [
                (Account::Escrow { job_id: order.id.clone() }, -order.held_micros),
                (Account::Credits { api_key_id: order.api_key_id }, order.held_micros),
            ],
        );
        self.post_nonzero_in(tx, &release, now_ms).await?;
        if let Some(job_id) = &order.job_id {
            set_job_node(tx, job_id, "", None).await?;
        }
        Ok(())
    }

    /// Posts `transaction` unless every posting of it was zero (and so left out).
    async fn post_nonzero_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        transaction: &NewTransaction,
        now_ms: i64,
    ) -> Result<(), PostError> {
        if !transaction.postings.is_empty() {
            self.post_in(tx, transaction, now_ms).await?;
        }
        Ok(())
    }
}

/// Reserves the order's job for the market: the account's, of its class, redundancy 1, not
/// ended and not bound already.
async fn reserve_job(
    tx: &mut Transaction<'_, Any>,
    job_id: &str,
    order: &NewOrder<'_>,
) -> Result<(), MarketStoreError> {
    let done = sqlx::query(
        "UPDATE compute_jobs SET market_node = '' WHERE id = $1 AND account_id = $2 AND class = $3 \
         AND redundancy = 1 AND state NOT IN ('done', 'failed', 'cancelled') AND market_node IS NULL",
    )
    .bind(job_id)
    .bind(order.account_id)
    .bind(order.class.as_str())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(MarketStoreError::JobNotBindable(job_id.to_owned()));
    }
    Ok(())
}

/// Moves the job's market binding from `from` to `to` (`None`: unbound, any node may lease it).
async fn set_job_node(
    tx: &mut Transaction<'_, Any>,
    job_id: &str,
    from: &str,
    to: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE compute_jobs SET market_node = $3 WHERE id = $1 AND market_node = $2")
        .bind(job_id)
        .bind(from)
        .bind(to)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a pending bid lost for `reason`.
async fn lose_bid_in(
    tx: &mut Transaction<'_, Any>,
    bid_id: i64,
    reason: LostReason,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE market_bids SET state = 'lost', lost_reason = $2, winning_price = $3, decided_at = $4 \
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(bid_id)
    .bind(reason.as_str())
    .bind(reason.winning_price_micros())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
