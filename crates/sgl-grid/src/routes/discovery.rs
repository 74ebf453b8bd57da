//! Caller discovery (sgl-protocol.md §4.2–§4.3): models, prices, capacity, providers and
//! reservations.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use sgl_protocol::api::caller::*;
use sgl_protocol::api::error::ErrorCode;
use sgl_protocol::api::node::{JobType, is_cluster_slug};
use sgl_protocol::api::openai::{Model, ModelList};
use sgl_protocol::ids::ReservationToken;

use crate::error::{ApiError, ApiResult};
use crate::registry::LiveNode;
use crate::routes::{AppJson, ClientAddress, MaybeCaller};

use crate::service::schedule::{Candidate, Requirement, rank};
use crate::state::{AppState, Reservation};

/// Live nodes that could serve jobs of `job_type` now, by model.
fn served_models(state: &AppState, job_type: JobType) -> BTreeMap<String, Vec<LiveNode>> {
    let now = state.now_ms();
    let timeout_ms = state.config().node_timeout_ms();
    let mut by_model: BTreeMap<String, Vec<LiveNode>> = BTreeMap::new();
    for node in state.registry().snapshot() {
        if node.is_eligible(now, timeout_ms) {
            let models: Vec<String> = match job_type {
                JobType::Inference => node.models.clone(),
                JobType::Embedding => node.embedding_models.iter().map(|m| m.name.clone()).collect(),
            };
            for model in models {
                by_model.entry(model).or_default().push(node.clone());
            }
        }
    }
    by_model
}

/// Every model some eligible node serves, chat and embedding models alike.
fn all_served(state: &AppState) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = served_models(state, JobType::Inference).into_keys().collect();
    all.extend(served_models(state, JobType::Embedding).into_keys());
    all
}

/// `GET /v1/models`, OpenAI's shape.
#[utoipa::path(
    get, path = "/v1/models", tag = "caller",
    responses(
        (status = 200, description = "The served models, OpenAI's shape.", body = sgl_protocol::api::openai::ModelList),
    ),
)]
pub(super) async fn models(State(state): State<AppState>) -> AppJson<ModelList> {
    let data = all_served(&state)
        .into_iter()
        .map(|id| Model { id, object: "model".into(), created: 0, owned_by: "sgl-grid".into() })
        .collect();
    AppJson(ModelList { object: "list".into(), data })
}

/// `GET /v1/models/{model}` (the SDKs' `models.retrieve`), OpenAI's shape; a model no node
/// serves now is OpenAI's 404. The id may hold slashes (`org/name`).
#[utoipa::path(
    get, path = "/v1/models/{model}", tag = "caller",
    params(("model" = String, Path, description = "The model id; it may contain slashes.")),
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::openai::Model),
        (status = 404, description = "No live node serves this model.", body = sgl_protocol::api::error::ErrorBody),
    ),
)]
pub(super) async fn model(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<AppJson<Model>> {
    if !all_served(&state).contains(&id) {
        return Err(ApiError::model_not_found(&id));
    }
    Ok(AppJson(Model { id, object: "model".into(), created: 0, owned_by: "sgl-grid".into() }))
}

/// `GET /grid/models`.
#[utoipa::path(
    get, path = "/grid/models", tag = "caller",
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::caller::GridModelsResponse),
    ),
)]
pub(super) async fn grid_models(State(state): State<AppState>) -> AppJson<GridModelsResponse> {
    let models = served_models(&state, JobType::Inference)
        .into_iter()
        .map(|(id, nodes)| {
            let price = state.config().reference_price(&id);
            GridModel {
                sgl_node_count: nodes.len() as u64,
                sgl_tee_types: nodes.iter().map(|n| n.tee_type.clone()).collect::<BTreeSet<_>>().into_iter().collect(),
                sgl_pricing: PricePer1k {
                    price_per_1k_input_tokens_usd: price.input_per_m / 1000.0,
                    price_per_1k_output_tokens_usd: price.output_per_m / 1000.0,
                },
                owned_by: "sgl-grid".into(),
                id,
            }
        })
        .collect();
    AppJson(GridModelsResponse { models })
}

/// `GET /grid/pricing`: the reference price of every served or configured model.
#[utoipa::path(
    get, path = "/grid/pricing", tag = "caller",
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::caller::PricingResponse),
    ),
)]
pub(super) async fn pricing(State(state): State<AppState>) -> AppJson<PricingResponse> {
    let served = all_served(&state).into_iter();
    let configured = state.config().prices.keys().cloned();
    let pricing = served
        .chain(configured)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|model| {
            let price = state.config().reference_price(&model);
            ModelPricing {
                price_per_1k_input_tokens_usd: price.input_per_m / 1000.0,
                price_per_1k_output_tokens_usd: price.output_per_m / 1000.0,
                model,
            }
        })
        .collect();
    AppJson(PricingResponse { pricing })
}

/// `GET /grid/capacity`.
#[utoipa::path(
    get, path = "/grid/capacity", tag = "caller",
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::caller::CapacityResponse),
    ),
)]
pub(super) async fn capacity(State(state): State<AppState>) -> ApiResult<AppJson<CapacityResponse>> {
    Ok(AppJson(crate::service::capacity::snapshot(&state).await?))
}

fn candidates(state: &AppState, wanted: &Requirement<'_>) -> ApiResult<Vec<Candidate>> {
    if wanted.model.trim().is_empty() {
        return Err(ApiError::bad_param("model", "model is required"));
    }
    if wanted.max_price.is_some_and(|p| !p.is_finite() || p < 0.0) {
        return Err(ApiError::bad_param("max_price", "max_price must be a non-negative number (USD per 1M tokens)"));
    }
    if let Some(cluster) = wanted.cluster {
        check_cluster(state, cluster)?;
    }
    Ok(rank(state.config(), state.registry().snapshot(), wanted, state.now_ms()))
}

/// A named cluster must be a slug that some eligible node is in: an unknown cluster is a 404,
/// never silently widened to the whole grid.
fn check_cluster(state: &AppState, cluster: &str) -> ApiResult<()> {
    if !is_cluster_slug(cluster) {
        return Err(ApiError::bad_param("cluster", format!("{cluster:?} is not a cluster slug (such as gpu-eu)")));
    }
    let (now, timeout_ms) = (state.now_ms(), state.config().node_timeout_ms());
    let known = state
        .registry()
        .lock()
        .values()
        .any(|node| node.cluster.as_deref() == Some(cluster) && node.is_eligible(now, timeout_ms));
    if known {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "no node of cluster {cluster:?} is on the grid now; leave cluster out to be served by any node"
    ))
    .with_param("cluster"))
}

/// What a discovery request asks for.
fn requirement<'a>(model: &'a str, max_price: Option<f64>, cluster: Option<&'a str>) -> Requirement<'a> {
    Requirement { max_price, cluster, ..Requirement::model(model) }
}

/// `GET /v1/providers?model=…[&max_price=…]`, cheapest first.
#[utoipa::path(
    get, path = "/v1/providers", tag = "caller",
    params(("model" = String, Query, description = "The model.", min_length = 1, pattern = "\\S"), ("cluster" = Option<String>, Query, description = "A cluster slug, such as `gpu-eu`.", pattern = "^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"), ("max_price" = Option<f64>, Query, description = "Only providers at or under this blended USD per 1M tokens.", minimum = 0.0), ("job_type" = Option<sgl_protocol::api::node::JobType>, Query, description = "`embedding` for providers of an embedding model; chat when absent.")),
    responses(
        (status = 200, description = "Providers of the model, cheapest first.", body = sgl_protocol::api::caller::ProvidersResponse),
        (status = 400, description = "A parameter is missing or invalid.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such cluster.", body = sgl_protocol::api::error::ErrorBody),
    ),
)]
pub(super) async fn providers(
    State(state): State<AppState>,
    query: Result<Query<ProvidersQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AppJson<ProvidersResponse>> {
    let Query(query) = query.map_err(|e| ApiError::bad_param("model", e.body_text()))?;
    let wanted = Requirement {
        job_type: query.job_type.unwrap_or_default(),
        ..requirement(&query.model, query.max_price, query.cluster.as_deref())
    };
    let providers: Vec<Provider> = candidates(&state, &wanted)?
        .into_iter()
        .map(|c| Provider {
            node_id: c.node.node_id,
            input_per_m: c.price.input_per_m,
            output_per_m: c.price.output_per_m,
            blended_per_1k: c.blended_per_m() / 1000.0,
            is_custom: c.is_custom,
            reputation: Some(c.node.reputation),
            load: Some(f64::from(c.node.busy()) / f64::from(c.node.max_concurrent_jobs.max(1))),
            max_concurrent_jobs: Some(c.node.max_concurrent_jobs),
            tee_type: Some(c.node.tee_type.clone()),
            online: true,
        })
        .collect();
    Ok(AppJson(ProvidersResponse {
        model: query.model,
        cluster: query.cluster,
        count: providers.len() as u64,
        providers,
    }))
}

/// `POST /v1/reserve`: picks a node and returns its keys and keybind, so the caller can check
/// the binding and seal to it. Without an API key (on a grid taking per-request payments) the
/// reservation is for a sealed request that pays for itself.
#[utoipa::path(
    post, path = "/v1/reserve", tag = "caller",
    request_body = sgl_protocol::api::caller::ReserveRequest,
    responses(
        (status = 200, description = "A reservation naming one node and its keys.", body = sgl_protocol::api::caller::ReserveResponse),
        (status = 400, description = "The body is invalid, or `max_price` is below every live provider (`price_cap_unmet`).", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key (on a grid without x402), or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No node serves the model (in the cluster), or no such node.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
        (status = 429, description = "Too many open reservations from this address; see `Retry-After`.", body = sgl_protocol::api::error::ErrorBody),
        (status = 503, description = "Every node that could serve is busy.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security((), ("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn reserve(
    State(state): State<AppState>,
    caller: MaybeCaller,
    ClientAddress(address): ClientAddress,
    AppJson(request): AppJson<ReserveRequest>,
) -> ApiResult<AppJson<ReserveResponse>> {
    if caller.0.is_none() && state.payments().is_none() {
        return Err(crate::routes::chat::no_key());
    }
    let job_type = request.job_type.unwrap_or_default();
    let wanted = Requirement { job_type, ..requirement(&request.model, request.max_price, request.cluster.as_deref()) };
    let mut ranked = candidates(&state, &wanted)?;
    if let Some(wanted) = request.node {
        ranked.retain(|c| c.node.node_id == wanted);
    }
    let Some(chosen) = ranked.into_iter().next() else {
        return Err(no_node_error(&state, &request));
    };
    let ttl_ms = state.config().reservation_ttl_ms();
    let reservation = Reservation {
        node_id: chosen.node.node_id,
        model: request.model.clone(),
        price: chosen.price,
        api_key_id: caller.0.as_ref().map(|key| key.id),
        expires_at_ms: state.now_ms() + ttl_ms,
        address: address.filter(|_| caller.0.is_none()),
    };
    // A full quota frees itself within a reservation's lifetime at the latest.
    let retry_secs = u64::try_from(ttl_ms / 1000).unwrap_or(60);
    let held = state.reservations().hold(reservation, state.now_ms()).await;
    let token = held.map_err(|error| ApiError::from(error).with_retry_after(retry_secs))?;
    Ok(AppJson(reserved(token, chosen.node, job_type, &request.model, ttl_ms)))
}

/// The answer to a reservation of `node` for `job_type` under `token`: the keys a caller seals
/// to and checks, and the hash of the model the node will sign with.
fn reserved(token: String, node: LiveNode, job_type: JobType, model: &str, ttl_ms: i64) -> ReserveResponse {
    let attested = node.attested();
    let model_sha256 = match job_type {
        JobType::Inference => node.model_sha256.clone(),
        JobType::Embedding => node.embedding_model(model).map(|m| m.model_sha256.clone()),
    };
    ReserveResponse {
        reservation_token: ReservationToken::new(token),
        node_id: node.node_id,
        node_x25519_pubkey: Some(node.encryption_key),
        node_ed25519_pubkey: Some(node.public_key),
        tee_type: Some(node.tee_type),
        attestation_verified: Some(attested),
        expires_in_ms: u64::try_from(ttl_ms).unwrap_or(0),
        encryption_public_key_signature: node.keybind.as_ref().map(|k| k.encryption_public_key_signature.clone()),
        key_version: node.keybind.as_ref().map(|k| k.key_version),
        model_sha256,
    }
}

/// Why no node can take a request for `model` now: nobody serves it, or all are busy.
pub(crate) fn no_node_for_model(state: &AppState, job_type: JobType, model: &str) -> ApiError {
    if served_models(state, job_type).contains_key(model) {
        ApiError::unavailable(ErrorCode::NoCapacity, "every node serving this model is busy; retry shortly")
    } else {
        ApiError::model_not_found(model)
    }
}

/// Why nothing could be reserved: no such model, nothing under the price cap, or all busy.
fn no_node_error(state: &AppState, request: &ReserveRequest) -> ApiError {
    let job_type = request.job_type.unwrap_or_default();
    let serving = served_models(state, job_type).remove(&request.model).unwrap_or_default();
    if serving.is_empty() {
        return ApiError::model_not_found(&request.model);
    }
    if let Some(cluster) = request.cluster.as_deref()
        && !serving.iter().any(|n| n.cluster.as_deref() == Some(cluster))
    {
        return ApiError::not_found(format!("no node of cluster {cluster:?} serves model {:?} now", request.model))
            .with_param("cluster");
    }
    if let Some(node) = request.node
        && !serving.iter().any(|n| n.node_id == node)
    {
        // Like a cluster that serves nothing: the caller named what does not exist now.
        return ApiError::not_found(format!("node {node} is not serving {} now", request.model)).with_param("node");
    }
    let uncapped = Requirement { job_type, ..requirement(&request.model, None, request.cluster.as_deref()) };
    let available_without_cap = candidates(state, &uncapped).is_ok_and(|c| !c.is_empty());
    if request.max_price.is_some() && available_without_cap {
        // The caller's own cap excludes every live provider: its choice to change, so a 4xx.
        return ApiError::price_cap_unmet(
            "max_price",
            "no provider is at or under max_price; GET /v1/providers lists their prices",
        );
    }
    no_node_for_model(state, job_type, &request.model)
}
