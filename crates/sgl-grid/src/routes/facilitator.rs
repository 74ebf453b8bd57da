//! The grid's own ledger as an x402 facilitator over HTTP (`POST /x402/facilitator/verify`,
//! `POST /x402/facilitator/settle`, `GET /x402/facilitator/supported`, the shapes of the x402
//! facilitator API), served only with `[x402] serve_facilitator = true` on a grid that settles
//! in its own ledger: other grids (or any x402 server) can then settle against it with
//! `--facilitator-url http://HOST/x402/facilitator`.

use axum::extract::State;
use sgl_pay::facilitator::Facilitator;
use sgl_pay::wire::{FacilitatorRequest, SettleResponse, SupportedResponse, VerifyResponse};

use crate::error::{ApiError, ApiResult};
use crate::routes::AppJson;
use crate::state::AppState;

fn local(state: &AppState) -> ApiResult<&sgl_pay::facilitator::LocalFacilitator<crate::payments::GridLedger>> {
    state
        .payments()
        .filter(|p| p.config().serve_facilitator)
        .and_then(|p| p.facilitator().local())
        .ok_or_else(|| ApiError::not_found("this grid does not serve its ledger as an x402 facilitator"))
}

/// `POST /x402/facilitator/verify`.
#[utoipa::path(
    post, path = "/x402/facilitator/verify", tag = "payments",
    request_body = sgl_pay::wire::FacilitatorRequest,
    responses(
        (status = 200, description = "Success.", body = sgl_pay::wire::VerifyResponse),
        (status = 404, description = "This grid settles through a remote facilitator.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors,
    ),
)]
pub(super) async fn verify(
    State(state): State<AppState>,
    AppJson(request): AppJson<FacilitatorRequest>,
) -> ApiResult<AppJson<VerifyResponse>> {
    Ok(AppJson(local(&state)?.verify(&request).await?))
}

/// `POST /x402/facilitator/settle`.
#[utoipa::path(
    post, path = "/x402/facilitator/settle", tag = "payments",
    request_body = sgl_pay::wire::FacilitatorRequest,
    responses(
        (status = 200, description = "Success.", body = sgl_pay::wire::SettleResponse),
        (status = 404, description = "This grid settles through a remote facilitator.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors,
    ),
)]
pub(super) async fn settle(
    State(state): State<AppState>,
    AppJson(request): AppJson<FacilitatorRequest>,
) -> ApiResult<AppJson<SettleResponse>> {
    let settled = local(&state)?.settle(&request).await?;
    tracing::info!(target: "sgl::events::payment", success = settled.success, reason = ?settled.error_reason, "facilitator settle");
    Ok(AppJson(settled))
}

/// `GET /x402/facilitator/supported`.
#[utoipa::path(
    get, path = "/x402/facilitator/supported", tag = "payments",
    responses(
        (status = 200, description = "Success.", body = sgl_pay::wire::SupportedResponse),
        (status = 404, description = "This grid settles through a remote facilitator.", body = sgl_protocol::api::error::ErrorBody),
    ),
)]
pub(super) async fn supported(State(state): State<AppState>) -> ApiResult<AppJson<SupportedResponse>> {
    Ok(AppJson(local(&state)?.supported().await?))
}
