//! An operator's stake and earnings: anyone may read a wallet's stake; only the wallet may
//! unstake, withdraw unbonded stake or pay its earnings out, each request signed by the wallet
//! over a single-use nonce and a recent time. No HTTP here: a refusal is an [`OperatorError`].
//!
//! A payout moves earnings out of the ledger and, on a grid settling in its own ledger, credits
//! the same amount of the payment token to the receiving address there, in one transaction. A
//! remote facilitator has no payout API (x402 facilitators only settle payers' authorizations),
//! so a grid using one refuses payouts rather than pretending to have paid. On a chain grid a
//! payout leaves the ledger at once and is queued for the leader's next batch on the chain
//! ([`crate::chain::payouts`]).

use sgl_grid_store::StoreError;
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posting, TransactionKind};
use sgl_grid_store::stake::StakeError;
use sgl_pay::ledger::AccountKey;
use sgl_protocol::api::operator::{
    OperatorAction, OperatorActionResponse, PayoutReceipt, PayoutStatus, SignedOperatorRequest, SlashInfo, StakeStatus,
    operator_message,
};
use sgl_protocol::payout::EvmAddress;
use sgl_protocol::wallet::verify_wallet_signature;

use crate::service::rfc3339;
use crate::state::AppState;

/// How far a request's `signed_at` may be from the grid's clock.
pub const MAX_SKEW_SECS: i64 = 300;
/// Longest nonce.
pub const MAX_NONCE: usize = 128;

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The nonce is empty, too long or not printable ASCII.
    #[error("nonce must be 1 to {MAX_NONCE} printable ASCII characters")]
    BadNonce,
    /// `signed_at` is too far from the grid's clock.
    #[error("signed_at is {skew} s from the grid's clock; sign requests within {MAX_SKEW_SECS} s")]
    Stale {
        /// Seconds between the grid's clock and `signed_at`.
        skew: i64,
    },
    /// The wallet's signature does not verify.
    #[error("the wallet signature does not verify: {0}")]
    BadSignature(String),
    /// The nonce was used before.
    #[error("this request was already used (its nonce is spent); sign a new one")]
    NonceUsed,
    /// The payout address is not an EVM address.
    #[error("to must be a 0x EVM address")]
    BadPayoutAddress,
    /// The grid takes no payments, so it has no network to pay out on.
    #[error("this grid has no payment network configured for payouts")]
    NoPaymentNetwork,
    /// The grid settles through a remote facilitator, which cannot pay out.
    #[error(
        "payouts need the grid's own ledger; this grid settles through a remote facilitator, which has no payout API"
    )]
    RemoteFacilitator,
    /// No earnings to pay out.
    #[error("nothing to pay out (earnings: {available} micro-dollars)")]
    NothingToPayOut {
        /// Earnings, micro-dollars.
        available: i64,
    },
    /// Less earned than asked for.
    #[error("earnings are {balance} micro-dollars, less than the {asked} asked for")]
    EarningsShort {
        /// Earnings, micro-dollars.
        balance: i64,
        /// Asked for.
        asked: i64,
    },
    /// The stake is not in a state that allows the action.
    #[error(transparent)]
    Stake(#[from] StakeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger refused a movement it should have taken.
    #[error(transparent)]
    Ledger(PostError),
}

impl From<PostError> for OperatorError {
    fn from(error: PostError) -> Self {
        match error {
            PostError::Store(error) => Self::Store(error),
            other => Self::Ledger(other),
        }
    }
}

/// Where `wallet`'s stake, unbonding, earnings and slashes stand.
pub async fn status(state: &AppState, wallet: &str) -> Result<StakeStatus, OperatorError> {
    let (stake_state, staked) = crate::service::stake::standing(state, wallet).await?;
    let store = state.store();
    let unbonding = store.balance(&Account::Unbonding { wallet: wallet.to_owned() }).await?;
    let open = store.unstake_request(wallet).await?;
    let slashes = store
        .slashes(wallet)
        .await?
        .into_iter()
        .map(|slash| SlashInfo {
            at: rfc3339::format(slash.created_at),
            reason: slash.reason,
            amount_micros: slash.amount,
            node_id: slash.node_id,
            job_id: slash.job_id,
            evidence_hash: Some(format!("{:#x}", crate::chain::slash::evidence_hash(&slash.evidence))),
        })
        .collect();
    Ok(StakeStatus {
        wallet: wallet.to_owned(),
        state: stake_state,
        staked_micros: staked,
        unbonding_micros: unbonding,
        unbonding_available_at: open.as_ref().map(|o| rfc3339::format(o.available_at)),
        withdrawable: open.is_some_and(|o| o.available_at <= state.now_ms()),
        min_stake_sgl: state.config().min_stake_sgl,
        cooldown_secs: state.config().unstake_cooldown_secs,
        earnings_micros: store.balance(&Account::Earnings { wallet: wallet.to_owned() }).await?,
        slashes,
    })
}

/// Carries out `request`, signed by `wallet`: checks the signature, the time and the nonce,
/// then unstakes, withdraws unbonded stake or pays earnings out. Returns the stake after it.
pub async fn act(
    state: &AppState,
    wallet: &str,
    request: &SignedOperatorRequest,
) -> Result<OperatorActionResponse, OperatorError> {
    authenticate(state, wallet, request).await?;
    let now = state.now_ms();
    let mut response =
        OperatorActionResponse { stake: status(state, wallet).await?, withdrawn_micros: None, payout: None };
    match &request.action {
        OperatorAction::Unstake { amount_micros } => {
            let available_at = now.saturating_add(state.config().unstake_cooldown_ms());
            state.store().request_unstake(wallet, *amount_micros, now, available_at).await?;
            // Its nodes stop receiving work now, not at their next heartbeat.
            for live in state.registry().lock().values_mut().filter(|n| n.wallet == wallet) {
                live.staked = false;
            }
            tracing::info!(target: "sgl::events::stake", %wallet, "unstake requested");
        }
        OperatorAction::WithdrawStake => {
            let withdrawn = state.store().withdraw_stake(wallet, now).await?;
            response.withdrawn_micros = Some(withdrawn);
            tracing::info!(target: "sgl::events::stake", %wallet, withdrawn, "unbonded stake withdrawn");
        }
        OperatorAction::Payout { amount_micros, to } => {
            response.payout = Some(payout(state, wallet, *amount_micros, to, &request.nonce).await?);
        }
    }
    response.stake = status(state, wallet).await?;
    Ok(response)
}

/// Checks the wallet's signature, the time and the nonce (which it then uses up).
async fn authenticate(state: &AppState, wallet: &str, request: &SignedOperatorRequest) -> Result<(), OperatorError> {
    if request.nonce.is_empty()
        || request.nonce.len() > MAX_NONCE
        || !request.nonce.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(OperatorError::BadNonce);
    }
    let skew = (state.now_ms() / 1000).saturating_sub(i64::try_from(request.signed_at).unwrap_or(i64::MAX));
    if skew.abs() > MAX_SKEW_SECS {
        return Err(OperatorError::Stale { skew });
    }
    let message = operator_message(wallet, &request.action, &request.nonce, request.signed_at);
    verify_wallet_signature(wallet, message.as_bytes(), &request.signature)
        .map_err(|e| OperatorError::BadSignature(e.to_string()))?;
    if !state.store().use_operator_nonce(&wallet.to_lowercase(), &request.nonce, state.now_ms()).await? {
        return Err(OperatorError::NonceUsed);
    }
    Ok(())
}

/// Pays `amount` (all earnings when `None`) to `to`.
async fn payout(
    state: &AppState,
    wallet: &str,
    amount: Option<i64>,
    to: &str,
    nonce: &str,
) -> Result<PayoutReceipt, OperatorError> {
    let to: EvmAddress = to.parse().map_err(|_| OperatorError::BadPayoutAddress)?;
    if state.chain().is_some() {
        return crate::chain::payouts::queue(state, wallet, amount, &to, nonce).await;
    }
    let payments = state.payments().ok_or(OperatorError::NoPaymentNetwork)?;
    if payments.config().facilitator_url.is_some() {
        return Err(OperatorError::RemoteFacilitator);
    }
    let (out, amount) = payout_out(state, wallet, amount, &to, nonce, "payout").await?;
    let network = &payments.config().network;
    let transaction = format!("0x{}", sgl_protocol::encoding::sha256_hex(out.idempotency_key.as_bytes()));
    let address = alloy_primitives::Address::from(*to.as_bytes());
    let account = AccountKey { network: network.caip2.to_string(), asset: network.asset, address };
    let units = payments.atomic_units(amount);
    state.store().post_and_pay_out(&out, &account, units, state.now_ms()).await.map_err(|error| match error {
        PostError::InsufficientFunds { balance, .. } => OperatorError::EarningsShort { balance, asked: amount },
        other => other.into(),
    })?;
    tracing::info!(target: "sgl::events::payout", %wallet, to = %to.to_checksummed(), amount, "earnings paid out");
    Ok(PayoutReceipt {
        paid_micros: amount,
        to: to.to_checksummed(),
        network: network.caip2.to_string(),
        transaction: Some(transaction),
        status: PayoutStatus::Paid,
        id: out.idempotency_key,
    })
}

/// The ledger transaction moving `amount` of `wallet`'s earnings (all of them when `None`) out
/// to the external account `sink`, keyed by the request's nonce; and the amount.
pub(crate) async fn payout_out(
    state: &AppState,
    wallet: &str,
    amount: Option<i64>,
    to: &EvmAddress,
    nonce: &str,
    sink: &str,
) -> Result<(NewTransaction, i64), OperatorError> {
    let earnings = Account::Earnings { wallet: wallet.to_owned() };
    let available = state.store().balance(&earnings).await?;
    let amount = amount.unwrap_or(available);
    if amount <= 0 {
        return Err(OperatorError::NothingToPayOut { available });
    }
    let out = NewTransaction {
        idempotency_key: format!("payout:{wallet}:{nonce}"),
        kind: TransactionKind::Payout,
        memo: format!("payout to {}", to.to_checksummed()),
        postings: vec![
            Posting { account: earnings, amount: -amount },
            Posting { account: Account::External { source: sink.into(), asset: Asset::Usd }, amount },
        ],
    };
    Ok((out, amount))
}
