//! The facilitator seam (`verify`, `settle`, `supported`, as in the x402 facilitator HTTP
//! API) and the local facilitator: no chain, it verifies `exact` EVM payments itself and
//! settles them into a [`PaymentLedger`].
//!
//! A refused payment is not an error: it is a `VerifyResponse` / `SettleResponse` carrying the
//! spec reason string. `Err` means the facilitator itself failed (storage, transport).

#[cfg(test)]
mod tests;

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, U256};

use crate::exact_evm::{VerifiedPayment, VerifyError, verify_exact_evm};
use crate::ledger::{AccountKey, LedgerOutcome, LedgerTransfer, NonceKey, PaymentLedger};
use crate::network::{NetworkConfig, find_network};
use crate::wire::{
    DecimalU256, FacilitatorRequest, SCHEME_EXACT, SettleResponse, SupportedKind, SupportedResponse, VerifyResponse,
};

/// Verifies and settles x402 payments.
pub trait Facilitator: Send + Sync {
    /// The facilitator failed (not the payment).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Checks a payment without moving anything (`POST /verify`).
    fn verify(&self, request: &FacilitatorRequest) -> impl Future<Output = Result<VerifyResponse, Self::Error>> + Send;

    /// Moves the payment (`POST /settle`).
    fn settle(&self, request: &FacilitatorRequest) -> impl Future<Output = Result<SettleResponse, Self::Error>> + Send;

    /// What this facilitator handles (`GET /supported`).
    fn supported(&self) -> impl Future<Output = Result<SupportedResponse, Self::Error>> + Send;
}

/// Where the local facilitator reads the time; a parameter so tests control it.
pub trait Clock: Send + Sync {
    /// Current Unix time in seconds.
    fn now_unix_seconds(&self) -> u64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_seconds(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
    }
}

/// Why the local facilitator refuses a payment. [`PaymentError::reason`] gives the x402 reason
/// string.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The payment itself is invalid.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The authorization's nonce was already used by a different settlement.
    #[error("the authorization's nonce is already used")]
    NonceAlreadyUsed,
    /// The payer's ledger balance is below the amount.
    #[error("balance {balance} is below {value}")]
    InsufficientFunds {
        /// What the payer holds.
        balance: U256,
        /// What the payment moves.
        value: U256,
    },
}

impl PaymentError {
    /// The x402 reason string for this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Verify(error) => error.reason(),
            Self::NonceAlreadyUsed => "invalid_exact_evm_nonce_already_used",
            Self::InsufficientFunds { .. } => "insufficient_funds",
        }
    }
}

/// A settled payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The verified payment.
    pub payment: VerifiedPayment,
    /// Synthetic transaction hash: the authorization's EIP-712 digest.
    pub tx_hash: B256,
    /// `true` when this authorization had already been settled and nothing moved this time.
    /// A server must not deliver the resource twice for one payment.
    pub replayed: bool,
}

/// A facilitator without a chain: checks signatures itself and moves balances in `L`.
#[derive(Debug)]
pub struct LocalFacilitator<L, C = SystemClock> {
    ledger: L,
    networks: Vec<NetworkConfig>,
    clock: C,
}

impl<L: PaymentLedger, C: Clock> LocalFacilitator<L, C> {
    /// A facilitator accepting payments on `networks`, settling into `ledger`.
    pub fn new(ledger: L, networks: Vec<NetworkConfig>, clock: C) -> Self {
        Self { ledger, networks, clock }
    }

    /// The ledger it settles into.
    pub fn ledger(&self) -> &L {
        &self.ledger
    }

    /// Verifies `request` at `now` (Unix seconds): the payment checks, then an unused nonce
    /// and a sufficient balance.
    pub async fn check(
        &self,
        request: &FacilitatorRequest,
        now: u64,
    ) -> Result<Result<VerifiedPayment, PaymentError>, L::Error> {
        let (network, payment) = match self.verify_payment(request, now) {
            Ok(verified) => verified,
            Err(error) => return Ok(Err(error.into())),
        };
        if self.ledger.nonce_use(&nonce_key(network, &payment)).await?.is_some() {
            return Ok(Err(PaymentError::NonceAlreadyUsed));
        }
        let account = AccountKey { network: network.caip2.to_string(), asset: network.asset, address: payment.payer };
        let balance = self.ledger.balance(&account).await?;
        if balance < payment.value {
            return Ok(Err(PaymentError::InsufficientFunds { balance, value: payment.value }));
        }
        Ok(Ok(payment))
    }

    /// Settles `request` at `now`: verifies it again, then applies it to the ledger. Settling
    /// the same authorization twice returns the same transaction hash with `replayed` set; a
    /// different authorization reusing its nonce is refused.
    pub async fn execute(
        &self,
        request: &FacilitatorRequest,
        now: u64,
    ) -> Result<Result<Settlement, PaymentError>, L::Error> {
        let (network, payment) = match self.verify_payment(request, now) {
            Ok(verified) => verified,
            Err(error) => return Ok(Err(error.into())),
        };
        let transfer = LedgerTransfer {
            nonce: nonce_key(network, &payment),
            network: network.caip2.to_string(),
            from: payment.payer,
            to: payment.to,
            value: payment.value,
            tx_hash: payment.digest,
        };
        let replayed = match self.ledger.settle(&transfer).await? {
            LedgerOutcome::Settled => false,
            LedgerOutcome::AlreadySettled => true,
            LedgerOutcome::NonceUsed => return Ok(Err(PaymentError::NonceAlreadyUsed)),
            LedgerOutcome::InsufficientBalance { balance } => {
                return Ok(Err(PaymentError::InsufficientFunds { balance, value: payment.value }));
            }
        };
        Ok(Ok(Settlement { tx_hash: payment.digest, payment, replayed }))
    }

    fn verify_payment(
        &self,
        request: &FacilitatorRequest,
        now: u64,
    ) -> Result<(&NetworkConfig, VerifiedPayment), VerifyError> {
        let required = request.required_network();
        let network = find_network(&self.networks, required)
            .ok_or_else(|| VerifyError::UnsupportedNetwork(required.to_owned()))?;
        Ok((network, verify_exact_evm(request, network, now)?))
    }
}

impl<L: PaymentLedger, C: Clock> Facilitator for LocalFacilitator<L, C> {
    type Error = L::Error;

    async fn verify(&self, request: &FacilitatorRequest) -> Result<VerifyResponse, L::Error> {
        Ok(match self.check(request, self.clock.now_unix_seconds()).await? {
            Ok(payment) => {
                VerifyResponse { is_valid: true, invalid_reason: None, payer: Some(checksum(payment.payer)) }
            }
            Err(error) => VerifyResponse {
                is_valid: false,
                invalid_reason: Some(error.reason().to_owned()),
                payer: claimed_payer(request),
            },
        })
    }

    async fn settle(&self, request: &FacilitatorRequest) -> Result<SettleResponse, L::Error> {
        Ok(settle_response(request, &self.execute(request, self.clock.now_unix_seconds()).await?))
    }

    async fn supported(&self) -> Result<SupportedResponse, L::Error> {
        let kind = |x402_version, network: &str| SupportedKind {
            x402_version,
            scheme: SCHEME_EXACT.to_owned(),
            network: network.to_owned(),
            extra: None,
        };
        let mut kinds: Vec<SupportedKind> = self.networks.iter().map(|n| kind(2, &n.caip2)).collect();
        kinds.extend(self.networks.iter().filter_map(|n| Some(kind(1, n.v1_name.as_deref()?))));
        Ok(SupportedResponse { kinds, ..SupportedResponse::default() })
    }
}

/// The `/settle` answer for what [`LocalFacilitator::execute`] did with `request`.
pub fn settle_response(request: &FacilitatorRequest, executed: &Result<Settlement, PaymentError>) -> SettleResponse {
    let network = request.required_network().to_owned();
    let amount = (request.x402_version() == 2).then(|| DecimalU256(request.required_amount()));
    match executed {
        Ok(settlement) => SettleResponse {
            success: true,
            error_reason: None,
            payer: Some(checksum(settlement.payment.payer)),
            transaction: settlement.tx_hash.to_string(),
            network,
            amount,
            extensions: None,
        },
        Err(error) => SettleResponse {
            success: false,
            error_reason: Some(error.reason().to_owned()),
            payer: claimed_payer(request),
            transaction: String::new(),
            network,
            amount: None,
            extensions: None,
        },
    }
}

fn nonce_key(network: &NetworkConfig, payment: &VerifiedPayment) -> NonceKey {
    NonceKey { chain_id: network.chain_id, asset: network.asset, from: payment.payer, nonce: payment.nonce }
}

fn checksum(address: Address) -> String {
    address.to_checksum(None)
}

/// `authorization.from` when the payload parses that far, for the `payer` of a refusal.
fn claimed_payer(request: &FacilitatorRequest) -> Option<String> {
    let payload = match request {
        FacilitatorRequest::V1(r) => &r.payment_payload.payload,
        FacilitatorRequest::V2(r) => &r.payment_payload.payload,
    };
    let from = payload.get("authorization")?.get("from")?.as_str()?;
    Some(checksum(from.parse().ok()?))
}
