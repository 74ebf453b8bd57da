//! The order book (issue 19; `docs/protocol.md` §17): a requester's order for work that lasts,
//! the bids nodes place on it from their operators' price policies, and the lease that binds
//! the winner, paid by the second from the order's escrow.
//!
//! Money is integer micro-USD (`*_micros`); prices are per hour. A lease streams by whole
//! seconds: after `s` seconds it has streamed [`streamed_micros`]`(price, s)` =
//! `floor(price × s / 3600)`, the exact per-second rate `price / 3600` times `s`, rounded down
//! once (not per second, so nothing is lost to rounding and the requester never pays a
//! fraction of a micro-unit). Times are Unix milliseconds (`*_ms`).

use serde::{Deserialize, Serialize};

use crate::compute::JobClass;
use crate::ids::{JobId, NodeId};

/// Seconds in an hour: prices are per hour, leases stream per second.
pub const SECS_PER_HOUR: i64 = 3_600;

/// The bid window when the order names none.
pub const DEFAULT_BID_WINDOW_SECS: u32 = 5;

/// The shortest and longest bid windows.
pub const BID_WINDOW_SECS: std::ops::RangeInclusive<u32> = 1..=60;

/// The longest lease: 30 days.
pub const MAX_DURATION_SECS: u64 = 30 * 24 * 3_600;

/// What `price_per_hour` micro-USD per hour comes to over `secs` seconds:
/// `floor(price × secs / 3600)`, computed without overflow (and saturating at `i64::MAX`).
/// Negative inputs count as zero.
///
/// The same rule prices an order's hold (its `max_price_per_hour_micros` over its whole
/// duration), a lease's deposit (the winning price over the duration) and what a lease has
/// streamed after `secs` seconds; so a lease that runs its whole duration streams exactly its
/// deposit, and never more.
pub fn streamed_micros(price_per_hour_micros: i64, secs: i64) -> i64 {
    let exact = i128::from(price_per_hour_micros.max(0)) * i128::from(secs.max(0)) / i128::from(SECS_PER_HOUR);
    i64::try_from(exact).unwrap_or(i64::MAX)
}

/// What an order asks for of its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores (at least 1).
    pub cpu_cores: u32,
    /// Memory in MiB (at least 1).
    pub memory_mb: u32,
    /// GPUs (0 for none).
    #[serde(default)]
    pub gpus: u32,
}

impl Resources {
    /// Whether `offered` covers everything these ask for.
    pub fn fit_within(&self, offered: &Resources) -> bool {
        self.cpu_cores <= offered.cpu_cores && self.memory_mb <= offered.memory_mb && self.gpus <= offered.gpus
    }
}

/// `POST /v1/market/orders`: work that lasts, open for bids for `bid_window_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// The class of work the provider runs (a compute job class).
    pub class: JobClass,
    /// What the provider must offer.
    pub resources: Resources,
    /// How long the lease lasts, seconds (1 to 2,592,000: 30 days).
    pub duration_secs: u64,
    /// The most the requester pays per hour, micro-USD; held whole for the duration when the
    /// order is placed.
    pub max_price_per_hour_micros: i64,
    /// How long bids are taken, seconds (1 to 60; 5 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_window_secs: Option<u32>,
    /// A compute job of the requester's (redundancy 1, the order's class, not ended) whose
    /// slices only the lease's node may then run; the job's end completes the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Taking bids until its window ends.
    Open,
    /// Matched: a lease binds its winner.
    Leased,
    /// No acceptable bid when the window ended; refunded whole.
    Unfilled,
    /// Cancelled by the requester while open; refunded whole.
    Cancelled,
}

impl OrderState {
    /// Every state.
    pub const ALL: [Self; 4] = [Self::Open, Self::Leased, Self::Unfilled, Self::Cancelled];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Leased => "leased",
            Self::Unfilled => "unfilled",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// Where a bid stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BidState {
    /// Placed; the order's window is open or its match is not made yet.
    Pending,
    /// It won: its node holds the order's lease.
    Won,
    /// It lost; `lost_reason` says why.
    Lost,
}

impl BidState {
    /// Every state.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Won, Self::Lost];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    /// The state named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// Why a bid lost. The match ranks bids by price (lowest first), then by the node's reputation
/// (highest first), then by when the bid was placed (earliest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum LostReason {
    /// A cheaper bid won.
    Outbid {
        /// The winning bid's price per hour, micro-USD.
        winning_price_micros: i64,
    },
    /// A bid at the same price from a node of higher reputation won.
    LowerReputation,
    /// A bid at the same price and reputation, placed earlier, won.
    LaterBid,
    /// The requester cancelled the order before it was matched.
    OrderCancelled,
    /// When the window ended the node was no longer eligible (offline, off-grid, below stake,
    /// not attested), so the bid was not considered.
    NodeIneligible,
}

impl LostReason {
    /// The reason's name (its `reason` tag) on the wire and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Outbid { .. } => "outbid",
            Self::LowerReputation => "lower_reputation",
            Self::LaterBid => "later_bid",
            Self::OrderCancelled => "order_cancelled",
            Self::NodeIneligible => "node_ineligible",
        }
    }

    /// The reason named `name`; `winning_price_micros` completes an `outbid`.
    pub fn from_name(name: &str, winning_price_micros: Option<i64>) -> Option<Self> {
        match name {
            "outbid" => winning_price_micros.map(|winning_price_micros| Self::Outbid { winning_price_micros }),
            "lower_reputation" => Some(Self::LowerReputation),
            "later_bid" => Some(Self::LaterBid),
            "order_cancelled" => Some(Self::OrderCancelled),
            "node_ineligible" => Some(Self::NodeIneligible),
            _ => None,
        }
    }

    /// The winning price an `outbid` names.
    pub const fn winning_price_micros(self) -> Option<i64> {
        match self {
            Self::Outbid { winning_price_micros } => Some(winning_price_micros),
            _ => None,
        }
    }
}

/// Where a lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Running: its escrow streams to the provider by the second.
    Active,
    /// Ended early by the provider or the requester as done (or its bound job ended): what
    /// streamed is paid, the rest refunded.
    Completed,
    /// Cancelled by the requester: what streamed is paid, the rest refunded.
    Cancelled,
    /// Its whole duration ran: its deposit streamed to the provider in full.
    Exhausted,
}

impl LeaseState {
    /// Every state.
    pub const ALL: [Self; 4] = [Self::Active, Self::Completed, Self::Cancelled, Self::Exhausted];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Exhausted => "exhausted",
        }
    }

    /// The state named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// `POST /grid/market/orders/{id}/bids`: a node's bid. A node has one bid per order; bidding
/// again while the order is open replaces it (and counts as placed now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidRequest {
    /// The node's price per hour, micro-USD (1 to the order's maximum).
    pub price_per_hour_micros: i64,
}

/// A bid, as its order's requester and its node see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BidView {
    /// The bid's id.
    pub id: i64,
    /// The order.
    pub order_id: String,
    /// The bidding node.
    pub node_id: NodeId,
    /// Its price per hour, micro-USD.
    pub price_per_hour_micros: i64,
    /// Where it stands.
    pub state: BidState,
    /// Why it lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_reason: Option<LostReason>,
    /// When it was (last) placed.
    pub placed_at_ms: i64,
    /// When it won or lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_ms: Option<i64>,
    /// The lease it won.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    /// The order's class.
    pub class: JobClass,
    /// The order's duration, seconds.
    pub duration_secs: u64,
}

/// `GET /grid/market/bids`: a node's bids, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BidList {
    /// Always `list`.
    pub object: String,
    /// The bids.
    pub data: Vec<BidView>,
}

/// A lease: a provider node bound to an order at a price, paid by the second from its
/// deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaseView {
    /// `ml_` and 32 hex digits.
    pub id: String,
    /// Always `market.lease`.
    pub object: String,
    /// The order it fills.
    pub order_id: String,
    /// The provider node.
    pub node_id: NodeId,
    /// The provider's operator wallet, which its earnings go to.
    pub operator_wallet: String,
    /// The winning price per hour, micro-USD.
    pub price_per_hour_micros: i64,
    /// Held for it: [`streamed_micros`] of the price over the whole duration.
    pub deposit_micros: i64,
    /// When it started.
    pub started_at_ms: i64,
    /// When its deposit runs dry.
    pub ends_at_ms: i64,
    /// Streamed so far (while active, up to now; once ended, up to its end).
    pub streamed_micros: i64,
    /// Paid out of the deposit so far (settled periodically and at the end; at most
    /// `streamed_micros`): the operator's share and the platform's together.
    pub paid_micros: i64,
    /// Given back to the requester at the end.
    pub refunded_micros: i64,
    /// Where it stands.
    pub state: LeaseState,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<i64>,
    /// The compute job bound to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// On a chain grid, its `Escrow` stream's id (decimal) once funded there: the chain then
    /// streams it to the operator wallet, and `paid_micros` is what the stream paid at close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_stream_id: Option<String>,
}

/// An order as its requester sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// `mo_` and 32 hex digits.
    pub id: String,
    /// Always `market.order`.
    pub object: String,
    /// The class of work.
    pub class: JobClass,
    /// What the provider must offer.
    pub resources: Resources,
    /// The lease's duration, seconds.
    pub duration_secs: u64,
    /// The most it pays per hour, micro-USD.
    pub max_price_per_hour_micros: i64,
    /// The bid window, seconds.
    pub bid_window_secs: u32,
    /// The bound compute job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// Where it stands.
    pub state: OrderState,
    /// When it was placed.
    pub created_at_ms: i64,
    /// When its bid window ends.
    pub window_ends_at_ms: i64,
    /// When it was matched, found unfilled or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_ms: Option<i64>,
    /// Held from the requester's credits when placed: [`streamed_micros`] of the maximum price
    /// over the duration.
    pub held_micros: i64,
    /// Given back from the hold (the excess over the winning deposit at the match, or all of it
    /// for an unfilled or cancelled order).
    pub refunded_micros: i64,
    /// Its bids, cheapest first (only in `GET /v1/market/orders/{id}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bids: Vec<BidView>,
    /// Its lease, once matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseView>,
}

/// `GET /v1/market/orders`: the account's orders, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderList {
    /// Always `list`.
    pub object: String,
    /// The orders (at most 100).
    pub data: Vec<OrderView>,
}

/// An open order as a node sees it (without other nodes' bids: the book is sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MarketOrder {
    /// The order.
    pub id: String,
    /// The class of work.
    pub class: JobClass,
    /// What the provider must offer.
    pub resources: Resources,
    /// The lease's duration, seconds.
    pub duration_secs: u64,
    /// The most the requester pays per hour, micro-USD: a bid above it is refused.
    pub max_price_per_hour_micros: i64,
    /// When bids close.
    pub window_ends_at_ms: i64,
    /// This node's bid on it, if it placed one (price per hour, micro-USD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_bid_micros: Option<i64>,
}

/// `GET /grid/market/orders`: the open orders this node could bid on (its classes, within the
/// resources it registered, not its own operator's), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MarketOrderList {
    /// Always `list`.
    pub object: String,
    /// The orders.
    pub data: Vec<MarketOrder>,
}

#[cfg(test)]
mod tests {
    //! Names, the streaming rule, and the request's strictness.

    use super::*;

    #[test]
    fn states_and_reasons_are_their_wire_names() {
        for state in OrderState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            assert_eq!(OrderState::from_name(state.as_str()), Some(state));
        }
        for state in BidState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            assert_eq!(BidState::from_name(state.as_str()), Some(state));
        }
        for state in LeaseState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            assert_eq!(LeaseState::from_name(state.as_str()), Some(state));
        }
        let reasons = [
            LostReason::Outbid { winning_price_micros: 90 },
            LostReason::LowerReputation,
            LostReason::LaterBid,
            LostReason::OrderCancelled,
            LostReason::NodeIneligible,
        ];
        for reason in reasons {
            let value = serde_json::to_value(reason).unwrap();
            assert_eq!(value["reason"], reason.as_str());
            assert_eq!(LostReason::from_name(reason.as_str(), reason.winning_price_micros()), Some(reason));
            assert_eq!(serde_json::from_value::<LostReason>(value).unwrap(), reason);
        }
        assert_eq!(
            serde_json::to_value(LostReason::Outbid { winning_price_micros: 90 }).unwrap(),
            serde_json::json!({"reason": "outbid", "winning_price_micros": 90})
        );
        assert_eq!(LostReason::from_name("outbid", None), None);
        assert_eq!(OrderState::from_name("filled"), None);
    }

    #[test]
    fn a_lease_streams_by_the_second_rounded_down_once() {
        // 1 USD an hour: 277.7… micro-USD a second.
        assert_eq!(streamed_micros(1_000_000, 1), 277);
        assert_eq!(streamed_micros(1_000_000, 2), 555, "rounded once, not 277 per second");
        assert_eq!(streamed_micros(1_000_000, 3_600), 1_000_000);
        assert_eq!(streamed_micros(7, 3_599), 6);
        assert_eq!(streamed_micros(-5, 10), 0);
        assert_eq!(streamed_micros(5, -10), 0);
        assert_eq!(streamed_micros(i64::MAX, i64::MAX), i64::MAX, "saturates, never wraps");
        // Monotone in time and never above the whole duration's amount.
        let deposit = streamed_micros(123_457, 600);
        let mut last = 0;
        for secs in 0..=600 {
            let streamed = streamed_micros(123_457, secs);
            assert!(streamed >= last && streamed <= deposit);
            last = streamed;
        }
        assert_eq!(last, deposit);
    }

    #[test]
    fn an_order_request_refuses_unknown_fields_and_takes_defaults() {
        let json = serde_json::json!({
            "class": "wasm", "resources": {"cpu_cores": 2, "memory_mb": 1024},
            "duration_secs": 600, "max_price_per_hour_micros": 100_000
        });
        let request: OrderRequest = serde_json::from_value(json.clone()).unwrap();
        assert_eq!((request.resources.gpus, request.bid_window_secs, request.job_id), (0, None, None));
        let mut typo = json;
        typo["max_price"] = serde_json::json!(1);
        assert!(serde_json::from_value::<OrderRequest>(typo).is_err());
        let small = Resources { cpu_cores: 2, memory_mb: 1024, gpus: 0 };
        assert!(small.fit_within(&Resources { cpu_cores: 4, memory_mb: 1024, gpus: 1 }));
        assert!(!small.fit_within(&Resources { cpu_cores: 1, memory_mb: 4096, gpus: 1 }));
    }
}
