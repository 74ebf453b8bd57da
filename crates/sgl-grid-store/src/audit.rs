//! The ledger audit behind `sgl-grid admin ledger check`: every transaction balances per asset
//! and has at least two non-zero postings, no account that must stay non-negative is below
//! zero, every asset sums to zero over the whole ledger, and the rounding account holds exactly
//! the settlement carries' sum over 10,000. Balances are derived from postings
//! (nothing is stored twice), so these checks cover every balance the grid reports. Each check
//! is one aggregate query, so the audit scales with the database, not with memory.

use sqlx::Row;

use crate::ledger::Account;
use crate::settlement::BASIS_POINTS;
use crate::{Store, StoreError};

/// What the audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerAudit {
    /// Transactions examined.
    pub transactions: i64,
    /// Postings examined.
    pub postings: i64,
    /// Accounts examined.
    pub accounts: i64,
    /// Every violation, one line each; empty when the ledger is sound.
    pub problems: Vec<String>,
}

impl LedgerAudit {
    /// No violation.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Describes one row a check query found as a problem.
type Describe = fn(&sqlx::any::AnyRow) -> Result<String, sqlx::Error>;

/// The ledger's invariants, each a query for the rows that break it and how to name each.
const CHECKS: [(&str, Describe); 5] = [
    (
        "SELECT p.transaction_id AS id, a.asset AS asset, CAST(SUM(p.amount) AS BIGINT) AS total \
         FROM ledger_postings p JOIN ledger_accounts a ON a.name = p.account \
         GROUP BY p.transaction_id, a.asset HAVING SUM(p.amount) <> 0 ORDER BY p.transaction_id",
        |row| {
            let (id, asset, total): (i64, String, i64) =
                (row.try_get("id")?, row.try_get("asset")?, row.try_get("total")?);
            Ok(format!("transaction {id} does not balance in {asset}: off by {total}"))
        },
    ),
    (
        "SELECT t.id AS id, CAST(COUNT(p.account) AS BIGINT) AS n FROM ledger_transactions t \
         LEFT JOIN ledger_postings p ON p.transaction_id = t.id GROUP BY t.id HAVING COUNT(p.account) < 2 \
         ORDER BY t.id",
        |row| {
            let (id, n): (i64, i64) = (row.try_get("id")?, row.try_get("n")?);
            Ok(format!("transaction {id} has {n} posting(s), fewer than two"))
        },
    ),
    ("SELECT transaction_id AS id, account FROM ledger_postings WHERE amount = 0 ORDER BY transaction_id", |row| {
        let (id, account): (i64, String) = (row.try_get("id")?, row.try_get("account")?);
        Ok(format!("transaction {id} posts zero to {account}"))
    }),
    (
        "SELECT a.name AS name, CAST(SUM(p.amount) AS BIGINT) AS balance \
         FROM ledger_accounts a JOIN ledger_postings p ON p.account = a.name \
         WHERE a.may_go_negative = 0 GROUP BY a.name HAVING SUM(p.amount) < 0 ORDER BY a.name",
        |row| {
            let (name, balance): (String, i64) = (row.try_get("name")?, row.try_get("balance")?);
            Ok(format!("account {name} must not go negative but holds {balance}"))
        },
    ),
    (
        "SELECT a.name AS name, a.balance AS balance, CAST(COALESCE(SUM(p.amount), 0) AS BIGINT) AS total \
         FROM ledger_accounts a LEFT JOIN ledger_postings p ON p.account = a.name \
         GROUP BY a.name, a.balance HAVING a.balance <> COALESCE(SUM(p.amount), 0) ORDER BY a.name",
        |row| {
            let (name, balance, total): (String, i64, i64) =
                (row.try_get("name")?, row.try_get("balance")?, row.try_get("total")?);
            Ok(format!("account {name} carries a balance of {balance} but its postings sum to {total}"))
        },
    ),
];

impl Store {
    /// Audits the whole ledger.
    pub async fn audit_ledger(&self) -> Result<LedgerAudit, StoreError> {
        let pool = self.pool();
        let count = |sql: &'static str| async move {
            let row = sqlx::query(sql).fetch_one(pool).await?;
            row.try_get::<i64, _>("n")
        };
        let mut audit = LedgerAudit {
            transactions: count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ledger_transactions").await?,
            postings: count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ledger_postings").await?,
            accounts: count("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ledger_accounts").await?,
            problems: Vec::new(),
        };
        for (sql, describe) in CHECKS {
            for row in sqlx::query(sql).fetch_all(pool).await? {
                audit.problems.push(describe(&row)?);
            }
        }
        let carried = sqlx::query(
            "SELECT CAST(COALESCE(SUM(carry), 0) AS BIGINT) AS carried, \
             (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_postings WHERE account = $1) AS rounding \
             FROM settlement_carries",
        )
        .bind(Account::Rounding.to_string())
        .fetch_one(pool)
        .await?;
        let (carried, rounding): (i64, i64) = (carried.try_get("carried")?, carried.try_get("rounding")?);
        if i128::from(rounding) * i128::from(BASIS_POINTS) != i128::from(carried) {
            audit.problems.push(format!(
                "the rounding account holds {rounding} but the settlement carries sum to {carried}/{BASIS_POINTS} micro-units"
            ));
        }
        for (asset, total) in self.ledger_totals().await? {
            if total != 0 {
                audit.problems.push(format!("the ledger does not sum to zero in {asset}: off by {total}"));
            }
        }
        Ok(audit)
    }
}
