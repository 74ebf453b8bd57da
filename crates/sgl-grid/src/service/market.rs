//! The order book (issue 19; `docs/protocol.md` §17), without HTTP: a requester's orders and
//! leases ([`orders`]), a node's side: the open orders it could take, its bids and its leases
//! ([`nodes`]), the leader's match and settlements ([`duties`]), and the wire views ([`views`]).
//!
//! Money follows the store (`sgl_grid_store::market`): an order holds its maximum price over
//! its duration, the match moves the winner's deposit and refunds the rest, a lease streams by
//! the second to its provider's operator and the platform by the compute split, and its close
//! pays what streamed and refunds the rest. On a chain grid the lease streams through an escrow
//! stream on the chain instead ([`crate::chain::leases`]).

use std::sync::Arc;

use sgl_grid_store::Store;
use sgl_grid_store::compute::ComputeShares;
use sgl_grid_store::market::MarketStoreError;

use crate::chain::GridChain;
use crate::state::SharedClock;

pub mod duties;
pub mod nodes;
pub mod orders;
pub mod views;

/// Why a market request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MarketError {
    /// A field of the request is out of range.
    #[error("{field} {message}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The payer's credits cannot cover the hold.
    #[error("insufficient credits: the order holds {needed} micro-USD, the key has {available}")]
    InsufficientCredits {
        /// The hold.
        needed: i64,
        /// The key's credits.
        available: i64,
    },
    /// The job named cannot be bound to the order.
    #[error(
        "job {0} cannot be bound: it must be a job of this account of the order's class, with redundancy 1, not \
         ended and not bound to another order"
    )]
    JobNotBindable(String),
    /// No such order or lease (or not the caller's).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Not possible in the order's or lease's state.
    #[error("{0}")]
    Conflict(String),
    /// A bid above the order's maximum.
    #[error("the order pays at most {max} micro-USD per hour; bid at most that")]
    AboveMaximum {
        /// The order's maximum.
        max: i64,
    },
    /// The node may not take work now.
    #[error("the node may not bid: {0}")]
    NotEligible(String),
    /// The node does not offer what the order needs.
    #[error("the node cannot take this order: {0}")]
    DoesNotFit(String),
    /// A bid on the node's own operator's order.
    #[error("a node may not bid on an order its own operator's wallet placed")]
    OwnOrder,
    /// A stored row is corrupt.
    #[error("a stored market row is corrupt: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] sgl_grid_store::StoreError),
    /// The lease's stream on the chain could not be opened or closed.
    #[error("the lease's escrow stream on the chain: {0}")]
    Chain(#[from] crate::chain::leases::LeaseChainError),
}

impl From<MarketStoreError> for MarketError {
    fn from(error: MarketStoreError) -> Self {
        match error {
            MarketStoreError::InsufficientCredits { needed, available } => {
                Self::InsufficientCredits { needed, available }
            }
            MarketStoreError::JobNotBindable(job) => Self::JobNotBindable(job),
            MarketStoreError::NotFound => Self::NotFound("order or lease"),
            MarketStoreError::Closed(why) => Self::Conflict(format!("the order takes no more bids: {why}")),
            MarketStoreError::AboveMaximum { max } => Self::AboveMaximum { max },
            MarketStoreError::OwnOrder => Self::OwnOrder,
            MarketStoreError::Conflict(why) => Self::Conflict(format!("it is {why}")),
            MarketStoreError::Store(error) => Self::Store(error),
            other => Self::Store(sgl_grid_store::StoreError::Invariant(other.to_string())),
        }
    }
}

/// The grid's order book. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Market {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: SharedClock,
    shares: ComputeShares,
    node_timeout_ms: i64,
    chain: Option<Arc<GridChain>>,
}

impl Market {
    /// The order book over `store`, paying leases by `shares` (the compute split), with nodes
    /// silent for `node_timeout_ms` counted offline; on a chain grid (`chain`), leases stream
    /// through the chain's escrow ([`crate::chain::leases`]).
    pub fn new(
        store: Store,
        clock: SharedClock,
        shares: ComputeShares,
        node_timeout_ms: i64,
        chain: Option<Arc<GridChain>>,
    ) -> Self {
        Self { inner: Arc::new(Inner { store, clock, shares, node_timeout_ms, chain }) }
    }

    fn chain(&self) -> Option<&GridChain> {
        self.inner.chain.as_deref()
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    fn shares(&self) -> ComputeShares {
        self.inner.shares
    }
}

/// A new order's id: `mo_` and 32 hex digits.
fn new_order_id() -> String {
    format!("mo_{}", uuid::Uuid::new_v4().simple())
}

/// A new lease's id: `ml_` and 32 hex digits.
fn new_lease_id() -> String {
    format!("ml_{}", uuid::Uuid::new_v4().simple())
}
