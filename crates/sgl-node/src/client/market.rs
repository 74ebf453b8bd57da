//! The node's side of the order book (`docs/protocol.md` §17): the open orders it could take,
//! its bids, and completing its leases.

use sgl_protocol::api::market::{BidList, BidRequest, BidView, LeaseView, MarketOrderList};
use sgl_protocol::ids::AuthToken;

use super::{ClientError, GridClient, encode_segment};

impl GridClient {
    /// `GET /grid/market/orders`: open orders this node could bid on.
    pub async fn market_orders(&self, token: &AuthToken) -> Result<MarketOrderList, ClientError> {
        self.get("/grid/market/orders", Some(token)).await
    }

    /// `POST /grid/market/orders/{id}/bids`: places or replaces this node's bid.
    pub async fn bid(&self, token: &AuthToken, order_id: &str, request: &BidRequest) -> Result<BidView, ClientError> {
        self.post(&format!("/grid/market/orders/{}/bids", encode_segment(order_id)), Some(token), request).await
    }

    /// `GET /grid/market/bids?limit=N`: this node's bids, the last placed first.
    pub async fn bids(&self, token: &AuthToken, limit: u32) -> Result<BidList, ClientError> {
        self.get(&format!("/grid/market/bids?limit={limit}"), Some(token)).await
    }

    /// `POST /grid/market/leases/{id}/complete`: ends this node's lease as done.
    pub async fn complete_market_lease(&self, token: &AuthToken, lease_id: &str) -> Result<LeaseView, ClientError> {
        let path = format!("/grid/market/leases/{}/complete", encode_segment(lease_id));
        self.post(&path, Some(token), &serde_json::json!({})).await
    }
}
