//! An operator's stake and earnings (ours, documented in `docs/protocol.md`): anyone may read a
//! wallet's stake; only the wallet may unstake, withdraw unbonded stake or pay its earnings out,
//! each request signed by the wallet over a single-use nonce and a recent time.
//!
//! A payout moves earnings out of the ledger and, on a grid settling in its own ledger, credits
//! the same amount of the payment token to the receiving address there. A remote facilitator
//! has no payout API (x402 facilitators only settle payers' authorizations), so a grid using
//! one refuses payouts rather than pretending to have paid.

use axum::extract::{Path, State};
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posting, TransactionKind};
use sgl_grid_store::stake::StakeError;
use sgl_pay::ledger::AccountKey;
use sgl_protocol::api::error::ErrorCode;
use sgl_protocol::api::operator::{
    OperatorAction, OperatorActionResponse, PayoutReceipt, SignedOperatorRequest, SlashInfo, StakeStatus,
    operator_message,
};
use sgl_protocol::payout::EvmAddress;
use sgl_protocol::wallet::verify_wallet_signature;

use crate::error::{ApiError, ApiResult};
use crate::routes::AppJson;
use crate::service::rfc3339;
use crate::state::AppState;

/// How far a request's `signed_at` may be from the grid's clock.
const MAX_SKEW_SECS: i64 = 300;
/// Longest nonce.
const MAX_NONCE: usize = 128;

/// `GET /grid/operators/{wallet}/stake`.
#[utoipa::path(
    get, path = "/grid/operators/{wallet}/stake", tag = "operator",
    params(("wallet" = String, Path, description = "The operator's wallet.")),
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::operator::StakeStatus),
    ),
)]
pub(super) async fn stake(
    State(state): State<AppState>,
    Path(wallet): Path<String>,
) -> ApiResult<AppJson<StakeStatus>> {
    Ok(AppJson(status(&state, &wallet).await?))
}

async fn status(state: &AppState, wallet: &str) -> ApiResult<StakeStatus> {
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

/// `POST /grid/operators/{wallet}/actions`.
#[utoipa::path(
    post, path = "/grid/operators/{wallet}/actions", tag = "operator",
    params(("wallet" = String, Path, description = "The operator's wallet.")),
    request_body = sgl_protocol::api::operator::SignedOperatorRequest,
    responses(
        (status = 200, description = "Success.", body = sgl_protocol::api::operator::OperatorActionResponse),
        (status = 401, description = "The wallet signature does not verify, or the request is stale.", body = sgl_protocol::api::error::ErrorBody),
        (status = 409, description = "The nonce is spent, or the stake is not in a state that allows the action.", body = sgl_protocol::api::error::ErrorBody),
        (status = 503, description = "Payouts are not possible on this grid.", body = sgl_protocol::api::error::ErrorBody),
        crate::routes::openapi::BodyErrors,
    ),
)]
pub(super) async fn action(
    State(state): State<AppState>,
    Path(wallet): Path<String>,
    AppJson(request): AppJson<SignedOperatorRequest>,
) -> ApiResult<AppJson<OperatorActionResponse>> {
    authenticate(&state, &wallet, &request).await?;
    let now = state.now_ms();
    let mut response =
        OperatorActionResponse { stake: status(&state, &wallet).await?, withdrawn_micros: None, payout: None };
    match &request.action {
        OperatorAction::Unstake { amount_micros } => {
            let available_at = now.saturating_add(state.config().unstake_cooldown_ms());
            state.store().request_unstake(&wallet, *amount_micros, now, available_at).await.map_err(stake_error)?;
            // Its nodes stop receiving work now, not at their next heartbeat.
            for node in state.registry().snapshot().into_iter().filter(|n| n.wallet == wallet) {
                state.registry().update(&node.node_id.to_string(), |live| live.staked = false);
            }
            tracing::info!(target: "sgl::events::stake", %wallet, "unstake requested");
        }
        OperatorAction::WithdrawStake => {
            let withdrawn = state.store().withdraw_stake(&wallet, now).await.map_err(stake_error)?;
            response.withdrawn_micros = Some(withdrawn);
            tracing::info!(target: "sgl::events::stake", %wallet, withdrawn, "unbonded stake withdrawn");
        }
        OperatorAction::Payout { amount_micros, to } => {
            response.payout = Some(payout(&state, &wallet, *amount_micros, to, &request.nonce).await?);
        }
    }
    response.stake = status(&state, &wallet).await?;
    Ok(AppJson(response))
}

/// Checks the wallet's signature, the time and the nonce (which it then uses up).
async fn authenticate(state: &AppState, wallet: &str, request: &SignedOperatorRequest) -> ApiResult<()> {
    if request.nonce.is_empty()
        || request.nonce.len() > MAX_NONCE
        || !request.nonce.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(ApiError::bad_param("nonce", format!("nonce must be 1 to {MAX_NONCE} printable ASCII characters")));
    }
    let skew = (state.now_ms() / 1000).saturating_sub(i64::try_from(request.signed_at).unwrap_or(i64::MAX));
    if skew.abs() > MAX_SKEW_SECS {
        return Err(ApiError::bad_param(
            "signed_at",
            format!("signed_at is {skew} s from the grid's clock; sign requests within {MAX_SKEW_SECS} s"),
        ));
    }
    let message = operator_message(wallet, &request.action, &request.nonce, request.signed_at);
    verify_wallet_signature(wallet, message.as_bytes(), &request.signature)
        .map_err(|e| ApiError::invalid_signature(format!("the wallet signature does not verify: {e}")))?;
    if !state.store().use_operator_nonce(&wallet.to_lowercase(), &request.nonce, state.now_ms()).await? {
        return Err(ApiError::conflict("this request was already used (its nonce is spent); sign a new one"));
    }
    Ok(())
}

fn stake_error(error: StakeError) -> ApiError {
    match error {
        StakeError::AlreadyUnstaking => ApiError::conflict("an unstake is already cooling down for this wallet"),
        StakeError::NotEnoughStake { staked, asked } => ApiError::bad_param(
            "amount_micros",
            format!("the wallet has {staked} micro-SGL staked; cannot unstake {asked}"),
        ),
        StakeError::NoUnstake => ApiError::conflict("no unstake is open for this wallet; unstake first"),
        StakeError::CoolingDown { available_at } => {
            ApiError::conflict(format!("the unstaked amount may be withdrawn from {}", rfc3339::format(available_at)))
        }
        other => ApiError::internal(&other),
    }
}

/// Pays `amount` (all earnings when `None`) to `to`.
async fn payout(
    state: &AppState,
    wallet: &str,
    amount: Option<i64>,
    to: &str,
    nonce: &str,
) -> ApiResult<PayoutReceipt> {
    let to: EvmAddress = to.parse().map_err(|_| ApiError::bad_param("to", "to must be a 0x EVM address"))?;
    let Some(payments) = state.payments() else {
        return Err(ApiError::bad_request("this grid has no payment network configured for payouts"));
    };
    if payments.config().facilitator_url.is_some() {
        return Err(ApiError::unavailable(
            ErrorCode::UpstreamFailed,
            "payouts need the grid's own ledger; this grid settles through a remote facilitator, which has no payout API",
        ));
    }
    let earnings = Account::Earnings { wallet: wallet.to_owned() };
    let available = state.store().balance(&earnings).await?;
    let amount = amount.unwrap_or(available);
    if amount <= 0 {
        return Err(ApiError::bad_param(
            "amount_micros",
            format!("nothing to pay out (earnings: {available} micro-dollars)"),
        ));
    }
    let network = &payments.config().network;
    let transaction =
        format!("0x{}", sgl_protocol::encoding::sha256_hex(format!("payout:{wallet}:{nonce}").as_bytes()));
    let out = NewTransaction {
        idempotency_key: format!("payout:{wallet}:{nonce}"),
        kind: TransactionKind::Payout,
        memo: format!("payout to {}", to.to_checksummed()),
        postings: vec![
            Posting { account: earnings, amount: -amount },
            Posting { account: Account::External { source: "payout".into(), asset: Asset::Usd }, amount },
        ],
    };
    let address = alloy_primitives::Address::from(*to.as_bytes());
    let account = AccountKey { network: network.caip2.to_string(), asset: network.asset, address };
    match state.store().post_and_pay_out(&out, &account, payments.atomic_units(amount), state.now_ms()).await {
        Ok(_) => {}
        Err(PostError::InsufficientFunds { balance, .. }) => {
            return Err(ApiError::bad_param(
                "amount_micros",
                format!("earnings are {balance} micro-dollars, less than the {amount} asked for"),
            ));
        }
        Err(other) => return Err(ApiError::internal(&other)),
    }
    tracing::info!(target: "sgl::events::payout", %wallet, to = %to.to_checksummed(), amount, "earnings paid out");
    Ok(PayoutReceipt { paid_micros: amount, to: to.to_checksummed(), network: network.caip2.to_string(), transaction })
}
