//! The grid operator's overview (ours, `docs/protocol.md` §6): `GET /grid/admin/overview` and
//! its live form, both behind the admin token; the figures come from
//! [`crate::service::admin`].

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::Response;
use sgl_protocol::api::admin::{AdminOverview, HEADER_ADMIN_TOKEN};

use crate::error::{ApiError, ApiResult};
use crate::routes::{AppJson, live};
use crate::service::admin::Admin;
use crate::state::AppState;

/// A request carrying the grid's admin token in `X-Admin-Token` or `Authorization: Bearer`.
#[derive(Debug)]
pub(super) struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let token =
            header(HEADER_ADMIN_TOKEN).or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")));
        Admin::authorize(state, token)?;
        Ok(Self)
    }
}

/// `GET /grid/admin/overview`.
#[utoipa::path(
    get, path = "/grid/admin/overview", tag = "admin",
    responses(
        (status = 200, description = "Capacity, jobs, latency, the ledger audit, tamper events and slashes.", body = sgl_protocol::api::admin::AdminOverview),
        (status = 401, description = "No admin token, or a wrong one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 403, description = "Sent from another site's page.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "This grid has no admin token configured.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("admin_token" = [])),
)]
pub(super) async fn overview(State(state): State<AppState>, _: AdminAuth) -> ApiResult<AppJson<AdminOverview>> {
    Ok(AppJson(state.admin().overview(&state).await?))
}

/// `GET /grid/admin/overview/events`: the overview as SSE `snapshot` events, on change.
#[utoipa::path(
    get, path = "/grid/admin/overview/events", tag = "admin",
    responses(
        (status = 200, description = "SSE: a `snapshot` event (the overview's JSON) whenever it changes.", content_type = "text/event-stream", body = String),
        (status = 401, description = "No admin token, or a wrong one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 403, description = "Sent from another site's page.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "This grid has no admin token configured.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("admin_token" = [])),
)]
pub(super) async fn overview_events(State(state): State<AppState>, _: AdminAuth) -> Response {
    live::stream(move || {
        let state = state.clone();
        async move { Ok(state.admin().overview(&state).await?) }
    })
}
