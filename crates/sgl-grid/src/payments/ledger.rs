//! The grid's own ledger as its local facilitator settles into it. A settlement to the grid's
//! receiving address also credits the payer's wallet account with what it paid, in the same
//! database transaction: a payment is never settled and left uncredited (the start-up
//! [`super::reconcile`] only audits), nor credited twice (the credit's idempotency key is the
//! settlement).

use alloy_primitives::{Address, B256, U256};
use sgl_grid_store::Store;
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posting, TransactionKind};
use sgl_pay::ledger::{AccountKey, LedgerOutcome, LedgerTransfer, NonceKey, PaymentLedger};

use crate::state::SharedClock;

/// [`PaymentLedger`] over the store, crediting payments to the grid.
#[derive(Clone)]
pub struct GridLedger {
    store: Store,
    pay_to: Address,
    units_per_micro: u64,
    clock: SharedClock,
}

impl std::fmt::Debug for GridLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GridLedger").field("pay_to", &self.pay_to).finish_non_exhaustive()
    }
}

impl GridLedger {
    /// Settles into `store`; payments to `pay_to` are credited at `units_per_micro` atomic
    /// units per micro-dollar.
    pub fn new(store: Store, pay_to: Address, units_per_micro: u64, clock: SharedClock) -> Self {
        Self { store, pay_to, units_per_micro: units_per_micro.max(1), clock }
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The idempotency key of a payment's credit: its settlement, whichever protocol carried it.
pub(crate) fn payment_reference(network: &str, transaction: &str) -> String {
    format!("payment:{network}:{}", transaction.to_lowercase())
}

/// The credit of `micros` paid by `payer` to the wallet account whose key is `key_id`.
pub(crate) fn payment_credit(reference: &str, payer: Address, key_id: i64, micros: i64) -> NewTransaction {
    NewTransaction {
        idempotency_key: reference.to_owned(),
        kind: TransactionKind::Payment,
        memo: format!("payment from {payer:#x}"),
        postings: vec![
            Posting { account: Account::External { source: "x402".into(), asset: Asset::Usd }, amount: -micros },
            Posting { account: Account::Credits { api_key_id: key_id }, amount: micros },
        ],
    }
}

impl PaymentLedger for GridLedger {
    type Error = PostError;

    async fn balance(&self, account: &AccountKey) -> Result<U256, PostError> {
        Ok(PaymentLedger::balance(&self.store, account).await?)
    }

    async fn nonce_use(&self, nonce: &NonceKey) -> Result<Option<B256>, PostError> {
        Ok(self.store.nonce_use(nonce).await?)
    }

    async fn settle(&self, transfer: &LedgerTransfer) -> Result<LedgerOutcome, PostError> {
        let micros = i64::try_from(transfer.value / U256::from(self.units_per_micro)).unwrap_or(i64::MAX);
        if transfer.to != self.pay_to || micros == 0 {
            return Ok(PaymentLedger::settle(&self.store, transfer).await?);
        }
        let now = self.clock.now_ms();
        // The payer's account key is made first (once per wallet; harmless if the payment is
        // then refused), so that the credit can go in with the settlement.
        let key = super::wallet_key(&self.store, transfer.from, now).await?;
        let reference = payment_reference(&transfer.network, &format!("{:#x}", transfer.tx_hash));
        let credit = payment_credit(&reference, transfer.from, key.id, micros);
        let outcome = self.store.settle_and_credit(transfer, &credit, now).await?;
        if outcome == LedgerOutcome::Settled {
            tracing::info!(target: "sgl::events::payment", payer = %transfer.from, micros, key_id = key.id, "payment settled and credited");
        }
        Ok(outcome)
    }
}
