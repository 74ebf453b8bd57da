//! x402 (and MPP) payments settled on the chain: the payer's signed EIP-3009 authorization is
//! checked as the local facilitator checks it, then against the chain (nonce unused, balance
//! enough), then sent as `transferWithAuthorization` from the grid's signer, which pays the gas
//! and receives the USDC. Once mined, its nonce and the payer's credit are recorded in one
//! database transaction under the chain's transaction hash.

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use sgl_chain::{Authorization, ChainError};
use sgl_grid_store::Store;
use sgl_grid_store::ledger::PostError;
use sgl_pay::exact_evm::{VerifiedPayment, verify_exact_evm};
use sgl_pay::facilitator::{PaymentError, Settlement};
use sgl_pay::ledger::{LedgerOutcome, LedgerTransfer, NonceKey, PaymentLedger as _};
use sgl_pay::network::NetworkConfig;
use sgl_pay::wire::FacilitatorRequest;

use super::GridChain;
use crate::payments::{payment_credit, payment_reference, wallet_key};
use crate::state::SharedClock;

/// The chain failed while settling (not the payment).
#[derive(Debug, thiserror::Error)]
pub enum ChainSettleError {
    /// The chain refused or could not be reached.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store failed.
    #[error(transparent)]
    Post(#[from] PostError),
}

impl From<sgl_grid_store::StoreError> for ChainSettleError {
    fn from(error: sgl_grid_store::StoreError) -> Self {
        Self::Post(error.into())
    }
}

/// A facilitator that settles on the grid's chain.
#[derive(Debug)]
pub struct ChainFacilitator {
    chain: Arc<GridChain>,
    network: NetworkConfig,
    store: Store,
    units_per_micro: u64,
    clock: SharedClock,
}

impl ChainFacilitator {
    /// Settles on `chain`'s USDC, recording in `store`.
    pub fn new(chain: Arc<GridChain>, store: Store, clock: SharedClock) -> Self {
        let network = chain.network();
        Self { units_per_micro: 10u64.pow(u32::from(network.decimals.saturating_sub(6))), chain, network, store, clock }
    }

    /// The network it settles on.
    pub fn network(&self) -> &NetworkConfig {
        &self.network
    }

    /// The grid's receiving address.
    pub fn pay_to(&self) -> Address {
        self.chain.address()
    }

    /// Checks `request` at `now` (Unix seconds) and, if it is good, moves it on the chain and
    /// credits the payer. A refused payment is `Ok(Err(_))`.
    pub async fn execute(
        &self,
        request: &FacilitatorRequest,
        now: u64,
    ) -> Result<Result<Settlement, PaymentError>, ChainSettleError> {
        let payment = match verify_exact_evm(request, &self.network, now) {
            Ok(payment) => payment,
            Err(error) => return Ok(Err(error.into())),
        };
        let nonce = NonceKey {
            chain_id: self.network.chain_id,
            asset: self.network.asset,
            from: payment.payer,
            nonce: payment.nonce,
        };
        let chain = self.chain.chain();
        if self.store.nonce_use(&nonce).await?.is_some()
            || chain.authorization_used(payment.payer, payment.nonce).await?
        {
            return Ok(Err(PaymentError::NonceAlreadyUsed));
        }
        let balance = chain.usdc_balance(payment.payer).await?;
        if balance < payment.value {
            return Ok(Err(PaymentError::InsufficientFunds { balance, value: payment.value }));
        }
        let mined = chain.transfer_with_authorization(&authorization(&payment)).await?;
        let transfer = LedgerTransfer {
            nonce,
            network: self.network.caip2.to_string(),
            from: payment.payer,
            to: payment.to,
            value: payment.value,
            tx_hash: mined.tx_hash,
        };
        let micros = i64::try_from(payment.value / U256::from(self.units_per_micro)).unwrap_or(i64::MAX);
        let now_ms = self.clock.now_ms();
        let key = wallet_key(&self.store, payment.payer, now_ms).await?;
        let reference = payment_reference(&transfer.network, &format!("{:#x}", mined.tx_hash));
        let credit = payment_credit(&reference, payment.payer, key.id, micros);
        let outcome = self.store.record_chain_settlement(&transfer, &credit, now_ms).await?;
        tracing::info!(
            target: "sgl::events::payment", payer = %payment.payer, micros, tx = %mined.tx_hash, gas = mined.gas_used,
            "payment settled on chain and credited"
        );
        let replayed = outcome != LedgerOutcome::Settled;
        Ok(Ok(Settlement { tx_hash: mined.tx_hash, payment, replayed }))
    }
}

fn authorization(payment: &VerifiedPayment) -> Authorization {
    Authorization {
        from: payment.payer,
        to: payment.to,
        value: payment.value,
        valid_after: payment.valid_after,
        valid_before: payment.valid_before,
        nonce: payment.nonce,
        signature: payment.signature,
    }
}
