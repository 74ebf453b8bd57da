//! Bidding on the grid's order book (`docs/protocol.md` §17): a task beside the compute worker
//! that every [`BID_EVERY`] reads the operator's price policy (`price-policy.toml`, so an edit
//! takes effect without a restart), asks the grid for the open orders this node could take and
//! bids on each the policy prices, at the policy's price. Orders it does not bid on (a class it
//! does not price, a duration outside the policy, more resources than it offers, a maximum below
//! its price) are logged at debug with the reason; the grid's answers to its bids say won or
//! lost and why (`sgl bids`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sgl_protocol::api::market::{BidRequest, Resources};

use super::Shared;
use crate::price_policy::{PricePolicy, Skip};

/// How often the open orders are looked at: well inside the shortest bid window (1 s is
/// possible, 5 s the default).
pub const BID_EVERY: Duration = Duration::from_secs(2);

/// How the node bids.
#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// Where `price-policy.toml` lives (the node's config directory).
    pub config_dir: PathBuf,
    /// What the machine has, offered when the policy names no `[resources]`.
    pub offered: Resources,
}

/// Bids until the task is aborted.
pub(crate) async fn run(shared: Arc<Shared>, config: MarketConfig) {
    let mut tick = tokio::time::interval(BID_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problem: Option<String> = None;
    loop {
        tick.tick().await;
        if shared.shutting_down.load(Ordering::SeqCst) {
            continue;
        }
        let policy = match PricePolicy::load(&config.config_dir) {
            Ok(Some(policy)) if !policy.classes.is_empty() => policy,
            Ok(_) => continue,
            Err(error) => {
                // Said once per distinct problem, not every tick.
                let problem = error.to_string();
                if last_problem.as_deref() != Some(&problem) {
                    tracing::warn!(%problem, "not bidding on the order book: fix the price policy");
                    last_problem = Some(problem);
                }
                continue;
            }
        };
        last_problem = None;
        bid_round(&shared, &policy, &config.offered).await;
    }
}

/// Bids on every open order the policy prices.
async fn bid_round(shared: &Shared, policy: &PricePolicy, offered: &Resources) {
    let token = shared.token();
    let orders = match shared.client.market_orders(&token).await {
        Ok(list) => list.data,
        Err(error) => {
            tracing::debug!(%error, "no open orders");
            return;
        }
    };
    for order in orders {
        let price_per_hour_micros = match policy.quote(&order, offered) {
            Ok(price) => price,
            Err(Skip::AlreadyBid(_)) => continue,
            Err(skip) => {
                tracing::debug!(order = %order.id, class = %order.class, reason = %skip, "not bidding");
                continue;
            }
        };
        match shared.client.bid(&token, &order.id, &BidRequest { price_per_hour_micros }).await {
            Ok(_) => tracing::info!(
                target: "sgl::events::market", order = %order.id, class = %order.class,
                duration_secs = order.duration_secs, price_per_hour_micros, "bid placed"
            ),
            Err(error) => tracing::debug!(order = %order.id, %error, "bid refused"),
        }
    }
}
