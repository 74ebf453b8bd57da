//! Paying per request without an API key, with x402 or MPP: the 402 answer for a priced request
//! (a v2 `PAYMENT-REQUIRED` header, a v1 body and, when the grid settles in its own ledger, an
//! MPP `WWW-Authenticate: Payment` challenge), and taking the payment that comes back with the
//! retried request.
//!
//! A payment is settled before any work starts (through the grid's own ledger or a remote
//! facilitator) and lands as credit in the payer's wallet account, whose root key then pays the
//! job through the usual escrow. So a paid request is billed exactly like a keyed one: the
//! node's signed usage is charged, and what the quote did not use stays as credit of the wallet.
//! A payment is used once: its settlement's transaction hash is the idempotency key of the
//! credit, so a replayed header is refused even when a facilitator answers it as a success.

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sgl_grid_store::Store;
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_grid_store::ledger::{PostError, Posted};
use sgl_pay::facilitator::{Clock as _, Facilitator, LocalFacilitator, SystemClock, settle_response};
use sgl_pay::header::{IncomingPayment, PAYMENT_SIGNATURE, X_PAYMENT, encode_header};
use sgl_pay::http_facilitator::{HttpFacilitator, HttpFacilitatorConfigError, HttpFacilitatorError};
use sgl_pay::quote::PaymentQuote;
use sgl_pay::wire::{FacilitatorRequest, ResourceInfo, SettleResponse};

use crate::chain::GridChain;
use crate::chain::settle::{ChainFacilitator, ChainSettleError};
use crate::config::X402Config;
use crate::error::ApiError;
use crate::state::{AppState, SharedClock};

mod ledger;
mod mpp;

pub use self::ledger::GridLedger;
pub(crate) use self::ledger::{payment_credit, payment_reference};

/// The reason a replayed payment is refused with (the spec's name for a used nonce).
pub const REASON_REPLAYED: &str = "invalid_exact_evm_nonce_already_used";

/// Where payments are verified and settled.
#[derive(Debug)]
pub enum GridFacilitator {
    /// The grid's own ledger (no chain): balances funded by `sgl-grid admin faucet`.
    Local(LocalFacilitator<GridLedger>),
    /// A remote facilitator (`--facilitator-url`).
    Http(HttpFacilitator),
    /// The grid's chain (`[chain]`): `transferWithAuthorization` on its USDC.
    Chain(ChainFacilitator),
}

/// The facilitator failed (not the payment).
#[derive(Debug, thiserror::Error)]
pub enum FacilitatorFailure {
    /// The local ledger's database failed.
    #[error(transparent)]
    Store(#[from] sgl_grid_store::StoreError),
    /// The local ledger could not post a payment's credit.
    #[error(transparent)]
    Post(#[from] PostError),
    /// The remote facilitator failed or could not be reached.
    #[error(transparent)]
    Http(#[from] HttpFacilitatorError),
    /// The chain failed or could not be reached.
    #[error(transparent)]
    Chain(#[from] ChainSettleError),
}

impl GridFacilitator {
    async fn settle(&self, request: &FacilitatorRequest) -> Result<SettleResponse, FacilitatorFailure> {
        match self {
            Self::Local(local) => Ok(local.settle(request).await?),
            Self::Chain(chain) => {
                let executed = chain.execute(request, SystemClock.now_unix_seconds()).await?;
                Ok(settle_response(request, &executed))
            }
            Self::Http(remote) => {
                // Settle only what verifies: a remote settle may not check everything again.
                let verified = remote.verify(request).await?;
                if !verified.is_valid {
                    return Ok(SettleResponse {
                        success: false,
                        error_reason: verified.invalid_reason,
                        payer: verified.payer,
                        transaction: String::new(),
                        network: request.required_network().to_owned(),
                        amount: None,
                        extensions: None,
                    });
                }
                Ok(remote.settle(request).await?)
            }
        }
    }

    /// The local facilitator, when the grid settles in its own ledger.
    pub fn local(&self) -> Option<&LocalFacilitator<GridLedger>> {
        match self {
            Self::Local(local) => Some(local),
            Self::Http(_) | Self::Chain(_) => None,
        }
    }
}

/// Per-request payments of one grid.
#[derive(Debug)]
pub struct Payments {
    config: X402Config,
    facilitator: GridFacilitator,
    store: Store,
    mpp: tokio::sync::OnceCell<sgl_pay::mpp::MppConfig>,
}

impl Payments {
    /// Payments as configured: on `chain` when the grid has one (its USDC, to the grid's
    /// signer), else through a remote facilitator when one is named, else in `store`.
    pub fn new(
        mut config: X402Config,
        store: Store,
        clock: SharedClock,
        chain: Option<Arc<GridChain>>,
    ) -> Result<Self, HttpFacilitatorConfigError> {
        let facilitator = match (chain, &config.facilitator_url) {
            (Some(chain), _) => {
                let facilitator = ChainFacilitator::new(chain, store.clone(), clock);
                config.network = facilitator.network().clone();
                config.pay_to = facilitator.pay_to();
                config.facilitator_url = None;
                GridFacilitator::Chain(facilitator)
            }
            (None, Some(url)) => GridFacilitator::Http(HttpFacilitator::new(url)?),
            (None, None) => {
                let units = 10u64.pow(u32::from(config.network.decimals.saturating_sub(6)));
                let ledger = GridLedger::new(store.clone(), config.pay_to, units, clock);
                GridFacilitator::Local(LocalFacilitator::new(ledger, vec![config.network.clone()], SystemClock))
            }
        };
        Ok(Self { config, facilitator, store, mpp: tokio::sync::OnceCell::new() })
    }

    /// The configuration.
    pub fn config(&self) -> &X402Config {
        &self.config
    }

    /// Where payments settle.
    pub fn facilitator(&self) -> &GridFacilitator {
        &self.facilitator
    }

    /// Atomic units of the payment token per micro-dollar (1 for 6-decimal stablecoins).
    pub fn units_per_micro(&self) -> u64 {
        10u64.pow(u32::from(self.config.network.decimals.saturating_sub(6)))
    }

    /// `micros` in the payment token's atomic units.
    pub fn atomic_units(&self, micros: i64) -> U256 {
        U256::from(u64::try_from(micros).unwrap_or(0)) * U256::from(self.units_per_micro())
    }

    /// What `charge` costs in this network's atomic units.
    pub fn quote(&self, charge: &Charge) -> PaymentQuote {
        PaymentQuote {
            amount: self.atomic_units(charge.micros),
            pay_to: self.config.pay_to,
            network: self.config.network.clone(),
            resource: charge.resource.clone(),
            max_timeout_seconds: self.config.max_timeout_seconds,
        }
    }
}

/// What one request costs.
#[derive(Debug, Clone)]
pub struct Charge {
    /// Micro-dollars.
    pub micros: i64,
    /// What is sold, named in the 402 answer.
    pub resource: ResourceInfo,
}

impl Charge {
    /// A charge for the resource at `path` of this request's host.
    pub fn new(micros: i64, headers: &HeaderMap, path: &str, description: &str) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let host = header("host").unwrap_or("127.0.0.1");
        let scheme = header("x-forwarded-proto").filter(|p| *p == "https").unwrap_or("http");
        let resource = ResourceInfo {
            url: format!("{scheme}://{host}{path}"),
            description: Some(description.to_owned()),
            mime_type: Some("application/json".to_owned()),
        };
        Self { micros: micros.max(1), resource }
    }
}

/// A payment taken: its credit sits in the payer's wallet account.
#[derive(Debug)]
pub struct Paid {
    /// The root key of the payer's wallet account, which now holds the payment as credit.
    pub key: ApiKeyRecord,
    /// Who paid.
    pub payer: Address,
    /// Micro-dollars credited.
    pub credited_micros: i64,
    /// The settlement's transaction hash, which identifies the payment.
    pub transaction: String,
    /// The settlement header to send back (`PAYMENT-RESPONSE` or `X-PAYMENT-RESPONSE`).
    pub receipt: (HeaderName, HeaderValue),
}

impl Paid {
    /// Adds the settlement header to `response`, whatever became of the request.
    pub fn stamp(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert(self.receipt.0.clone(), self.receipt.1.clone());
        response
    }
}

/// The response headers a browser page must be able to read to pay (CORS `expose-headers`).
pub const EXPOSED_HEADERS: &[&str] =
    &["PAYMENT-REQUIRED", "PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE", "WWW-Authenticate", "Payment-Receipt"];

/// The 402 answer for `charge`: a v2 `PAYMENT-REQUIRED` header and a v1 body, `error` naming
/// why (a refused payment's reason, or that payment is needed), and an MPP challenge when the
/// grid settles in its own ledger.
pub async fn payment_required(payments: &Payments, charge: &Charge, error: Option<&str>) -> Response {
    let quote = payments.quote(charge);
    let dual = match quote.dual_402(error) {
        Ok(dual) => dual,
        Err(error) => return ApiError::internal(&error).into_response(),
    };
    let mut response = (StatusCode::PAYMENT_REQUIRED, axum::Json(&dual.body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&dual.payment_required) {
        response.headers_mut().insert(sgl_pay::header::PAYMENT_REQUIRED, value);
    }
    mpp::challenge(payments, charge, &mut response).await;
    response
}

async fn refused(payments: &Payments, charge: &Charge, payment: &IncomingPayment, settle: &SettleResponse) -> Response {
    let reason = settle.error_reason.as_deref().unwrap_or("invalid_payload");
    let mut response = payment_required(payments, charge, Some(reason)).await;
    if let Ok(Ok(value)) = encode_header(settle).map(|text| HeaderValue::from_str(&text)) {
        response.headers_mut().insert(payment.response_header_name(), value);
    }
    response
}

/// Takes the payment the request carries for `charge` (x402, or MPP in `Authorization:
/// Payment`): settles it, credits the payer's wallet account, and returns that account's key.
/// Every refusal is the finished response: 402 with fresh requirements and the reason, 400 for
/// an unreadable header.
pub async fn take(state: &AppState, headers: &HeaderMap, charge: &Charge) -> Result<Paid, Response> {
    let Some(payments) = state.payments() else {
        return Err(ApiError::bad_request("this grid does not take x402 payments; send an API key").into_response());
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(credential) = header("authorization").filter(|v| mpp::is_payment_credential(v)) {
        return mpp::take(state, payments, credential, charge).await;
    }
    let payment = match IncomingPayment::from_headers(header(PAYMENT_SIGNATURE), header(X_PAYMENT)) {
        Ok(Some(payment)) => payment,
        Ok(None) => return Err(payment_required(payments, charge, None).await),
        Err(error) => {
            return Err(
                ApiError::bad_param("PAYMENT-SIGNATURE", format!("{}: {error}", error.reason())).into_response()
            );
        }
    };
    let quote = payments.quote(charge);
    let Some(request) = quote.facilitator_request(payment.clone()) else {
        return Err(payment_required(payments, charge, Some("invalid_network")).await);
    };
    let (settled, fresh) = match settle(state, payments, &request, charge).await {
        Ok(settled) => settled,
        Err(error) => {
            tracing::error!(%error, "the x402 facilitator failed");
            return Err(ApiError::internal(&error).into_response());
        }
    };
    if !settled.success {
        tracing::info!(target: "sgl::events::payment", reason = ?settled.error_reason, "x402 payment refused");
        return Err(refused(payments, charge, &payment, &settled).await);
    }
    let payer = settled
        .payer
        .as_deref()
        .and_then(|p| p.parse::<Address>().ok())
        .ok_or_else(|| ApiError::internal(&"the facilitator settled without naming the payer").into_response())?;
    if !fresh {
        tracing::info!(target: "sgl::events::payment", payer = %payer, "replayed x402 payment refused");
        let replay = SettleResponse {
            success: false,
            error_reason: Some(REASON_REPLAYED.into()),
            transaction: String::new(),
            amount: None,
            ..settled
        };
        return Err(refused(payments, charge, &payment, &replay).await);
    }
    let key =
        wallet_key(state.store(), payer, state.now_ms()).await.map_err(|e| ApiError::internal(&e).into_response())?;
    let receipt_text = encode_header(&settled).map_err(|e| ApiError::internal(&e).into_response())?;
    let receipt_value = HeaderValue::from_str(&receipt_text).map_err(|e| ApiError::internal(&e).into_response())?;
    let name = if payment.x402_version() == 1 { "x-payment-response" } else { "payment-response" };
    let transaction = settled.transaction.to_lowercase();
    let receipt = (HeaderName::from_static(name), receipt_value);
    Ok(Paid { key, payer, credited_micros: charge.micros, transaction, receipt })
}

/// Settles `request` and credits its payer's wallet account: in the grid's own ledger both in
/// one transaction ([`GridLedger`]); through a remote facilitator, the credit right after its
/// settlement (two systems; the credit's idempotency key is the settlement, so it is made once).
/// Returns the facilitator's answer and whether this payment is new (not a replay).
async fn settle(
    state: &AppState,
    payments: &Payments,
    request: &FacilitatorRequest,
    charge: &Charge,
) -> Result<(SettleResponse, bool), FacilitatorFailure> {
    let remote = match &payments.facilitator {
        GridFacilitator::Local(local) => {
            let executed = local.execute(request, SystemClock.now_unix_seconds()).await?;
            let fresh = executed.as_ref().is_ok_and(|settlement| !settlement.replayed);
            return Ok((settle_response(request, &executed), fresh));
        }
        GridFacilitator::Chain(chain) => {
            // Recorded and credited in one transaction once mined (`ChainFacilitator::execute`).
            let executed = chain.execute(request, SystemClock.now_unix_seconds()).await?;
            let fresh = executed.as_ref().is_ok_and(|settlement| !settlement.replayed);
            return Ok((settle_response(request, &executed), fresh));
        }
        GridFacilitator::Http(_) => payments.facilitator.settle(request).await?,
    };
    let payer = remote.payer.as_deref().and_then(|p| p.parse::<Address>().ok());
    let (true, Some(payer)) = (remote.success, payer) else { return Ok((remote, false)) };
    let reference = payment_reference(&payments.config.network.caip2, &remote.transaction);
    let fresh = credit_wallet(state, payer, charge.micros, &reference).await?.is_some();
    Ok((remote, fresh))
}

/// Credits every settlement the grid's own ledger holds for this grid that was never credited
/// (the grid stopped between settling a payment and crediting it), to the payer's wallet
/// account. Returns how many were credited. Run at start, before serving: a payment being taken
/// at that moment by another replica would be credited here and refused there as a replay
/// (the payer keeps the credit either way).
pub async fn reconcile(state: &AppState) -> Result<usize, PostError> {
    let Some(payments) = state.payments().filter(|p| p.facilitator.local().is_some()) else { return Ok(0) };
    let scale = i64::try_from(payments.units_per_micro()).unwrap_or(i64::MAX);
    let mut credited = 0;
    for settlement in state.store().settlements_to(&format!("{:#x}", payments.config.pay_to)).await? {
        let Ok(payer) = settlement.from.parse::<Address>() else { continue };
        let reference = payment_reference(&settlement.network, &settlement.tx_hash);
        let micros = settlement.amount / scale.max(1);
        if micros > 0 && credit_wallet(state, payer, micros, &reference).await?.is_some() {
            tracing::warn!(target: "sgl::events::payment", payer = %payer, micros, "credited a payment settled before a restart");
            credited += 1;
        }
    }
    Ok(credited)
}

/// Credits `micros` paid by `payer` to its wallet account, once per `reference` (the payment's
/// settlement). `None` when that payment was already credited: a replay.
async fn credit_wallet(
    state: &AppState,
    payer: Address,
    micros: i64,
    reference: &str,
) -> Result<Option<ApiKeyRecord>, PostError> {
    let now = state.now_ms();
    let key = wallet_key(state.store(), payer, now).await?;
    let credit = payment_credit(reference, payer, key.id, micros);
    match state.store().post(&credit, now).await {
        Ok(Posted::Applied(_)) => {
            tracing::info!(target: "sgl::events::payment", payer = %payer, micros, key_id = key.id, "payment credited");
            Ok(Some(key))
        }
        Ok(Posted::AlreadyApplied(_)) | Err(PostError::IdempotencyConflict(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The root key of `payer`'s wallet account, created on its first payment (or sign-in). Its
/// secret is never shown; the wallet gets keys into the account through a top-up.
pub async fn wallet_key(
    store: &Store,
    payer: Address,
    now_ms: i64,
) -> Result<ApiKeyRecord, sgl_grid_store::StoreError> {
    crate::service::accounts::wallet_root(store, &format!("{payer:#x}"), now_ms).await
}
