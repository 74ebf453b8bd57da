//! Orders, bids and leases as the wire shows them (`sgl_protocol::api::market`).

use sgl_grid_store::market::{BidRecord, LeaseRecord, OrderRecord};
use sgl_protocol::api::market::{BidView, LeaseView, MarketOrder, OrderView};
use sgl_protocol::ids::{JobId, NodeId};

use super::MarketError;

fn node_id(id: &str) -> Result<NodeId, MarketError> {
    id.parse().map_err(|_| MarketError::Corrupt(format!("node id {id:?}")))
}

fn job_id(id: Option<&String>) -> Result<Option<JobId>, MarketError> {
    id.map(|id| id.parse().map_err(|_| MarketError::Corrupt(format!("job id {id:?}")))).transpose()
}

fn secs(duration_secs: i64) -> u64 {
    u64::try_from(duration_secs).unwrap_or(0)
}

/// A bid.
pub fn bid(bid: &BidRecord) -> Result<BidView, MarketError> {
    Ok(BidView {
        id: bid.id,
        order_id: bid.order_id.clone(),
        node_id: node_id(&bid.node_id)?,
        price_per_hour_micros: bid.price_per_hour,
        state: bid.state,
        lost_reason: bid.lost_reason,
        placed_at_ms: bid.placed_at,
        decided_at_ms: bid.decided_at,
        lease_id: bid.lease_id.clone(),
        class: bid.class,
        duration_secs: secs(bid.duration_secs),
    })
}

/// A lease at `now_ms`.
pub fn lease(lease: &LeaseRecord, now_ms: i64) -> Result<LeaseView, MarketError> {
    Ok(LeaseView {
        id: lease.id.clone(),
        object: "market.lease".to_owned(),
        order_id: lease.order_id.clone(),
        node_id: node_id(&lease.node_id)?,
        operator_wallet: lease.operator.clone(),
        price_per_hour_micros: lease.price_per_hour,
        deposit_micros: lease.deposit_micros,
        started_at_ms: lease.started_at,
        ends_at_ms: lease.ends_at,
        streamed_micros: lease.streamed_at(now_ms),
        paid_micros: lease.paid_micros,
        refunded_micros: lease.refunded_micros,
        state: lease.state,
        ended_at_ms: lease.ended_at,
        job_id: job_id(lease.job_id.as_ref())?,
        chain_stream_id: lease.chain_stream.clone(),
    })
}

/// An order with its bids and lease (both empty in lists).
pub fn order(
    order: &OrderRecord,
    bids: &[BidRecord],
    lease: Option<&LeaseRecord>,
    now_ms: i64,
) -> Result<OrderView, MarketError> {
    Ok(OrderView {
        id: order.id.clone(),
        object: "market.order".to_owned(),
        class: order.class,
        resources: order.resources,
        duration_secs: secs(order.duration_secs),
        max_price_per_hour_micros: order.max_price_per_hour,
        bid_window_secs: order.bid_window_secs,
        job_id: job_id(order.job_id.as_ref())?,
        state: order.state,
        created_at_ms: order.created_at,
        window_ends_at_ms: order.window_ends_at,
        decided_at_ms: order.decided_at,
        held_micros: order.held_micros,
        refunded_micros: order.refunded_micros,
        bids: bids.iter().map(bid).collect::<Result<_, _>>()?,
        lease: lease.map(|found| self::lease(found, now_ms)).transpose()?,
    })
}

/// An open order as a node sees it, with its own bid's price.
pub fn market_order(order: &OrderRecord, own_bid_micros: Option<i64>) -> MarketOrder {
    MarketOrder {
        id: order.id.clone(),
        class: order.class,
        resources: order.resources,
        duration_secs: secs(order.duration_secs),
        max_price_per_hour_micros: order.max_price_per_hour,
        window_ends_at_ms: order.window_ends_at,
        own_bid_micros,
    }
}
