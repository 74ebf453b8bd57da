//! The ledger against the chain (`sgl-grid chain audit`): for every operator wallet the chain's
//! events named, its stake, unstaking stake and bond as the grid booked them and as the
//! contracts hold them now; for every x402 payment the grid recorded as settled on the chain, a
//! successful transaction that used its authorization. Each difference is named.

use std::fmt;

use alloy_primitives::B256;
use serde::Serialize;
use sgl_chain::{ChainError, U256};
use sgl_grid_store::StoreError;
use sgl_grid_store::ledger::Account;

use super::{GridChain, wallet_address};
use sgl_grid_store::Store;

/// The audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One way the ledger and the chain disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// Active stake.
    Stake {
        /// The wallet.
        wallet: String,
        /// Micro-SGL in the ledger.
        ledger: i64,
        /// Micro-SGL in `Staking`.
        chain: String,
    },
    /// Stake unstaking.
    Unstaking {
        /// The wallet.
        wallet: String,
        /// Micro-SGL in the ledger.
        ledger: i64,
        /// Micro-SGL in `Staking`.
        chain: String,
    },
    /// Bond.
    Bond {
        /// The wallet.
        wallet: String,
        /// Micro-SGL the grid booked.
        ledger: i64,
        /// Micro-SGL in `ProviderRegistry`.
        chain: String,
    },
    /// A payment recorded as settled whose transaction is missing or failed.
    Settlement {
        /// The transaction hash recorded.
        tx_hash: String,
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stake { wallet, ledger, chain } => {
                write!(f, "{wallet}: stake {ledger} in the ledger, {chain} on chain")
            }
            Self::Unstaking { wallet, ledger, chain } => {
                write!(f, "{wallet}: unstaking {ledger} in the ledger, {chain} on chain")
            }
            Self::Bond { wallet, ledger, chain } => write!(f, "{wallet}: bond {ledger} booked, {chain} on chain"),
            Self::Settlement { tx_hash, problem } => write!(f, "payment {tx_hash}: {problem}"),
        }
    }
}

/// What the audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainAudit {
    /// Wallets compared.
    pub wallets: usize,
    /// On-chain payments checked.
    pub settlements: usize,
    /// Every disagreement; empty when the ledger and the chain agree.
    pub differences: Vec<Difference>,
}

/// Compares `store` with `grid`'s chain now. Events not yet followed show as differences, so
/// run it when the follower has caught up (it books within `[chain] poll_secs`).
pub async fn audit(store: &Store, grid: &GridChain) -> Result<ChainAudit, AuditError> {
    let chain = grid.chain();
    let mut differences = Vec::new();
    let wallets = store.chain_wallets().await?;
    for wallet in &wallets {
        let Some(address) = wallet_address(wallet) else { continue };
        let on_chain = chain.stake_of(address).await?;
        let stake = store.balance(&Account::Stake { wallet: wallet.clone() }).await?;
        let unstaking = store.balance(&Account::Unbonding { wallet: wallet.clone() }).await?;
        if U256::from(stake.max(0).unsigned_abs()) != on_chain.active || stake < 0 {
            differences.push(Difference::Stake {
                wallet: wallet.clone(),
                ledger: stake,
                chain: on_chain.active.to_string(),
            });
        }
        if U256::from(unstaking.max(0).unsigned_abs()) != on_chain.pending || unstaking < 0 {
            let chain = on_chain.pending.to_string();
            differences.push(Difference::Unstaking { wallet: wallet.clone(), ledger: unstaking, chain });
        }
        let bond = store.chain_bond(wallet).await?.unwrap_or_default().bond;
        let chain_bond = chain.bond_of(address).await?.amount;
        if U256::from(bond.max(0).unsigned_abs()) != chain_bond {
            differences.push(Difference::Bond { wallet: wallet.clone(), ledger: bond, chain: chain_bond.to_string() });
        }
    }
    let network = grid.network().caip2.to_string();
    let recorded = store.settlements_to(&format!("{:#x}", grid.address())).await?;
    let on_chain: Vec<_> = recorded.iter().filter(|s| s.network == network).collect();
    for settlement in &on_chain {
        if let Some(problem) = settlement_problem(grid, &settlement.tx_hash).await? {
            differences.push(Difference::Settlement { tx_hash: settlement.tx_hash.clone(), problem });
        }
    }
    Ok(ChainAudit { wallets: wallets.len(), settlements: on_chain.len(), differences })
}

/// What is wrong with the transaction `tx_hash` as a settlement, if anything.
async fn settlement_problem(grid: &GridChain, tx_hash: &str) -> Result<Option<String>, AuditError> {
    let Ok(hash) = tx_hash.parse::<B256>() else { return Ok(Some("not a transaction hash".into())) };
    Ok(match grid.chain().outcome(hash).await? {
        None => Some("no such transaction on the chain".into()),
        Some((false, _)) => Some("the transaction reverted".into()),
        Some((true, to)) if to != Some(grid.chain().contracts().usdc) => Some("not a call to the USDC contract".into()),
        Some(_) => None,
    })
}
