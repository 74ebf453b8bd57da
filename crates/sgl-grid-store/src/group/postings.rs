//! A group's ledger movements posted together: the same checks as [`Store::post`] one by one
//! (balanced, once per idempotency key, no account below zero but the external ones), with
//! each account locked, read and moved once and the rows inserted many per statement.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sqlx::{Any, Row, Transaction};

use crate::ledger::{Account, NewTransaction, PostError};
use crate::{Store, StoreError};

/// `$first, $first+1, …` (`?first, …` on SQLite, `mark` being `$` or `?`): `n` numbered
/// parameters. SQLite reads `$1` as a parameter *named* "$1", found among the names before it by
/// a linear search, so a statement of a thousand of them took milliseconds to prepare; `?1` is
/// a number.
pub(super) fn list(mark: char, n: usize, first: usize) -> String {
    (first..first + n).map(|i| format!("{mark}{i}")).collect::<Vec<_>>().join(", ")
}

/// `rows` parenthesised rows of `per_row` numbered parameters each, numbered from `first`, each
/// row ending with `literal` when it is not empty.
pub(super) fn rows(mark: char, rows: usize, per_row: usize, first: usize, literal: &str) -> String {
    let mut sql = String::new();
    for row in 0..rows {
        let separator = if row == 0 { "" } else { ", " };
        let tail = if literal.is_empty() { String::new() } else { format!(", {literal}") };
        let _ = write!(sql, "{separator}({}{tail})", list(mark, per_row, first + row * per_row));
    }
    sql
}

/// An account the group touches: its balance as read, and what the group moves.
#[derive(Debug)]
struct Touched<'a> {
    account: &'a Account,
    balance: i64,
    delta: i64,
}

impl Store {
    /// Posts `transactions` in order inside `tx`: one result each, a refused one (malformed, or
    /// an account it would overdraw) leaving the others as if it had not been asked. A key
    /// already recorded refuses the whole group (the caller then posts one by one, which knows
    /// a repeat from a conflict).
    pub(super) async fn post_group<'t>(
        &self,
        tx: &mut Transaction<'_, Any>,
        transactions: impl Iterator<Item = &'t NewTransaction> + Clone,
        now_ms: i64,
    ) -> Result<Vec<Result<(), PostError>>, PostError> {
        let keys: Vec<&str> = transactions.clone().map(|t| t.idempotency_key.as_str()).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let select = format!(
            "SELECT idempotency_key FROM ledger_transactions WHERE idempotency_key IN ({})",
            list(self.mark(), keys.len(), 1)
        );
        let used =
            keys.iter().fold(sqlx::query(&select), |query, key| query.bind(*key)).fetch_optional(&mut **tx).await?;
        if let Some(row) = used {
            return Err(PostError::IdempotencyConflict(row.try_get("idempotency_key")?));
        }
        let mut touched = self.lock_balances(tx, transactions.clone(), now_ms).await?;
        let mut results = Vec::with_capacity(keys.len());
        for transaction in transactions.clone() {
            results.push(apply(&mut touched, transaction));
        }
        let accepted: Vec<&NewTransaction> =
            transactions.zip(&results).filter(|(_, result)| result.is_ok()).map(|(t, _)| t).collect();
        insert_transactions(self.mark(), tx, &accepted, now_ms).await?;
        move_balances(self.mark(), tx, &touched).await?;
        Ok(results)
    }

    /// Creates every account of `transactions` if needed, locks them in name order
    /// (PostgreSQL; SQLite has one writer) and reads their balances.
    async fn lock_balances<'t>(
        &self,
        tx: &mut Transaction<'_, Any>,
        transactions: impl Iterator<Item = &'t NewTransaction>,
        now_ms: i64,
    ) -> Result<BTreeMap<String, Touched<'t>>, PostError> {
        let mut touched: BTreeMap<String, Touched<'t>> = BTreeMap::new();
        for posting in transactions.flat_map(|t| &t.postings) {
            touched.entry(posting.account.to_string()).or_insert(Touched {
                account: &posting.account,
                balance: 0,
                delta: 0,
            });
        }
        let insert = format!(
            "INSERT INTO ledger_accounts (name, asset, may_go_negative, created_at) VALUES {} ON CONFLICT (name) DO NOTHING",
            rows(self.mark(), touched.len(), 4, 1, "")
        );
        let query = touched.iter().fold(sqlx::query(&insert), |query, (name, entry)| {
            query
                .bind(name)
                .bind(entry.account.asset().as_str())
                .bind(i64::from(entry.account.may_go_negative()))
                .bind(now_ms)
        });
        query.execute(&mut **tx).await?;
        let select = format!(
            "SELECT name, balance FROM ledger_accounts WHERE name IN ({}) ORDER BY name{}",
            list(self.mark(), touched.len(), 1),
            self.row_lock()
        );
        let balances =
            touched.keys().fold(sqlx::query(&select), |query, name| query.bind(name)).fetch_all(&mut **tx).await?;
        for row in &balances {
            let name: String = row.try_get("name")?;
            if let Some(entry) = touched.get_mut(&name) {
                entry.balance = row.try_get("balance")?;
            }
        }
        Ok(touched)
    }
}

/// Checks `transaction` against the balances the group has reached and, if it may post, moves
/// them.
fn apply(touched: &mut BTreeMap<String, Touched<'_>>, transaction: &NewTransaction) -> Result<(), PostError> {
    crate::ledger::validate(transaction)?;
    for posting in &transaction.postings {
        let name = posting.account.to_string();
        let entry = touched.get(&name).ok_or(StoreError::Invariant(format!("account {name} was not read")))?;
        crate::ledger::overdraft(posting, entry.balance + entry.delta)?;
    }
    for posting in &transaction.postings {
        if let Some(entry) = touched.get_mut(&posting.account.to_string()) {
            entry.delta += posting.amount;
        }
    }
    Ok(())
}

/// Inserts the accepted transactions and their postings, many rows per statement.
async fn insert_transactions(
    mark: char,
    tx: &mut Transaction<'_, Any>,
    accepted: &[&NewTransaction],
    now_ms: i64,
) -> Result<(), PostError> {
    if accepted.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO ledger_transactions (idempotency_key, kind, memo, created_at) VALUES {} RETURNING id, idempotency_key",
        rows(mark, accepted.len(), 4, 1, "")
    );
    let query = accepted.iter().fold(sqlx::query(&sql), |query, t| {
        query.bind(&t.idempotency_key).bind(t.kind.as_str()).bind(&t.memo).bind(now_ms)
    });
    let ids: BTreeMap<String, i64> = query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("idempotency_key")?, row.try_get("id")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    let postings: Vec<(i64, String, i64)> = accepted
        .iter()
        .flat_map(|t| {
            let id = ids.get(&t.idempotency_key).copied();
            t.postings.iter().map(move |p| (id, p.account.to_string(), p.amount))
        })
        .map(|(id, name, amount)| {
            id.map(|id| (id, name, amount)).ok_or(StoreError::Invariant("a transaction id went missing".into()))
        })
        .collect::<Result<_, _>>()?;
    let sql = format!(
        "INSERT INTO ledger_postings (transaction_id, account, amount) VALUES {}",
        rows(mark, postings.len(), 3, 1, "")
    );
    let query =
        postings.iter().fold(sqlx::query(&sql), |query, (id, name, amount)| query.bind(*id).bind(name).bind(*amount));
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Moves every touched account's running balance by what the group moved, in one statement.
async fn move_balances(
    mark: char,
    tx: &mut Transaction<'_, Any>,
    touched: &BTreeMap<String, Touched<'_>>,
) -> Result<(), PostError> {
    let moved: Vec<(&String, i64)> =
        touched.iter().filter(|(_, entry)| entry.delta != 0).map(|(name, entry)| (name, entry.delta)).collect();
    if moved.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE ledger_accounts SET balance = balance + moved.delta \
         FROM (SELECT column1 AS name, column2 AS delta FROM (VALUES {}) AS v) AS moved \
         WHERE ledger_accounts.name = moved.name",
        rows(mark, moved.len(), 2, 1, "")
    );
    let query = moved.iter().fold(sqlx::query(&sql), |query, (name, delta)| query.bind(*name).bind(*delta));
    query.execute(&mut **tx).await?;
    Ok(())
}
