//! A caller's account: the credit balance and the API keys of its account (ours, documented in
//! `docs/protocol.md`). A key created here joins the calling key's account and may take part of
//! its credits; any live key of an account lists and revokes the others.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::account::{
    AccountSnapshot, CreateKeyRequest, CreatedKey, CreditsBalance, KeyInfo, KeyList, MoveCreditsRequest, MovedCredits,
    RevokedKey, TopupRequest, TopupResponse, UpdateKeyRequest, UsageReport, WalletSignIn, WalletSignInRequest,
};

use crate::error::{ApiError, ApiResult};
use crate::payments::{self, Charge, Paid};
use crate::routes::{AppJson, CallerAuth, MaybeCaller};
use crate::service::pricing::usd_to_micros;
use crate::state::AppState;

/// `GET /compute/credits/balance`.
#[utoipa::path(
    get, path = "/compute/credits/balance", tag = "account",
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::account::CreditsBalance),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn balance(
    State(state): State<AppState>,
    CallerAuth(key): CallerAuth,
) -> ApiResult<AppJson<CreditsBalance>> {
    let micros = state.accounts().credits(key.id).await?;
    Ok(AppJson(CreditsBalance { api_key_id: key.id, balance_micros: micros, balance_usd: micros as f64 / 1e6 }))
}

/// Most one top-up may add, in dollars.
const MAX_TOPUP_USD: f64 = 10_000.0;

/// `POST /compute/credits/topup`: paid with x402 in the same request. With an API key, that key
/// is credited; without one, a new key of the payer's wallet account is made and shown once, and
/// it receives the wallet's whole credit (this payment and whatever earlier per-request payments
/// left unspent).
#[utoipa::path(
    post, path = "/compute/credits/topup", tag = "account",
    request_body = sgl_protocol::api::account::TopupRequest,
    responses(
        (status = 200, description = "Credited; without an API key, a new key holding the credits.", body = sgl_protocol::api::account::TopupResponse),
        (status = 400, description = "The amount or network is invalid.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "An unknown or revoked API key.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "The x402 price of this top-up, or a refused payment.", body = sgl_pay::wire::PaymentRequiredV1),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security((), ("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn topup(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    AppJson(request): AppJson<TopupRequest>,
) -> Response {
    match topup_inner(state, caller, headers, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn topup_inner(
    state: AppState,
    caller: Option<ApiKeyRecord>,
    headers: HeaderMap,
    request: TopupRequest,
) -> Result<Response, Response> {
    let fail = |error: ApiError| error.into_response();
    // Both spellings are checked when both are sent, though `amount_usd` wins.
    let in_range = |usd: f64| usd_to_micros(usd).filter(|_| usd <= MAX_TOPUP_USD);
    for (field, usd) in [("amount_usd", request.amount_usd), ("amount", request.amount)] {
        if usd.is_some_and(|usd| in_range(usd).is_none()) {
            return Err(fail(ApiError::bad_param(field, format!("must be above 0 and at most {MAX_TOPUP_USD}"))));
        }
    }
    let (usd, micros) = request
        .dollars()
        .and_then(|usd| in_range(usd).map(|micros| (usd, micros)))
        .ok_or_else(|| fail(ApiError::bad_param("amount_usd", "amount_usd (or amount) is required")))?;
    let Some(payments) = state.payments() else {
        return Err(fail(ApiError::bad_request("this grid takes no payments; ask its operator for credits")));
    };
    if let Some(network) = request.network.as_deref() {
        let ours = &payments.config().network;
        if !ours.is_named(network) {
            let names = ours.v1_name.iter().map(|n| n.to_string()).chain([ours.caip2.to_string()]);
            let supported = names.collect::<Vec<_>>().join(", ");
            return Err(fail(ApiError::bad_param(
                "network",
                format!("network {network:?} is not supported; this grid takes payments on: {supported}"),
            )));
        }
    }
    let description = format!("Credits top-up of ${usd:.2}");
    let charge = Charge::new(micros, &headers, "/compute/credits/topup", &description);
    let paid = payments::take(&state, &headers, &charge).await?;
    let result = credit_topup(&state, caller, &paid).await;
    Ok(paid.stamp(match result {
        Ok(response) => AppJson(response).into_response(),
        Err(error) => error.into_response(),
    }))
}

async fn credit_topup(state: &AppState, caller: Option<ApiKeyRecord>, paid: &Paid) -> ApiResult<TopupResponse> {
    let accounts = state.accounts();
    let (target, secret) = accounts.land_topup(&paid.key, caller, paid.credited_micros, &paid.transaction).await?;
    let balance = accounts.credits(target.id).await?;
    tracing::info!(target: "sgl::events::account", key_id = target.id, micros = paid.credited_micros, "credits topped up");
    Ok(TopupResponse {
        api_key_id: target.id,
        api_key: secret,
        credited_micros: paid.credited_micros,
        balance_micros: balance,
        balance_usd: balance as f64 / 1e6,
        payer: format!("{:#x}", paid.payer),
    })
}

/// `GET /v1/keys`.
#[utoipa::path(
    get, path = "/v1/keys", tag = "account",
    responses(
        (status = 200, description = "Every key of the caller's account.", body = sgl_protocol::api::account::KeyList),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn list(State(state): State<AppState>, CallerAuth(key): CallerAuth) -> ApiResult<AppJson<KeyList>> {
    Ok(AppJson(KeyList { object: "list".into(), data: state.accounts().list(&key).await? }))
}

/// `POST /v1/keys`.
#[utoipa::path(
    post, path = "/v1/keys", tag = "account",
    request_body = sgl_protocol::api::account::CreateKeyRequest,
    responses(
        (status = 200, description = "The new key, shown once.", body = sgl_protocol::api::account::CreatedKey),
        (status = 400, description = "The label or amount is invalid.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "The credits to move exceed the balance.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The account holds the most keys it may.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    CallerAuth(key): CallerAuth,
    AppJson(request): AppJson<CreateKeyRequest>,
) -> ApiResult<AppJson<CreatedKey>> {
    Ok(AppJson(state.accounts().create(&key, request.label, request.credits_usd).await?))
}

/// `POST /v1/auth/wallet`: a wallet's signature over `sign_in_message` for the host this request
/// was sent to (its `Host` header) gets a key of the wallet's account that expires in 12 hours.
#[utoipa::path(
    post, path = "/v1/auth/wallet", tag = "account",
    request_body = sgl_protocol::api::account::WalletSignInRequest,
    responses(
        (status = 200, description = "Signed in: a new key of the wallet's account, shown once.", body = sgl_protocol::api::account::WalletSignIn),
        (status = 400, description = "Not a sign-in, a bad nonce, a time off by more than five minutes, or a signature that does not verify.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The nonce was used before.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(()),
)]
pub(super) async fn wallet_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(request): AppJson<WalletSignInRequest>,
) -> ApiResult<AppJson<WalletSignIn>> {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    Ok(AppJson(state.accounts().wallet_sign_in(host, request).await?))
}

/// `DELETE /v1/keys/{id}`.
#[utoipa::path(
    delete, path = "/v1/keys/{id}", tag = "account",
    params(("id" = i64, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::account::RevokedKey),
        (status = 400, description = "The id is not an integer.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such key in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The key is already revoked.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    CallerAuth(key): CallerAuth,
    Path(id): Path<i64>,
) -> ApiResult<AppJson<RevokedKey>> {
    let revoked = state.accounts().revoke(&key, id).await?;
    crate::cluster::forget_key(&state, revoked.id);
    Ok(AppJson(revoked))
}

/// `PATCH /v1/keys/{id}`.
#[utoipa::path(
    patch, path = "/v1/keys/{id}", tag = "account",
    params(("id" = i64, Path, description = "The key's id.")),
    request_body = sgl_protocol::api::account::UpdateKeyRequest,
    responses(
        (status = 200, description = "The key, relabelled.", body = sgl_protocol::api::account::KeyInfo),
        (status = 400, description = "The id is not an integer, or the label is invalid.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such key in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn relabel(
    State(state): State<AppState>,
    CallerAuth(key): CallerAuth,
    Path(id): Path<i64>,
    AppJson(request): AppJson<UpdateKeyRequest>,
) -> ApiResult<AppJson<KeyInfo>> {
    Ok(AppJson(state.accounts().relabel(&key, id, &request.label).await?))
}

/// `POST /v1/keys/transfer`.
#[utoipa::path(
    post, path = "/v1/keys/transfer", tag = "account",
    request_body = sgl_protocol::api::account::MoveCreditsRequest,
    responses(
        (status = 200, description = "Moved; both keys' credits now.", body = sgl_protocol::api::account::MovedCredits),
        (status = 400, description = "The amount is invalid, or both ids name one key.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "The giving key holds less than the amount.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "A key is not in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "A key is revoked.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn move_credits(
    State(state): State<AppState>,
    CallerAuth(key): CallerAuth,
    AppJson(request): AppJson<MoveCreditsRequest>,
) -> ApiResult<AppJson<MovedCredits>> {
    Ok(AppJson(state.accounts().move_credits(&key, &request).await?))
}

/// The query of `GET /v1/usage`.
#[derive(Debug, Deserialize)]
pub(super) struct UsageQuery {
    days: Option<u32>,
}

/// Days `GET /v1/usage` covers without `days`.
const DEFAULT_USAGE_DAYS: u32 = 30;

/// `GET /v1/usage`.
#[utoipa::path(
    get, path = "/v1/usage", tag = "account",
    params(("days" = Option<u32>, Query, description = "Days covered, today included: 1 to 366, 30 by default.", minimum = 1, maximum = 366)),
    responses(
        (status = 200, description = "The account's chat usage per day, key and model.", body = sgl_protocol::api::account::UsageReport),
        (status = 400, description = "`days` is outside 1..=366.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn usage(
    State(state): State<AppState>,
    CallerAuth(key): CallerAuth,
    Query(query): Query<UsageQuery>,
) -> ApiResult<AppJson<UsageReport>> {
    Ok(AppJson(state.accounts().usage(&key, query.days.unwrap_or(DEFAULT_USAGE_DAYS)).await?))
}

/// `GET /v1/account/events`: the balance, keys and 30 days of usage as SSE `snapshot` events,
/// on change.
#[utoipa::path(
    get, path = "/v1/account/events", tag = "account",
    responses(
        (status = 200, description = "SSE: a `snapshot` event (an `AccountSnapshot`'s JSON) whenever it changes.", content_type = "text/event-stream", body = String),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])),
)]
pub(super) async fn events(State(state): State<AppState>, CallerAuth(key): CallerAuth) -> Response {
    crate::routes::live::stream(move || {
        let (state, key) = (state.clone(), key.clone());
        async move {
            let accounts = state.accounts();
            let micros = accounts.credits(key.id).await?;
            Ok(AccountSnapshot {
                balance: CreditsBalance {
                    api_key_id: key.id,
                    balance_micros: micros,
                    balance_usd: micros as f64 / 1e6,
                },
                keys: KeyList { object: "list".into(), data: accounts.list(&key).await? },
                usage: accounts.usage(&key, DEFAULT_USAGE_DAYS).await?,
            })
        }
    })
}
