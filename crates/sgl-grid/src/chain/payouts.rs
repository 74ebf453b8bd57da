//! Operator payouts on the chain. A payout asked for leaves the earnings at once, queued in the
//! same database transaction ([`queue`]); the leader pays the queue in batches of up to
//! [`BATCH_SIZE`] with one `Escrow.payBatch` each ([`pay_once`]), the grid's USDC to each
//! receiving address. A batch is named in the store before it is sent, and the chain is asked
//! whether it was paid before it is sent again, so a leader that stops between the two pays
//! nothing twice.

use sgl_chain::{Address, B256, U256};
use sgl_grid_store::chain::payouts::{ChainPayout, NewChainPayout};
use sgl_grid_store::ledger::PostError;
use sgl_protocol::api::operator::{PayoutList, PayoutReceipt, PayoutStatus, PayoutView};
use sgl_protocol::payout::EvmAddress;

use super::follow::FollowError;
use crate::service::operators::{OperatorError, payout_out};
use crate::service::rfc3339;
use crate::state::AppState;

/// Most payouts in one batch.
pub const BATCH_SIZE: i64 = 100;

/// Takes `amount` (all when `None`) of `wallet`'s earnings out of the ledger and queues it for
/// `to` on the chain. The grid's signer pays it with the next batch.
pub async fn queue(
    state: &AppState,
    wallet: &str,
    amount: Option<i64>,
    to: &EvmAddress,
    nonce: &str,
) -> Result<PayoutReceipt, OperatorError> {
    let Some(grid) = state.chain() else { return Err(OperatorError::NoPaymentNetwork) };
    let (out, amount) = payout_out(state, wallet, amount, to, nonce, "chain:payout").await?;
    let payout =
        NewChainPayout { id: out.idempotency_key.clone(), wallet: wallet.to_owned(), to: to.to_checksummed(), amount };
    state.store().queue_chain_payout(&out, &payout, state.now_ms()).await.map_err(|error| match error {
        PostError::InsufficientFunds { balance, .. } => OperatorError::EarningsShort { balance, asked: amount },
        other => other.into(),
    })?;
    tracing::info!(target: "sgl::events::payout", %wallet, to = %payout.to, amount, "payout queued for the chain");
    Ok(PayoutReceipt {
        paid_micros: amount,
        to: payout.to,
        network: grid.network().caip2.to_string(),
        transaction: None,
        status: PayoutStatus::Queued,
        id: payout.id,
    })
}

/// Pays the next batch, if any payout waits: returns the batch's transaction.
pub async fn pay_once(state: &AppState) -> Result<Option<B256>, FollowError> {
    let Some(grid) = state.chain() else { return Ok(None) };
    let fresh = sgl_chain::keccak256(uuid::Uuid::new_v4().as_bytes());
    let store = state.store();
    let Some(batch) = store.next_payout_batch(&format!("{fresh:#x}"), BATCH_SIZE, state.now_ms()).await? else {
        return Ok(None);
    };
    let id: B256 = batch.batch_id.parse().map_err(|_| FollowError::Corrupt(format!("batch id {}", batch.batch_id)))?;
    let chain = grid.chain();
    let hash = if chain.batch_paid(grid.address(), id).await? {
        // Sent before the last leader stopped: find the transaction rather than pay again.
        chain.batch_transaction(id).await?.unwrap_or_default()
    } else {
        let payouts = batch
            .payouts
            .iter()
            .map(|(to, amount)| {
                let to: Address = to.parse().map_err(|_| FollowError::Corrupt(format!("payout address {to}")))?;
                Ok((to, U256::from(amount.unsigned_abs())))
            })
            .collect::<Result<Vec<_>, FollowError>>()?;
        chain.pay_batch(id, &payouts).await?.tx_hash
    };
    store.record_payout_batch_paid(&batch.batch_id, &format!("{hash:#x}"), state.now_ms()).await?;
    let total: i64 = batch.payouts.iter().map(|(_, amount)| amount).sum();
    tracing::info!(
        target: "sgl::events::payout", batch = %batch.batch_id, payouts = batch.payouts.len(), total, tx = %hash,
        "payout batch paid on chain"
    );
    Ok(Some(hash))
}

/// `wallet`'s payouts on the chain, newest first.
pub async fn list(state: &AppState, wallet: &str, limit: i64) -> Result<PayoutList, OperatorError> {
    let payouts = state.store().chain_payouts(wallet, limit).await?;
    Ok(PayoutList { object: "list".into(), data: payouts.into_iter().map(view).collect() })
}

fn view(payout: ChainPayout) -> PayoutView {
    let status = match (&payout.batch_id, &payout.tx_hash) {
        (_, Some(_)) => PayoutStatus::Paid,
        (Some(_), None) => PayoutStatus::Sending,
        (None, None) => PayoutStatus::Queued,
    };
    PayoutView {
        id: payout.id,
        amount_micros: payout.amount,
        to: payout.to,
        created_at: rfc3339::format(payout.created_at),
        status,
        batch_id: payout.batch_id,
        transaction: payout.tx_hash,
    }
}
