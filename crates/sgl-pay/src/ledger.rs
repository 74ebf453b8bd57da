//! The storage a local facilitator settles into: token balances per (network, asset, address)
//! and the EIP-3009 nonces already used, behind [`PaymentLedger`], with an in-memory
//! implementation for tests. The grid implements the trait on its SQL store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use alloy_primitives::{Address, B256, U256};

/// Whose balance: one address's holding of one token on one network.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountKey {
    /// CAIP-2 network id, e.g. `eip155:84532`.
    pub network: String,
    /// Token contract.
    pub asset: Address,
    /// Holder.
    pub address: Address,
}

/// What makes an EIP-3009 authorization single-use: the token contract tracks nonces per
/// authorizer, so the key is (chain, token, payer, nonce).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NonceKey {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Token contract.
    pub asset: Address,
    /// Payer (authorizer).
    pub from: Address,
    /// The authorization's 32-byte nonce.
    pub nonce: B256,
}

/// One settlement to apply atomically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerTransfer {
    /// The nonce this settlement uses up.
    pub nonce: NonceKey,
    /// CAIP-2 network id of the balances.
    pub network: String,
    /// Payer.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// Amount in atomic units.
    pub value: U256,
    /// Synthetic transaction hash identifying this exact authorization (its EIP-712 digest).
    pub tx_hash: B256,
}

/// What [`PaymentLedger::settle`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerOutcome {
    /// Debited `from`, credited `to`, and marked the nonce used.
    Settled,
    /// The nonce was already used by this very transfer (same `tx_hash`); nothing moved again.
    AlreadySettled,
    /// The nonce was already used by a different transfer; nothing moved.
    NonceUsed,
    /// `from` holds less than `value`; nothing moved.
    InsufficientBalance {
        /// What `from` holds.
        balance: U256,
    },
}

/// Balances and used nonces. `settle` must be atomic: the nonce check, the balance check, both
/// balance updates and the nonce record happen all together or not at all.
pub trait PaymentLedger: Send + Sync {
    /// A storage failure (not a refused payment).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The balance of `account` (zero when never funded).
    fn balance(&self, account: &AccountKey) -> impl Future<Output = Result<U256, Self::Error>> + Send;

    /// The transaction hash of the settlement that used `nonce`, if any.
    fn nonce_use(&self, nonce: &NonceKey) -> impl Future<Output = Result<Option<B256>, Self::Error>> + Send;

    /// Applies `transfer` atomically, or reports why not.
    fn settle(&self, transfer: &LedgerTransfer) -> impl Future<Output = Result<LedgerOutcome, Self::Error>> + Send;
}

/// An in-memory [`PaymentLedger`] for tests and local development.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    balances: HashMap<AccountKey, U256>,
    nonces: HashMap<NonceKey, B256>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `amount` to `account` (test funding), saturating at the maximum.
    pub fn credit(&self, account: AccountKey, amount: U256) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let balance = state.balances.entry(account).or_default();
        *balance = balance.saturating_add(amount);
    }

    fn balance_now(&self, account: &AccountKey) -> U256 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.balances.get(account).copied().unwrap_or_default()
    }
}

impl PaymentLedger for MemoryLedger {
    type Error = Infallible;

    async fn balance(&self, account: &AccountKey) -> Result<U256, Infallible> {
        Ok(self.balance_now(account))
    }

    async fn nonce_use(&self, nonce: &NonceKey) -> Result<Option<B256>, Infallible> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(state.nonces.get(nonce).copied())
    }

    async fn settle(&self, transfer: &LedgerTransfer) -> Result<LedgerOutcome, Infallible> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(used_by) = state.nonces.get(&transfer.nonce) {
            return Ok(if *used_by == transfer.tx_hash {
                LedgerOutcome::AlreadySettled
            } else {
                LedgerOutcome::NonceUsed
            });
        }
        let account = |address| AccountKey { network: transfer.network.clone(), asset: transfer.nonce.asset, address };
        let from = account(transfer.from);
        let balance = state.balances.get(&from).copied().unwrap_or_default();
        let Some(remaining) = balance.checked_sub(transfer.value) else {
            return Ok(LedgerOutcome::InsufficientBalance { balance });
        };
        state.balances.insert(from, remaining);
        let to = state.balances.entry(account(transfer.to)).or_default();
        *to = to.saturating_add(transfer.value);
        state.nonces.insert(transfer.nonce.clone(), transfer.tx_hash);
        Ok(LedgerOutcome::Settled)
    }
}
