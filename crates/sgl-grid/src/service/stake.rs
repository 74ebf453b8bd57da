//! Operators' stake as the grid's rules read it: where a wallet's stake stands, and so whether
//! its nodes may register and receive work.

use sgl_grid_store::StoreError;
use sgl_grid_store::ledger::Account;
use sgl_protocol::api::operator::StakeState;

use crate::state::AppState;

/// Where `wallet`'s stake stands, and its active stake in micro-SGL: unstaking while an unstake
/// cools down, else staked at or above the configured minimum, else below it.
pub async fn standing(state: &AppState, wallet: &str) -> Result<(StakeState, i64), StoreError> {
    let staked = state.store().balance(&Account::Stake { wallet: wallet.to_owned() }).await?;
    let needed = i64::try_from(state.config().min_stake_sgl).unwrap_or(i64::MAX).saturating_mul(1_000_000);
    let standing = if state.store().unstake_request(wallet).await?.is_some() {
        StakeState::Unstaking
    } else if staked >= needed {
        StakeState::Staked
    } else {
        StakeState::BelowMinimum
    };
    Ok((standing, staked))
}

/// Whether `wallet`'s nodes may work (at least the minimum stake, no unstake cooling down),
/// and its active stake in micro-SGL.
pub async fn may_work(state: &AppState, wallet: &str) -> Result<(bool, i64), StoreError> {
    let (standing, staked) = standing(state, wallet).await?;
    Ok((standing == StakeState::Staked, staked))
}
