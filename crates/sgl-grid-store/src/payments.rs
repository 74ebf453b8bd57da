//! The local x402 facilitator's ledger on the grid's database: [`sgl_pay::ledger::PaymentLedger`]
//! for [`Store`]. Balances are atomic token units per (network, asset, address), funded by
//! `sgl-grid admin faucet`; a settlement debits the payer, credits the payee and records the
//! EIP-3009 nonce in one transaction, so a nonce is used once even across replicas (its
//! primary key decides a race) and a restart forgets nothing. Addresses are stored lowercase.

use alloy_primitives::{Address, B256, U256};
use sgl_pay::ledger::{AccountKey, LedgerOutcome, LedgerTransfer, NonceKey, PaymentLedger};
use sqlx::Row;

use crate::ledger::{NewTransaction, PostError};
use crate::{Store, StoreError};

fn hex(address: &Address) -> String {
    format!("{address:#x}")
}

/// Atomic units as the database's signed 64-bit integer; larger amounts are refused.
fn units(value: U256) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange("token amount above 2^63 atomic units"))
}

/// Adds `units` to `account`'s token balance, creating it at zero first.
async fn add_to_balance(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &AccountKey,
    units: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO x402_balances (network, asset, address, balance) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (network, asset, address) DO UPDATE SET balance = x402_balances.balance + excluded.balance",
    )
    .bind(&account.network)
    .bind(hex(&account.asset))
    .bind(hex(&account.address))
    .bind(units)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Credits `amount` atomic units to `account` (the faucet of a local grid).
    pub async fn x402_credit(&self, account: &AccountKey, amount: U256) -> Result<U256, StoreError> {
        let mut tx = self.pool().begin().await?;
        add_to_balance(&mut tx, account, units(amount)?).await?;
        tx.commit().await?;
        self.balance_of(account).await
    }

    async fn balance_of(&self, account: &AccountKey) -> Result<U256, StoreError> {
        let row = sqlx::query("SELECT balance FROM x402_balances WHERE network = $1 AND asset = $2 AND address = $3")
            .bind(&account.network)
            .bind(hex(&account.asset))
            .bind(hex(&account.address))
            .fetch_optional(self.pool())
            .await?;
        let balance: i64 = row.map(|r| r.try_get("balance")).transpose()?.unwrap_or(0);
        Ok(U256::from(u64::try_from(balance).unwrap_or(0)))
    }
}

impl PaymentLedger for Store {
    type Error = StoreError;

    async fn balance(&self, account: &AccountKey) -> Result<U256, StoreError> {
        self.balance_of(account).await
    }

    async fn nonce_use(&self, nonce: &NonceKey) -> Result<Option<B256>, StoreError> {
        let row = sqlx::query(
            "SELECT tx_hash FROM x402_nonces WHERE chain_id = $1 AND asset = $2 AND from_address = $3 AND nonce = $4",
        )
        .bind(i64::try_from(nonce.chain_id).map_err(|_| StoreError::OutOfRange("chain id"))?)
        .bind(hex(&nonce.asset))
        .bind(hex(&nonce.from))
        .bind(format!("{:#x}", nonce.nonce))
        .fetch_optional(self.pool())
        .await?;
        let hash: Option<String> = row.map(|r| r.try_get("tx_hash")).transpose()?;
        Ok(hash.and_then(|h| h.parse().ok()))
    }

    async fn settle(&self, transfer: &LedgerTransfer) -> Result<LedgerOutcome, StoreError> {
        self.settle_crediting(transfer, None).await.map_err(|error| match error {
            PostError::Store(error) => error,
            // Only a credit can fail otherwise, and there is none.
            other => StoreError::Invariant(other.to_string()),
        })
    }
}

impl Store {
    /// Posts `out` (a payout leaving the ledger) and credits `amount` of the payment token to
    /// `account` in one database transaction: earnings never leave without arriving, nor arrive
    /// twice (`out`'s idempotency key decides; a repeated payout credits nothing again).
    pub async fn post_and_pay_out(
        &self,
        out: &NewTransaction,
        account: &AccountKey,
        amount: U256,
        now_ms: i64,
    ) -> Result<crate::ledger::Posted, PostError> {
        let units = units(amount)?;
        let mut tx = self.pool().begin().await?;
        let posted = self.post_in(&mut tx, out, now_ms).await?;
        if matches!(posted, crate::ledger::Posted::Applied(_)) {
            add_to_balance(&mut tx, account, units).await?;
        }
        tx.commit().await?;
        Ok(posted)
    }

    /// Settles `transfer` and posts `credit` (the payer's credit for what it paid) in one
    /// database transaction: a payment is never settled without its credit, nor credited
    /// without its settlement. A credit that cannot be posted rolls the settlement back.
    pub async fn settle_and_credit(
        &self,
        transfer: &LedgerTransfer,
        credit: &NewTransaction,
        now_ms: i64,
    ) -> Result<LedgerOutcome, PostError> {
        self.settle_crediting(transfer, Some((credit, now_ms))).await
    }

    /// Records `transfer`, already moved on a chain by `transferWithAuthorization` (its
    /// `tx_hash` is the chain's), and posts `credit` in one database transaction: its nonce is
    /// claimed and the payer credited, no ledger token balance moves (the chain holds them).
    pub async fn record_chain_settlement(
        &self,
        transfer: &LedgerTransfer,
        credit: &NewTransaction,
        now_ms: i64,
    ) -> Result<LedgerOutcome, PostError> {
        self.claim_and_credit(transfer, Some((credit, now_ms)), false).await
    }

    async fn settle_crediting(
        &self,
        transfer: &LedgerTransfer,
        credit: Option<(&NewTransaction, i64)>,
    ) -> Result<LedgerOutcome, PostError> {
        self.claim_and_credit(transfer, credit, true).await
    }

    /// Claims `transfer`'s nonce, moves the ledger's token balances when `balances`, and posts
    /// `credit`, all in one database transaction.
    async fn claim_and_credit(
        &self,
        transfer: &LedgerTransfer,
        credit: Option<(&NewTransaction, i64)>,
        balances: bool,
    ) -> Result<LedgerOutcome, PostError> {
        let amount = units(transfer.value)?;
        let mut tx = self.pool().begin().await?;
        if !claim_nonce(&mut tx, transfer, amount).await? {
            tx.rollback().await?;
            return Ok(match self.nonce_use(&transfer.nonce).await? {
                Some(hash) if hash == transfer.tx_hash => LedgerOutcome::AlreadySettled,
                _ => LedgerOutcome::NonceUsed,
            });
        }
        if balances && let Some(balance) = self.move_balances(&mut tx, transfer, amount).await? {
            // Rolled back: the nonce stays unused, so the payer can pay again once funded.
            tx.rollback().await?;
            return Ok(LedgerOutcome::InsufficientBalance { balance: U256::from(u64::try_from(balance).unwrap_or(0)) });
        }
        if let Some((credit, now_ms)) = credit {
            // An error drops `tx`, which rolls the settlement back with it.
            self.post_in(&mut tx, credit, now_ms).await?;
        }
        tx.commit().await?;
        Ok(LedgerOutcome::Settled)
    }

    /// Moves `amount` from the payer's ledger token balance to the payee's; the payer's balance
    /// when it is short (nothing moved).
    async fn move_balances(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        transfer: &LedgerTransfer,
        amount: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (asset, from) = (hex(&transfer.nonce.asset), hex(&transfer.from));
        let sql = format!(
            "SELECT balance FROM x402_balances WHERE network = $1 AND asset = $2 AND address = $3{}",
            self.row_lock()
        );
        let row = sqlx::query(&sql).bind(&transfer.network).bind(&asset).bind(&from).fetch_optional(&mut **tx).await?;
        let balance: i64 = row.map(|r| r.try_get("balance")).transpose()?.unwrap_or(0);
        if balance < amount {
            return Ok(Some(balance));
        }
        sqlx::query(
            "UPDATE x402_balances SET balance = balance - $1 WHERE network = $2 AND asset = $3 AND address = $4",
        )
        .bind(amount)
        .bind(&transfer.network)
        .bind(&asset)
        .bind(&from)
        .execute(&mut **tx)
        .await?;
        let payee = AccountKey { network: transfer.network.clone(), asset: transfer.nonce.asset, address: transfer.to };
        add_to_balance(tx, &payee, amount).await?;
        Ok(None)
    }
}

/// Claims `transfer`'s nonce (its primary key lets exactly one settlement claim it); false
/// when it was claimed before.
async fn claim_nonce(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    transfer: &LedgerTransfer,
    amount: i64,
) -> Result<bool, PostError> {
    let chain_id = i64::try_from(transfer.nonce.chain_id).map_err(|_| StoreError::OutOfRange("chain id"))?;
    let claimed = sqlx::query(
        "INSERT INTO x402_nonces (chain_id, asset, from_address, nonce, tx_hash, network, to_address, amount) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(chain_id)
    .bind(hex(&transfer.nonce.asset))
    .bind(hex(&transfer.nonce.from))
    .bind(format!("{:#x}", transfer.nonce.nonce))
    .bind(format!("{:#x}", transfer.tx_hash))
    .bind(&transfer.network)
    .bind(hex(&transfer.to))
    .bind(amount)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    Ok(claimed == 1)
}

/// A settlement recorded by the local facilitator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSettlement {
    /// CAIP-2 network.
    pub network: String,
    /// The payer, lowercase `0x…`.
    pub from: String,
    /// Atomic units moved.
    pub amount: i64,
    /// The settlement's transaction hash as recorded (lowercase `0x…`).
    pub tx_hash: String,
}

impl Store {
    /// Every settlement the local facilitator made to `to` (lowercase `0x…`), oldest first.
    pub async fn settlements_to(&self, to: &str) -> Result<Vec<RecordedSettlement>, StoreError> {
        let rows = sqlx::query(
            "SELECT network, from_address, amount, tx_hash FROM x402_nonces WHERE to_address = $1 \
             ORDER BY network, tx_hash",
        )
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RecordedSettlement {
                    network: row.try_get("network")?,
                    from: row.try_get("from_address")?,
                    amount: row.try_get("amount")?,
                    tx_hash: row.try_get("tx_hash")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
