//! Operators' stake beyond deposits: unstaking (stake moves to unbonding for a cooldown, during
//! which it can still be slashed), withdrawal once the cooldown is over, slashing with the
//! evidence that justified it, and the single-use nonces of wallet-signed operator requests.
//!
//! Every movement is a ledger transaction posted in the same database transaction as the rows
//! that describe it, so the two never disagree.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::ledger::{Account, Asset, NewTransaction, PostError, Posted, TransactionKind, balance_in};
use crate::{Store, StoreError};

/// An open unstake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnstakeRequest {
    /// The operator's wallet.
    pub wallet: String,
    /// Micro-SGL moved to unbonding.
    pub amount: i64,
    /// Unix ms.
    pub requested_at: i64,
    /// Unix ms from which it may be withdrawn.
    pub available_at: i64,
}

/// A slash as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashRecord {
    /// The operator's wallet.
    pub wallet: String,
    /// The node at fault.
    pub node_id: Option<String>,
    /// The job whose result was refused.
    pub job_id: Option<String>,
    /// Why, e.g. `bad_signature`.
    pub reason: String,
    /// What proves it (JSON text).
    pub evidence: String,
    /// Micro-SGL taken.
    pub amount: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// A slash to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSlash<'a> {
    /// The operator's wallet.
    pub wallet: &'a str,
    /// The node at fault.
    pub node_id: Option<&'a str>,
    /// The job whose result was refused; with the reason, it makes the slash happen once.
    pub job_id: Option<&'a str>,
    /// Why.
    pub reason: &'a str,
    /// What proves it (JSON text).
    pub evidence: &'a str,
    /// The share of the stake (active and unbonding) taken, in basis points.
    pub basis_points: u32,
    /// Take the share of the whole from the active stake first, then from the unbonding, as
    /// the `Staking` contract does (a grid on a chain, so the ledger and the chain agree);
    /// otherwise the share of each.
    pub active_first: bool,
}

/// An operator stake action was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StakeError {
    /// An unstake is already cooling down.
    #[error("an unstake is already open for this wallet")]
    AlreadyUnstaking,
    /// Nothing to unstake, or more than is staked.
    #[error("the wallet has {staked} micro-SGL staked, not {asked}")]
    NotEnoughStake {
        /// Active stake.
        staked: i64,
        /// Asked for.
        asked: i64,
    },
    /// No unstake is open.
    #[error("no unstake is open for this wallet")]
    NoUnstake,
    /// The cooldown is not over.
    #[error("the unstaked amount may be withdrawn from {available_at} (Unix ms)")]
    CoolingDown {
        /// Unix ms.
        available_at: i64,
    },
    /// The ledger refused the movement.
    #[error(transparent)]
    Post(#[from] PostError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for StakeError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

fn unstake_record(row: &AnyRow) -> Result<UnstakeRequest, sqlx::Error> {
    Ok(UnstakeRequest {
        wallet: row.try_get("wallet")?,
        amount: row.try_get("amount")?,
        requested_at: row.try_get("requested_at")?,
        available_at: row.try_get("available_at")?,
    })
}

fn movement(key: String, kind: TransactionKind, memo: String, postings: Vec<(Account, i64)>) -> NewTransaction {
    NewTransaction::from_amounts(key, kind, memo, postings)
}

impl Store {
    /// Starts the cooldown for `amount` micro-SGL of `wallet`'s stake (all of it when `None`):
    /// the amount moves from stake to unbonding, withdrawable from `available_at`.
    pub async fn request_unstake(
        &self,
        wallet: &str,
        amount: Option<i64>,
        now_ms: i64,
        available_at: i64,
    ) -> Result<UnstakeRequest, StakeError> {
        let mut tx = self.pool().begin().await?;
        let open = sqlx::query("SELECT wallet FROM unstake_requests WHERE wallet = $1")
            .bind(wallet)
            .fetch_optional(&mut *tx)
            .await?;
        if open.is_some() {
            return Err(StakeError::AlreadyUnstaking);
        }
        let stake = Account::Stake { wallet: wallet.to_owned() };
        let staked = balance_in(&mut tx, &stake.to_string()).await?;
        let amount = amount.unwrap_or(staked);
        if amount <= 0 || amount > staked {
            return Err(StakeError::NotEnoughStake { staked, asked: amount });
        }
        let inserted = sqlx::query(
            "INSERT INTO unstake_requests (wallet, amount, requested_at, available_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (wallet) DO NOTHING",
        )
        .bind(wallet)
        .bind(amount)
        .bind(now_ms)
        .bind(available_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Err(StakeError::AlreadyUnstaking);
        }
        let unbond = movement(
            format!("unstake:{wallet}:{now_ms}"),
            TransactionKind::Unstake,
            format!("unstake of {wallet}"),
            vec![(stake, -amount), (Account::Unbonding { wallet: wallet.to_owned() }, amount)],
        );
        self.post_in(&mut tx, &unbond, now_ms).await?;
        tx.commit().await?;
        Ok(UnstakeRequest { wallet: wallet.to_owned(), amount, requested_at: now_ms, available_at })
    }

    /// The open unstake of `wallet`, if any.
    pub async fn unstake_request(&self, wallet: &str) -> Result<Option<UnstakeRequest>, StoreError> {
        let row =
            sqlx::query("SELECT wallet, amount, requested_at, available_at FROM unstake_requests WHERE wallet = $1")
                .bind(wallet)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.as_ref().map(unstake_record).transpose()?)
    }

    /// Withdraws what is left unbonding (after any slash) once the cooldown is over, closing
    /// the unstake. Returns the micro-SGL withdrawn.
    pub async fn withdraw_stake(&self, wallet: &str, now_ms: i64) -> Result<i64, StakeError> {
        let mut tx = self.pool().begin().await?;
        let select = format!(
            "SELECT wallet, amount, requested_at, available_at FROM unstake_requests WHERE wallet = $1{}",
            self.row_lock()
        );
        let row = sqlx::query(&select).bind(wallet).fetch_optional(&mut *tx).await?;
        let request = row.as_ref().map(unstake_record).transpose()?.ok_or(StakeError::NoUnstake)?;
        if now_ms < request.available_at {
            return Err(StakeError::CoolingDown { available_at: request.available_at });
        }
        let unbonding = Account::Unbonding { wallet: wallet.to_owned() };
        let amount = balance_in(&mut tx, &unbonding.to_string()).await?;
        sqlx::query("DELETE FROM unstake_requests WHERE wallet = $1").bind(wallet).execute(&mut *tx).await?;
        if amount > 0 {
            let out = movement(
                format!("unstake:withdraw:{wallet}:{}", request.requested_at),
                TransactionKind::StakeWithdrawal,
                format!("withdrawal of {wallet}'s unbonded stake"),
                vec![(unbonding, -amount), (Account::External { source: "stake".into(), asset: Asset::Sgl }, amount)],
            );
            self.post_in(&mut tx, &out, now_ms).await?;
        }
        tx.commit().await?;
        Ok(amount)
    }

    /// Slashes `slash.basis_points` of `slash.wallet`'s active and unbonding stake into the
    /// grid's slashed account, recording the evidence. Once per (job, reason) when a job is
    /// named. Returns the micro-SGL taken (0 for a repeat).
    pub async fn slash(&self, slash: &NewSlash<'_>, now_ms: i64) -> Result<i64, StakeError> {
        let key = match slash.job_id {
            Some(job) => format!("slash:job:{job}:{}", slash.reason),
            None => format!("slash:{}:{}:{now_ms}", slash.wallet, slash.reason),
        };
        let mut tx = self.pool().begin().await?;
        let (stake, unbonding) = (
            Account::Stake { wallet: slash.wallet.to_owned() },
            Account::Unbonding { wallet: slash.wallet.to_owned() },
        );
        // Slashes of one wallet take turns (on PostgreSQL; SQLite has one writer): each reads the
        // stake the previous one left, and a repeat of a fault sees the first one's records. A
        // wallet without these accounts has nothing to take; its repeats meet the unique index.
        let lock = format!("SELECT name FROM ledger_accounts WHERE name = $1{}", self.row_lock());
        for account in [&stake, &unbonding] {
            sqlx::query(&lock).bind(account.to_string()).fetch_optional(&mut *tx).await?;
        }
        if already_dealt_with(&mut tx, &key, slash).await? {
            return Ok(0);
        }
        let share = |balance: i64| {
            i64::try_from(i128::from(balance.max(0)) * i128::from(slash.basis_points.min(10_000)) / 10_000).unwrap_or(0)
        };
        let active = balance_in(&mut tx, &stake.to_string()).await?.max(0);
        let unbonding_balance = balance_in(&mut tx, &unbonding.to_string()).await?.max(0);
        let (from_stake, from_unbonding) = if slash.active_first {
            let whole = share(active + unbonding_balance);
            (whole.min(active), whole - whole.min(active))
        } else {
            (share(active), share(unbonding_balance))
        };
        let taken = from_stake + from_unbonding;
        if taken > 0 {
            let cut = movement(
                key,
                TransactionKind::Slash,
                format!("slash of {} for {}", slash.wallet, slash.reason),
                vec![(stake, -from_stake), (unbonding, -from_unbonding), (Account::Slashed, taken)],
            );
            match self.post_in(&mut tx, &cut, now_ms).await {
                Ok(Posted::Applied(_)) => {}
                // Another replica slashed the same fault meanwhile.
                Ok(Posted::AlreadyApplied(_)) | Err(PostError::IdempotencyConflict(_)) => return Ok(0),
                Err(error) => return Err(error.into()),
            }
        }
        if !record_slash(&mut tx, slash, taken, now_ms).await? {
            // The same fault recorded by another replica meanwhile: this one takes nothing.
            return Ok(0);
        }
        tx.commit().await?;
        Ok(taken)
    }

    /// The slashes of `wallet`, newest first.
    pub async fn slashes(&self, wallet: &str) -> Result<Vec<SlashRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT wallet, node_id, job_id, reason, evidence, amount, created_at FROM slashes WHERE wallet = $1 \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(wallet)
        .fetch_all(self.pool())
        .await?;
        let record = |row: &AnyRow| -> Result<SlashRecord, sqlx::Error> {
            Ok(SlashRecord {
                wallet: row.try_get("wallet")?,
                node_id: row.try_get("node_id")?,
                job_id: row.try_get("job_id")?,
                reason: row.try_get("reason")?,
                evidence: row.try_get("evidence")?,
                amount: row.try_get("amount")?,
                created_at: row.try_get("created_at")?,
            })
        };
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Marks a wallet-signed request's nonce used; false when it already was (a replay).
    pub async fn use_operator_nonce(&self, wallet: &str, nonce: &str, now_ms: i64) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO operator_nonces (wallet, nonce, used_at) VALUES ($1, $2, $3) ON CONFLICT (wallet, nonce) DO NOTHING",
        )
        .bind(wallet)
        .bind(nonce)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(inserted.rows_affected() == 1)
    }
}

/// Whether the fault of `slash` was dealt with already: its ledger transaction (`key`) exists,
/// or, for a job's fault, its record (a slash that took nothing posts no transaction; its
/// record alone says the fault was dealt with, so a repeat must not take stake deposited since).
async fn already_dealt_with(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &str,
    slash: &NewSlash<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("SELECT id FROM ledger_transactions WHERE idempotency_key = $1")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    if done.is_some() {
        return Ok(true);
    }
    let Some(job) = slash.job_id else { return Ok(false) };
    let recorded = sqlx::query("SELECT id FROM slashes WHERE job_id = $1 AND reason = $2")
        .bind(job)
        .bind(slash.reason)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(recorded.is_some())
}

/// Records `slash`, which took `taken`; false if the same fault is recorded already (its
/// unique index).
async fn record_slash(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    slash: &NewSlash<'_>,
    taken: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let recorded = sqlx::query(
        "INSERT INTO slashes (wallet, node_id, job_id, reason, evidence, amount, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(slash.wallet)
    .bind(slash.node_id)
    .bind(slash.job_id)
    .bind(slash.reason)
    .bind(slash.evidence)
    .bind(taken)
    .bind(now_ms)
    .execute(&mut **tx)
    .await;
    match recorded {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
        Err(error) => Err(error),
    }
}
