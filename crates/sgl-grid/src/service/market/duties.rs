//! The leader's work on the book, once per reaper tick: match every open order whose bid
//! window ended (by price, then the node's reputation now, then the earlier bid; a node no
//! longer eligible is passed over), close every lease that ran its whole duration (its deposit
//! streamed in full) or whose bound compute job ended (at the job's end), and settle what the
//! others streamed at most once per [`SETTLE_EVERY_MS`]. On a chain grid a lease not funded on
//! the chain yet is funded first (an escrow stream, [`crate::chain::leases::fund`]) and then
//! left to the chain until its close. Every step is a guarded store call,
//! so a replica that lost the lead mid-tick repeats nothing.

use std::collections::BTreeMap;

use sgl_grid_store::market::{LeaseEnd, LeaseRecord, OrderRecord, Standing};
use sgl_protocol::api::market::BidState;
use sgl_protocol::ids::NodeId;

use super::{Market, MarketError, new_lease_id};
use crate::registry::Registry;

/// Orders and leases looked at per tick.
const PER_TICK: i64 = 200;

/// How often an active lease's streamed money is settled to its provider (besides its close).
pub const SETTLE_EVERY_MS: i64 = 60_000;

impl Market {
    /// One round of the leader's duties.
    pub async fn duties(&self, registry: &Registry) -> Result<(), MarketError> {
        let now = self.now_ms();
        for order in self.store().market_orders_due(now, PER_TICK).await? {
            if let Err(error) = self.match_order(&order, registry).await {
                tracing::warn!(order = %order.id, %error, "matching an order failed; next tick");
            }
        }
        for lease in self.store().active_market_leases(PER_TICK).await? {
            if let Err(error) = self.attend(&lease).await {
                tracing::warn!(lease = %lease.id, %error, "a lease duty failed; next tick");
            }
        }
        Ok(())
    }

    /// Matches an order whose window ended.
    async fn match_order(&self, order: &OrderRecord, registry: &Registry) -> Result<(), MarketError> {
        let now = self.now_ms();
        let mut standing = BTreeMap::new();
        for bid in self.store().order_bids(&order.id).await? {
            if bid.state != BidState::Pending {
                continue;
            }
            let reputation = self.store().node(&bid.node_id).await?.map_or(0.0, |node| node.reputation_at(now));
            let live = bid.node_id.parse::<NodeId>().ok().and_then(|id| registry.get(&id));
            let eligible = self.ineligibility(live.as_ref()).is_none()
                && live.as_ref().is_some_and(|live| live.workloads.contains(&order.class));
            standing.insert(bid.node_id, Standing { reputation, eligible });
        }
        let matched = self.store().match_market_order(&order.id, &standing, &new_lease_id(), now).await?;
        match &matched.lease {
            Some(lease) => tracing::info!(
                target: "sgl::events::market", order = %order.id, lease = %lease.id, node = %lease.node_id,
                price_per_hour_micros = lease.price_per_hour, deposit_micros = lease.deposit_micros, "order leased"
            ),
            None => tracing::info!(
                target: "sgl::events::market", order = %order.id, bids = standing.len(), "order unfilled: refunded"
            ),
        }
        Ok(())
    }

    /// Closes a lease that ran out or whose job ended; settles it when due.
    async fn attend(&self, lease: &LeaseRecord) -> Result<(), MarketError> {
        let now = self.now_ms();
        if let Some(grid) = self.chain()
            && now < lease.ends_at
            && lease.chain_stream.is_none()
        {
            match crate::chain::leases::fund(grid, self.store(), lease, now).await {
                // The chain streams it from now on; the next tick looks at it again.
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    lease = %lease.id, %error,
                    "funding a lease on the chain failed; the ledger streams it meanwhile and the next tick tries again"
                ),
            }
        }
        if now >= lease.ends_at {
            self.close(&lease.id, LeaseEnd::Exhausted, lease.ends_at).await?;
            return Ok(());
        }
        if let Some(job_id) = &lease.job_id
            && let Some(ended_at) = self.store().compute_job(job_id).await?.and_then(|job| job.ended_at)
        {
            self.close(&lease.id, LeaseEnd::Completed, ended_at).await?;
            return Ok(());
        }
        if now - lease.settled_at >= SETTLE_EVERY_MS {
            let paid = self.store().settle_market_lease(&lease.id, self.shares(), now).await?;
            if paid > 0 {
                tracing::info!(target: "sgl::events::market", lease = %lease.id, paid_micros = paid, "lease settled");
            }
        }
        Ok(())
    }
}
