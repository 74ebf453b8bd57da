//! The stake and bond events the grid follows: what it credits to operators' stake and bond
//! accounts, in chain order, each named by its (transaction, log index) so it is applied once.

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::Log;

use crate::{Chain, ChainError};

/// What happened to an operator's stake or bond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StakeEventKind {
    /// `Staking.Staked`: stake added.
    Staked,
    /// `Staking.UnstakeRequested`: moved to unstaking, withdrawable at `unlock_at`.
    UnstakeRequested {
        /// Everything now unstaking.
        pending: U256,
        /// When it may be withdrawn (Unix seconds).
        unlock_at: u64,
    },
    /// `Staking.Withdrawn`: unstaked tokens taken out.
    Withdrawn,
    /// `Staking.Slashed`: stake taken to the treasury.
    Slashed {
        /// The evidence hash the slasher gave.
        evidence: B256,
    },
    /// `ProviderRegistry.Registered`: bonded.
    Registered,
    /// `ProviderRegistry.BondToppedUp`: bond added.
    BondToppedUp,
    /// `ProviderRegistry.DeregisterRequested`: the bond leaves at `unlock_at`.
    DeregisterRequested {
        /// Unix seconds.
        unlock_at: u64,
    },
    /// `ProviderRegistry.Deregistered`: the bond was withdrawn.
    Deregistered,
    /// `ProviderRegistry.BondSlashed`: bond taken to the treasury.
    BondSlashed {
        /// The evidence hash.
        evidence: B256,
    },
}

/// One event, where it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainEvent {
    /// The block.
    pub block: u64,
    /// The transaction.
    pub tx_hash: B256,
    /// Its position in the block.
    pub log_index: u64,
    /// The operator (or provider) it concerns.
    pub operator: Address,
    /// What happened.
    pub kind: StakeEventKind,
    /// The amount moved (0 for the requests that move nothing).
    pub amount: U256,
}

impl ChainEvent {
    /// `chain:{tx}:{log_index}`: the idempotency key of what the grid books for it.
    pub fn key(&self) -> String {
        format!("chain:{:#x}:{}", self.tx_hash, self.log_index)
    }
}

fn event(log: &Log, operator: Address, kind: StakeEventKind, amount: U256) -> ChainEvent {
    ChainEvent {
        block: log.block_number.unwrap_or_default(),
        tx_hash: log.transaction_hash.unwrap_or_default(),
        log_index: log.log_index.unwrap_or_default(),
        operator,
        kind,
        amount,
    }
}

impl Chain {
    /// Every stake and bond event in blocks `from..=to`, in chain order.
    pub async fn stake_events(&self, from: u64, to: u64) -> Result<Vec<ChainEvent>, ChainError> {
        use StakeEventKind as K;
        let (s, r) = (&self.staking, &self.registry);
        let mut events = Vec::new();
        for (e, log) in s.Staked_filter().from_block(from).to_block(to).query().await? {
            events.push(event(&log, e.operator, K::Staked, e.amount));
        }
        for (e, log) in s.UnstakeRequested_filter().from_block(from).to_block(to).query().await? {
            let kind = K::UnstakeRequested { pending: e.pending, unlock_at: e.unlockAt };
            events.push(event(&log, e.operator, kind, e.amount));
        }
        for (e, log) in s.Withdrawn_filter().from_block(from).to_block(to).query().await? {
            events.push(event(&log, e.operator, K::Withdrawn, e.amount));
        }
        for (e, log) in s.Slashed_filter().from_block(from).to_block(to).query().await? {
            events.push(event(&log, e.operator, K::Slashed { evidence: e.evidence }, e.amount));
        }
        for (e, log) in r.Registered_filter().from_block(from).to_block(to).query().await? {
            events.push(event(&log, e.provider, K::Registered, e.bond));
        }
        for (e, log) in r.BondToppedUp_filter().from_block(from).to_block(to).query().await? {
            events.push(event(&log, e.provider, K::BondToppedUp, e.amount));
        }
        for (e, log) in r.DeregisterRequested_filter().from_block(from).to_block(to).query().await? {
            events.push(event(&log, e.provider, K::DeregisterRequested { unlock_at: e.unlockAt }, U256::ZERO));
        }
        for (e, log) in r.Deregistered_filter().from_block(from).to_block(to).query().await? {
            events.push(event(&log, e.provider, K::Deregistered, e.amount));
        }
        for (e, log) in r.BondSlashed_filter().from_block(from).to_block(to).query().await? {
            events.push(event(&log, e.provider, K::BondSlashed { evidence: e.evidence }, e.amount));
        }
        events.sort_by_key(|e| (e.block, e.log_index));
        Ok(events)
    }
}
