//! Putting the grid's contracts on a chain, and the file that names them afterwards.

use std::path::Path;

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use serde::{Deserialize, Serialize};

use crate::ChainError;
use crate::bindings::{Escrow, ProviderRegistry, Staking, TestToken};

/// Where the grid's contracts are on one chain: what `[chain] contracts` points at, written by
/// [`deploy`] (and by `sgl-grid up --chain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The payment token (EIP-3009 USDC; on a local chain the test token "USD Coin").
    pub usdc: Address,
    /// The token stake and bonds are held in ("SGL Stake" on a local chain).
    pub stake_token: Address,
    /// `Staking`: operators' stake, the 7-day unstake, slashing.
    pub staking: Address,
    /// `ProviderRegistry`: operators' bonds and reputation.
    pub registry: Address,
    /// `Escrow`: streams, milestones, batched payouts.
    pub escrow: Address,
    /// Where fees and slashed tokens go.
    pub treasury: Address,
    /// The block the contracts were deployed in: where event scans start.
    pub deployed_block: u64,
}

impl Contracts {
    /// Reads a contracts file.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ChainError::ContractsFile { path: path.to_owned(), source })?;
        serde_json::from_str(&text).map_err(|source| ChainError::ContractsJson { path: path.to_owned(), source })
    }

    /// Writes this as a contracts file (pretty JSON).
    pub fn save(&self, path: &Path) -> Result<(), ChainError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|source| ChainError::ContractsJson { path: path.to_owned(), source })?;
        std::fs::write(path, text + "\n").map_err(|source| ChainError::ContractsFile { path: path.to_owned(), source })
    }

    /// Checks that every named contract has code on the chain `provider` talks to.
    pub async fn check(&self, provider: &DynProvider) -> Result<(), ChainError> {
        let named = [
            ("usdc", self.usdc),
            ("stake_token", self.stake_token),
            ("staking", self.staking),
            ("registry", self.registry),
            ("escrow", self.escrow),
        ];
        for (name, address) in named {
            if provider.get_code_at(address).await?.is_empty() {
                return Err(ChainError::NoCode { name, address });
            }
        }
        Ok(())
    }
}

/// What [`deploy`] needs to know.
#[derive(Clone, Copy, Debug)]
pub struct DeployOptions {
    /// Receives fees and slashed tokens.
    pub treasury: Address,
    /// The smallest bond `ProviderRegistry` accepts, in stake-token units.
    pub min_bond: U256,
}

/// Deploys the two test tokens, `Staking`, `ProviderRegistry` and `Escrow` on the chain at
/// `rpc_url` from `signer`, which becomes their admin and, by their constructors, holds the
/// slasher, verifier and arbiter roles (the grid's signer). For local chains: the tokens mint to
/// anyone.
pub async fn deploy(rpc_url: &str, signer: PrivateKeySigner, options: DeployOptions) -> Result<Contracts, ChainError> {
    let admin = signer.address();
    let provider = &crate::chain::provider(rpc_url, signer)?;
    let deployed_block = provider.get_block_number().await?;
    let usdc = *TestToken::deploy(provider, "USD Coin".into(), "USDC".into()).await?.address();
    let stake_token = *TestToken::deploy(provider, "SGL Stake".into(), "SGL".into()).await?.address();
    let staking = Staking::deploy(provider, stake_token, admin, options.treasury).await?;
    let registry = ProviderRegistry::deploy(provider, stake_token, options.min_bond, admin, options.treasury).await?;
    let escrow = Escrow::deploy(provider, usdc, admin, options.treasury).await?;
    Ok(Contracts {
        chain_id: provider.get_chain_id().await?,
        usdc,
        stake_token,
        staking: *staking.address(),
        registry: *registry.address(),
        escrow: *escrow.address(),
        treasury: options.treasury,
        deployed_block,
    })
}

/// Waits for a sent transaction and fails when it reverted.
pub(crate) async fn mined(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> Result<alloy::rpc::types::TransactionReceipt, ChainError> {
    let receipt = pending.get_receipt().await?;
    if receipt.status() { Ok(receipt) } else { Err(ChainError::Reverted(receipt.transaction_hash)) }
}
