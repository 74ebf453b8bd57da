//! A lease on a chain grid: its deposit streams to the provider through an `Escrow` stream on
//! the chain instead of the ledger's settlements. Funding moves what the ledger has not paid of
//! the deposit out to the chain (`chain:escrow`); the close books what the stream paid (the
//! chain's figure, whatever the clocks say) and gives the rest back to the requester's credits.

use super::leases::{LeaseEnd, end_lease_in};
use super::{LeaseRecord, MarketStoreError};
use crate::Store;
use crate::ledger::{Account, Asset, NewTransaction, TransactionKind};

/// The ledger's account for money in the chain's escrow contract.
pub fn chain_escrow() -> Account {
    Account::External { source: "chain:escrow".into(), asset: Asset::Usd }
}

impl Store {
    /// Records that the active lease `lease_id` is funded by stream `stream_id` on the chain
    /// with `deposit` (what the ledger has not paid of its deposit), moving that out of its
    /// escrow in one transaction. Refused when the lease has a stream already, is no longer
    /// active, or `deposit` is not what is left.
    pub async fn fund_market_lease_on_chain(
        &self,
        lease_id: &str,
        stream_id: &str,
        deposit: i64,
        now_ms: i64,
    ) -> Result<LeaseRecord, MarketStoreError> {
        let mut tx = self.pool().begin().await?;
        let lease = self.lock_active_lease(&mut tx, lease_id).await?;
        if lease.chain_stream.is_some() {
            return Err(MarketStoreError::Conflict("funded on the chain already"));
        }
        if deposit != lease.deposit_micros - lease.paid_micros || deposit <= 0 {
            return Err(MarketStoreError::Conflict("settled since the stream was sized"));
        }
        let fund = NewTransaction::from_amounts(
            format!("chain:fund:lease:{lease_id}"),
            TransactionKind::LeaseOnChain,
            format!("lease {lease_id} streams on the chain as {stream_id}"),
            [(Account::Escrow { job_id: lease_id.to_owned() }, -deposit), (chain_escrow(), deposit)],
        );
        self.post_nonzero_in(&mut tx, &fund, now_ms).await?;
        sqlx::query("UPDATE market_leases SET chain_stream = $2, chain_deposit = $3 WHERE id = $1")
            .bind(lease_id)
            .bind(stream_id)
            .bind(deposit)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.market_lease(lease_id).await?.ok_or(MarketStoreError::NotFound)
    }

    /// Ends the active lease `lease_id` streaming on the chain, whose stream, closed there,
    /// paid `streamed` of its deposit: books that paid and the rest of the deposit back to the
    /// requester's credits, unbinds its job, in one transaction.
    pub async fn close_chain_market_lease(
        &self,
        lease_id: &str,
        end: LeaseEnd,
        streamed: i64,
        at_ms: i64,
        now_ms: i64,
    ) -> Result<LeaseRecord, MarketStoreError> {
        let mut tx = self.pool().begin().await?;
        let lease = self.lock_active_lease(&mut tx, lease_id).await?;
        if lease.chain_stream.is_none() {
            return Err(MarketStoreError::Conflict("not streaming on the chain"));
        }
        if !(0..=lease.chain_deposit).contains(&streamed) {
            return Err(MarketStoreError::Conflict("streamed beyond its deposit"));
        }
        let refund = lease.chain_deposit - streamed;
        let close = NewTransaction::from_amounts(
            format!("close:lease:{lease_id}"),
            TransactionKind::LeaseClose,
            format!("lease {lease_id} {} on the chain: {streamed} paid, {refund} back", end.state().as_str()),
            [(chain_escrow(), -refund), (Account::Credits { api_key_id: lease.api_key_id }, refund)],
        );
        self.post_nonzero_in(&mut tx, &close, now_ms).await?;
        let paid = lease.paid_micros + streamed;
        end_lease_in(&mut tx, &lease, end.state(), end.at(&lease, at_ms), (paid, refund), now_ms).await?;
        tx.commit().await?;
        self.market_lease(lease_id).await?.ok_or(MarketStoreError::NotFound)
    }
}

impl Store {
    /// Every lease funded on the chain, oldest first.
    pub async fn chain_market_leases(&self) -> Result<Vec<LeaseRecord>, crate::StoreError> {
        let sql = format!(
            "SELECT {} FROM market_leases WHERE chain_stream IS NOT NULL ORDER BY started_at, id",
            super::reads::LEASE_COLUMNS
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(super::reads::lease_of).collect()
    }
}
