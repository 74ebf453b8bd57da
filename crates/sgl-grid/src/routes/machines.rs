//! Machines rented by the hour over HTTP (`/compute/...`, seed-compatible paths;
//! `docs/protocol.md` §16). Handlers find who is asking (an API key, or a wallet's signature
//! on the request), call [`crate::service::machines`] and map; payment without credits goes
//! through [`crate::payments::take`] as for chat and jobs.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_protocol::api::machines::{
    ExtendRequest, MachineList, MachinePassword, MachineView, PlanList, ProvisionRequest, RegionList, ResizeRequest,
    machine_action, wallet_headers,
};

use crate::error::{ApiError, ApiResult};
use crate::payments::{self, Charge};
use crate::routes::{AppJson, CallerAuth, MaybeCaller};
use crate::service::machines::MachineError;
use crate::service::machines::wallet::WalletSigned;
use crate::state::AppState;

/// Who manages a machine: the account, and the key whose credits pay.
#[derive(Debug, Clone, Copy)]
struct Owner {
    account: i64,
    payer_key: i64,
    by_key: bool,
}

/// The owner from the API key, or else from the wallet headers (`None`: a wallet with no
/// account, which owns nothing).
async fn owner(
    state: &AppState,
    caller: Option<&ApiKeyRecord>,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> ApiResult<Option<Owner>> {
    if let Some(key) = caller {
        return Ok(Some(Owner { account: key.account(), payer_key: key.id, by_key: true }));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(wallet) = header(wallet_headers::WALLET) else {
        return Err(ApiError::invalid_api_key(
            "send an API key (X-API-Key or Authorization: Bearer) or a wallet signature (X-Wallet, X-Wallet-Nonce, \
             X-Wallet-Signed-At, X-Wallet-Signature)",
        ));
    };
    let signed_at = header(wallet_headers::SIGNED_AT).and_then(|text| text.parse().ok());
    let (Some(nonce), Some(signed_at), Some(signature)) =
        (header(wallet_headers::NONCE), signed_at, header(wallet_headers::SIGNATURE))
    else {
        return Err(ApiError::bad_param(
            "x-wallet-signature",
            "a wallet request needs X-Wallet-Nonce, X-Wallet-Signed-At (Unix seconds) and X-Wallet-Signature",
        ));
    };
    let signed = WalletSigned { wallet, nonce, signed_at, signature };
    let action = machine_action(method.as_str(), uri.path(), body);
    let account = state.machines().wallet_account(&signed, &action).await?;
    Ok(account.map(|account| Owner { account, payer_key: account, by_key: false }))
}

/// The owner, or 404 for a wallet without an account (it owns no machine).
async fn owner_of_machine(
    state: &AppState,
    caller: Option<&ApiKeyRecord>,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> ApiResult<Owner> {
    owner(state, caller, headers, method, uri, body).await?.ok_or_else(|| MachineError::NotFound.into())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))
}

/// `GET /compute/plans`.
#[utoipa::path(get, path = "/compute/plans", tag = "machines",
    responses((status = 200, description = "Every plan on sale, cheapest first.", body = PlanList)))]
pub(super) async fn plans(State(state): State<AppState>) -> AppJson<PlanList> {
    let plans = state.machines().plans().await.iter().map(|plan| plan.to_wire()).collect();
    AppJson(PlanList { plans })
}

/// `GET /compute/regions`.
#[utoipa::path(get, path = "/compute/regions", tag = "machines",
    responses((status = 200, description = "Every region machines are sold in.", body = RegionList)))]
pub(super) async fn regions(State(state): State<AppState>) -> AppJson<RegionList> {
    AppJson(RegionList { regions: state.machines().regions().await })
}

/// `POST /compute/provision`.
#[utoipa::path(post, path = "/compute/provision", tag = "machines", request_body = ProvisionRequest,
    responses(
        (status = 200, description = "Paid for and being made (`pending`); poll it until `active`.", body = MachineView),
        (status = 400, description = "A bad plan, region, duration, label or SSH key.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "An unknown API key, or use_credits without one.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "Credits short, or the x402 / MPP price.", body = sgl_protocol::api::error::ErrorBody),
        (status = 413, description = "The body is larger than the grid's limit.", body = sgl_protocol::api::error::ErrorBody),
        (status = 415, description = "The body was not sent as JSON.", body = sgl_protocol::api::error::ErrorBody),
        (status = 503, description = "No capacity for this machine now; nothing was charged.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security((), ("api_key" = []), ("x_api_key" = [])))]
pub(super) async fn provision(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    AppJson(request): AppJson<ProvisionRequest>,
) -> Response {
    match provision_inner(&state, caller, &headers, &request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn provision_inner(
    state: &AppState,
    caller: Option<ApiKeyRecord>,
    headers: &HeaderMap,
    request: &ProvisionRequest,
) -> Result<Response, Response> {
    let fail = |error: ApiError| error.into_response();
    let credits = request.use_credits.unwrap_or(caller.is_some());
    if credits && caller.is_none() {
        return Err(fail(ApiError::invalid_api_key("use_credits needs an API key; without one, pay with x402 or MPP")));
    }
    let order = state.machines().order(request).await.map_err(|e| fail(e.into()))?;
    let (payer, paid) = match caller {
        Some(key) if credits => (key, None),
        _ => {
            let description = format!("{} h of machine {} in {}", order.hours.get(), order.plan.plan.id, order.region);
            let charge = Charge::new(order.price_micros, headers, "/compute/provision", &description);
            let paid = payments::take(state, headers, &charge).await?;
            (paid.key.clone(), Some(paid))
        }
    };
    let machine = state.machines().provision(&order, &payer).await.map_err(|e| fail(e.into()))?;
    let mut view = state.machines().view(&machine);
    if paid.is_some() {
        match state.accounts().create(&payer, Some(format!("machine {}", machine.id)), None).await {
            Ok(created) => view.management_api_key = Some(created.api_key),
            Err(error) => tracing::warn!(%error, machine = %machine.id, "no management key for a paid machine"),
        }
    }
    let response = AppJson(view).into_response();
    Ok(match paid {
        Some(paid) => paid.stamp(response),
        None => response,
    })
}

/// `GET /compute/instances`.
#[utoipa::path(get, path = "/compute/instances", tag = "machines",
    responses(
        (status = 200, description = "The account's machines, newest first (at most 100).", body = MachineList),
        (status = 400, description = "Incomplete or malformed wallet signature headers.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "A wallet nonce used before.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "Neither an API key nor a wallet signature.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<AppJson<MachineList>> {
    match owner(&state, caller.as_ref(), &headers, &method, &uri, b"").await? {
        Some(owner) => Ok(AppJson(state.machines().list(owner.account).await?)),
        None => Ok(AppJson(MachineList { instances: Vec::new() })),
    }
}

/// `GET /compute/instances/events`: the account's machines as SSE `snapshot` events (the list
/// `GET /compute/instances` answers), on change; for the dashboard's machines page.
#[utoipa::path(get, path = "/compute/instances/events", tag = "machines",
    responses(
        (status = 200, description = "SSE: a `snapshot` event (a `MachineList`'s JSON) whenever it changes.", content_type = "text/event-stream", body = String),
        (status = 401, description = "No API key, or an unknown one.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])))]
pub(super) async fn events(State(state): State<AppState>, CallerAuth(key): CallerAuth) -> Response {
    crate::routes::live::stream(move || {
        let (state, account) = (state.clone(), key.account());
        async move { Ok(state.machines().list(account).await?) }
    })
}

/// `GET /compute/instances/{id}`.
#[utoipa::path(get, path = "/compute/instances/{id}", tag = "machines",
    params(("id" = String, Path, description = "The machine's id.")),
    responses(
        (status = 200, description = "The machine with its log.", body = MachineView),
        (status = 400, description = "Incomplete or malformed wallet signature headers.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "A wallet nonce used before.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "Neither an API key nor a wallet signature.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such machine in this account.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])))]
pub(super) async fn show(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<AppJson<MachineView>> {
    let owner = owner_of_machine(&state, caller.as_ref(), &headers, &method, &uri, b"").await?;
    Ok(AppJson(state.machines().show(owner.account, &id).await?))
}

/// `GET /compute/instances/{id}/password`.
#[utoipa::path(get, path = "/compute/instances/{id}/password", tag = "machines",
    params(("id" = String, Path, description = "The machine's id.")),
    responses(
        (status = 200, description = "The one-time root password, shown once.", body = MachinePassword),
        (status = 400, description = "Incomplete or malformed wallet signature headers.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "Neither an API key nor a wallet signature.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such machine in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "Shown already, made with an SSH key, or a wallet nonce used before.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])))]
pub(super) async fn password(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<AppJson<MachinePassword>> {
    let owner = owner_of_machine(&state, caller.as_ref(), &headers, &method, &uri, b"").await?;
    Ok(AppJson(state.machines().password(owner.account, &id).await?))
}

/// `POST /compute/instances/{id}/extend`.
#[utoipa::path(post, path = "/compute/instances/{id}/extend", tag = "machines", request_body = ExtendRequest,
    params(("id" = String, Path, description = "The machine's id.")),
    responses(
        (status = 200, description = "Extended; `expires_at` moved by exactly the hours bought.", body = MachineView),
        (status = 400, description = "Bad hours or JSON.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "Neither an API key nor a wallet signature.", body = sgl_protocol::api::error::ErrorBody),
        (status = 402, description = "Credits short, or the x402 / MPP price.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such machine in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "Pending or ended, or a wallet nonce used before.", body = sgl_protocol::api::error::ErrorBody),
        (status = 503, description = "The provider failed to start an expired machine again; nothing was charged.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])))]
pub(super) async fn extend(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match extend_inner(&state, caller, &method, &uri, &headers, &id, &body).await {
        Ok(response) | Err(response) => response,
    }
}

async fn extend_inner(
    state: &AppState,
    caller: Option<ApiKeyRecord>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<Response, Response> {
    let fail = |error: ApiError| error.into_response();
    let owner = owner_of_machine(state, caller.as_ref(), headers, method, uri, body).await.map_err(fail)?;
    let request: ExtendRequest = parse(body).map_err(fail)?;
    let machines = state.machines();
    let credits = request.use_credits.unwrap_or(owner.by_key);
    let (payer_key, paid) = if credits {
        (owner.payer_key, None)
    } else {
        let price =
            machines.extension_price(owner.account, id, request.extend_hours).await.map_err(|e| fail(e.into()))?;
        let description = format!("{} h more of machine {id}", request.extend_hours);
        let charge = Charge::new(price, headers, uri.path(), &description);
        let paid = payments::take(state, headers, &charge).await?;
        (paid.key.id, Some(paid))
    };
    let machine =
        machines.extend(owner.account, payer_key, id, request.extend_hours).await.map_err(|e| fail(e.into()))?;
    let response = AppJson(machines.view(&machine)).into_response();
    Ok(match paid {
        Some(paid) => paid.stamp(response),
        None => response,
    })
}

/// `POST /compute/instances/{id}/resize`.
#[utoipa::path(post, path = "/compute/instances/{id}/resize", tag = "machines", request_body = ResizeRequest,
    params(("id" = String, Path, description = "The machine's id.")),
    responses(
        (status = 200, description = "Resized; `expires_at` keeps the prepaid value left. Free.", body = MachineView),
        (status = 400, description = "Unknown plan, another backend, a downgrade the backend cannot do, or an unconfirmed disk growth.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "Neither an API key nor a wallet signature.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such machine in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "Not running, too little time would be left, or a wallet nonce used before.", body = sgl_protocol::api::error::ErrorBody),
        (status = 503, description = "The provider failed the resize; nothing changed.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])))]
pub(super) async fn resize(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<AppJson<MachineView>> {
    let owner = owner_of_machine(&state, caller.as_ref(), &headers, &method, &uri, &body).await?;
    let request: ResizeRequest = parse(&body)?;
    let confirm = request.confirm_disk_resize.unwrap_or(false);
    let machine = state.machines().resize(owner.account, &id, &request.plan, confirm).await?;
    Ok(AppJson(state.machines().view(&machine)))
}

/// `DELETE /compute/instances/{id}`.
#[utoipa::path(delete, path = "/compute/instances/{id}", tag = "machines",
    params(("id" = String, Path, description = "The machine's id.")),
    responses(
        (status = 200, description = "Ended by its renter and removed (`destroyed`, or still being removed).", body = MachineView),
        (status = 400, description = "Incomplete or malformed wallet signature headers.", body = sgl_protocol::api::error::ErrorBody),
        (status = 401, description = "Neither an API key nor a wallet signature.", body = sgl_protocol::api::error::ErrorBody),
        (status = 404, description = "No such machine in this account.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "Destroyed already, still being made, or a wallet nonce used before.", body = sgl_protocol::api::error::ErrorBody),
    ),
    security(("api_key" = []), ("x_api_key" = [])))]
pub(super) async fn destroy(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<AppJson<MachineView>> {
    let owner = owner_of_machine(&state, caller.as_ref(), &headers, &method, &uri, b"").await?;
    let machine = state.machines().destroy(owner.account, &id).await?;
    Ok(AppJson(state.machines().view(&machine)))
}
