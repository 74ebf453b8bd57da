//! Sharing a settled job's cost between the operator, the platform, the stakers and the burn
//! without losing the rounding (issue 13).
//!
//! A share of a few micro-dollars cannot be paid exactly: 80 % of 3 is 2.4. Rounding every job
//! down on its own left the remainders to the burn, so on short chats the operator got two
//! thirds and the burn a third. Instead each recipient keeps a carry: its unpaid fraction, in
//! 1/10,000 of a micro-unit (basis points of a micro-unit). A settlement adds `cost × bps` to
//! the carry, pays the whole micro-units and keeps the rest, so a recipient's total over any
//! sequence of jobs is the exact sum of its shares rounded down, whatever the order of the jobs
//! and however the shares change between them.
//!
//! What a settlement does not pay out (or pays beyond its cost) goes to or comes from the
//! [`Account::Rounding`] account, which therefore always holds exactly Σ carries / 10,000 (a
//! whole number, since each job's shares sum to 10,000 basis points) and never goes negative.
//! The ledger audit checks that.
//!
//! Everything here is pure; [`Store::finish_job_with`] locks, reads and writes the carries in
//! the transaction that finishes the job.

use sqlx::{Any, Row, Transaction};

use crate::ledger::{Account, NewTransaction, PostError, Posted, TransactionKind};
use crate::{Store, StoreError};

#[cfg(test)]
mod tests;

/// Basis points in a whole: the shares of a cost sum to this, and a carry stays below it.
pub const BASIS_POINTS: u32 = 10_000;

/// How a settled cost is shared, in basis points; the burn takes what the other three leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    operator_bps: u32,
    platform_bps: u32,
    stakers_bps: u32,
}

/// The named shares leave no room for the burn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("operator_bps + platform_bps + stakers_bps is {total}, more than 10000")]
pub struct InvalidShares {
    /// Their sum.
    pub total: u64,
}

impl Default for Shares {
    /// Operator 80 %, platform 5 %, stakers 10 %, burn 5 %.
    fn default() -> Self {
        Self { operator_bps: 8_000, platform_bps: 500, stakers_bps: 1_000 }
    }
}

impl Shares {
    /// The operator's, the platform's and the stakers' shares (8000 = 80 %); the burn gets
    /// the rest, so together they may not exceed 10,000.
    pub fn new(operator_bps: u32, platform_bps: u32, stakers_bps: u32) -> Result<Self, InvalidShares> {
        let total = u64::from(operator_bps) + u64::from(platform_bps) + u64::from(stakers_bps);
        if total > u64::from(BASIS_POINTS) {
            return Err(InvalidShares { total });
        }
        Ok(Self { operator_bps, platform_bps, stakers_bps })
    }

    /// The operator's share.
    pub fn operator_bps(self) -> u32 {
        self.operator_bps
    }

    /// The platform's share.
    pub fn platform_bps(self) -> u32 {
        self.platform_bps
    }

    /// The stakers' share.
    pub fn stakers_bps(self) -> u32 {
        self.stakers_bps
    }

    /// The burn's share: what the others leave.
    pub fn burn_bps(self) -> u32 {
        BASIS_POINTS - self.operator_bps - self.platform_bps - self.stakers_bps
    }

    /// `recipient`'s share.
    pub fn bps(self, recipient: Recipient) -> u32 {
        match recipient {
            Recipient::Operator => self.operator_bps,
            Recipient::Platform => self.platform_bps,
            Recipient::Stakers => self.stakers_bps,
            Recipient::Burn => self.burn_bps(),
        }
    }
}

/// Who receives a share of a settled cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    /// The operator whose node ran the job ([`Account::Earnings`]).
    Operator,
    /// [`Account::Platform`].
    Platform,
    /// [`Account::Stakers`].
    Stakers,
    /// [`Account::Burn`].
    Burn,
}

impl Recipient {
    /// Every recipient.
    pub const ALL: [Self; 4] = [Self::Operator, Self::Platform, Self::Stakers, Self::Burn];

    /// The recipient's account for a job run by `operator_wallet`'s node.
    pub fn account(self, operator_wallet: &str) -> Account {
        match self {
            Self::Operator => Account::Earnings { wallet: operator_wallet.to_owned() },
            Self::Platform => Account::Platform,
            Self::Stakers => Account::Stakers,
            Self::Burn => Account::Burn,
        }
    }
}

/// One value per [`Recipient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerRecipient<T> {
    /// The operator's.
    pub operator: T,
    /// The platform's.
    pub platform: T,
    /// The stakers'.
    pub stakers: T,
    /// The burn's.
    pub burn: T,
}

impl<T> PerRecipient<T> {
    /// Each recipient's `value`.
    pub fn from_fn(mut value: impl FnMut(Recipient) -> T) -> Self {
        Self {
            operator: value(Recipient::Operator),
            platform: value(Recipient::Platform),
            stakers: value(Recipient::Stakers),
            burn: value(Recipient::Burn),
        }
    }

    /// `recipient`'s value.
    pub fn get(&self, recipient: Recipient) -> &T {
        match recipient {
            Recipient::Operator => &self.operator,
            Recipient::Platform => &self.platform,
            Recipient::Stakers => &self.stakers,
            Recipient::Burn => &self.burn,
        }
    }

    /// `recipient`'s value, to change.
    pub fn get_mut(&mut self, recipient: Recipient) -> &mut T {
        match recipient {
            Recipient::Operator => &mut self.operator,
            Recipient::Platform => &mut self.platform,
            Recipient::Stakers => &mut self.stakers,
            Recipient::Burn => &mut self.burn,
        }
    }
}

/// A recipient's unpaid fraction of a micro-unit, in 1/10,000 micro-units: `0..10_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Carry(u16);

impl Carry {
    /// No carry.
    pub const ZERO: Self = Self(0);

    /// The carry of `units` 1/10,000 micro-units, if it is one (`0..10_000`).
    pub fn new(units: i64) -> Option<Self> {
        (0..i64::from(BASIS_POINTS)).contains(&units).then(|| Self(u16::try_from(units).unwrap_or(0)))
    }

    /// In 1/10,000 micro-units.
    pub fn units(self) -> i64 {
        i64::from(self.0)
    }
}

/// What sharing one cost does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Micro-units paid to each recipient, never negative.
    pub paid: PerRecipient<i64>,
    /// Each recipient's carry afterwards.
    pub carries: PerRecipient<Carry>,
    /// The cost minus everything paid: posted to [`Account::Rounding`], and equal to the
    /// change of the carries' sum over 10,000, so it may be negative (by at most three).
    pub rounding: i64,
}

/// Shares `cost` micro-units (a negative cost counts as none) by `shares` on top of `carries`:
/// each recipient is paid the whole micro-units of its carry plus `cost × bps / 10,000`, and
/// keeps the fraction as its new carry.
pub fn split(shares: Shares, cost: i64, carries: PerRecipient<Carry>) -> Split {
    let cost = cost.max(0);
    let scale = i64::from(BASIS_POINTS);
    // cost × bps can overflow i64 for large costs, so split the cost into whole ten-thousands
    // (paid out exactly) and a remainder whose product stays below 10^8.
    let (tens_of_thousands, rest) = (cost / scale, cost % scale);
    let step = |recipient: Recipient| {
        let bps = i64::from(shares.bps(recipient));
        let scaled = carries.get(recipient).units() + rest * bps;
        (tens_of_thousands * bps + scaled / scale, Carry::new(scaled % scale).unwrap_or(Carry::ZERO))
    };
    let steps = PerRecipient::from_fn(step);
    let paid = PerRecipient::from_fn(|recipient| steps.get(recipient).0);
    let after = PerRecipient::from_fn(|recipient| steps.get(recipient).1);
    let sum = |carries: &PerRecipient<Carry>| Recipient::ALL.iter().map(|r| carries.get(*r).units()).sum::<i64>();
    // cost − Σ paid, computed from the carries so that it cannot overflow.
    let rounding = (sum(&after) - sum(&carries)) / scale;
    Split { paid, carries: after, rounding }
}

/// A delivered job's bill: empties its escrow into the recipients' shares of the cost (with
/// their carries) and returns the rest of the hold to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The job.
    pub job_id: String,
    /// The paying API key, refunded what was held beyond the cost.
    pub api_key_id: i64,
    /// The wallet of the operator whose node ran the job.
    pub operator_wallet: String,
    /// Micro-dollars in the job's escrow.
    pub held: i64,
    /// Micro-dollars to bill; only what was held is billed.
    pub cost: i64,
    /// How the cost is shared.
    pub shares: Shares,
}

impl Settlement {
    /// The micro-dollars billed: the cost, at most what was held and not below zero.
    pub fn billed(&self) -> i64 {
        self.cost.min(self.held).max(0)
    }

    /// `settle:job:<id>`, shared with the job's release: a job settles or releases once.
    pub fn idempotency_key(&self) -> String {
        format!("settle:job:{}", self.job_id)
    }

    /// Each recipient's account.
    pub fn accounts(&self) -> PerRecipient<Account> {
        PerRecipient::from_fn(|recipient| recipient.account(&self.operator_wallet))
    }

    /// The split of the billed cost on top of `carries`.
    pub fn split(&self, carries: PerRecipient<Carry>) -> Split {
        split(self.shares, self.billed(), carries)
    }

    /// The ledger transaction for `split`: escrow −held, each recipient its share, the rounding
    /// account the difference, the caller held − billed; zero postings left out.
    pub fn transaction(&self, split: &Split) -> NewTransaction {
        let accounts = self.accounts();
        let mut postings = vec![(Account::Escrow { job_id: self.job_id.clone() }, -self.held)];
        postings.extend(Recipient::ALL.iter().map(|r| (accounts.get(*r).clone(), *split.paid.get(*r))));
        postings.push((Account::Rounding, split.rounding));
        postings.push((Account::Credits { api_key_id: self.api_key_id }, self.held - self.billed()));
        NewTransaction::from_amounts(self.idempotency_key(), TransactionKind::Settlement, String::new(), postings)
    }
}

impl Store {
    /// Posts `settlement` inside `tx`: locks its recipients' carries (in name order, before
    /// [`Store::post_in`] locks the accounts, so every transaction takes carries before
    /// accounts and none can deadlock), splits the cost on top of them, stores the new carries
    /// and posts the transaction.
    pub(crate) async fn settle_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        settlement: &Settlement,
        now_ms: i64,
    ) -> Result<(), PostError> {
        let split = self.share_in(tx, settlement.shares, settlement.billed(), &settlement.operator_wallet).await?;
        let transaction = settlement.transaction(&split);
        match self.post_in(tx, &transaction, now_ms).await? {
            Posted::Applied(_) => Ok(()),
            // The job was still dispatched, so its settlement cannot have been posted; the
            // carries just moved must not count twice, so the caller rolls everything back.
            Posted::AlreadyApplied(_) => Err(PostError::IdempotencyConflict(transaction.idempotency_key)),
        }
    }

    /// Shares `cost` by `shares` inside `tx`: locks the recipients' carries (in name order,
    /// before [`Store::post_in`] locks the accounts, so every transaction takes carries before
    /// accounts and none can deadlock), splits the cost on top of them and stores the new
    /// carries. The caller posts the split in the same transaction.
    pub(crate) async fn share_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        shares: Shares,
        cost: i64,
        operator_wallet: &str,
    ) -> Result<Split, PostError> {
        let accounts = PerRecipient::from_fn(|recipient| recipient.account(operator_wallet));
        let mut by_name: Vec<(String, Recipient)> =
            Recipient::ALL.iter().map(|r| (accounts.get(*r).to_string(), *r)).collect();
        by_name.sort();
        let mut carries = PerRecipient::<Carry>::default();
        for (name, recipient) in &by_name {
            *carries.get_mut(*recipient) = self.lock_carry(tx, name).await?;
        }
        let split = split(shares, cost, carries);
        for (name, recipient) in &by_name {
            let (before, after) = (carries.get(*recipient), split.carries.get(*recipient));
            if before != after {
                sqlx::query("UPDATE settlement_carries SET carry = $1 WHERE account = $2")
                    .bind(after.units())
                    .bind(name)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(split)
    }

    /// Creates the carry of the account named `name` if needed, locks it until `tx` ends
    /// (PostgreSQL; SQLite has one writer) and reads it.
    pub(crate) async fn lock_carry(&self, tx: &mut Transaction<'_, Any>, name: &str) -> Result<Carry, PostError> {
        sqlx::query("INSERT INTO settlement_carries (account, carry) VALUES ($1, 0) ON CONFLICT (account) DO NOTHING")
            .bind(name)
            .execute(&mut **tx)
            .await?;
        let select = format!("SELECT carry FROM settlement_carries WHERE account = $1{}", self.row_lock());
        let units: i64 = sqlx::query(&select).bind(name).fetch_one(&mut **tx).await?.try_get("carry")?;
        Carry::new(units).ok_or(PostError::Store(StoreError::OutOfRange("settlement carry")))
    }

    /// `account`'s carry (zero if it never had one).
    pub async fn carry(&self, account: &Account) -> Result<Carry, StoreError> {
        let row = sqlx::query("SELECT carry FROM settlement_carries WHERE account = $1")
            .bind(account.to_string())
            .fetch_optional(self.pool())
            .await?;
        let units: i64 = row.map_or(Ok(0), |row| row.try_get("carry"))?;
        Carry::new(units).ok_or(StoreError::OutOfRange("settlement carry"))
    }
}
