//! An operator's stake and earnings over HTTP (ours, documented in `docs/protocol.md`); the
//! rules are in [`crate::service::operators`].

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use sgl_protocol::api::operator::{
    OperatorActionResponse, OperatorEarnings, OperatorNodes, OperatorSnapshot, PayoutList, SignedOperatorRequest,
    StakeStatus,
};

use crate::error::{ApiError, ApiResult};
use crate::routes::AppJson;
use crate::service::{earnings, eligibility, operators};
use crate::state::AppState;

/// `GET /grid/operators/{wallet}/stake`.
#[utoipa::path(
    get, path = "/grid/operators/{wallet}/stake", tag = "operator",
    params(("wallet" = String, Path, description = "The operator's wallet.")),
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::operator::StakeStatus),
    ),
)]
pub(super) async fn stake(
    State(state): State<AppState>,
    Path(wallet): Path<String>,
) -> ApiResult<AppJson<StakeStatus>> {
    Ok(AppJson(operators::status(&state, &wallet).await?))
}

/// `POST /grid/operators/{wallet}/actions`.
#[utoipa::path(
    post, path = "/grid/operators/{wallet}/actions", tag = "operator",
    params(("wallet" = String, Path, description = "The operator's wallet.")),
    request_body = sgl_protocol::api::operator::SignedOperatorRequest,
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::operator::OperatorActionResponse),
        (status = 401, description = "The wallet signature does not verify, or the request is stale.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The nonce is spent, or the stake is not in a state that allows the action.", body = sgl_protocol::api::error::ErrorBody),
        (status = 503, description = "Payouts are not possible on this grid.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors,
    ),
)]
pub(super) async fn action(
    State(state): State<AppState>,
    Path(wallet): Path<String>,
    AppJson(request): AppJson<SignedOperatorRequest>,
) -> ApiResult<AppJson<OperatorActionResponse>> {
    Ok(AppJson(operators::act(&state, &wallet, &request).await?))
}

/// `GET /grid/operators/{wallet}/nodes`.
#[utoipa::path(
    get, path = "/grid/operators/{wallet}/nodes", tag = "operator",
    params(("wallet" = String, Path, description = "The operator's wallet.")),
    responses(
        (status = 200, description = "The wallet's nodes, each with why the scheduler gives it no work.", body = sgl_protocol::api::operator::OperatorNodes),
    ),
)]
pub(super) async fn nodes(
    State(state): State<AppState>,
    Path(wallet): Path<String>,
) -> ApiResult<AppJson<OperatorNodes>> {
    Ok(AppJson(eligibility::operator_nodes(&state, &wallet).await?))
}

/// `GET /grid/operators/{wallet}/events`: the stake and the nodes as SSE `snapshot` events, on
/// change.
#[utoipa::path(
    get, path = "/grid/operators/{wallet}/events", tag = "operator",
    params(("wallet" = String, Path, description = "The operator's wallet.")),
    responses(
        (status = 200, description = "SSE: a `snapshot` event (an `OperatorSnapshot`'s JSON) whenever it changes.", content_type = "text/event-stream", body = String),
    ),
)]
pub(super) async fn events(State(state): State<AppState>, Path(wallet): Path<String>) -> Response {
    crate::routes::live::stream(move || {
        let (state, wallet) = (state.clone(), wallet.clone());
        async move {
            let stake = operators::status(&state, &wallet).await?;
            let nodes = eligibility::operator_nodes(&state, &wallet).await?;
            Ok(OperatorSnapshot { stake, nodes, earnings: earnings::daily(&state, &wallet, DEFAULT_DAYS).await? })
        }
    })
}

/// The query of `GET /grid/operators/{wallet}/earnings`.
#[derive(Debug, Deserialize)]
pub(super) struct EarningsQuery {
    days: Option<u32>,
}

/// Days `GET /grid/operators/{wallet}/earnings` covers without `days`.
const DEFAULT_DAYS: u32 = 30;

/// `GET /grid/operators/{wallet}/earnings`.
#[utoipa::path(
    get, path = "/grid/operators/{wallet}/earnings", tag = "operator",
    params(
        ("wallet" = String, Path, description = "The operator's wallet."),
        ("days" = Option<u32>, Query, description = "Days covered, today included: 1 to 366, 30 by default.", minimum = 1, maximum = 366),
    ),
    responses(
        (status = 200, description = "What the wallet earned per UTC day.", body = sgl_protocol::api::operator::OperatorEarnings),
        (status = 400, description = "`days` is outside 1..=366.", body = sgl_protocol::api::error::ErrorBody),
    ),
)]
pub(super) async fn earnings(
    State(state): State<AppState>,
    Path(wallet): Path<String>,
    Query(query): Query<EarningsQuery>,
) -> ApiResult<AppJson<OperatorEarnings>> {
    Ok(AppJson(earnings::daily(&state, &wallet, query.days.unwrap_or(DEFAULT_DAYS)).await?))
}

/// The query of `GET /grid/operators/{wallet}/payouts`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PayoutsQuery {
    /// The most payouts to list (1 to 500; 50 by default).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `GET /grid/operators/{wallet}/payouts`.
#[utoipa::path(
    get, path = "/grid/operators/{wallet}/payouts", tag = "operator",
    params(("wallet" = String, Path, description = "The operator's wallet."), PayoutsQuery),
    responses(
        (status = 200, description = "The wallet's payouts on the grid's chain, newest first: queued, sending or paid (with the batch's transaction). Empty on a grid without a chain, whose payouts are paid at once.", body = sgl_protocol::api::operator::PayoutList),
        (status = 400, description = "A limit that is not a number from 1 to 500.", body = sgl_protocol::api::error::ErrorBody),
    ),
)]
pub(super) async fn payouts(
    State(state): State<AppState>,
    Path(wallet): Path<String>,
    query: Result<Query<PayoutsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<AppJson<PayoutList>> {
    let Query(query) = query.map_err(|e| ApiError::bad_param("limit", e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_param("limit", "must be a number from 1 to 500"));
    }
    Ok(AppJson(crate::chain::payouts::list(&state, &wallet, i64::from(limit)).await?))
}
