//! `GET /grid/chain` (ours): the chain under a grid that has one.

use axum::extract::State;
use sgl_protocol::api::chain::{ChainContracts, ChainInfo};

use crate::error::{ApiError, ApiResult};
use crate::routes::AppJson;
use crate::state::AppState;

/// `GET /grid/chain`.
#[utoipa::path(
    get, path = "/grid/chain", tag = "operator",
    responses(
        (status = 200, description = "The chain, its contracts and the stake and bond an operator needs.", body = sgl_protocol::api::chain::ChainInfo),
        (status = 404, description = "This grid keeps its money in its own ledger: it has no chain.", body = sgl_protocol::api::error::ErrorBody),
    ),
)]
pub(super) async fn info(State(state): State<AppState>) -> ApiResult<AppJson<ChainInfo>> {
    let grid =
        state.chain().ok_or_else(|| ApiError::not_found("this grid has no chain; its stake is in its ledger"))?;
    let c = grid.chain().contracts();
    let hex = |a: alloy_primitives::Address| format!("{a:#x}");
    Ok(AppJson(ChainInfo {
        chain_id: c.chain_id,
        rpc_url: grid.config().rpc_url.clone(),
        contracts: ChainContracts {
            usdc: hex(c.usdc),
            stake_token: hex(c.stake_token),
            staking: hex(c.staking),
            registry: hex(c.registry),
            escrow: hex(c.escrow),
            treasury: hex(c.treasury),
            deployed_block: c.deployed_block,
        },
        min_stake_micros: i64::try_from(state.config().min_stake_sgl).unwrap_or(i64::MAX).saturating_mul(1_000_000),
        min_bond_micros: grid.min_bond(),
    }))
}
