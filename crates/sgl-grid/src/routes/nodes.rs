//! The node API (sgl-protocol.md §1): register, heartbeat, attestation, maintenance, prices,
//! status and the binary allowlist.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use sgl_grid_store::ledger::Account;
use sgl_grid_store::nodes::CustomPrice;
use sgl_protocol::api::node::*;
use sgl_protocol::ids::NodeId;

use crate::error::{ApiError, ApiResult};
use crate::routes::{AppJson, NodeAuth};
use crate::service::pricing::{BAND_MAX, BAND_MIN, check_band};
use crate::service::{attestation, eligibility, heartbeat, registration};
use crate::state::AppState;

/// `POST /grid/nodes/register`.
#[utoipa::path(
    post, path = "/grid/nodes/register", tag = "node",
    request_body = sgl_protocol::api::node::RegisterNodeRequest,
    responses(
        (status = 200, description = "Registered: the node id and its first token.", body = sgl_protocol::api::node::RegisterNodeResponse),
        (status = 403, description = "The registration code or wallet proof is refused, or the wallet lacks stake.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "A node with this public key is already registered.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors,
    ),
)]
pub(super) async fn register(
    State(state): State<AppState>,
    AppJson(request): AppJson<RegisterNodeRequest>,
) -> ApiResult<AppJson<RegisterNodeResponse>> {
    Ok(AppJson(registration::register(&state, &request).await?))
}

/// `POST /grid/nodes/heartbeat`.
#[utoipa::path(
    post, path = "/grid/nodes/heartbeat", tag = "node",
    params(("X-Node-Id" = String, Header, description = "The node id the token belongs to.")),
    request_body = sgl_protocol::api::node::HeartbeatRequest,
    responses(
        (status = 200, description = "Jobs to run, a rotated token when due.", body = sgl_protocol::api::node::HeartbeatResponse),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn heartbeat(
    State(state): State<AppState>,
    auth: NodeAuth,
    headers: HeaderMap,
    AppJson(beat): AppJson<HeartbeatRequest>,
) -> ApiResult<AppJson<HeartbeatResponse>> {
    let claimed_id = headers.get(HEADER_NODE_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    Ok(AppJson(heartbeat::beat(&state, auth.0, claimed_id, beat).await?))
}

/// `POST /grid/nodes/{id}/challenge`.
#[utoipa::path(
    post, path = "/grid/nodes/{id}/challenge", tag = "node",
    params(("id" = String, Path, description = "The node id.")),
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::node::ChallengeResponse),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn challenge(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<ChallengeResponse>> {
    auth.require_node(&id)?;
    Ok(AppJson(attestation::challenge(&state, &auth.0).await?))
}

/// `POST /grid/nodes/{id}/verify-attestation`.
#[utoipa::path(
    post, path = "/grid/nodes/{id}/verify-attestation", tag = "node",
    params(("id" = String, Path, description = "The node id.")),
    request_body = sgl_protocol::api::node::VerifyAttestationRequest,
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::node::VerifyAttestationResponse),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn verify_attestation(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(request): AppJson<VerifyAttestationRequest>,
) -> ApiResult<AppJson<VerifyAttestationResponse>> {
    auth.require_node(&id)?;
    Ok(AppJson(attestation::verify(&state, &auth.0, &request).await?))
}

/// `POST /grid/nodes/{id}/status` (maintenance).
#[utoipa::path(
    post, path = "/grid/nodes/{id}/status", tag = "node",
    params(("id" = String, Path, description = "The node id.")),
    request_body = sgl_protocol::api::node::OffGridRequest,
    responses(
        (status = 200, description = "The node's new state.", body = Object),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn set_off_grid(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(request): AppJson<OffGridRequest>,
) -> ApiResult<AppJson<Value>> {
    auth.require_node(&id)?;
    state.store().set_off_grid(&id, request.off_grid).await?;
    state.registry().update(&id, |live| live.off_grid = request.off_grid);
    if let Ok(node_id) = id.parse() {
        crate::cluster::node_changed(&state, node_id);
    }
    Ok(AppJson(json!({"ok": true, "off_grid": request.off_grid})))
}

/// `GET /grid/nodes/{id}/prices` (public).
#[utoipa::path(
    get, path = "/grid/nodes/{id}/prices", tag = "node",
    params(("id" = String, Path, description = "The node id.")),
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::node::NodePricesResponse),
        (status = 404, description = "No such node.", body = sgl_protocol::api::error::ErrorBody),
    ),
)]
pub(super) async fn prices(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<AppJson<NodePricesResponse>> {
    state.store().node(&id).await?.ok_or_else(|| ApiError::not_found("no such node"))?;
    let custom: HashMap<String, CustomPrice> = state.store().prices(&id).await?.into_iter().collect();
    let live_models =
        id.parse::<NodeId>().ok().and_then(|n| state.registry().get(&n)).map(|l| l.models).unwrap_or_default();
    let models: BTreeSet<&String> = live_models.iter().chain(custom.keys()).collect();
    let pair = |input_per_m, output_per_m| PricePair { input_per_m, output_per_m };
    let prices = models
        .into_iter()
        .map(|model| {
            let reference = state.config().reference_price(model);
            let reference_pair = pair(reference.input_per_m, reference.output_per_m);
            let custom_pair = custom.get(model).map(|c| pair(c.input_per_m, c.output_per_m));
            NodeModelPrice {
                model: model.clone(),
                effective: custom_pair.unwrap_or(reference_pair),
                custom: custom_pair,
                reference: reference_pair,
                band: Some(PriceBand {
                    min: pair(reference.input_per_m * BAND_MIN, reference.output_per_m * BAND_MIN),
                    max: pair(reference.input_per_m * BAND_MAX, reference.output_per_m * BAND_MAX),
                }),
            }
        })
        .collect();
    Ok(AppJson(NodePricesResponse { prices }))
}

/// `POST /grid/nodes/{id}/prices`.
#[utoipa::path(
    post, path = "/grid/nodes/{id}/prices", tag = "node",
    params(("id" = String, Path, description = "The node id.")),
    request_body = sgl_protocol::api::node::SetPriceRequest,
    responses(
        (status = 200, description = "The price now in force.", body = Object),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn set_price(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
    AppJson(request): AppJson<SetPriceRequest>,
) -> ApiResult<AppJson<Value>> {
    auth.require_node(&id)?;
    let node_id: NodeId = id.parse().map_err(|e| ApiError::internal(&e))?;
    match request {
        SetPriceRequest::Set { model, input_per_m, output_per_m } => {
            registration::text_field("model", &model, 128)?;
            check_band(state.config().reference_price(&model), input_per_m, output_per_m)
                .map_err(|e| ApiError::bad_param("input_per_m", e.to_string()))?;
            let price = CustomPrice { input_per_m, output_per_m };
            state.store().set_price(&id, &model, price).await?;
            if let Some(live) = state.registry().lock().get_mut(&node_id) {
                live.custom_prices.insert(model.clone(), price);
            }
            crate::cluster::node_changed(&state, node_id);
            Ok(AppJson(json!({"ok": true, "model": model, "input_per_m": input_per_m, "output_per_m": output_per_m})))
        }
        SetPriceRequest::Reset { model } => {
            state.store().reset_price(&id, &model).await?;
            if let Some(live) = state.registry().lock().get_mut(&node_id) {
                live.custom_prices.remove(&model);
            }
            crate::cluster::node_changed(&state, node_id);
            Ok(AppJson(json!({"ok": true, "model": model, "reset": true})))
        }
    }
}

/// `GET /grid/nodes/{id}`.
#[utoipa::path(
    get, path = "/grid/nodes/{id}", tag = "node",
    params(("id" = String, Path, description = "The node id.")),
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::node::NodeStatusResponse),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn status(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<NodeStatusResponse>> {
    auth.require_node(&id)?;
    let node = auth.0;
    let (stake, stake_micros) = crate::service::stake::standing(&state, &node.wallet).await?;
    let (now, timeout_ms) = (state.now_ms(), state.config().node_timeout_ms());
    let live = id.parse::<NodeId>().ok().and_then(|n| state.registry().get(&n));
    let online = live.as_ref().is_some_and(|live| live.is_online(now, timeout_ms));
    let not_serving = eligibility::not_serving(&node, live.as_ref(), stake, now, timeout_ms);
    let status = eligibility::lifecycle(&node, online);
    Ok(AppJson(NodeStatusResponse {
        status,
        attestation_verified: node.attested,
        reputation_score: node.reputation_at(state.now_ms()),
        jobs_completed: u64::try_from(node.jobs_completed).unwrap_or(0),
        jobs_failed: u64::try_from(node.jobs_failed).unwrap_or(0),
        stake_state: Some(stake),
        stake_sgl: Some(u64::try_from(stake_micros / 1_000_000).unwrap_or(0)),
        not_serving: Some(not_serving),
    }))
}

/// `GET /grid/nodes/{id}/earnings`: the operator wallet's earnings, for `sgl earnings`.
#[utoipa::path(
    get, path = "/grid/nodes/{id}/earnings", tag = "node",
    params(("id" = String, Path, description = "The node id.")),
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::node::EarningsResponse),
        crate::routes::openapi::BodyErrors, crate::routes::openapi::NodeAuthErrors,
    ),
    security(("node_auth" = [])),
)]
pub(super) async fn earnings(
    State(state): State<AppState>,
    auth: NodeAuth,
    Path(id): Path<String>,
) -> ApiResult<AppJson<EarningsResponse>> {
    auth.require_node(&id)?;
    let node = auth.0;
    let micros = state.store().balance(&Account::Earnings { wallet: node.wallet.clone() }).await?;
    Ok(AppJson(EarningsResponse {
        wallet: node.wallet,
        earnings_micros: micros,
        earnings_usd: micros as f64 / 1e6,
        jobs_completed: u64::try_from(node.jobs_completed).unwrap_or(0),
    }))
}

/// `GET /grid/allowed-binaries` (public).
#[utoipa::path(
    get, path = "/grid/allowed-binaries", tag = "node",
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::node::AllowedBinariesResponse),
    ),
)]
pub(super) async fn allowed_binaries(State(state): State<AppState>) -> ApiResult<AppJson<AllowedBinariesResponse>> {
    Ok(AppJson(AllowedBinariesResponse { hashes: state.store().allowed_binaries().await? }))
}
