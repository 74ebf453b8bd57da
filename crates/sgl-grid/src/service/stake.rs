//! Operators' stake as the grid's rules read it: where a wallet's stake stands, and so whether
//! its nodes may register and receive work.

use sgl_grid_store::StoreError;
use sgl_grid_store::ledger::Account;
use sgl_protocol::api::operator::StakeState;

use crate::state::AppState;

/// Where `wallet`'s stake stands, and its active stake in micro-SGL: unstaking while an unstake
/// cools down, else below the configured minimum, else (on a chain) without a bond, else staked.
pub async fn standing(state: &AppState, wallet: &str) -> Result<(StakeState, i64), StoreError> {
    let wallet = &crate::chain::ledger_wallet(state, wallet);
    let staked = state.store().balance(&Account::Stake { wallet: wallet.to_owned() }).await?;
    let needed = i64::try_from(state.config().min_stake_sgl).unwrap_or(i64::MAX).saturating_mul(1_000_000);
    let standing = if state.store().unstake_request(wallet).await?.is_some() {
        StakeState::Unstaking
    } else if staked < needed {
        StakeState::BelowMinimum
    } else if !bonded(state, wallet).await? {
        StakeState::NotBonded
    } else {
        StakeState::Staked
    };
    Ok((standing, staked))
}

/// Whether `wallet` may work as far as bonds go: always without a chain; on one, a bond of at
/// least the registry's minimum that is not on its way out.
async fn bonded(state: &AppState, wallet: &str) -> Result<bool, StoreError> {
    let Some(chain) = state.chain() else { return Ok(true) };
    let bond = state.store().chain_bond(wallet).await?.unwrap_or_default();
    Ok(bond.registered && bond.unlock_at_ms == 0 && bond.bond >= chain.min_bond())
}

/// Whether `wallet`'s nodes may work (at least the minimum stake, no unstake cooling down),
/// and its active stake in micro-SGL.
pub async fn may_work(state: &AppState, wallet: &str) -> Result<(bool, i64), StoreError> {
    let (standing, staked) = standing(state, wallet).await?;
    Ok((standing == StakeState::Staked, staked))
}
