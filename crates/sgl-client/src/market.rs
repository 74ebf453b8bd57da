//! The order book (`/v1/market/...`; `docs/protocol.md` §17): place an order for work that
//! lasts, follow it through its bids to its lease, and cancel or complete the lease, with the
//! API key's credits.

use reqwest::Method;
use sgl_protocol::api::market::{LeaseView, OrderList, OrderRequest, OrderView};

use crate::client::{Client, Retry};
use crate::error::Error;

impl Client {
    /// `POST /v1/market/orders`: holds the maximum price over the duration from the key's
    /// credits. Not retried: a second attempt would place (and hold for) a second order.
    pub async fn place_order(&self, request: &OrderRequest) -> Result<OrderView, Error> {
        self.send_json(Method::POST, "/v1/market/orders", Some(request), Retry::No).await
    }

    /// `GET /v1/market/orders`: the account's orders, newest first, each with its lease.
    pub async fn orders(&self) -> Result<OrderList, Error> {
        self.get_json("/v1/market/orders", &[], true).await
    }

    /// `GET /v1/market/orders/{id}`: the order with its bids and lease.
    pub async fn order(&self, id: &str) -> Result<OrderView, Error> {
        self.get_json(&format!("/v1/market/orders/{id}"), &[], true).await
    }

    /// `POST /v1/market/orders/{id}/cancel`: only while it is open; its hold comes back whole.
    pub async fn cancel_order(&self, id: &str) -> Result<OrderView, Error> {
        self.send_json::<(), _>(Method::POST, &format!("/v1/market/orders/{id}/cancel"), None, Retry::No).await
    }

    /// `GET /v1/market/leases/{id}`: the lease with what it has streamed so far.
    pub async fn lease(&self, id: &str) -> Result<LeaseView, Error> {
        self.get_json(&format!("/v1/market/leases/{id}"), &[], true).await
    }

    /// `POST /v1/market/leases/{id}/cancel`: pays what streamed, refunds the rest.
    pub async fn cancel_lease(&self, id: &str) -> Result<LeaseView, Error> {
        self.send_json::<(), _>(Method::POST, &format!("/v1/market/leases/{id}/cancel"), None, Retry::No).await
    }

    /// `POST /v1/market/leases/{id}/complete`: ends it as done; pays what streamed, refunds
    /// the rest.
    pub async fn complete_lease(&self, id: &str) -> Result<LeaseView, Error> {
        self.send_json::<(), _>(Method::POST, &format!("/v1/market/leases/{id}/complete"), None, Retry::No).await
    }
}
