//! A caller's account over HTTP (ours; the seed manages keys only in its dashboard): the credit
//! balance and API keys. Keys form accounts: a key created through `POST /v1/keys` belongs to
//! the account of the key that created it, may be given part of its credits, and every key of
//! an account can list and revoke the others.

use serde::{Deserialize, Serialize};

use crate::ids::ApiKey;

/// `GET /compute/credits/balance` response: the calling key's prepaid credits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreditsBalance {
    /// The key's id.
    pub api_key_id: i64,
    /// Spendable credits, in micro-dollars (exact).
    pub balance_micros: i64,
    /// The same in dollars, for display.
    pub balance_usd: f64,
}

/// `POST /v1/keys` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateKeyRequest {
    /// A label to recognise the key by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub label: Option<String>,
    /// Credits moved from the calling key to the new one, in dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.000001, maximum = 1000000000.0)]
    pub credits_usd: Option<f64>,
}

/// `POST /v1/keys` response: the only time the key itself is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The new key's id.
    pub id: i64,
    /// The key.
    pub api_key: ApiKey,
    /// Its first characters, which listings show.
    pub prefix: String,
    /// Its label.
    pub label: String,
    /// Credits it starts with, in micro-dollars.
    pub credits_micros: i64,
}

/// One key of an account, as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// The key's id.
    pub id: i64,
    /// Its first characters.
    pub prefix: String,
    /// Its label.
    pub label: String,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Revoked keys stay listed.
    pub revoked: bool,
    /// When it stops working, RFC 3339: only a wallet sign-in's key expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Its credits, in micro-dollars.
    pub credits_micros: i64,
}

/// `GET /v1/keys` response, OpenAI's list shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyList {
    /// Always `list`.
    pub object: String,
    /// The account's keys, oldest first.
    pub data: Vec<KeyInfo>,
}

/// `DELETE /v1/keys/{id}` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokedKey {
    /// The key's id.
    pub id: i64,
    /// Always true: the key no longer works.
    pub revoked: bool,
}

/// `POST /compute/credits/topup` request, paid with x402 (or MPP) in the same request: answered
/// 402 with the price first, then credited when the retry carries the payment. One of
/// `amount_usd` and `amount` is required (its schema is in `crate::schema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopupRequest {
    /// Dollars to add (the payment is this many USDC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_usd: Option<f64>,
    /// The seed's spelling of `amount_usd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// The seed's payment network (`base-sepolia`, `eip155:84532`, …); must be the grid's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

impl TopupRequest {
    /// A top-up of `usd` dollars in our spelling.
    pub fn usd(usd: f64) -> Self {
        Self { amount_usd: Some(usd), amount: None, network: None }
    }

    /// The dollars asked for, in either spelling (`amount_usd` wins).
    pub fn dollars(&self) -> Option<f64> {
        self.amount_usd.or(self.amount)
    }
}

/// `POST /compute/credits/topup` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopupResponse {
    /// The key credited: the calling key, or a new key of the payer's wallet account.
    pub api_key_id: i64,
    /// The new key, shown once, when the top-up was sent without one. It also receives what
    /// earlier per-request payments of the wallet left unspent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKey>,
    /// Micro-dollars this payment added.
    pub credited_micros: i64,
    /// The key's credits now, in micro-dollars.
    pub balance_micros: i64,
    /// The same in dollars, for display.
    pub balance_usd: f64,
    /// The paying wallet, `0x…`.
    pub payer: String,
}

/// `PATCH /v1/keys/{id}` request: a new label for a key of the caller's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UpdateKeyRequest {
    /// The new label (empty clears it).
    #[schema(max_length = 100, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub label: String,
}

/// `POST /v1/keys/transfer` request: credits moved between two live keys of the caller's
/// account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MoveCreditsRequest {
    /// The key the credits leave.
    pub from_key_id: i64,
    /// The key they reach.
    pub to_key_id: i64,
    /// Dollars to move.
    #[schema(minimum = 0.000001, maximum = 1000000000.0)]
    pub amount_usd: f64,
}

/// `POST /v1/keys/transfer` response: both keys' credits after the move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MovedCredits {
    /// Micro-dollars moved.
    pub moved_micros: i64,
    /// The giving key's credits now, micro-dollars.
    pub from_credits_micros: i64,
    /// The receiving key's credits now, micro-dollars.
    pub to_credits_micros: i64,
}

/// Largest number of days `GET /v1/usage` reports.
pub const MAX_USAGE_DAYS: u32 = 366;

/// One row of `GET /v1/usage`: what one key spent on one model on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageRow {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The key that paid.
    pub api_key_id: i64,
    /// The model.
    pub model: String,
    /// Chat jobs started that day (failed ones included, billed nothing).
    pub jobs: i64,
    /// Prompt tokens billed.
    pub prompt_tokens: i64,
    /// Completion tokens billed.
    pub completion_tokens: i64,
    /// What was billed, micro-dollars.
    pub billed_micros: i64,
}

/// `GET /v1/usage` response: the caller's account's chat usage per key, model and day, oldest
/// day first, from the grid's own job records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// The first day covered, `YYYY-MM-DD`.
    pub since: String,
    /// Days covered, today included.
    pub days: u32,
    /// One row per day, key and model with any job; days without any are absent.
    pub data: Vec<UsageRow>,
}

/// One `snapshot` event of `GET /v1/account/events` (SSE): what `GET /compute/credits/balance`,
/// `GET /v1/keys` and `GET /v1/usage` (30 days) answer, together, sent whenever any of it
/// changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountSnapshot {
    /// The calling key's credits.
    pub balance: CreditsBalance,
    /// Every key of the account.
    pub keys: KeyList,
    /// The account's usage over the last 30 days.
    pub usage: UsageReport,
}

/// How long a wallet sign-in's key works, in milliseconds: twelve hours.
pub const SIGN_IN_KEY_MS: i64 = 12 * 3_600_000;

/// The exact text a wallet signs to sign in to the grid at `host` (the `Host` the request was
/// sent to, so a signature for one grid opens no other):
///
/// ```text
/// sgl-sign-in:v1
/// Sign in to the grid at {host} with {wallet}.
/// nonce: {nonce}
/// signed at: {signed_at}
/// ```
pub fn sign_in_message(host: &str, wallet: &str, nonce: &str, signed_at: u64) -> String {
    format!("sgl-sign-in:v1\nSign in to the grid at {host} with {wallet}.\nnonce: {nonce}\nsigned at: {signed_at}")
}

/// `POST /v1/auth/wallet` request: a wallet's signature over [`sign_in_message`], instead of
/// an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletSignInRequest {
    /// The wallet: a `0x…` EVM address (EIP-191 signature) or a base58 ed25519 key.
    pub wallet: String,
    /// A single-use nonce, 1 to 128 printable ASCII characters.
    #[schema(min_length = 1, max_length = 128, pattern = "^[!-~]+$")]
    pub nonce: String,
    /// Unix seconds when signed; accepted within five minutes of the grid's clock.
    pub signed_at: u64,
    /// The signature: 0x-hex EIP-191 for an EVM wallet, base58 ed25519 otherwise.
    pub signature: String,
}

/// `POST /v1/auth/wallet` response: a new key of the wallet's account (made on its first
/// sign-in or payment), shown only here, that stops working at `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WalletSignIn {
    /// The wallet, as the grid keeps it (EVM addresses lowercase).
    pub wallet: String,
    /// Whether this sign-in made the wallet's account.
    pub account_created: bool,
    /// The key: its id, the key itself, its prefix and label (`wallet sign-in`), no credits.
    #[serde(flatten)]
    pub key: CreatedKey,
    /// When the key stops working, RFC 3339.
    pub expires_at: String,
    /// The same, Unix milliseconds.
    pub expires_at_ms: i64,
}
