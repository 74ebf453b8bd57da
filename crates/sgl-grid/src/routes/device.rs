//! Device-authorization login (sgl-protocol.md §1.1): the node starts a login and polls; the
//! operator approves the printed user code by signing with the staked wallet (ours:
//! `POST /grid/auth/device/approve`), or the grid operator approves it with
//! `sgl-grid admin approve-device`. Approval mints the single-use registration code the node
//! then registers with.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use serde::Deserialize;
use serde_json::{Value, json};
use sgl_grid_store::Store;
use sgl_grid_store::devices::{ApproveDeviceError, DeviceLoginState};
use sgl_protocol::api::node::{
    DeviceApproveRequest, DevicePollRequest, DevicePollResponse, DevicePollStatus, DeviceStartResponse,
    device_approval_message,
};
use sgl_protocol::identity::NodePublicKey;
use sgl_protocol::ids::RegistrationCode;

use crate::error::{ApiError, ApiResult};
use crate::routes::{AppJson, ClientAddress};
use crate::service::secrets;
use crate::state::AppState;

/// How long a device login waits for approval.
pub const DEVICE_LOGIN_TTL_MS: i64 = 10 * 60 * 1000;
/// Characters of user codes: no 0/O, 1/I/L, easy to read aloud.
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn user_code() -> String {
    let bytes = secrets::random_bytes(8);
    let chars: String =
        bytes.iter().map(|b| char::from(USER_CODE_ALPHABET[usize::from(*b) % USER_CODE_ALPHABET.len()])).collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// How long an expired login stays, so that a late poll still reads "expired".
const EXPIRED_LOGIN_KEPT_MS: i64 = 60 * 60 * 1000;

/// Deletes device logins an hour past their expiry, at most once a minute (the reaper calls
/// it every few seconds).
pub async fn purge_expired(state: &AppState) -> Result<(), sgl_grid_store::StoreError> {
    let now = state.now_ms();
    if state.housekeeping_due(now, 60_000) {
        let purged = state.store().purge_device_logins(now - EXPIRED_LOGIN_KEPT_MS).await?;
        if purged > 0 {
            tracing::info!(target: "sgl::events::device", purged, "expired device logins deleted");
        }
    }
    Ok(())
}

/// `POST /grid/auth/device/start`.
#[utoipa::path(
    post, path = "/grid/auth/device/start", tag = "node",
    responses(
        (status = 200, description = "A device login: show `user_code`, poll with `device_code`.", body = sgl_protocol::api::node::DeviceStartResponse),
        (status = 429, description = "Too many logins from this address; see `Retry-After`.", body = sgl_protocol::api::error::ErrorBody),
    ),
)]
pub(super) async fn start(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
) -> ApiResult<AppJson<DeviceStartResponse>> {
    let now = state.now_ms();
    state.device_starts().check(address, now)?;
    let device_code = secrets::random_b58(32);
    let user_code = user_code();
    state.store().create_device_login(&secrets::hash(&device_code), &user_code, now, now + DEVICE_LOGIN_TTL_MS).await?;
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    Ok(AppJson(DeviceStartResponse {
        device_code,
        verify_url: format!("http://{host}/grid/auth/device/verify?user_code={user_code}"),
        user_code,
        interval: 3,
        expires_in: u64::try_from(DEVICE_LOGIN_TTL_MS / 1000).unwrap_or(600),
    }))
}

/// `POST /grid/auth/device/poll`.
#[utoipa::path(
    post, path = "/grid/auth/device/poll", tag = "node",
    request_body = sgl_protocol::api::node::DevicePollRequest,
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::node::DevicePollResponse),
        (status = 404, description = "Unknown device code.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The login expired meanwhile.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors,
    ),
)]
pub(super) async fn poll(
    State(state): State<AppState>,
    AppJson(request): AppJson<DevicePollRequest>,
) -> ApiResult<AppJson<DevicePollResponse>> {
    let device_hash = secrets::hash(&request.device_code);
    let now = state.now_ms();
    let login = state.store().poll_device_login(&device_hash, now).await?;
    let response = match login.ok_or_else(|| ApiError::not_found("unknown device_code"))? {
        DeviceLoginState::Pending => {
            DevicePollResponse { status: DevicePollStatus::Pending, registration_code: None, wallet_address: None }
        }
        DeviceLoginState::Expired => {
            DevicePollResponse { status: DevicePollStatus::Expired, registration_code: None, wallet_address: None }
        }
        DeviceLoginState::Approved { wallet } => {
            // Minted now and handed over once; the store keeps only its hash.
            let code = secrets::registration_code();
            if !state.store().issue_device_registration_code(&device_hash, &secrets::hash(&code), now).await? {
                return Err(ApiError::conflict("the login expired meanwhile; run sgl login again"));
            }
            DevicePollResponse {
                status: DevicePollStatus::Approved,
                registration_code: Some(RegistrationCode::new(code)),
                wallet_address: Some(wallet),
            }
        }
    };
    Ok(AppJson(response))
}

/// `POST /grid/auth/device/approve`: the wallet's signature proves its owner approves.
#[utoipa::path(
    post, path = "/grid/auth/device/approve", tag = "node",
    request_body = sgl_protocol::api::node::DeviceApproveRequest,
    responses(
        (status = 200, description = "Approved.", body = Object),
        (status = 404, description = "Unknown user code.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The login expired or was already approved.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors,
    ),
)]
pub(super) async fn approve(
    State(state): State<AppState>,
    AppJson(request): AppJson<DeviceApproveRequest>,
) -> ApiResult<AppJson<Value>> {
    let wallet_key = NodePublicKey::from_b58(&request.wallet_address).map_err(|_| {
        ApiError::bad_param("wallet_address", "wallet_address must be a base58 ed25519 (Solana) public key")
    })?;
    wallet_key
        .verify_b58(device_approval_message(&request.user_code, &request.wallet_address).as_bytes(), &request.signature)
        .map_err(|_| ApiError::invalid_signature("the wallet signature over the approval message does not verify"))?;
    approve_login(state.store(), &request.user_code, &request.wallet_address, state.now_ms()).await.map_err(
        |e| match e {
            ApproveDeviceError::Store(store) => ApiError::from(store),
            ApproveDeviceError::Unknown => ApiError::not_found("unknown user code"),
            refused => ApiError::conflict(refused.to_string()),
        },
    )?;
    Ok(AppJson(json!({"approved": true, "user_code": request.user_code, "wallet_address": request.wallet_address})))
}

/// Approves the login for `wallet`; its node receives a code bound to that wallet on its next
/// poll.
pub async fn approve_login(
    store: &Store,
    user_code: &str,
    wallet: &str,
    now_ms: i64,
) -> Result<(), ApproveDeviceError> {
    store.approve_device_login(user_code, wallet, now_ms).await
}

#[derive(Debug, Deserialize)]
pub(super) struct VerifyQuery {
    user_code: Option<String>,
}

/// `GET /grid/auth/device/verify`: what the node opens in the operator's browser.
#[utoipa::path(
    get, path = "/grid/auth/device/verify", tag = "node",
    params(("user_code" = Option<String>, Query, description = "The code the node showed.")),
    responses(
        (status = 200, description = "The page where an operator approves a login with their wallet.", content_type = "text/html", body = String),
    ),
)]
pub(super) async fn verify_page(Query(query): Query<VerifyQuery>) -> Html<String> {
    let code: String = query
        .user_code
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(9)
        .collect();
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>Approve node {code}</title>\
         <h1>Approve node login <code>{code}</code></h1>\
         <p>Sign the message <code>sgl-device-approve:v1:{code}:&lt;your wallet&gt;</code> with your staked Solana wallet \
         and POST <code>{{\"user_code\", \"wallet_address\", \"signature\"}}</code> to <code>/grid/auth/device/approve</code>, \
         or ask the grid operator to run <code>sgl-grid admin approve-device --user-code {code} --wallet &lt;wallet&gt;</code>.</p>"
    ))
}
