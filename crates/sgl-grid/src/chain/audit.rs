//! The ledger against the chain (`sgl-grid chain audit`): for every operator wallet the chain's
//! events named, its stake, unstaking stake and bond as the grid booked them and as the
//! contracts hold them now; for every x402 payment the grid recorded as settled on the chain, a
//! successful transaction that used its authorization; for every payout batch, the chain's word
//! that the grid paid it, by a successful transaction; for every lease funded on the chain, its
//! stream as the grid booked it (deposit, open or closed, and what it paid). Each difference is
//! named.

use std::fmt;

use alloy_primitives::B256;
use serde::Serialize;
use sgl_chain::{Address, ChainError, U256};
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
    /// A payout batch whose record and the chain disagree.
    PayoutBatch {
        /// Its id.
        batch_id: String,
        /// What is wrong.
        problem: String,
    },
    /// A lease whose escrow stream and the grid's books disagree.
    Stream {
        /// The lease.
        lease_id: String,
        /// Its stream's id.
        stream_id: String,
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
            Self::PayoutBatch { batch_id, problem } => write!(f, "payout batch {batch_id}: {problem}"),
            Self::Stream { lease_id, stream_id, problem } => {
                write!(f, "lease {lease_id} (stream {stream_id}): {problem}")
            }
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
    /// Payout batches checked.
    pub payout_batches: usize,
    /// Lease streams checked.
    pub streams: usize,
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
    let payout_batches = audit_payouts(store, grid, &mut differences).await?;
    let streams = audit_streams(store, grid, &mut differences).await?;
    Ok(ChainAudit { wallets: wallets.len(), settlements: on_chain.len(), payout_batches, streams, differences })
}

/// Checks every payout batch against the chain; returns how many there are.
async fn audit_payouts(
    store: &Store,
    grid: &GridChain,
    differences: &mut Vec<Difference>,
) -> Result<usize, AuditError> {
    let batches = store.payout_batches().await?;
    for batch in &batches {
        let problem = match batch.batch_id.parse::<B256>() {
            Err(_) => Some("not a batch id".to_owned()),
            Ok(id) => {
                let paid = grid.chain().batch_paid(grid.address(), id).await?;
                match (&batch.tx_hash, paid) {
                    (None, true) => Some("paid on the chain, not recorded paid".to_owned()),
                    (None, false) => None,
                    (Some(_), false) => Some("recorded paid, not paid on the chain".to_owned()),
                    (Some(tx), true) => transaction_problem(grid, tx, grid.chain().contracts().escrow).await?,
                }
            }
        };
        if let Some(problem) = problem {
            differences.push(Difference::PayoutBatch { batch_id: batch.batch_id.clone(), problem });
        }
    }
    Ok(batches.len())
}

/// Checks every lease funded on the chain against its stream; returns how many there are.
async fn audit_streams(
    store: &Store,
    grid: &GridChain,
    differences: &mut Vec<Difference>,
) -> Result<usize, AuditError> {
    let leases = store.chain_market_leases().await?;
    for lease in &leases {
        let stream_id = lease.chain_stream.clone().unwrap_or_default();
        if let Some(problem) = stream_problem(grid, lease, &stream_id).await? {
            differences.push(Difference::Stream { lease_id: lease.id.clone(), stream_id, problem });
        }
    }
    Ok(leases.len())
}

/// What is wrong with `lease`'s stream `stream_id`, if anything.
async fn stream_problem(
    grid: &GridChain,
    lease: &sgl_grid_store::market::LeaseRecord,
    stream_id: &str,
) -> Result<Option<String>, AuditError> {
    let Ok(id) = stream_id.parse::<U256>() else { return Ok(Some("not a stream id".into())) };
    let stream = grid.chain().stream(id).await?;
    let ended = lease.state != sgl_protocol::api::market::LeaseState::Active;
    let paid_before = lease.deposit_micros - lease.chain_deposit;
    Ok(if stream.payer != grid.address() {
        Some("not funded by the grid".into())
    } else if stream.deposit != micros(lease.chain_deposit) {
        Some(format!("deposit {} on the chain, {} booked", stream.deposit, lease.chain_deposit))
    } else if stream.closed != ended {
        Some(format!("closed on the chain: {}, lease {}", stream.closed, lease.state.as_str()))
    } else if ended && stream.withdrawn != micros(lease.paid_micros - paid_before) {
        Some(format!("paid {} on the chain, {} booked", stream.withdrawn, lease.paid_micros - paid_before))
    } else {
        None
    })
}

fn micros(amount: i64) -> U256 {
    U256::from(amount.max(0).unsigned_abs())
}

/// What is wrong with the transaction `tx_hash` as a settlement, if anything.
async fn settlement_problem(grid: &GridChain, tx_hash: &str) -> Result<Option<String>, AuditError> {
    transaction_problem(grid, tx_hash, grid.chain().contracts().usdc).await
}

/// What is wrong with `tx_hash` as a successful call to `contract`, if anything.
async fn transaction_problem(grid: &GridChain, tx_hash: &str, contract: Address) -> Result<Option<String>, AuditError> {
    let Ok(hash) = tx_hash.parse::<B256>() else { return Ok(Some("not a transaction hash".into())) };
    Ok(match grid.chain().outcome(hash).await? {
        None => Some("no such transaction on the chain".into()),
        Some((false, _)) => Some("the transaction reverted".into()),
        Some((true, to)) if to != Some(contract) => Some(format!("not a call to {contract}")),
        Some(_) => None,
    })
}
