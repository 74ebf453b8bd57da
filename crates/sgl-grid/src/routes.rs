//! The HTTP surface: one router for the node API, the caller API, health and metrics, with the
//! extractors that authenticate nodes and callers and turn bad JSON into OpenAI-shaped errors.

mod account;
mod admin;
mod blobs;
mod chain;
mod chat;
mod compute;
pub mod dashboard;
pub mod device;
pub mod discovery;
mod embeddings;
mod facilitator;
mod health;
mod jobs;
mod json;
mod live;
mod machines;
mod market;
mod nodes;
pub mod openapi;
mod operators;
mod ws;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_grid_store::nodes::NodeRecord;
use sgl_protocol::api::caller::HEADER_API_KEY;
use sgl_protocol::api::node::HEADER_NODE_AUTH;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use self::json::AppJson;
use crate::error::ApiError;
use crate::service::secrets;
use crate::state::AppState;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.config().max_body_bytes;
    let cors = cors_layer(&state.config().cors_origins);
    Router::new()
        // The 405 fallback goes in before the CORS layer, so preflights reach that layer.
        .merge(caller_routes().method_not_allowed_fallback(method_not_allowed).layer(cors))
        .merge(node_routes().method_not_allowed_fallback(method_not_allowed))
        .merge(admin_routes().method_not_allowed_fallback(method_not_allowed))
        .merge(
            dashboard::routes()
                .method_not_allowed_fallback(method_not_allowed)
                .layer(middleware::from_fn(dashboard::same_site_writes)),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            // The path only: a seed node's WebSocket puts its token in the query string.
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
        }))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal(&"a handler panicked").into_response()))
        .with_state(state)
}

/// What callers (and browser pages) use: inference, discovery, accounts and payments.
fn caller_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/models", get(discovery::models))
        .route("/v1/models/{*model}", get(discovery::model))
        .route("/grid/models", get(discovery::grid_models))
        .route("/grid/pricing", get(discovery::pricing))
        .route("/grid/capacity", get(discovery::capacity))
        .route("/v1/providers", get(discovery::providers))
        .route("/v1/reserve", post(discovery::reserve))
        .route("/v1/keys", get(account::list).post(account::create))
        .route("/v1/auth/wallet", post(account::wallet_sign_in))
        .route("/v1/keys/{id}", axum::routing::delete(account::revoke).patch(account::relabel))
        .route("/v1/keys/transfer", post(account::move_credits))
        .route("/v1/usage", get(account::usage))
        .route("/v1/account/events", get(account::events))
        .route("/v1/blobs/{sha256}", get(blobs::get_caller).put(blobs::put_caller).layer(DefaultBodyLimit::disable()))
        .route("/v1/jobs", get(compute::list).post(compute::submit))
        .route("/v1/jobs/{id}", get(compute::job).delete(compute::cancel))
        .route("/v1/jobs/{id}/result", get(compute::result))
        .route("/v1/jobs/{id}/logs", get(compute::logs))
        .route("/v1/jobs/{id}/attempts/{attempt_id}/secrets", post(compute::give_secrets))
        .route("/compute/plans", get(machines::plans))
        .route("/compute/regions", get(machines::regions))
        .route("/compute/provision", post(machines::provision))
        .route("/compute/instances", get(machines::list))
        .route("/compute/instances/events", get(machines::events))
        .route("/compute/instances/{id}", get(machines::show).delete(machines::destroy))
        .route("/compute/instances/{id}/password", get(machines::password))
        .route("/compute/instances/{id}/extend", post(machines::extend))
        .route("/compute/instances/{id}/resize", post(machines::resize))
        .route("/v1/market/orders", get(market::list).post(market::place))
        .route("/v1/market/orders/{id}", get(market::show))
        .route("/v1/market/orders/{id}/cancel", post(market::cancel_order))
        .route("/v1/market/leases/{id}", get(market::lease))
        .route("/v1/market/leases/{id}/cancel", post(market::cancel_lease))
        .route("/v1/market/leases/{id}/complete", post(market::complete_lease))
        .route("/compute/credits/balance", get(account::balance))
        .route("/compute/credits/topup", post(account::topup))
        .route("/x402/facilitator/verify", post(facilitator::verify))
        .route("/x402/facilitator/settle", post(facilitator::settle))
        .route("/x402/facilitator/supported", get(facilitator::supported))
}

/// What nodes, operators and the grid's own pages use.
fn node_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve))
        .route("/grid/auth/device/start", post(device::start))
        .route("/grid/auth/device/poll", post(device::poll))
        .route("/grid/auth/device/approve", post(device::approve))
        .route("/grid/auth/device/verify", get(device::verify_page))
        .route("/grid/nodes/register", post(nodes::register))
        .route("/grid/nodes/heartbeat", post(nodes::heartbeat))
        .route("/grid/nodes/{id}", get(nodes::status))
        .route("/grid/nodes/{id}/challenge", post(nodes::challenge))
        .route("/grid/nodes/{id}/verify-attestation", post(nodes::verify_attestation))
        .route("/grid/nodes/{id}/status", post(nodes::set_off_grid))
        .route("/grid/nodes/{id}/prices", get(nodes::prices).post(nodes::set_price))
        .route("/grid/nodes/{id}/earnings", get(nodes::earnings))
        .route("/grid/nodes/{id}/ws", get(ws::connect))
        .route("/grid/allowed-binaries", get(nodes::allowed_binaries))
        .route("/grid/chain", get(chain::info))
        .route("/grid/operators/{wallet}/stake", get(operators::stake))
        .route("/grid/operators/{wallet}/nodes", get(operators::nodes))
        .route("/grid/operators/{wallet}/events", get(operators::events))
        .route("/grid/operators/{wallet}/earnings", get(operators::earnings))
        .route("/grid/operators/{wallet}/actions", post(operators::action))
        .route("/grid/operators/{wallet}/payouts", get(operators::payouts))
        .route("/grid/jobs/{id}/complete", post(jobs::complete))
        .route("/grid/jobs/{id}/chunk", post(jobs::chunk))
        .route("/grid/jobs/{id}/fail", post(jobs::fail))
        .route("/grid/blobs/{sha256}", get(blobs::get_node).put(blobs::put_node).layer(DefaultBodyLimit::disable()))
        .route("/grid/compute/lease", post(compute::lease))
        .route("/grid/compute/attempts/{id}/start", post(compute::start))
        .route("/grid/compute/attempts/{id}/receipt", post(compute::receipt))
        .route("/grid/compute/attempts/{id}/fail", post(compute::fail))
        .route("/grid/compute/attempts/{id}/secrets", get(compute::fetch_secrets))
        .route("/grid/market/orders", get(market::open_orders))
        .route("/grid/market/orders/{id}/bids", post(market::bid))
        .route("/grid/market/bids", get(market::bids))
        .route("/grid/market/leases/{id}/complete", post(market::node_complete))
}

/// The grid operator's routes, behind the admin token; refused from other sites' pages.
fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/grid/admin/overview", get(admin::overview))
        .route("/grid/admin/overview/events", get(admin::overview_events))
        .layer(middleware::from_fn(dashboard::same_site_writes))
}

/// CORS for the caller routes: the configured origins (`*` by default: callers authenticate
/// with headers, never cookies), preflights answered, and the payment headers readable by a
/// page, so a browser can call the grid and pay. No origins turns CORS off.
fn cors_layer(origins: &[String]) -> CorsLayer {
    use axum::http::{HeaderName, Method};
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    let names = |list: &[&str]| list.iter().filter_map(|n| HeaderName::try_from(*n).ok()).collect::<Vec<_>>();
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers(names(&[
            "content-type",
            "authorization",
            HEADER_API_KEY,
            sgl_pay::header::X_PAYMENT,
            sgl_pay::header::PAYMENT_SIGNATURE,
            sgl_protocol::api::machines::wallet_headers::WALLET,
            sgl_protocol::api::machines::wallet_headers::NONCE,
            sgl_protocol::api::machines::wallet_headers::SIGNED_AT,
            sgl_protocol::api::machines::wallet_headers::SIGNATURE,
        ]))
        .expose_headers(names(crate::payments::EXPOSED_HEADERS))
        .max_age(std::time::Duration::from_secs(3600))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> Response {
    let mut response = ApiError::bad_request("method not allowed on this endpoint").into_response();
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// Counts every response and its latency.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics().observe_response(response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Longest text of a non-JSON error body carried into its OpenAI-shaped replacement.
const MAX_ERROR_TEXT: usize = 1024;

/// Turns every error response that is not JSON yet (what axum itself answers for a body over
/// the limit, a bad path parameter, a refused WebSocket upgrade) into OpenAI's error shape with
/// the same status and headers, so no client ever has to parse plain text.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // `application/json` and the structured `+json` types (MPP answers problem details).
        .is_some_and(|v| {
            v.starts_with("application/json") || v.split(';').next().is_some_and(|t| t.ends_with("+json"))
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).trim().to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let replacement = ApiError::from_status(status, text).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.extend(replacement.headers().clone());
    Response::from_parts(parts, replacement.into_body())
}

/// The client's IP address, when the server recorded its peer (`ConnectInfo`); in-process
/// callers have none.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(Self(peer.map(|info| info.0.ip())))
    }
}

/// A node authenticated by `X-Node-Auth`.
#[derive(Debug)]
pub struct NodeAuth(pub NodeRecord);

impl FromRequestParts<AppState> for NodeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(HEADER_NODE_AUTH)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::invalid_node_token)?;
        let node = state.store().node_by_token(&secrets::hash(token), state.now_ms()).await?;
        node.map(Self).ok_or_else(ApiError::invalid_node_token)
    }
}

/// A node authenticated by `X-Node-Auth` for its job posts (results, chunks, failures), the
/// requests it sends for every job: a token seen in the last [`NODE_RECHECK_MS`] is taken from
/// memory. Those posts read only what never changes for a node (its id, key and wallet);
/// everything else (heartbeats, prices) reads the database every time.
#[derive(Debug)]
pub struct JobNodeAuth(pub NodeRecord);

/// How long a node's current token found by a job post is trusted without asking the database.
pub const NODE_RECHECK_MS: i64 = 2_000;

impl FromRequestParts<AppState> for JobNodeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts.headers.get(HEADER_NODE_AUTH).and_then(|v| v.to_str().ok()).filter(|t| !t.is_empty());
        let (hash, now) = (secrets::hash(token.ok_or_else(ApiError::invalid_node_token)?), state.now_ms());
        if let Some(node) = state.node_tokens().get(&hash, now).filter(|node| node.token_expires_at > now) {
            return Ok(Self(node));
        }
        let node = state.store().node_by_token(&hash, now).await?.ok_or_else(ApiError::invalid_node_token)?;
        // A retiring token is checked every time, so that its retirement takes effect at once.
        if !node.via_previous_token {
            state.node_tokens().put(hash, node.clone(), now);
        }
        Ok(Self(node))
    }
}

impl NodeAuth {
    /// Refuses (403) a node acting on another node's resource.
    pub fn require_node(&self, id: &str) -> Result<(), ApiError> {
        if self.0.id == id { Ok(()) } else { Err(ApiError::forbidden("this node token belongs to another node")) }
    }
}

/// A caller authenticated by `X-API-Key` or `Authorization: Bearer`.
#[derive(Debug)]
pub struct CallerAuth(pub ApiKeyRecord);

impl FromRequestParts<AppState> for CallerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = MaybeCaller::from_request_parts(parts, state).await?;
        caller.0.map(Self).ok_or_else(|| {
            ApiError::invalid_api_key("this endpoint needs an API key: send it in X-API-Key or Authorization: Bearer")
        })
    }
}

/// A caller authenticated by `X-API-Key` or `Authorization: Bearer`, or nobody when neither is
/// sent (a request paying for itself); an unknown key is still refused.
#[derive(Debug)]
pub struct MaybeCaller(pub Option<ApiKeyRecord>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let key = header(HEADER_API_KEY)
            .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let Some(key) = key else { return Ok(Self(None)) };
        let record = state.accounts().caller(key).await?;
        record.map(|r| Self(Some(r))).ok_or_else(|| ApiError::invalid_api_key("unknown or revoked API key"))
    }
}
