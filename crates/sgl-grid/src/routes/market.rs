//! The order book over HTTP (`docs/protocol.md` §17): the requester's orders and leases
//! (`/v1/market/...`, API key) and a node's side (`/grid/market/...`, `X-Node-Auth`). Handlers
//! extract, call [`crate::service::market::Market`] and map.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use sgl_grid_store::market::LeaseEnd;
use sgl_grid_store::nodes::NodeRecord;
use sgl_protocol::api::market::{
    BidList, BidRequest, BidView, LeaseView, MarketOrderList, OrderList, OrderRequest, OrderView,
};
use sgl_protocol::ids::NodeId;

use crate::error::{ApiError, ApiResult};
use crate::registry::LiveNode;
use crate::routes::{AppJson, CallerAuth, NodeAuth};
use crate::state::AppState;

/// `POST /v1/market/orders`.
#[utoipa::path(
    post, path = "/v1/market/orders", tag = "market",
    request_body = sgl_protocol::api::market::OrderRequest,
    responses(
        (status = 200, description = "Open for bids; its maximum over its duration is held from the key's credits.", body = sgl_protocol::api::market::OrderView),
        (status = 400, description = "A field out of range (`param` names it), or a job that cannot be bound.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "The key's credits cannot cover the hold.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn place(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    AppJson(request): AppJson<OrderRequest>,
) -> ApiResult<AppJson<OrderView>> {
    Ok(AppJson(state.market().place(&caller, &request).await?))
}

/// `GET /v1/market/orders`.
#[utoipa::path(
    get, path = "/v1/market/orders", tag = "market",
    responses(
        (status = 200, description = "The account's orders, newest first (at most 100), each with its lease.", body = sgl_protocol::api::market::OrderList),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
) -> ApiResult<AppJson<OrderList>> {
    Ok(AppJson(state.market().list(&caller).await?))
}

/// `GET /v1/market/orders/{id}`.
#[utoipa::path(
    get, path = "/v1/market/orders/{id}", tag = "market",
    params(("id" = String, Path, description = "The order id.")),
    responses(
        (status = 200, description = "The order with its bids (cheapest first) and lease.", body = sgl_protocol::api::market::OrderView),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such order in this account.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn show(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<OrderView>> {
    Ok(AppJson(state.market().show(&caller, &id).await?))
}

/// `POST /v1/market/orders/{id}/cancel`.
#[utoipa::path(
    post, path = "/v1/market/orders/{id}/cancel", tag = "market",
    params(("id" = String, Path, description = "The order id.")),
    responses(
        (status = 200, description = "Cancelled; its hold went back whole and its bids lost.", body = sgl_protocol::api::market::OrderView),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such order in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The order is no longer open (leased or unfilled).", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn cancel_order(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<OrderView>> {
    Ok(AppJson(state.market().cancel_order(&caller, &id).await?))
}

/// `GET /v1/market/leases/{id}`.
#[utoipa::path(
    get, path = "/v1/market/leases/{id}", tag = "market",
    params(("id" = String, Path, description = "The lease id.")),
    responses(
        (status = 200, description = "The lease, with what it has streamed so far.", body = sgl_protocol::api::market::LeaseView),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such lease in this account.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn lease(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<LeaseView>> {
    Ok(AppJson(state.market().lease(&caller, &id).await?))
}

/// `POST /v1/market/leases/{id}/cancel`.
#[utoipa::path(
    post, path = "/v1/market/leases/{id}/cancel", tag = "market",
    params(("id" = String, Path, description = "The lease id.")),
    responses(
        (status = 200, description = "Cancelled: what streamed is paid, the rest of the deposit refunded.", body = sgl_protocol::api::market::LeaseView),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such lease in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The lease already ended.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn cancel_lease(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<LeaseView>> {
    Ok(AppJson(state.market().end_lease(&caller, &id, LeaseEnd::Cancelled).await?))
}

/// `POST /v1/market/leases/{id}/complete`.
#[utoipa::path(
    post, path = "/v1/market/leases/{id}/complete", tag = "market",
    params(("id" = String, Path, description = "The lease id.")),
    responses(
        (status = 200, description = "Completed: what streamed is paid, the rest of the deposit refunded.", body = sgl_protocol::api::market::LeaseView),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such lease in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The lease already ended.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn complete_lease(
    State(state): State<AppState>,
    CallerAuth(caller): CallerAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<LeaseView>> {
    Ok(AppJson(state.market().end_lease(&caller, &id, LeaseEnd::Completed).await?))
}

/// The node's live state, if it heartbeats.
fn live(state: &AppState, node: &NodeRecord) -> Option<LiveNode> {
    node.id.parse::<NodeId>().ok().and_then(|id| state.registry().get(&id))
}

/// `GET /grid/market/orders`.
#[utoipa::path(
    get, path = "/grid/market/orders", tag = "node",
    responses(
        (status = 200, description = "The open orders this node could bid on (its announced classes, within the resources it registered, not its operator's own), oldest first; none while it may not take work.", body = sgl_protocol::api::market::MarketOrderList),
        crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn open_orders(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
) -> ApiResult<AppJson<MarketOrderList>> {
    Ok(AppJson(state.market().open_orders(&node, live(&state, &node).as_ref()).await?))
}

/// `POST /grid/market/orders/{id}/bids`.
#[utoipa::path(
    post, path = "/grid/market/orders/{id}/bids", tag = "node",
    params(("id" = String, Path, description = "The order id.")),
    request_body = sgl_protocol::api::market::BidRequest,
    responses(
        (status = 200, description = "Placed (replacing this node's earlier bid on the order).", body = sgl_protocol::api::market::BidView),
        (status = 400, description = "A price below 1 or above the order's maximum (`param: price_per_hour_micros`).", body = sgl_protocol::api::error::ErrorBody),
        (status = 403, description = "The node may not take work now, cannot take this order (class or resources), or its operator placed it.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such order.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The order's bid window is over, or it was decided.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn bid(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Path(id): Path<String>,
    AppJson(request): AppJson<BidRequest>,
) -> ApiResult<AppJson<BidView>> {
    Ok(AppJson(state.market().bid(&node, live(&state, &node).as_ref(), &id, &request).await?))
}

/// The query of `GET /grid/market/bids`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct BidsQuery {
    /// The most bids to list (1 to 500; 50 by default).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `GET /grid/market/bids`.
#[utoipa::path(
    get, path = "/grid/market/bids", tag = "node",
    params(BidsQuery),
    responses(
        (status = 200, description = "This node's bids, the last placed first, each pending, won (with its lease) or lost (with why).", body = sgl_protocol::api::market::BidList),
        (status = 400, description = "A limit that is not a number from 1 to 500.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn bids(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    query: Result<Query<BidsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AppJson<BidList>> {
    let Query(query) = query.map_err(|e| ApiError::bad_param("limit", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_param("limit", "must be a number from 1 to 500"));
    }
    Ok(AppJson(state.market().node_bids(&node, i64::from(limit)).await?))
}

/// `POST /grid/market/leases/{id}/complete`.
#[utoipa::path(
    post, path = "/grid/market/leases/{id}/complete", tag = "node",
    params(("id" = String, Path, description = "The lease id.")),
    responses(
        (status = 200, description = "Completed by its provider: what streamed is paid, the rest refunded.", body = sgl_protocol::api::market::LeaseView),
        (status = 404, description = "No such lease of this node.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The lease already ended.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn node_complete(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<LeaseView>> {
    Ok(AppJson(state.market().complete_by_node(&node, &id).await?))
}
