//! Matching an order when its window ends, and a lease's money after that: settlements of what
//! it streamed, and its close.

use std::collections::BTreeMap;

use sgl_protocol::api::market::{LeaseState, OrderState, streamed_micros};
use sqlx::{Any, Transaction};

use super::matching::{Candidate, rank};
use super::reads::{BID_COLUMNS, LEASE_COLUMNS, bid_of, lease_of};
use super::{LeaseRecord, MarketStoreError, OrderRecord, lose_bid_in, set_job_node};
use crate::compute::ComputeShares;
use crate::ledger::{Account, NewTransaction, TransactionKind};
use crate::settlement::Recipient;
use crate::{Store, StoreError};

/// What the match knows of a bidding node when the window ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    /// Its reputation now.
    pub reputation: f64,
    /// Whether it may take work now (live, on the grid, attested, staked).
    pub eligible: bool,
}

/// What a match did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The order afterwards (`leased` or `unfilled`).
    pub order: OrderRecord,
    /// The lease, when a bid won.
    pub lease: Option<LeaseRecord>,
}

/// How a lease ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEnd {
    /// Done early, by its provider or its requester (or its bound job ended).
    Completed,
    /// Cancelled by its requester.
    Cancelled,
    /// Its duration ran out: the whole deposit streamed.
    Exhausted,
}

impl LeaseEnd {
    /// The lease's state afterwards.
    pub const fn state(self) -> LeaseState {
        match self {
            Self::Completed => LeaseState::Completed,
            Self::Cancelled => LeaseState::Cancelled,
            Self::Exhausted => LeaseState::Exhausted,
        }
    }

    /// When `lease` ends when asked to at `at_ms`: an exhausted lease at its end, another at
    /// `at_ms` within its span.
    pub(super) fn at(self, lease: &LeaseRecord, at_ms: i64) -> i64 {
        match self {
            Self::Exhausted => lease.ends_at,
            Self::Completed | Self::Cancelled => at_ms.clamp(lease.started_at, lease.ends_at),
        }
    }
}

impl Store {
    /// Matches an open order whose window ended: ranks its pending bids by `standing` (a node
    /// missing from it is not eligible), and either leases it to the winner (the deposit out of
    /// the hold, the rest of the hold back to the requester, its job bound to the winner's
    /// node) as `lease_id`, or finds it unfilled (the hold back whole, its job unbound). Every
    /// other bid loses, with its reason.
    pub async fn match_market_order(
        &self,
        order_id: &str,
        standing: &BTreeMap<String, Standing>,
        lease_id: &str,
        now_ms: i64,
    ) -> Result<Matched, MarketStoreError> {
        let order = self.market_order(order_id).await?.ok_or(MarketStoreError::NotFound)?;
        let mut tx = self.pool().begin().await?;
        // The order's row first, as a bid takes it: a bid racing the match (a replica's clock
        // behind) either commits before the bids are read here or finds the order decided.
        let lock = format!("SELECT state FROM market_orders WHERE id = $1{}", self.row_lock());
        sqlx::query(&lock).bind(order_id).fetch_one(&mut *tx).await?;
        let sql = format!("SELECT {BID_COLUMNS} WHERE b.order_id = $1 AND b.state = 'pending' ORDER BY b.seq");
        let rows = sqlx::query(&sql).bind(order_id).fetch_all(&mut *tx).await?;
        let bids = rows.iter().map(bid_of).collect::<Result<Vec<_>, StoreError>>()?;
        let candidates: Vec<Candidate> = bids
            .iter()
            .map(|bid| {
                let standing = standing.get(&bid.node_id);
                Candidate {
                    bid_id: bid.id,
                    price: bid.price_per_hour,
                    reputation: standing.map_or(0.0, |s| s.reputation),
                    seq: bid.seq,
                    eligible: standing.is_some_and(|s| s.eligible),
                }
            })
            .collect();
        let ranking = rank(&candidates);
        let winner = ranking.winner.and_then(|id| bids.iter().find(|bid| bid.id == id));
        let deposit = winner.map_or(0, |bid| streamed_micros(bid.price_per_hour, order.duration_secs));
        let (state, refunded) = match winner {
            Some(_) => (OrderState::Leased, order.held_micros - deposit),
            None => (OrderState::Unfilled, order.held_micros),
        };
        if !self.decide_order_in(&mut tx, &order, state, refunded, now_ms).await? {
            return Err(MarketStoreError::Conflict("no longer open"));
        }
        for (bid_id, reason) in &ranking.lost {
            lose_bid_in(&mut tx, *bid_id, *reason, now_ms).await?;
        }
        match winner {
            Some(bid) => {
                let lease = NewLease { id: lease_id, order: &order, bid_id: bid.id, deposit };
                self.lease_in(&mut tx, &lease, (&bid.node_id, &bid.operator, bid.price_per_hour), now_ms).await?;
            }
            None => self.release_order_in(&mut tx, &order, now_ms).await?,
        }
        tx.commit().await?;
        Ok(Matched {
            order: self.market_order(order_id).await?.ok_or(MarketStoreError::NotFound)?,
            lease: self.order_lease(order_id).await?,
        })
    }

    /// Records the lease of a matched order to the winning `(node, operator, price)`, moves its
    /// deposit and the excess of the hold, marks the bid won and binds the order's job.
    async fn lease_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        lease: &NewLease<'_>,
        (node_id, operator, price): (&str, &str, i64),
        now_ms: i64,
    ) -> Result<(), MarketStoreError> {
        let order = lease.order;
        let ends_at = now_ms.saturating_add(order.duration_secs.saturating_mul(1_000));
        sqlx::query(
            "INSERT INTO market_leases (id, order_id, api_key_id, account_id, node_id, operator, price_per_hour, \
             deposit_micros, job_id, state, started_at, ends_at, settled_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $11, $10)",
        )
        .bind(lease.id)
        .bind(&order.id)
        .bind(order.api_key_id)
        .bind(order.account_id)
        .bind(node_id)
        .bind(operator)
        .bind(price)
        .bind(lease.deposit)
        .bind(order.job_id.as_deref())
        .bind(now_ms)
        .bind(ends_at)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE market_bids SET state = 'won', lease_id = $2, decided_at = $3 WHERE id = $1")
            .bind(lease.bid_id)
            .bind(lease.id)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        let deposit = NewTransaction::from_amounts(
            format!("match:order:{}", order.id),
            TransactionKind::LeaseDeposit,
            format!("market order {} leased as {} at {price} micro-USD/h", order.id, lease.id),
            [
                (Account::Escrow { job_id: order.id.clone() }, -order.held_micros),
                (Account::Escrow { job_id: lease.id.to_owned() }, lease.deposit),
                (Account::Credits { api_key_id: order.api_key_id }, order.held_micros - lease.deposit),
            ],
        );
        self.post_nonzero_in(tx, &deposit, now_ms).await?;
        if let Some(job_id) = &order.job_id {
            set_job_node(tx, job_id, "", Some(node_id)).await?;
        }
        Ok(())
    }

    /// Pays what an active lease streamed by `now_ms` since its last settlement to its
    /// operator and the platform by `shares`, in one transaction; returns what it paid (0 when
    /// nothing was due or the lease is no longer active).
    pub async fn settle_market_lease(
        &self,
        lease_id: &str,
        shares: ComputeShares,
        now_ms: i64,
    ) -> Result<i64, MarketStoreError> {
        let mut tx = self.pool().begin().await?;
        let Some(lease) = self.lock_lease(&mut tx, lease_id).await? else {
            return Err(MarketStoreError::NotFound);
        };
        if lease.state != LeaseState::Active || lease.chain_stream.is_some() {
            return Ok(0);
        }
        let target = lease.streamed_at(now_ms);
        let due = target - lease.paid_micros;
        if due > 0 {
            let key = format!("stream:lease:{lease_id}:{target}");
            let memo = format!("lease {lease_id} streamed up to {target} micro-USD");
            let postings = self.share_out_in(&mut tx, &lease, due, shares).await?;
            let payment = NewTransaction::from_amounts(key, TransactionKind::LeaseStream, memo, postings);
            self.post_nonzero_in(&mut tx, &payment, now_ms).await?;
        }
        let done = sqlx::query(
            "UPDATE market_leases SET paid_micros = $2, settled_at = $3, settlements = settlements + $4 \
             WHERE id = $1 AND paid_micros = $5 AND state = 'active'",
        )
        .bind(lease_id)
        .bind(target.max(lease.paid_micros))
        .bind(now_ms)
        .bind(i64::from(due > 0))
        .bind(lease.paid_micros)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(MarketStoreError::Conflict("settled by another writer"));
        }
        tx.commit().await?;
        Ok(due.max(0))
    }

    /// Ends an active lease at `at_ms` (clamped to its span; an exhausted lease ends at its
    /// end): what streamed since the last settlement is paid, the rest of the deposit refunded,
    /// its job unbound, in one transaction.
    pub async fn close_market_lease(
        &self,
        lease_id: &str,
        end: LeaseEnd,
        at_ms: i64,
        shares: ComputeShares,
        now_ms: i64,
    ) -> Result<LeaseRecord, MarketStoreError> {
        let mut tx = self.pool().begin().await?;
        let lease = self.lock_active_lease(&mut tx, lease_id).await?;
        if lease.chain_stream.is_some() {
            return Err(MarketStoreError::Conflict("streaming on the chain"));
        }
        let ended_at = end.at(&lease, at_ms);
        let streamed = LeaseRecord { ended_at: Some(ended_at), ..lease.clone() }.streamed_at(ended_at);
        let target = streamed.max(lease.paid_micros);
        let (pay, refund) = (target - lease.paid_micros, lease.deposit_micros - target);
        let mut postings = self.share_out_in(&mut tx, &lease, pay, shares).await?;
        if let Some((_, escrow)) = postings.first_mut() {
            *escrow -= refund;
        } else {
            postings.push((Account::Escrow { job_id: lease.id.clone() }, -refund));
        }
        postings.push((Account::Credits { api_key_id: lease.api_key_id }, refund));
        let memo = format!("lease {lease_id} {}: {pay} paid, {refund} back", end.state().as_str());
        let close = NewTransaction::from_amounts(
            format!("close:lease:{lease_id}"),
            TransactionKind::LeaseClose,
            memo,
            postings,
        );
        self.post_nonzero_in(&mut tx, &close, now_ms).await?;
        end_lease_in(&mut tx, &lease, end.state(), ended_at, (target, refund), now_ms).await?;
        tx.commit().await?;
        self.market_lease(lease_id).await?.ok_or(MarketStoreError::NotFound)
    }

    /// Locks a lease's row (PostgreSQL) and reads it: refused unless it is active.
    pub(super) async fn lock_active_lease(
        &self,
        tx: &mut Transaction<'_, Any>,
        lease_id: &str,
    ) -> Result<LeaseRecord, MarketStoreError> {
        let lease = self.lock_lease(tx, lease_id).await?.ok_or(MarketStoreError::NotFound)?;
        if lease.state != LeaseState::Active {
            return Err(MarketStoreError::Conflict(lease.state.as_str()));
        }
        Ok(lease)
    }

    /// Locks a lease's row (PostgreSQL) and reads it.
    pub(super) async fn lock_lease(
        &self,
        tx: &mut Transaction<'_, Any>,
        lease_id: &str,
    ) -> Result<Option<LeaseRecord>, MarketStoreError> {
        let sql = format!("SELECT {LEASE_COLUMNS} FROM market_leases WHERE id = $1{}", self.row_lock());
        let row = sqlx::query(&sql).bind(lease_id).fetch_optional(&mut **tx).await?;
        Ok(row.as_ref().map(lease_of).transpose()?)
    }

    /// The postings paying `amount` out of the lease's escrow by `shares` (carries locked and
    /// moved in `tx`): the escrow first, then each recipient and the rounding account. Empty
    /// when `amount` is 0.
    async fn share_out_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        lease: &LeaseRecord,
        amount: i64,
        shares: ComputeShares,
    ) -> Result<Vec<(Account, i64)>, MarketStoreError> {
        if amount <= 0 {
            return Ok(Vec::new());
        }
        let split = self.share_in(tx, shares.shares(), amount, &lease.operator).await?;
        let mut postings = vec![(Account::Escrow { job_id: lease.id.clone() }, -amount)];
        postings.extend(Recipient::ALL.iter().map(|r| (r.account(&lease.operator), *split.paid.get(*r))));
        postings.push((Account::Rounding, split.rounding));
        Ok(postings)
    }
}

/// Marks the active `lease` ended in `state` at `ended_at`, having paid and refunded
/// `(paid, refunded)` of its deposit in all, and unbinds its job.
pub(super) async fn end_lease_in(
    tx: &mut Transaction<'_, Any>,
    lease: &LeaseRecord,
    state: LeaseState,
    ended_at: i64,
    (paid, refunded): (i64, i64),
    now_ms: i64,
) -> Result<(), MarketStoreError> {
    sqlx::query(
        "UPDATE market_leases SET state = $2, ended_at = $3, paid_micros = $4, refunded_micros = $5, \
         settled_at = $6, settlements = settlements + 1 WHERE id = $1 AND state = 'active'",
    )
    .bind(&lease.id)
    .bind(state.as_str())
    .bind(ended_at)
    .bind(paid)
    .bind(refunded)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    if let Some(job_id) = &lease.job_id {
        set_job_node(tx, job_id, &lease.node_id, None).await?;
    }
    Ok(())
}

/// A lease to record for a matched order.
struct NewLease<'a> {
    id: &'a str,
    order: &'a OrderRecord,
    bid_id: i64,
    deposit: i64,
}
