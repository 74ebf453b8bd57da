//! `GET /grid/chain` (ours): the chain a grid's money lives on, for operators who stake and
//! bond there themselves (`sgl stake deposit`). Addresses are `0x…` hex.

use serde::{Deserialize, Serialize};

/// Where the grid's contracts are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainContracts {
    /// The payment token (EIP-3009 USDC).
    pub usdc: String,
    /// The token stake and bonds are held in.
    pub stake_token: String,
    /// `Staking`.
    pub staking: String,
    /// `ProviderRegistry`.
    pub registry: String,
    /// `Escrow`.
    pub escrow: String,
    /// Where fees and slashed tokens go.
    pub treasury: String,
    /// The block they were deployed in.
    pub deployed_block: u64,
}

/// `GET /grid/chain` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainInfo {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// A JSON-RPC endpoint of the chain (the grid's own).
    pub rpc_url: String,
    /// The contracts.
    pub contracts: ChainContracts,
    /// The stake an operator wallet needs, micro-SGL (stake-token units).
    pub min_stake_micros: i64,
    /// The smallest bond the registry takes, micro-SGL.
    pub min_bond_micros: i64,
}
