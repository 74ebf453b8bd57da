//! An operator's stake and money over HTTP (ours; the seed has no such API): the stake's state,
//! and the actions only the operator's wallet may take — unstaking, withdrawing unbonded stake,
//! and paying earnings out — each signed by that wallet (see [`crate::wallet`]).
//!
//! `GET /grid/operators/{wallet}/stake` answers [`StakeStatus`];
//! `POST /grid/operators/{wallet}/actions` takes a [`SignedOperatorRequest`] and answers
//! [`OperatorActionResponse`].

use serde::{Deserialize, Serialize};

/// Where an operator's stake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StakeState {
    /// At or above the minimum: its nodes register and receive work.
    Staked,
    /// Below the minimum: its nodes get no work.
    BelowMinimum,
    /// An unstake is cooling down: its nodes get no work until it is withdrawn.
    Unstaking,
    /// Staked, but on a grid that runs on a chain the wallet has no bond of at least the
    /// registry's minimum in `ProviderRegistry` (or is taking it out): its nodes get no work.
    NotBonded,
}

impl StakeState {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Staked => "staked",
            Self::BelowMinimum => "below_minimum",
            Self::Unstaking => "unstaking",
            Self::NotBonded => "not_bonded",
        }
    }
}

impl std::fmt::Display for StakeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One slash of an operator's stake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlashInfo {
    /// RFC 3339.
    pub at: String,
    /// Why, e.g. `bad_signature`.
    pub reason: String,
    /// Micro-SGL taken.
    pub amount_micros: i64,
    /// The node at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// The job whose result was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The keccak-256 of the grid's evidence record, `0x…`: what the slash events carry on a
    /// grid that runs on a chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_hash: Option<String>,
}

/// `GET /grid/operators/{wallet}/stake` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StakeStatus {
    /// The wallet.
    pub wallet: String,
    /// Where the stake stands.
    pub state: StakeState,
    /// Active stake, micro-SGL.
    pub staked_micros: i64,
    /// Stake cooling down after an unstake, micro-SGL.
    pub unbonding_micros: i64,
    /// When the unbonding stake may be withdrawn (RFC 3339), while an unstake is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbonding_available_at: Option<String>,
    /// Whether the unbonding stake may be withdrawn now.
    pub withdrawable: bool,
    /// The stake an operator needs for its nodes to work, SGL.
    pub min_stake_sgl: u64,
    /// How long an unstake cools down, seconds.
    pub cooldown_secs: u64,
    /// Earnings not yet paid out, micro-dollars.
    pub earnings_micros: i64,
    /// Every slash, newest first.
    pub slashes: Vec<SlashInfo>,
}

/// What the wallet asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum OperatorAction {
    /// Start the cooldown for `amount_micros` of stake (all of it when absent).
    Unstake {
        /// Micro-SGL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount_micros: Option<i64>,
    },
    /// Take out the unbonded stake once its cooldown has passed.
    WithdrawStake,
    /// Pay earnings out to the EVM address `to` (all of them when `amount_micros` is absent).
    Payout {
        /// Micro-dollars.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount_micros: Option<i64>,
        /// `0x…` address receiving USDC.
        to: String,
    },
}

impl OperatorAction {
    /// The action as it appears in the signed message.
    pub fn canonical(&self) -> String {
        let amount = |a: &Option<i64>| a.map_or_else(|| "all".to_owned(), |a| a.to_string());
        match self {
            Self::Unstake { amount_micros } => format!("unstake:{}", amount(amount_micros)),
            Self::WithdrawStake => "withdraw-stake".to_owned(),
            Self::Payout { amount_micros, to } => format!("payout:{}:{}", amount(amount_micros), to.to_lowercase()),
        }
    }
}

/// `POST /grid/operators/{wallet}/actions` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedOperatorRequest {
    /// What to do.
    #[serde(flatten)]
    pub action: OperatorAction,
    /// Random, used once: a replayed request is refused.
    #[schema(min_length = 1, max_length = 128, pattern = "^[!-~]+$")]
    pub nonce: String,
    /// Unix seconds; the grid accepts requests signed within five minutes of its clock.
    pub signed_at: u64,
    /// The wallet's signature over [`operator_message`]: EIP-191 `personal_sign` hex for a `0x`
    /// wallet, base58 ed25519 for a Solana-style wallet.
    pub signature: String,
}

/// The exact text a wallet signs:
/// `sgl-operator:v1\n{wallet}\n{action}\n{nonce}\n{signed_at}` with the action in
/// [`OperatorAction::canonical`] form.
pub fn operator_message(wallet: &str, action: &OperatorAction, nonce: &str, signed_at: u64) -> String {
    format!("sgl-operator:v1\n{wallet}\n{}\n{nonce}\n{signed_at}", action.canonical())
}

/// A payout made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayoutReceipt {
    /// Micro-dollars (USDC atomic units) paid.
    pub paid_micros: i64,
    /// The receiving address.
    pub to: String,
    /// The network, CAIP-2.
    pub network: String,
    /// The transfer's transaction hash (synthetic in a local ledger); absent while the payout
    /// waits for its batch on a chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Paid, or queued for the grid's next batch on its chain.
    pub status: PayoutStatus,
    /// The payout's id, as `GET /grid/operators/{wallet}/payouts` lists it.
    pub id: String,
}

/// Where a payout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// The money arrived (in the grid's ledger, or on its chain in `transaction`).
    Paid,
    /// Out of the earnings and waiting for the grid's next `Escrow.payBatch` on its chain.
    Queued,
    /// In a batch the grid sent and has not seen mined yet.
    Sending,
}

/// One payout of an operator wallet on a chain grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayoutView {
    /// Its id.
    pub id: String,
    /// Micro-dollars (USDC atomic units).
    pub amount_micros: i64,
    /// The receiving address.
    pub to: String,
    /// When it was asked for, RFC 3339.
    pub created_at: String,
    /// Where it stands.
    pub status: PayoutStatus,
    /// Its `payBatch` batch id, once batched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The batch's transaction, once mined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
}

/// `GET /grid/operators/{wallet}/payouts` response: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayoutList {
    /// Always `list`.
    pub object: String,
    /// The payouts.
    pub data: Vec<PayoutView>,
}

/// `POST /grid/operators/{wallet}/actions` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorActionResponse {
    /// The stake after the action.
    pub stake: StakeStatus,
    /// Micro-SGL withdrawn, for `withdraw-stake`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_micros: Option<i64>,
    /// The payout, for `payout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout: Option<PayoutReceipt>,
}

#[cfg(test)]
mod tests {
    //! The signed text is stable and the actions travel as tagged JSON.

    use super::*;

    #[test]
    fn actions_have_one_canonical_message() {
        let payout = OperatorAction::Payout { amount_micros: Some(5), to: "0xABC".into() };
        assert_eq!(operator_message("0xw", &payout, "n1", 7), "sgl-operator:v1\n0xw\npayout:5:0xabc\nn1\n7");
        assert_eq!(OperatorAction::Unstake { amount_micros: None }.canonical(), "unstake:all");
        let request = SignedOperatorRequest {
            action: OperatorAction::WithdrawStake,
            nonce: "n".into(),
            signed_at: 1,
            signature: "s".into(),
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action": "withdraw-stake", "nonce": "n", "signed_at": 1, "signature": "s"})
        );
        assert_eq!(serde_json::from_value::<SignedOperatorRequest>(json).unwrap(), request);
    }
}

/// Where one node of an operator stands, as the scheduler sees it
/// (`GET /grid/operators/{wallet}/nodes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorNode {
    /// The node.
    pub node_id: String,
    /// `active`, `offline` or `off_grid`.
    #[schema(value_type = String, example = "active")]
    pub status: super::node::NodeLifecycle,
    /// Models it serves now (empty while offline).
    pub models: Vec<String>,
    /// Job slots busy now, over `slots`.
    pub busy_slots: u32,
    /// Its parallel slots (0 while offline).
    pub slots: u32,
    /// Reputation, 0..=1.
    pub reputation: f64,
    /// It passed attestation with the binary it runs now.
    pub attested: bool,
    /// Its binary is on the grid's allowlist (or the allowlist is empty).
    pub binary_allowed: bool,
    /// Completed jobs.
    pub jobs_completed: u64,
    /// Failed jobs.
    pub jobs_failed: u64,
    /// When the grid last heard from it, RFC 3339 (absent since this process started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// Why the scheduler gives it no work now, with the same reasons as `GET /grid/nodes/{id}`;
    /// empty when it is eligible.
    pub not_serving: Vec<super::node::NotServingReason>,
    /// Where the scheduler ranks it for each model it serves (empty while it is not eligible).
    #[serde(default)]
    pub standing: Vec<ModelStanding>,
}

/// Where the scheduler puts an eligible node among the eligible nodes serving one model: it
/// offers a request to them cheapest first, then most reputable, then least loaded, so a node
/// far down the list gets work only when those before it are busy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelStanding {
    /// The model.
    pub model: String,
    /// Its place, from 1, in the scheduler's order.
    pub position: u32,
    /// Eligible nodes serving the model.
    pub of: u32,
    /// Its price, blended USD per 1M tokens (its own or the grid's reference price).
    pub price_per_m: f64,
    /// The grid's reference price for the model, blended USD per 1M tokens.
    pub reference_per_m: f64,
    /// Its price is above the reference: requests quoted at the reference price (plain
    /// requests without a key, paid per request) skip it.
    pub above_reference: bool,
    /// Its context per slot, in tokens: the scheduler gives it only prompts shorter than this.
    pub context_size: u32,
    /// Chat requests for the model in the last 24 hours whose prompt (as billed) did not fit in
    /// that context: the scheduler sent each to a node with more.
    pub prompts_too_long_24h: u64,
}

/// `GET /grid/operators/{wallet}/nodes` response: every node registered under the wallet,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorNodes {
    /// The wallet.
    pub wallet: String,
    /// Its nodes.
    pub nodes: Vec<OperatorNode>,
}

/// One day of an operator's earnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EarningsDay {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// What the wallet earned that day (its shares of settled jobs), micro-dollars.
    pub earned_micros: i64,
}

/// `GET /grid/operators/{wallet}/earnings` response: what the wallet earned per UTC day, oldest
/// first; days without earnings are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorEarnings {
    /// The wallet.
    pub wallet: String,
    /// The first day covered, `YYYY-MM-DD`.
    pub since: String,
    /// Days covered, today included.
    pub days: u32,
    /// One entry per day with earnings.
    pub data: Vec<EarningsDay>,
}

/// One `snapshot` event of `GET /grid/operators/{wallet}/events` (SSE): the wallet's stake, its
/// nodes and 30 days of earnings, sent whenever any of it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperatorSnapshot {
    /// As `GET /grid/operators/{wallet}/stake` answers it.
    pub stake: StakeStatus,
    /// As `GET /grid/operators/{wallet}/nodes` answers it.
    pub nodes: OperatorNodes,
    /// As `GET /grid/operators/{wallet}/earnings` answers it (30 days).
    pub earnings: OperatorEarnings,
}
