//! An operator wallet's earnings over time: what its `earnings:` ledger account received per UTC
//! day (its shares of settled jobs), for `GET /grid/operators/{wallet}/earnings` and the
//! dashboard's operator page.

use sgl_grid_store::StoreError;
use sgl_grid_store::ledger::Account;
use sgl_grid_store::reports::DAY_MS;
use sgl_protocol::api::operator::{EarningsDay, OperatorEarnings};

use crate::service::rfc3339;
use crate::state::AppState;

/// Most days one answer covers.
pub const MAX_DAYS: u32 = 366;

/// Why the earnings were not read.
#[derive(Debug, thiserror::Error)]
pub enum EarningsError {
    /// `days` is outside 1..=[`MAX_DAYS`].
    #[error("days: from 1 to {MAX_DAYS}")]
    BadDays,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `wallet` earned per day over the last `days` days, today included.
pub async fn daily(state: &AppState, wallet: &str, days: u32) -> Result<OperatorEarnings, EarningsError> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(EarningsError::BadDays);
    }
    let first_day = state.now_ms().div_euclid(DAY_MS) - i64::from(days) + 1;
    let account = Account::Earnings { wallet: wallet.to_owned() };
    let rows = state.store().daily_credits(&account, first_day * DAY_MS).await?;
    let day = |d: i64| rfc3339::format(d * DAY_MS)[..10].to_owned();
    Ok(OperatorEarnings {
        wallet: wallet.to_owned(),
        since: day(first_day),
        days,
        data: rows.into_iter().map(|(d, micros)| EarningsDay { day: day(d), earned_micros: micros }).collect(),
    })
}
