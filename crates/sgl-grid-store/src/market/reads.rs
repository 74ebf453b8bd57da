//! Orders, bids and leases as stored, and the queries that read them.

use sgl_protocol::api::market::{BidState, LeaseState, LostReason, OrderState, Resources};
use sgl_protocol::compute::JobClass;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// `mo_…`.
    pub id: String,
    /// The paying key.
    pub api_key_id: i64,
    /// The owning account.
    pub account_id: i64,
    /// The requester's wallet (lowercase), if its key or account is bound to one.
    pub requester_wallet: Option<String>,
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
    /// Held when placed.
    pub held_micros: i64,
    /// Given back from the hold.
    pub refunded_micros: i64,
    /// The bound compute job.
    pub job_id: Option<String>,
    /// Where it stands.
    pub state: OrderState,
    /// When it was placed.
    pub created_at: i64,
    /// When its window ends.
    pub window_ends_at: i64,
    /// When it was matched, found unfilled or cancelled.
    pub decided_at: Option<i64>,
}

/// A bid as stored, with its order's class and duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidRecord {
    /// Its id.
    pub id: i64,
    /// The order.
    pub order_id: String,
    /// The node.
    pub node_id: String,
    /// The node's operator wallet.
    pub operator: String,
    /// Its price per hour.
    pub price_per_hour: i64,
    /// When it was (last) placed.
    pub placed_at: i64,
    /// Its place in the order's sequence of bids.
    pub seq: i64,
    /// Where it stands.
    pub state: BidState,
    /// Why it lost.
    pub lost_reason: Option<LostReason>,
    /// The lease it won.
    pub lease_id: Option<String>,
    /// When it won or lost.
    pub decided_at: Option<i64>,
    /// The order's class.
    pub class: JobClass,
    /// The order's duration.
    pub duration_secs: i64,
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `ml_…`.
    pub id: String,
    /// The order it fills.
    pub order_id: String,
    /// The requester's paying key (refunds go back to it).
    pub api_key_id: i64,
    /// The requester's account.
    pub account_id: i64,
    /// The provider node.
    pub node_id: String,
    /// Its operator wallet.
    pub operator: String,
    /// The winning price per hour.
    pub price_per_hour: i64,
    /// Its deposit.
    pub deposit_micros: i64,
    /// Paid out of it so far.
    pub paid_micros: i64,
    /// Given back at the end.
    pub refunded_micros: i64,
    /// Settlements so far (the periodic ones and the close).
    pub settlements: i64,
    /// The bound compute job.
    pub job_id: Option<String>,
    /// Where it stands.
    pub state: LeaseState,
    /// When it started.
    pub started_at: i64,
    /// When its deposit runs dry.
    pub ends_at: i64,
    /// When it was last settled.
    pub settled_at: i64,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// Its escrow stream's id on the chain, once funded there.
    pub chain_stream: Option<String>,
    /// The deposit moved into that stream (what was not paid in the ledger before).
    pub chain_deposit: i64,
}

impl LeaseRecord {
    /// What it has streamed by `now_ms` (by its end once ended): whole seconds since it
    /// started, at most its duration, at its price, never above the deposit.
    pub fn streamed_at(&self, now_ms: i64) -> i64 {
        let until = self.ended_at.unwrap_or(now_ms).clamp(self.started_at, self.ends_at);
        let secs = (until - self.started_at) / 1_000;
        sgl_protocol::api::market::streamed_micros(self.price_per_hour, secs).min(self.deposit_micros)
    }
}

fn invariant(what: &str, value: &str) -> StoreError {
    StoreError::Invariant(format!("unknown {what} {value:?}"))
}

fn u32_of(row: &AnyRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| StoreError::OutOfRange("a market count"))
}

fn class_of(row: &AnyRow) -> Result<JobClass, StoreError> {
    let name: String = row.try_get("class")?;
    name.parse().map_err(|_| invariant("job class", &name))
}

pub(super) const ORDER_COLUMNS: &str = "id, api_key_id, account_id, requester_wallet, class, cpu_cores, memory_mb, \
     gpus, duration_secs, max_price_per_hour, bid_window_secs, held_micros, refunded_micros, job_id, state, \
     created_at, window_ends_at, decided_at";

pub(super) fn order_of(row: &AnyRow) -> Result<OrderRecord, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(OrderRecord {
        id: row.try_get("id")?,
        api_key_id: row.try_get("api_key_id")?,
        account_id: row.try_get("account_id")?,
        requester_wallet: row.try_get("requester_wallet")?,
        class: class_of(row)?,
        resources: Resources {
            cpu_cores: u32_of(row, "cpu_cores")?,
            memory_mb: u32_of(row, "memory_mb")?,
            gpus: u32_of(row, "gpus")?,
        },
        duration_secs: row.try_get("duration_secs")?,
        max_price_per_hour: row.try_get("max_price_per_hour")?,
        bid_window_secs: u32_of(row, "bid_window_secs")?,
        held_micros: row.try_get("held_micros")?,
        refunded_micros: row.try_get("refunded_micros")?,
        job_id: row.try_get("job_id")?,
        state: OrderState::from_name(&state).ok_or_else(|| invariant("order state", &state))?,
        created_at: row.try_get("created_at")?,
        window_ends_at: row.try_get("window_ends_at")?,
        decided_at: row.try_get("decided_at")?,
    })
}

pub(super) const BID_COLUMNS: &str = "b.id AS id, b.order_id AS order_id, b.node_id AS node_id, \
     b.operator AS operator, b.price_per_hour AS price_per_hour, b.placed_at AS placed_at, b.seq AS seq, \
     b.state AS state, b.lost_reason AS lost_reason, b.winning_price AS winning_price, b.lease_id AS lease_id, \
     b.decided_at AS decided_at, o.class AS class, o.duration_secs AS duration_secs \
     FROM market_bids b JOIN market_orders o ON o.id = b.order_id";

pub(super) fn bid_of(row: &AnyRow) -> Result<BidRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let lost_reason = match row.try_get::<Option<String>, _>("lost_reason")? {
        Some(name) => Some(
            LostReason::from_name(&name, row.try_get("winning_price")?)
                .ok_or_else(|| invariant("lost reason", &name))?,
        ),
        None => None,
    };
    Ok(BidRecord {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        node_id: row.try_get("node_id")?,
        operator: row.try_get("operator")?,
        price_per_hour: row.try_get("price_per_hour")?,
        placed_at: row.try_get("placed_at")?,
        seq: row.try_get("seq")?,
        state: BidState::from_name(&state).ok_or_else(|| invariant("bid state", &state))?,
        lost_reason,
        lease_id: row.try_get("lease_id")?,
        decided_at: row.try_get("decided_at")?,
        class: class_of(row)?,
        duration_secs: row.try_get("duration_secs")?,
    })
}

pub(super) const LEASE_COLUMNS: &str = "id, order_id, api_key_id, account_id, node_id, operator, price_per_hour, \
     deposit_micros, paid_micros, refunded_micros, settlements, job_id, state, started_at, ends_at, settled_at, \
     ended_at, chain_stream, chain_deposit";

pub(super) fn lease_of(row: &AnyRow) -> Result<LeaseRecord, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(LeaseRecord {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        api_key_id: row.try_get("api_key_id")?,
        account_id: row.try_get("account_id")?,
        node_id: row.try_get("node_id")?,
        operator: row.try_get("operator")?,
        price_per_hour: row.try_get("price_per_hour")?,
        deposit_micros: row.try_get("deposit_micros")?,
        paid_micros: row.try_get("paid_micros")?,
        refunded_micros: row.try_get("refunded_micros")?,
        settlements: row.try_get("settlements")?,
        job_id: row.try_get("job_id")?,
        state: LeaseState::from_name(&state).ok_or_else(|| invariant("lease state", &state))?,
        started_at: row.try_get("started_at")?,
        ends_at: row.try_get("ends_at")?,
        settled_at: row.try_get("settled_at")?,
        ended_at: row.try_get("ended_at")?,
        chain_stream: row.try_get("chain_stream")?,
        chain_deposit: row.try_get("chain_deposit")?,
    })
}

impl Store {
    /// The order `id`.
    pub async fn market_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM market_orders WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(order_of).transpose()
    }

    /// The account's orders, newest first.
    pub async fn account_market_orders(&self, account_id: i64, limit: i64) -> Result<Vec<OrderRecord>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM market_orders WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(account_id).bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(order_of).collect()
    }

    /// Open orders whose window is still open at `now_ms`, oldest first.
    pub async fn open_market_orders(&self, now_ms: i64, limit: i64) -> Result<Vec<OrderRecord>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM market_orders WHERE state = 'open' AND window_ends_at > $1 \
             ORDER BY created_at, id LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(now_ms).bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(order_of).collect()
    }

    /// Open orders whose window ended by `now_ms`: due for their match, oldest first.
    pub async fn market_orders_due(&self, now_ms: i64, limit: i64) -> Result<Vec<OrderRecord>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM market_orders WHERE state = 'open' AND window_ends_at <= $1 \
             ORDER BY window_ends_at, id LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(now_ms).bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(order_of).collect()
    }

    /// The order's bids, cheapest first, then in the order they were placed.
    pub async fn order_bids(&self, order_id: &str) -> Result<Vec<BidRecord>, StoreError> {
        let sql = format!("SELECT {BID_COLUMNS} WHERE b.order_id = $1 ORDER BY b.price_per_hour, b.seq");
        let rows = sqlx::query(&sql).bind(order_id).fetch_all(self.pool()).await?;
        rows.iter().map(bid_of).collect()
    }

    /// The node's bids, the last placed first.
    pub async fn node_bids(&self, node_id: &str, limit: i64) -> Result<Vec<BidRecord>, StoreError> {
        let sql = format!("SELECT {BID_COLUMNS} WHERE b.node_id = $1 ORDER BY b.placed_at DESC, b.id DESC LIMIT $2");
        let rows = sqlx::query(&sql).bind(node_id).bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(bid_of).collect()
    }

    /// The lease `id`.
    pub async fn market_lease(&self, id: &str) -> Result<Option<LeaseRecord>, StoreError> {
        let sql = format!("SELECT {LEASE_COLUMNS} FROM market_leases WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(lease_of).transpose()
    }

    /// The lease filling the order `order_id`, once matched.
    pub async fn order_lease(&self, order_id: &str) -> Result<Option<LeaseRecord>, StoreError> {
        let sql = format!("SELECT {LEASE_COLUMNS} FROM market_leases WHERE order_id = $1");
        let row = sqlx::query(&sql).bind(order_id).fetch_optional(self.pool()).await?;
        row.as_ref().map(lease_of).transpose()
    }

    /// Active leases, those running out first.
    pub async fn active_market_leases(&self, limit: i64) -> Result<Vec<LeaseRecord>, StoreError> {
        let sql =
            format!("SELECT {LEASE_COLUMNS} FROM market_leases WHERE state = 'active' ORDER BY ends_at, id LIMIT $1");
        let rows = sqlx::query(&sql).bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(lease_of).collect()
    }
}
