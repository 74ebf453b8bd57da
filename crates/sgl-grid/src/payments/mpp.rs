//! MPP on the same priced routes as x402: the 402 also carries a `WWW-Authenticate: Payment`
//! challenge (method `evm`, intent `charge`, EIP-3009 `authorization` credentials), and a retry
//! with `Authorization: Payment …` is verified against the challenge it echoes (bound to this
//! grid by an HMAC whose key every replica shares through the database), settled in the grid's
//! own ledger and credited to the payer's wallet account like an x402 payment, answered with a
//! `Payment-Receipt`.
//!
//! Offered only when the grid settles in its own ledger: remote x402 facilitators do not settle
//! MPP credentials.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sgl_pay::mpp::{
    MppConfig, MppSettlement, PROBLEM_CONTENT_TYPE, ProblemDetails, parse_authorization, settle_payment,
    verify_credential,
};

use sgl_pay::facilitator::{Clock as _, SystemClock};

use super::{Charge, Paid, Payments, payment_required};
use crate::error::ApiError;
use crate::service::secrets;
use crate::state::AppState;

/// The realm of this grid's challenges.
const REALM: &str = "sgl-grid";
/// The shared setting holding the challenge-binding key (hex).
const SECRET_SETTING: &str = "mpp_challenge_hmac_key";

/// Whether an `Authorization` value is an MPP credential (`Payment …`, scheme in any case).
pub(super) fn is_payment_credential(value: &str) -> bool {
    value.trim_start().get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("payment "))
}

/// The MPP configuration, made on first use; `None` with a remote facilitator or when the
/// shared key cannot be read (logged).
async fn config(payments: &Payments) -> Option<&MppConfig> {
    payments.facilitator().local()?;
    let made = payments
        .mpp
        .get_or_try_init(|| async {
            let candidate = alloy_primitives::hex::encode(secrets::random_bytes(32));
            let stored = payments.store.setting_or_insert(SECRET_SETTING, &candidate).await?;
            let mut secret = [0u8; 32];
            alloy_primitives::hex::decode_to_slice(stored.trim(), &mut secret).map_err(|_| ConfigFailure::BadSecret)?;
            let network = payments.config.network.clone();
            Ok::<_, ConfigFailure>(MppConfig::new(REALM, secret, network, payments.config.pay_to)?)
        })
        .await;
    made.inspect_err(|error| tracing::error!(%error, "MPP is unavailable")).ok()
}

#[derive(Debug, thiserror::Error)]
enum ConfigFailure {
    #[error(transparent)]
    Store(#[from] sgl_grid_store::StoreError),
    #[error("the stored MPP key is not 32 bytes of hex")]
    BadSecret,
    #[error(transparent)]
    Config(#[from] sgl_pay::mpp::MppConfigError),
}

/// Adds a challenge for `charge` to a 402 `response`.
pub(super) async fn challenge(payments: &Payments, charge: &Charge, response: &mut Response) {
    let Some(config) = config(payments).await else { return };
    let amount = payments.quote(charge).amount;
    let challenge =
        config.issue_challenge(amount, charge.resource.description.as_deref(), SystemClock.now_unix_seconds());
    if let Ok(value) = HeaderValue::from_str(&challenge.www_authenticate()) {
        response.headers_mut().append("www-authenticate", value);
    }
}

/// A refused credential: the problem, with a fresh challenge (and fresh x402 requirements).
async fn refused(payments: &Payments, charge: &Charge, problem: ProblemDetails) -> Response {
    tracing::info!(target: "sgl::events::payment", problem = %problem.type_uri, detail = %problem.detail, "MPP credential refused");
    let fresh = payment_required(payments, charge, Some(&problem.detail)).await;
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::PAYMENT_REQUIRED);
    let mut response = (status, axum::Json(problem)).into_response();
    for (name, value) in fresh.headers() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            response.headers_mut().append(name, value.clone());
        }
    }
    response.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    response
}

/// Takes the MPP credential `text` for `charge`.
pub(super) async fn take(state: &AppState, payments: &Payments, text: &str, charge: &Charge) -> Result<Paid, Response> {
    let Some(config) = config(payments).await else {
        return Err(ApiError::bad_request(
            "this grid takes MPP credentials only when it settles in its own ledger; pay with x402",
        )
        .into_response());
    };
    let credential = match parse_authorization(text) {
        Ok(credential) => credential,
        Err(error) => return Err(refused(payments, charge, error.problem()).await),
    };
    let amount = payments.quote(charge).amount;
    let now = SystemClock.now_unix_seconds();
    let verified = match verify_credential(config, &credential, amount, now) {
        Ok(verified) => verified,
        Err(error) => return Err(refused(payments, charge, error.problem()).await),
    };
    let Some(local) = payments.facilitator().local() else {
        return Err(ApiError::internal(&"MPP without the grid's own ledger").into_response());
    };
    // Settled and credited to the payer's wallet account in one transaction (`GridLedger`).
    let settlement = match settle_payment(local.ledger(), &verified, now).await {
        Ok(settlement) => settlement,
        Err(error) => return Err(ApiError::internal(&error).into_response()),
    };
    let receipt = match settlement {
        MppSettlement::Settled(receipt) => receipt,
        other => {
            let problem = other.problem().unwrap_or_else(|| ProblemDetails::payment_required(REALM));
            return Err(refused(payments, charge, problem).await);
        }
    };
    let key = super::wallet_key(&payments.store, verified.payer, state.now_ms())
        .await
        .map_err(|e| ApiError::internal(&e).into_response())?;
    let value = HeaderValue::from_str(&receipt.header_value()).map_err(|e| ApiError::internal(&e).into_response())?;
    Ok(Paid {
        key,
        payer: verified.payer,
        credited_micros: charge.micros,
        transaction: format!("{:#x}", verified.digest),
        receipt: (HeaderName::from_static("payment-receipt"), value),
    })
}
