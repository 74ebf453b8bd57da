//! Money as a double-entry ledger in integer micro-units.
//!
//! Every movement is one transaction whose postings sum to zero per asset; balances are sums of
//! postings, never stored or overwritten. Each transaction carries an idempotency key (for
//! example `settle:job:<id>`), so posting the same movement twice is a no-op, and posting a
//! different movement under a used key is refused. Only `External` accounts, which stand for
//! money entering or leaving the grid, may go negative.

use std::collections::BTreeMap;
use std::fmt;

use sqlx::{Any, Row, Transaction};

use crate::{Store, StoreError};

/// What an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Asset {
    /// US dollars, in micro-dollars.
    Usd,
    /// The SGL token (stake), in micro-SGL.
    Sgl,
}

impl Asset {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Usd => "usd",
            Self::Sgl => "sgl",
        }
    }
}

/// An account of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// A caller's prepaid credits, per API key.
    Credits {
        /// The API key's id.
        api_key_id: i64,
    },
    /// What is held for one job between dispatch and settlement.
    Escrow {
        /// The job.
        job_id: String,
    },
    /// An operator's earnings, per wallet.
    Earnings {
        /// The operator's wallet.
        wallet: String,
    },
    /// The platform's share.
    Platform,
    /// The stakers' share, before distribution.
    Stakers,
    /// Set aside for buy-and-burn.
    Burn,
    /// The fractions of micro-units settlements owe their recipients but have not paid yet:
    /// always the sum of the settlement carries over 10,000 (see [`crate::settlement`]).
    Rounding,
    /// An operator's stake, per wallet (SGL).
    Stake {
        /// The operator's wallet.
        wallet: String,
    },
    /// Stake cooling down after an unstake, per wallet (SGL); still slashable.
    Unbonding {
        /// The operator's wallet.
        wallet: String,
    },
    /// Stake taken by slashing, held by the grid (SGL).
    Slashed,
    /// Money outside the grid: the source of deposits and the sink of payouts.
    External {
        /// Where it came from or goes, e.g. `admin`, `x402`.
        source: String,
        /// Its asset.
        asset: Asset,
    },
}

impl Account {
    /// The account's asset.
    pub fn asset(&self) -> Asset {
        match self {
            Self::Stake { .. } | Self::Unbonding { .. } | Self::Slashed => Asset::Sgl,
            Self::External { asset, .. } => *asset,
            _ => Asset::Usd,
        }
    }

    /// Whether the balance may go below zero (only for money outside the grid).
    pub fn may_go_negative(&self) -> bool {
        matches!(self, Self::External { .. })
    }
}

impl fmt::Display for Account {
    /// The account's stable name in the database.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credits { api_key_id } => write!(f, "credits:key:{api_key_id}"),
            Self::Escrow { job_id } => write!(f, "escrow:job:{job_id}"),
            Self::Earnings { wallet } => write!(f, "earnings:{wallet}"),
            Self::Platform => f.write_str("platform"),
            Self::Stakers => f.write_str("stakers"),
            Self::Burn => f.write_str("burn"),
            Self::Rounding => f.write_str("rounding"),
            Self::Stake { wallet } => write!(f, "stake:{wallet}"),
            Self::Unbonding { wallet } => write!(f, "unbonding:{wallet}"),
            Self::Slashed => f.write_str("slashed"),
            Self::External { source, asset } => write!(f, "external:{source}:{}", asset.as_str()),
        }
    }
}

/// One line of a transaction: positive credits the account, negative debits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// The account.
    pub account: Account,
    /// Micro-units; never zero.
    pub amount: i64,
}

/// What a ledger transaction is: the closed set of business events that move money, recorded
/// in its `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionKind {
    /// The operator granted a key credits (`admin credits grant`, `api-key create`).
    CreditsGrant,
    /// Credits moved between keys of one account.
    CreditsTransfer,
    /// A job's quote moved from credits into its escrow.
    EscrowHold,
    /// A job's escrow shared out for a delivered result.
    Settlement,
    /// A job's escrow returned whole.
    Release,
    /// A payment (x402 or MPP) credited to the payer's account.
    Payment,
    /// Earnings paid out of the ledger.
    Payout,
    /// Stake deposited for an operator wallet.
    StakeDeposit,
    /// Stake moved into its unbonding cooldown.
    Unstake,
    /// Unbonded stake withdrawn.
    StakeWithdrawal,
    /// Stake taken for a proven fault.
    Slash,
    /// Prepaid hours added to a rented machine, paid to the platform.
    MachineExtension,
    /// An order matched: its lease's deposit moved out of the order's hold, the rest of the
    /// hold back to the requester.
    LeaseDeposit,
    /// What a lease streamed since its last settlement, paid to the provider's operator and the
    /// platform.
    LeaseStream,
    /// A lease ended: what streamed since its last settlement paid, the rest of its deposit
    /// back to the requester.
    LeaseClose,
    /// A lease's deposit moved into its escrow stream on the chain.
    LeaseOnChain,
}

impl TransactionKind {
    const ALL: [Self; 16] = [
        Self::CreditsGrant,
        Self::CreditsTransfer,
        Self::EscrowHold,
        Self::Settlement,
        Self::Release,
        Self::Payment,
        Self::Payout,
        Self::StakeDeposit,
        Self::Unstake,
        Self::StakeWithdrawal,
        Self::Slash,
        Self::MachineExtension,
        Self::LeaseDeposit,
        Self::LeaseStream,
        Self::LeaseClose,
        Self::LeaseOnChain,
    ];

    /// The name stored in the `kind` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreditsGrant => "credits_grant",
            Self::CreditsTransfer => "credits_transfer",
            Self::EscrowHold => "escrow_hold",
            Self::Settlement => "settlement",
            Self::Release => "release",
            Self::Payment => "payment",
            Self::Payout => "payout",
            Self::StakeDeposit => "stake_deposit",
            Self::Unstake => "unstake",
            Self::StakeWithdrawal => "stake_withdrawal",
            Self::Slash => "slash",
            Self::MachineExtension => "machine_extension",
            Self::LeaseDeposit => "lease_deposit",
            Self::LeaseStream => "lease_stream",
            Self::LeaseClose => "lease_close",
            Self::LeaseOnChain => "lease_on_chain",
        }
    }

    /// The kind stored as `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for TransactionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A balanced movement of money, to be posted once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransaction {
    /// Unique per movement, e.g. `topup:<payment>` or `settle:job:<id>`.
    pub idempotency_key: String,
    /// The business event.
    pub kind: TransactionKind,
    /// Free text for operators; never secrets or prompt text.
    pub memo: String,
    /// At least two postings, one per account, summing to zero per asset.
    pub postings: Vec<Posting>,
}

/// A transaction as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedTransaction {
    /// Its id.
    pub id: i64,
    /// Its kind.
    pub kind: TransactionKind,
    /// Its postings as `(account name, amount)`, sorted by account name.
    pub postings: Vec<(String, i64)>,
}

impl NewTransaction {
    /// A movement of `amounts` per account, the zero ones left out (the ledger refuses them).
    pub fn from_amounts(
        idempotency_key: String,
        kind: TransactionKind,
        memo: String,
        amounts: impl IntoIterator<Item = (Account, i64)>,
    ) -> Self {
        let postings = amounts
            .into_iter()
            .filter(|(_, amount)| *amount != 0)
            .map(|(account, amount)| Posting { account, amount })
            .collect();
        Self { idempotency_key, kind, memo, postings }
    }
}

/// What posting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// The transaction was recorded with this id.
    Applied(i64),
    /// The same transaction was already recorded under this id; nothing changed.
    AlreadyApplied(i64),
}

impl Posted {
    /// The transaction's id either way.
    pub fn transaction_id(self) -> i64 {
        match self {
            Self::Applied(id) | Self::AlreadyApplied(id) => id,
        }
    }
}

/// A transaction was refused; nothing was recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// Fewer than two postings, a zero amount, or an account posted twice.
    #[error("malformed transaction: {0}")]
    Malformed(&'static str),
    /// The postings of one asset do not sum to zero.
    #[error("transaction does not balance for {asset:?} (off by {imbalance})")]
    Unbalanced {
        /// The asset that does not balance.
        asset: Asset,
        /// The sum of its postings.
        imbalance: i128,
    },
    /// An account would go below zero.
    #[error("insufficient funds in {account}: balance {balance}, debit {debit}")]
    InsufficientFunds {
        /// The account's name.
        account: String,
        /// Its balance before the transaction.
        balance: i64,
        /// The amount debited.
        debit: i64,
    },
    /// The idempotency key was used for a different transaction.
    #[error("idempotency key {0:?} was used for a different transaction")]
    IdempotencyConflict(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PostError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

pub(crate) fn validate(transaction: &NewTransaction) -> Result<(), PostError> {
    if transaction.postings.len() < 2 {
        return Err(PostError::Malformed("a transaction needs at least two postings"));
    }
    if transaction.postings.iter().any(|p| p.amount == 0) {
        return Err(PostError::Malformed("a posting amount is zero"));
    }
    let mut per_asset: BTreeMap<Asset, i128> = BTreeMap::new();
    let mut accounts = std::collections::BTreeSet::new();
    for posting in &transaction.postings {
        if !accounts.insert(&posting.account) {
            return Err(PostError::Malformed("an account is posted twice"));
        }
        *per_asset.entry(posting.account.asset()).or_default() += i128::from(posting.amount);
    }
    match per_asset.into_iter().find(|(_, sum)| *sum != 0) {
        Some((asset, imbalance)) => Err(PostError::Unbalanced { asset, imbalance }),
        None => Ok(()),
    }
}

/// Refuses `posting` if it would take an account that may not go negative, holding `balance`,
/// below zero.
pub(crate) fn overdraft(posting: &Posting, balance: i64) -> Result<(), PostError> {
    let overdrawn = balance.checked_add(posting.amount).is_none_or(|after| after < 0);
    if posting.amount < 0 && !posting.account.may_go_negative() && overdrawn {
        let account = posting.account.to_string();
        return Err(PostError::InsufficientFunds { account, balance, debit: -posting.amount });
    }
    Ok(())
}

/// The postings of a recorded transaction as `(account name, amount)`, sorted.
async fn recorded_postings(tx: &mut Transaction<'_, Any>, id: i64) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT account, amount FROM ledger_postings WHERE transaction_id = $1 ORDER BY account")
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(|row| Ok((row.try_get("account")?, row.try_get("amount")?))).collect()
}

fn sorted_names(transaction: &NewTransaction) -> Vec<(String, i64)> {
    let mut postings: Vec<(String, i64)> =
        transaction.postings.iter().map(|p| (p.account.to_string(), p.amount)).collect();
    postings.sort();
    postings
}

impl Store {
    /// Posts a balanced transaction atomically, once per idempotency key.
    pub async fn post(&self, transaction: &NewTransaction, now_ms: i64) -> Result<Posted, PostError> {
        let mut tx = self.pool().begin().await?;
        match self.post_in(&mut tx, transaction, now_ms).await {
            Ok(posted) => {
                tx.commit().await?;
                Ok(posted)
            }
            // Another replica posted the same key between our check and our insert.
            Err(PostError::Store(StoreError::Database(sqlx::Error::Database(db)))) if db.is_unique_violation() => {
                drop(tx);
                let mut tx = self.pool().begin().await?;
                let posted = self.post_in(&mut tx, transaction, now_ms).await?;
                tx.commit().await?;
                Ok(posted)
            }
            Err(error) => Err(error),
        }
    }

    /// Posts inside a database transaction the caller owns, so that the movement commits or
    /// rolls back together with the caller's other writes.
    pub(crate) async fn post_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        transaction: &NewTransaction,
        now_ms: i64,
    ) -> Result<Posted, PostError> {
        validate(transaction)?;
        let existing = sqlx::query("SELECT id FROM ledger_transactions WHERE idempotency_key = $1")
            .bind(&transaction.idempotency_key)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(row) = existing {
            let id: i64 = row.try_get("id")?;
            if recorded_postings(tx, id).await? == sorted_names(transaction) {
                return Ok(Posted::AlreadyApplied(id));
            }
            return Err(PostError::IdempotencyConflict(transaction.idempotency_key.clone()));
        }
        // Lock accounts in name order so that concurrent transactions cannot deadlock.
        let mut postings: Vec<&Posting> = transaction.postings.iter().collect();
        postings.sort_by_key(|p| p.account.to_string());
        for posting in &postings {
            let name = posting.account.to_string();
            self.lock_account(tx, &posting.account, now_ms).await?;
            if posting.amount < 0 && !posting.account.may_go_negative() {
                overdraft(posting, balance_in(tx, &name).await?)?;
            }
        }
        let row = sqlx::query(
            "INSERT INTO ledger_transactions (idempotency_key, kind, memo, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&transaction.idempotency_key)
        .bind(transaction.kind.as_str())
        .bind(&transaction.memo)
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await;
        let id: i64 = row?.try_get("id")?;
        for posting in &postings {
            sqlx::query("INSERT INTO ledger_postings (transaction_id, account, amount) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(posting.account.to_string())
                .bind(posting.amount)
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE ledger_accounts SET balance = balance + $1 WHERE name = $2")
                .bind(posting.amount)
                .bind(posting.account.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(Posted::Applied(id))
    }

    /// Creates `account` if needed and locks its row until `tx` ends (PostgreSQL; SQLite has one
    /// writer). Lock several accounts in name order, as [`Store::post`] does, to avoid deadlocks.
    async fn lock_account(
        &self,
        tx: &mut Transaction<'_, Any>,
        account: &Account,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        let name = account.to_string();
        sqlx::query(
            "INSERT INTO ledger_accounts (name, asset, may_go_negative, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&name)
        .bind(account.asset().as_str())
        .bind(i64::from(account.may_go_negative()))
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        // SQLite has one writer, which the INSERT above already made this transaction.
        if self.backend() == crate::Backend::Postgres {
            let lock = format!("SELECT name FROM ledger_accounts WHERE name = $1{}", self.row_lock());
            sqlx::query(&lock).bind(&name).fetch_one(&mut **tx).await?;
        }
        Ok(())
    }

    /// The balance of `account`: the sum of its postings (zero if it has none), kept as a running
    /// balance on the account.
    pub async fn balance(&self, account: &Account) -> Result<i64, StoreError> {
        // One statement reads it consistently; no transaction (and its two round trips) needed.
        let row = sqlx::query("SELECT balance FROM ledger_accounts WHERE name = $1")
            .bind(account.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map_or(Ok(0), |row| row.try_get("balance"))?)
    }

    /// The transaction recorded under `idempotency_key`, if any.
    pub async fn recorded_transaction(&self, idempotency_key: &str) -> Result<Option<RecordedTransaction>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("SELECT id, kind FROM ledger_transactions WHERE idempotency_key = $1")
            .bind(idempotency_key)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let (id, name): (i64, String) = (row.try_get("id")?, row.try_get("kind")?);
        let kind = TransactionKind::from_name(&name)
            .ok_or_else(|| StoreError::Invariant(format!("unknown ledger transaction kind {name:?}")))?;
        let postings = recorded_postings(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some(RecordedTransaction { id, kind, postings }))
    }

    /// The sum of all postings per asset; every entry must be zero in a sound ledger.
    pub async fn ledger_totals(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.asset AS asset, CAST(COALESCE(SUM(p.amount), 0) AS BIGINT) AS total \
             FROM ledger_postings p JOIN ledger_accounts a ON a.name = p.account GROUP BY a.asset",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|row| Ok((row.try_get("asset")?, row.try_get("total")?))).collect()
    }
}

pub(crate) async fn balance_in(tx: &mut Transaction<'_, Any>, name: &str) -> Result<i64, sqlx::Error> {
    // The running balance `post_in` moves with every posting, equal to the postings' sum.
    let row =
        sqlx::query("SELECT balance FROM ledger_accounts WHERE name = $1").bind(name).fetch_optional(&mut **tx).await?;
    row.map_or(Ok(0), |row| row.try_get("balance"))
}

#[cfg(test)]
mod tests {
    //! The closed set of transaction kinds and their stored names.

    use super::TransactionKind;

    #[test]
    fn every_kind_is_stored_by_a_name_of_its_own() {
        let names: std::collections::BTreeSet<&str> = TransactionKind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(names.len(), TransactionKind::ALL.len(), "two kinds share a name");
        for kind in TransactionKind::ALL {
            assert_eq!(TransactionKind::from_name(kind.as_str()), Some(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(TransactionKind::from_name("lease_stream"), Some(TransactionKind::LeaseStream));
        assert_eq!(TransactionKind::from_name("streamed"), None);
    }
}
