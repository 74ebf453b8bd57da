//! The leader's follower: books the chain's stake and bond events into the store, in chain
//! order, from where it last stopped ([`Store::chain_cursor`]). Each event is applied once (its
//! key), so a follower that stops halfway, or two leaders in turn, book nothing twice.
//!
//! [`Store::chain_cursor`]: sgl_grid_store::Store::chain_cursor

use sgl_chain::{ChainError, ChainEvent, StakeEventKind, U256};
use sgl_grid_store::StoreError;
use sgl_grid_store::chain::{ChainEventRecord, StakeEvent};
use sgl_grid_store::ledger::PostError;

use super::wallet_name;
use crate::state::AppState;

/// Most blocks read per step (RPC nodes cap `eth_getLogs` ranges).
const MAX_BLOCKS: u64 = 2_000;

/// Following the chain failed this time; the next tick tries again from the same block.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger refused a movement (it would overdraw a stake account).
    #[error(transparent)]
    Post(#[from] PostError),
    /// An event moved more than a ledger amount holds.
    #[error("event {0} moves an amount beyond 64 bits")]
    Amount(String),
    /// A row the grid stored for the chain does not parse.
    #[error("a stored chain row is corrupt: {0}")]
    Corrupt(String),
}

/// Books the events of the blocks not read yet, up to `MAX_BLOCKS` of them. Returns how many
/// events were booked.
pub async fn follow_once(state: &AppState) -> Result<usize, FollowError> {
    let Some(grid_chain) = state.chain() else { return Ok(0) };
    let chain = grid_chain.chain();
    let staking = format!("{:#x}", chain.contracts().staking);
    let from = match state.store().chain_cursor(&staking).await? {
        Some(next) => u64::try_from(next).unwrap_or(0),
        None => chain.contracts().deployed_block,
    };
    let latest = chain.block_number().await?;
    if from > latest {
        return Ok(0);
    }
    let to = latest.min(from + MAX_BLOCKS - 1);
    let mut booked = 0;
    for event in chain.stake_events(from, to).await? {
        let record = record(&event)?;
        if state.store().apply_chain_event(&record, state.now_ms()).await? {
            tracing::info!(
                target: "sgl::events::chain", wallet = %record.wallet, event = ?record.event, amount = record.amount,
                block = record.block, "chain event booked"
            );
            booked += 1;
        }
    }
    state.store().set_chain_cursor(&staking, i64::try_from(to + 1).unwrap_or(i64::MAX)).await?;
    Ok(booked)
}

/// Runs [`follow_once`] and then pays the payout queue ([`super::payouts::pay_once`]) on the
/// leader every `[chain] poll_secs`, until aborted. `None` without a chain.
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let every = state.chain()?.config().poll;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if !state.leads() {
                continue;
            }
            if let Err(error) = follow_once(&state).await {
                tracing::warn!(%error, "following the chain failed");
            }
            if let Err(error) = super::payouts::pay_once(&state).await {
                tracing::warn!(%error, "paying the payout queue on the chain failed; next tick");
            }
        }
    }))
}

fn micros(value: U256, key: &str) -> Result<i64, FollowError> {
    i64::try_from(value).map_err(|_| FollowError::Amount(key.to_owned()))
}

fn ms(unix_seconds: u64) -> i64 {
    i64::try_from(unix_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The store's record of a chain event.
fn record(event: &ChainEvent) -> Result<ChainEventRecord, FollowError> {
    let key = event.key();
    let event_kind = match event.kind {
        StakeEventKind::Staked => StakeEvent::Staked,
        StakeEventKind::UnstakeRequested { pending, unlock_at } => {
            StakeEvent::UnstakeRequested { pending: micros(pending, &key)?, available_at_ms: ms(unlock_at) }
        }
        StakeEventKind::Withdrawn => StakeEvent::Withdrawn,
        StakeEventKind::Slashed { evidence } => StakeEvent::Slashed { evidence: evidence.0 },
        StakeEventKind::Registered => StakeEvent::Registered,
        StakeEventKind::BondToppedUp => StakeEvent::BondToppedUp,
        StakeEventKind::DeregisterRequested { unlock_at } => {
            StakeEvent::DeregisterRequested { available_at_ms: ms(unlock_at) }
        }
        StakeEventKind::Deregistered => StakeEvent::Deregistered,
        StakeEventKind::BondSlashed { evidence } => StakeEvent::BondSlashed { evidence: evidence.0 },
    };
    Ok(ChainEventRecord {
        amount: micros(event.amount, &key)?,
        block: i64::try_from(event.block).unwrap_or(i64::MAX),
        wallet: wallet_name(event.operator),
        event: event_kind,
        key,
    })
}
