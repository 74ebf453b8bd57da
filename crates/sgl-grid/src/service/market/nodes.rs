//! A node's side of the book: the open orders it could take (its announced classes, within
//! the resources it registered, not its own operator's), its bids, and completing its leases.
//! A node bids only while the scheduler would give it work (`LiveNode::not_serving`: live, on
//! the grid, attested with an allowed binary, staked).

use std::collections::HashMap;

use sgl_grid_store::market::{LeaseEnd, NewBid, OrderRecord};
use sgl_grid_store::nodes::NodeRecord;
use sgl_protocol::api::market::{BidList, BidRequest, BidState, BidView, LeaseView, MarketOrderList, Resources};
use sgl_protocol::api::node::NotServingReason;

use super::{Market, MarketError, views};
use crate::registry::LiveNode;

/// The most open orders a node is shown at once.
const OPEN_LIMIT: i64 = 200;

/// The most bids a node's list shows.
pub const MAX_BIDS: i64 = 500;

/// What `node` registered: its cores, its memory in MiB, and one GPU unless it named none.
pub fn offered(node: &NodeRecord) -> Resources {
    let gpus = u32::from(!matches!(node.gpu_model.trim().to_ascii_lowercase().as_str(), "" | "none"));
    Resources {
        cpu_cores: u32::try_from(node.cpu_cores.max(0)).unwrap_or(u32::MAX),
        memory_mb: (node.ram_gb.max(0.0) * 1024.0).floor().min(f64::from(u32::MAX)) as u32,
        gpus,
    }
}

/// Why `node` cannot take `order`, if it cannot: its class not announced, or resources short.
fn misfit(order: &OrderRecord, node: &NodeRecord, live: &LiveNode) -> Option<String> {
    if !live.workloads.contains(&order.class) {
        return Some(format!("its heartbeat does not announce the class {} (workloads)", order.class));
    }
    let offered = offered(node);
    (!order.resources.fit_within(&offered)).then(|| {
        format!(
            "it registered {} cores, {} MiB and {} GPU(s); the order needs {} cores, {} MiB and {} GPU(s)",
            offered.cpu_cores,
            offered.memory_mb,
            offered.gpus,
            order.resources.cpu_cores,
            order.resources.memory_mb,
            order.resources.gpus
        )
    })
}

fn is_own(order: &OrderRecord, node: &NodeRecord) -> bool {
    order.requester_wallet.as_deref().is_some_and(|wallet| wallet.eq_ignore_ascii_case(&node.wallet))
}

impl Market {
    /// Why a node may not take work now (its live state, or none), in words; `None` if it may.
    pub fn ineligibility(&self, live: Option<&LiveNode>) -> Option<String> {
        let Some(live) = live else {
            return Some("the node is not live: send a heartbeat first".to_owned());
        };
        let reasons: Vec<String> = live
            .not_serving(self.now_ms(), self.inner.node_timeout_ms)
            .into_iter()
            .filter(|reason| *reason != NotServingReason::NoModel)
            .map(|reason| {
                serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
            })
            .collect();
        (!reasons.is_empty()).then(|| reasons.join(", "))
    }

    /// The open orders `node` could bid on now, oldest first, with its own bids; none while it
    /// may not take work.
    pub async fn open_orders(
        &self,
        node: &NodeRecord,
        live: Option<&LiveNode>,
    ) -> Result<MarketOrderList, MarketError> {
        let mut data = Vec::new();
        if let (None, Some(live)) = (self.ineligibility(live), live) {
            let own: HashMap<String, i64> = self
                .store()
                .node_bids(&node.id, OPEN_LIMIT)
                .await?
                .into_iter()
                .filter(|bid| bid.state == BidState::Pending)
                .map(|bid| (bid.order_id, bid.price_per_hour))
                .collect();
            for order in self.store().open_market_orders(self.now_ms(), OPEN_LIMIT).await? {
                if !is_own(&order, node) && misfit(&order, node, live).is_none() {
                    data.push(views::market_order(&order, own.get(&order.id).copied()));
                }
            }
        }
        Ok(MarketOrderList { object: "list".to_owned(), data })
    }

    /// Places (or replaces) `node`'s bid on the open order `order_id`.
    pub async fn bid(
        &self,
        node: &NodeRecord,
        live: Option<&LiveNode>,
        order_id: &str,
        request: &BidRequest,
    ) -> Result<BidView, MarketError> {
        let order = self.store().market_order(order_id).await?.ok_or(MarketError::NotFound("order"))?;
        if request.price_per_hour_micros < 1 {
            return Err(MarketError::BadField {
                field: "price_per_hour_micros",
                message: "must be at least 1 micro-USD per hour".to_owned(),
            });
        }
        if let Some(why) = self.ineligibility(live) {
            return Err(MarketError::NotEligible(why));
        }
        if is_own(&order, node) {
            return Err(MarketError::OwnOrder);
        }
        if let Some(why) = live.and_then(|live| misfit(&order, node, live)) {
            return Err(MarketError::DoesNotFit(why));
        }
        let new = NewBid {
            order_id,
            node_id: &node.id,
            operator: &node.wallet,
            price_per_hour: request.price_per_hour_micros,
        };
        let placed = self.store().place_market_bid(&new, self.now_ms()).await?;
        tracing::info!(
            target: "sgl::events::market", order = %order_id, node = %node.id,
            price_per_hour_micros = request.price_per_hour_micros, "bid placed"
        );
        views::bid(&placed)
    }

    /// `node`'s bids, the last placed first, at most `limit` (1 to [`MAX_BIDS`]).
    pub async fn node_bids(&self, node: &NodeRecord, limit: i64) -> Result<BidList, MarketError> {
        let bids = self.store().node_bids(&node.id, limit.clamp(1, MAX_BIDS)).await?;
        Ok(BidList { object: "list".to_owned(), data: bids.iter().map(views::bid).collect::<Result<_, _>>()? })
    }

    /// `node` completes its active lease now: what streamed is paid, the rest refunded.
    pub async fn complete_by_node(&self, node: &NodeRecord, lease_id: &str) -> Result<LeaseView, MarketError> {
        let lease = self.store().market_lease(lease_id).await?.filter(|lease| lease.node_id == node.id);
        lease.ok_or(MarketError::NotFound("lease of this node"))?;
        self.close(lease_id, LeaseEnd::Completed, self.now_ms()).await
    }
}
