//! Slashes on the chain. A fault the grid proves (a forged result, a wrong receipt) is booked
//! in the ledger first (`Store::slash`, the active stake first, as the contract takes it); on a
//! chain the grid then takes the same stake in `Staking` and the same share of the bond in
//! `ProviderRegistry`, each with the keccak-256 of the evidence record, so whoever holds the
//! grid's evidence (the operator's `sgl stake show`, the audit) can check what justified it.

use sgl_chain::{B256, U256};
use sgl_grid_store::chain::SentSlash;

use super::wallet_address;
use crate::state::AppState;

/// The keccak-256 of an evidence record, as the chain's slash events carry it.
pub fn evidence_hash(evidence: &str) -> B256 {
    alloy_primitives::keccak256(evidence.as_bytes())
}

/// On a chain, sends the slash the ledger booked (`taken` micro-SGL of `wallet`'s stake) and
/// the same share of its bond, in a task of its own; the follower then sees their events and
/// books the bond's. Nothing without a chain, or for a wallet that is not an EVM address.
pub fn send(state: &AppState, wallet: &str, evidence: &str, taken: i64) {
    let (Some(_), Some(address)) = (state.chain(), wallet_address(wallet)) else { return };
    let (state, wallet, hash) = (state.clone(), super::wallet_name(address), evidence_hash(evidence));
    tokio::spawn(async move {
        if let Err(error) = slash(&state, &wallet, hash, taken).await {
            tracing::error!(%wallet, evidence = %hash, %error, "the slash did not reach the chain; the chain audit will name it");
        }
    });
}

async fn slash(state: &AppState, wallet: &str, hash: B256, taken: i64) -> Result<(), super::follow::FollowError> {
    let Some(grid) = state.chain() else { return Ok(()) };
    let Some(address) = wallet_address(wallet) else { return Ok(()) };
    let bond = state.store().chain_bond(wallet).await?.unwrap_or_default().bond;
    let bps = i128::from(state.config().slash_basis_points.min(10_000));
    let bond_amount = i64::try_from(i128::from(bond.max(0)) * bps / 10_000).unwrap_or(0);
    let sent =
        SentSlash { evidence_hash: format!("{hash:#x}"), wallet: wallet.to_owned(), stake_amount: taken, bond_amount };
    if !state.store().record_sent_slash(&sent, state.now_ms()).await? {
        return Ok(());
    }
    let chain = grid.chain();
    if taken > 0 {
        let mined = chain.slash_stake(address, U256::from(taken.unsigned_abs()), hash).await?;
        tracing::warn!(target: "sgl::events::chain", %wallet, amount = taken, tx = %mined.tx_hash, evidence = %hash, "stake slashed on chain");
    }
    if bond_amount > 0 {
        let mined = chain.slash_bond(address, U256::from(bond_amount.unsigned_abs()), hash).await?;
        tracing::warn!(target: "sgl::events::chain", %wallet, amount = bond_amount, tx = %mined.tx_hash, evidence = %hash, "bond slashed on chain");
    }
    Ok(())
}
