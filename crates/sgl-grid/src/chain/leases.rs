//! Leases on the chain. On a chain grid the leader funds each new lease with an `Escrow`
//! stream from the grid's USDC to the provider's operator wallet ([`fund`]): the deposit the
//! ledger has not paid yet, at the lease's price by the second. From then on the chain streams
//! it (the provider may withdraw at any time; the contract takes its 1 % fee on every payment,
//! in place of the ledger's compute split) and the ledger settles nothing of it. Its close
//! closes the stream ([`close_stream`]) and books what the chain says it paid; the rest comes
//! back to the grid, and to the requester's credits.
//!
//! A lease whose operator wallet is not an EVM address stays in the ledger.

use sgl_chain::{ChainError, U256};
use sgl_grid_store::Store;
use sgl_grid_store::market::{LeaseRecord, MarketStoreError};

use super::{GridChain, wallet_address};

/// Funding or closing a lease's stream failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseChainError {
    /// The chain refused or failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store refused the record.
    #[error(transparent)]
    Store(#[from] MarketStoreError),
    /// A stored stream id or an amount on the chain does not fit.
    #[error("stream {0}: its id or an amount does not fit")]
    Corrupt(String),
}

impl From<sgl_grid_store::StoreError> for LeaseChainError {
    fn from(error: sgl_grid_store::StoreError) -> Self {
        Self::Store(error.into())
    }
}

/// The stream's rate for a price per hour: whole micro-USD per second, rounded down, at least 1
/// (the stream never pays beyond its deposit either way).
pub fn rate_per_second(price_per_hour: i64) -> i64 {
    (price_per_hour / 3_600).max(1)
}

/// Opens `lease`'s stream when it has none yet and its operator is an EVM address; returns the
/// lease afterwards, or `None` when it stays in the ledger.
pub async fn fund(
    grid: &GridChain,
    store: &Store,
    lease: &LeaseRecord,
    now_ms: i64,
) -> Result<Option<LeaseRecord>, LeaseChainError> {
    let Some(provider) = wallet_address(&lease.operator) else { return Ok(None) };
    let deposit = lease.deposit_micros - lease.paid_micros;
    if lease.chain_stream.is_some() || deposit <= 0 {
        return Ok(None);
    }
    let rate = rate_per_second(lease.price_per_hour);
    let (id, mined) =
        grid.chain().open_stream(provider, U256::from(deposit.unsigned_abs()), U256::from(rate.unsigned_abs())).await?;
    let funded = match store.fund_market_lease_on_chain(&lease.id, &id.to_string(), deposit, now_ms).await {
        Ok(funded) => funded,
        Err(error) => {
            // The lease moved on meanwhile (closed or settled): the stream goes back at once.
            if let Err(close) = close_stream(grid, &id.to_string()).await {
                tracing::error!(lease = %lease.id, stream = %id, error = %close, "an unbooked stream could not be closed; the chain audit will not see it");
            }
            return Err(error.into());
        }
    };
    tracing::info!(
        target: "sgl::events::market", lease = %lease.id, stream = %id, deposit_micros = deposit,
        rate_per_second = rate, tx = %mined.tx_hash, "lease funded by an escrow stream on chain"
    );
    Ok(Some(funded))
}

/// Closes stream `stream_id` on the chain if it is still open, and returns what it paid the
/// provider in all (gross of the fee).
pub async fn close_stream(grid: &GridChain, stream_id: &str) -> Result<i64, LeaseChainError> {
    let id: U256 = stream_id.parse().map_err(|_| LeaseChainError::Corrupt(stream_id.to_owned()))?;
    let chain = grid.chain();
    let mut stream = chain.stream(id).await?;
    if !stream.closed {
        let mined = chain.close_stream(id).await?;
        tracing::info!(target: "sgl::events::market", stream = %id, tx = %mined.tx_hash, "escrow stream closed on chain");
        stream = chain.stream(id).await?;
    }
    i64::try_from(stream.withdrawn).map_err(|_| LeaseChainError::Corrupt(stream_id.to_owned()))
}
