//! A caller's account: the credit balance and the API keys of its account (ours, documented in
//! `docs/protocol.md`). A key created here joins the calling key's account and may take part of
//! its credits; any live key of an account lists and revokes the others.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use sgl_grid_store::api_keys::{ApiKeyRecord, NewApiKey};
use sgl_grid_store::ledger::{Account, NewTransaction, PostError, Posting, TransactionKind};
use sgl_protocol::api::account::{
    CreateKeyRequest, CreatedKey, CreditsBalance, KeyInfo, KeyList, RevokedKey, TopupRequest, TopupResponse,
};
use sgl_protocol::api::error::ErrorCode;
use sgl_protocol::ids::ApiKey;

use crate::error::{ApiError, ApiResult};
use crate::payments::{self, Charge, Paid};
use crate::routes::{AppJson, CallerAuth, MaybeCaller};
use crate::service::pricing::usd_to_micros;
use crate::service::{rfc3339, secrets};
use crate::state::AppState;

/// Longest key label.
const MAX_LABEL: usize = 100;
/// Most keys in one account.
const MAX_KEYS: usize = 100;

async fn credits(state: &AppState, key_id: i64) -> ApiResult<i64> {
    Ok(state.store().balance(&Account::Credits { api_key_id: key_id }).await?)
}

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
    let micros = credits(&state, key.id).await?;
    Ok(AppJson(CreditsBalance { api_key_id: key.id, balance_micros: micros, balance_usd: micros as f64 / 1e6 }))
}

async fn info(state: &AppState, key: &ApiKeyRecord) -> ApiResult<KeyInfo> {
    Ok(KeyInfo {
        id: key.id,
        prefix: key.prefix.clone(),
        label: key.label.clone(),
        created_at: rfc3339::format(key.created_at),
        revoked: key.revoked_at.is_some(),
        credits_micros: credits(state, key.id).await?,
    })
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
    let now = state.now_ms();
    let root = &paid.key;
    let (target, secret, amount) = match caller {
        Some(key) => (key, None, paid.credited_micros),
        None => {
            let secret = secrets::api_key();
            let prefix: String = secret.chars().take(10).collect();
            let new_key = NewApiKey {
                key_hash: &secrets::hash(&secret),
                prefix: &prefix,
                label: "top-up",
                wallet: root.wallet.as_deref(),
                account_id: Some(root.id),
            };
            let record = state.store().create_api_key(&new_key, now).await?;
            let whole = credits(state, root.id).await?;
            (record, Some(secret), whole)
        }
    };
    if target.id != root.id && amount > 0 {
        let transfer = NewTransaction {
            idempotency_key: format!("credits:topup:{}:{}", target.id, paid.transaction),
            kind: TransactionKind::CreditsTransfer,
            memo: format!("top-up from wallet {:#x}", paid.payer),
            postings: vec![
                Posting { account: Account::Credits { api_key_id: root.id }, amount: -amount },
                Posting { account: Account::Credits { api_key_id: target.id }, amount },
            ],
        };
        state.store().post(&transfer, now).await.map_err(|e| ApiError::internal(&e))?;
    }
    let balance = credits(state, target.id).await?;
    tracing::info!(target: "sgl::events::account", key_id = target.id, micros = paid.credited_micros, "credits topped up");
    Ok(TopupResponse {
        api_key_id: target.id,
        api_key: secret.map(ApiKey::new),
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
    let mut data = Vec::new();
    for member in state.store().account_api_keys(key.account()).await? {
        data.push(info(&state, &member).await?);
    }
    Ok(AppJson(KeyList { object: "list".into(), data }))
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
    let label = request.label.unwrap_or_default();
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(ApiError::bad_param("label", format!("at most {MAX_LABEL} printable characters")));
    }
    let micros = match request.credits_usd {
        None => 0,
        Some(0.0) => 0,
        Some(usd) => {
            usd_to_micros(usd).ok_or_else(|| ApiError::bad_param("credits_usd", "must be a positive amount"))?
        }
    };
    if state.store().account_api_keys(key.account()).await?.len() >= MAX_KEYS {
        return Err(ApiError::conflict(format!("an account holds at most {MAX_KEYS} keys")));
    }
    let secret = secrets::api_key();
    let prefix: String = secret.chars().take(10).collect();
    let new_key = NewApiKey {
        key_hash: &secrets::hash(&secret),
        prefix: &prefix,
        label: &label,
        wallet: key.wallet.as_deref(),
        account_id: Some(key.account()),
    };
    let now = state.now_ms();
    let record = state.store().create_api_key(&new_key, now).await?;
    if micros > 0 {
        let transfer = NewTransaction {
            idempotency_key: format!("credits:transfer:key:{}", record.id),
            kind: TransactionKind::CreditsTransfer,
            memo: format!("from key {} to its new key {}", key.id, record.id),
            postings: vec![
                Posting { account: Account::Credits { api_key_id: key.id }, amount: -micros },
                Posting { account: Account::Credits { api_key_id: record.id }, amount: micros },
            ],
        };
        if let Err(error) = state.store().post(&transfer, now).await {
            // The key must not outlive a transfer that did not happen.
            state.store().revoke_api_key(record.id, now).await?;
            return Err(match error {
                PostError::InsufficientFunds { balance, .. } => ApiError::payment_required(
                    ErrorCode::InsufficientCredits,
                    format!("this key has {balance} micro-dollars of credits, fewer than the {micros} asked for"),
                ),
                other => ApiError::internal(&other),
            });
        }
    }
    tracing::info!(target: "sgl::events::account", key_id = record.id, account = key.account(), "api key created");
    Ok(AppJson(CreatedKey { id: record.id, api_key: ApiKey::new(secret), prefix, label, credits_micros: micros }))
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
    let target = state.store().api_key(id).await?.filter(|target| target.account() == key.account());
    let Some(target) = target else { return Err(ApiError::not_found("no such key in this account")) };
    if target.revoked_at.is_some() {
        return Err(ApiError::conflict("this key is already revoked"));
    }
    state.store().revoke_api_key(target.id, state.now_ms()).await?;
    tracing::info!(target: "sgl::events::account", key_id = target.id, by = key.id, "api key revoked");
    Ok(AppJson(RevokedKey { id: target.id, revoked: true }))
}
