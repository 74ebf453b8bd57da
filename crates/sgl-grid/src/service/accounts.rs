//! Callers' accounts: API keys, their credits, and the keys a top-up lands on. No HTTP here:
//! each operation returns an [`AccountError`], which `crate::error` maps to a status. Every
//! operation that moves money does it in one transaction with the rest of its writes (a key made
//! with credits exists only if the credits arrived).

use std::sync::Arc;

use sgl_grid_store::Store;
use sgl_grid_store::StoreError;
use sgl_grid_store::api_keys::{ApiKeyRecord, NewApiKey};
use sgl_grid_store::ledger::{Account, NewTransaction, PostError, Posting, TransactionKind};
use sgl_grid_store::reports::DAY_MS;
use sgl_protocol::api::account::{
    CreatedKey, KeyInfo, MAX_USAGE_DAYS, MoveCreditsRequest, MovedCredits, RevokedKey, UsageReport, UsageRow,
};
use sgl_protocol::ids::ApiKey;

use crate::service::pricing::usd_to_micros;
use crate::service::recent::Recent;
use crate::service::wallet_auth::WalletAuthError;
use crate::service::{rfc3339, secrets};
use crate::state::SharedClock;

/// Longest key label, in characters.
pub const MAX_LABEL: usize = 100;
/// Most keys in one account.
pub const MAX_KEYS: usize = 100;

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The label is too long or holds control characters.
    #[error("label: at most {MAX_LABEL} printable characters")]
    BadLabel,
    /// The credits to move are not a positive amount of at least one micro-dollar.
    #[error("credits_usd must be a positive amount")]
    BadCredits,
    /// The account holds [`MAX_KEYS`] keys already.
    #[error("an account holds at most {MAX_KEYS} keys")]
    TooManyKeys,
    /// The calling key holds fewer credits than it would move.
    #[error("this key has {balance} micro-dollars of credits, fewer than the {asked} asked for")]
    InsufficientCredits {
        /// Its credits.
        balance: i64,
        /// What it asked to move.
        asked: i64,
    },
    /// No key with that id in the caller's account.
    #[error("no such key in this account")]
    NoSuchKey,
    /// The amount to move between keys is not a positive amount of at least one micro-dollar.
    #[error("amount_usd must be a positive amount")]
    BadAmount,
    /// Credits were to move from a key to itself.
    #[error("from_key_id and to_key_id name the same key")]
    SameKey,
    /// The usage report's `days` is outside 1..=366.
    #[error("days: from 1 to {MAX_USAGE_DAYS}")]
    BadDays,
    /// The key is revoked already (or, for a move of credits, one of the two is).
    #[error("this key is already revoked")]
    AlreadyRevoked,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ledger refused a movement it should have taken.
    #[error(transparent)]
    Ledger(PostError),
    /// A wallet's sign-in was refused.
    #[error(transparent)]
    Wallet(#[from] WalletAuthError),
}

impl From<PostError> for AccountError {
    fn from(error: PostError) -> Self {
        match error {
            PostError::Store(error) => Self::Store(error),
            other => Self::Ledger(other),
        }
    }
}

/// A new key's secret and its display prefix.
fn new_secret() -> (String, String) {
    let secret = secrets::api_key();
    let prefix = secret.chars().take(10).collect();
    (secret, prefix)
}

/// How long a live key found by its secret is trusted without asking the database again: a
/// key revoked by another process (`sgl-grid admin`, another replica) stops working within it.
pub const KEY_RECHECK_MS: i64 = 2_000;

/// Keys and credits.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    clock: SharedClock,
    recent: Arc<Recent<ApiKeyRecord>>,
}

impl Accounts {
    /// Accounts in `store`, timed by `clock`.
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self { store, clock, recent: Arc::new(Recent::new(KEY_RECHECK_MS)) }
    }

    /// The live key whose secret is `key`, if any (not revoked, not expired): from the keys
    /// found in the last [`KEY_RECHECK_MS`], else from the store.
    pub async fn caller(&self, key: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let (hash, now) = (secrets::hash(key), self.clock.now_ms());
        if let Some(record) = self.recent.get(&hash, now) {
            return Ok(record.live_at(now).then_some(record));
        }
        let record = self.store.find_live_api_key(&hash).await?;
        if let Some(record) = &record {
            self.recent.put(hash, record.clone(), now);
        }
        Ok(record.filter(|record| record.live_at(now)))
    }

    /// The credits of `key_id`, micro-dollars.
    pub async fn credits(&self, key_id: i64) -> Result<i64, AccountError> {
        Ok(self.store.balance(&Account::Credits { api_key_id: key_id }).await?)
    }

    /// Every key of `caller`'s account, with its credits.
    pub async fn list(&self, caller: &ApiKeyRecord) -> Result<Vec<KeyInfo>, AccountError> {
        let mut keys = Vec::new();
        for key in self.store.account_api_keys(caller.account()).await? {
            keys.push(KeyInfo {
                id: key.id,
                prefix: key.prefix.clone(),
                label: key.label.clone(),
                created_at: rfc3339::format(key.created_at),
                revoked: key.revoked_at.is_some(),
                expires_at: key.expires_at.map(rfc3339::format),
                credits_micros: self.credits(key.id).await?,
            });
        }
        Ok(keys)
    }

    /// A new key in `caller`'s account labelled `label`, holding `credits_usd` moved from
    /// `caller` (none when absent or zero).
    pub async fn create(
        &self,
        caller: &ApiKeyRecord,
        label: Option<String>,
        credits_usd: Option<f64>,
    ) -> Result<CreatedKey, AccountError> {
        let label = label.unwrap_or_default();
        if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
            return Err(AccountError::BadLabel);
        }
        let micros = match credits_usd {
            None => 0,
            Some(0.0) => 0,
            Some(usd) => usd_to_micros(usd).ok_or(AccountError::BadCredits)?,
        };
        if self.store.account_api_keys(caller.account()).await?.len() >= MAX_KEYS {
            return Err(AccountError::TooManyKeys);
        }
        let (secret, prefix) = new_secret();
        let new_key = NewApiKey {
            key_hash: &secrets::hash(&secret),
            prefix: &prefix,
            label: &label,
            wallet: caller.wallet.as_deref(),
            account_id: Some(caller.account()),
            expires_at: None,
        };
        let now = self.clock.now_ms();
        let record = if micros > 0 {
            let funding = |id| transfer(format!("credits:transfer:key:{id}"), caller.id, id, micros, "to its new key");
            self.store.create_funded_api_key(&new_key, funding, now).await.map_err(|error| match error {
                PostError::InsufficientFunds { balance, .. } => {
                    AccountError::InsufficientCredits { balance, asked: micros }
                }
                other => other.into(),
            })?
        } else {
            self.store.create_api_key(&new_key, now).await?
        };
        tracing::info!(target: "sgl::events::account", key_id = record.id, account = caller.account(), "api key created");
        Ok(CreatedKey { id: record.id, api_key: ApiKey::new(secret), prefix, label, credits_micros: micros })
    }

    /// Forgets what was read of key `id` (another replica revoked it).
    pub fn forget(&self, id: i64) {
        self.recent.forget(|record| record.id == id);
    }

    /// Revokes key `id` of `caller`'s account.
    pub async fn revoke(&self, caller: &ApiKeyRecord, id: i64) -> Result<RevokedKey, AccountError> {
        let target = self.account_key(caller, id).await?;
        if target.revoked_at.is_some() {
            return Err(AccountError::AlreadyRevoked);
        }
        self.store.revoke_api_key(target.id, self.clock.now_ms()).await?;
        self.recent.forget(|record| record.id == target.id);
        tracing::info!(target: "sgl::events::account", key_id = target.id, by = caller.id, "api key revoked");
        Ok(RevokedKey { id: target.id, revoked: true })
    }

    /// Key `id` of `caller`'s account, live or revoked.
    async fn account_key(&self, caller: &ApiKeyRecord, id: i64) -> Result<ApiKeyRecord, AccountError> {
        let target = self.store.api_key(id).await?.filter(|target| target.account() == caller.account());
        target.ok_or(AccountError::NoSuchKey)
    }

    /// Labels key `id` of `caller`'s account `label` (revoked keys too: a label is a note).
    pub async fn relabel(&self, caller: &ApiKeyRecord, id: i64, label: &str) -> Result<KeyInfo, AccountError> {
        if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
            return Err(AccountError::BadLabel);
        }
        let target = self.account_key(caller, id).await?;
        if !self.store.set_api_key_label(target.id, label).await? {
            return Err(AccountError::NoSuchKey);
        }
        self.recent.forget(|record| record.id == target.id);
        Ok(KeyInfo {
            id: target.id,
            prefix: target.prefix,
            label: label.to_owned(),
            created_at: rfc3339::format(target.created_at),
            revoked: target.revoked_at.is_some(),
            expires_at: target.expires_at.map(rfc3339::format),
            credits_micros: self.credits(target.id).await?,
        })
    }

    /// Moves credits between two live keys of `caller`'s account, in one ledger transaction.
    pub async fn move_credits(
        &self,
        caller: &ApiKeyRecord,
        request: &MoveCreditsRequest,
    ) -> Result<MovedCredits, AccountError> {
        let micros = usd_to_micros(request.amount_usd).ok_or(AccountError::BadAmount)?;
        if request.from_key_id == request.to_key_id {
            return Err(AccountError::SameKey);
        }
        let from = self.account_key(caller, request.from_key_id).await?;
        let to = self.account_key(caller, request.to_key_id).await?;
        if from.revoked_at.is_some() || to.revoked_at.is_some() {
            return Err(AccountError::AlreadyRevoked);
        }
        // Each move is its own event: a fresh idempotency key, never a replay of an earlier one.
        let key = format!("credits:move:{}:{}:{}", from.id, to.id, secrets::random_b58(16));
        let movement = transfer(key, from.id, to.id, micros, "moved by the account");
        self.store.post(&movement, self.clock.now_ms()).await.map_err(|error| match error {
            PostError::InsufficientFunds { balance, .. } => {
                AccountError::InsufficientCredits { balance, asked: micros }
            }
            other => other.into(),
        })?;
        tracing::info!(target: "sgl::events::account", from = from.id, to = to.id, micros, by = caller.id, "credits moved");
        Ok(MovedCredits {
            moved_micros: micros,
            from_credits_micros: self.credits(from.id).await?,
            to_credits_micros: self.credits(to.id).await?,
        })
    }

    /// The chat usage of `caller`'s account over the last `days` days (today included), per
    /// day, key and model.
    pub async fn usage(&self, caller: &ApiKeyRecord, days: u32) -> Result<UsageReport, AccountError> {
        if !(1..=MAX_USAGE_DAYS).contains(&days) {
            return Err(AccountError::BadDays);
        }
        let today = self.clock.now_ms().div_euclid(DAY_MS);
        let first_day = today - i64::from(days) + 1;
        let records = self.store.account_usage(caller.account(), first_day * DAY_MS).await?;
        let day = |d: i64| rfc3339::format(d * DAY_MS)[..10].to_owned();
        let data = records
            .into_iter()
            .map(|r| UsageRow {
                day: day(r.day),
                api_key_id: r.api_key_id,
                model: r.model,
                jobs: r.jobs,
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                billed_micros: r.billed_micros,
            })
            .collect();
        Ok(UsageReport { since: day(first_day), days, data })
    }

    /// Where a paid top-up of `micros` lands, from the payer's wallet account `root` (which
    /// holds the payment, settlement `transaction`): on `caller`'s key when one was sent, else
    /// on a new key of the wallet's account that takes the account's whole credit, returned
    /// with its secret (shown once).
    pub async fn land_topup(
        &self,
        root: &ApiKeyRecord,
        caller: Option<ApiKeyRecord>,
        micros: i64,
        transaction: &str,
    ) -> Result<(ApiKeyRecord, Option<ApiKey>), AccountError> {
        let now = self.clock.now_ms();
        let key = format!("credits:topup:{{id}}:{transaction}");
        match caller {
            Some(target) if target.id == root.id || micros <= 0 => Ok((target, None)),
            Some(target) => {
                let movement =
                    transfer(key.replace("{id}", &target.id.to_string()), root.id, target.id, micros, "top-up");
                self.store.post(&movement, now).await?;
                Ok((target, None))
            }
            None => {
                let (secret, prefix) = new_secret();
                let new_key = NewApiKey {
                    key_hash: &secrets::hash(&secret),
                    prefix: &prefix,
                    label: "top-up",
                    wallet: root.wallet.as_deref(),
                    account_id: Some(root.id),
                    expires_at: None,
                };
                let whole = self.credits(root.id).await?;
                let funding = |id: i64| transfer(key.replace("{id}", &id.to_string()), root.id, id, whole, "top-up");
                let record = if whole > 0 {
                    self.store.create_funded_api_key(&new_key, funding, now).await?
                } else {
                    self.store.create_api_key(&new_key, now).await?
                };
                Ok((record, Some(ApiKey::new(secret))))
            }
        }
    }
}

/// Moves `micros` of credits from key `from` to key `to`, once per `idempotency_key`.
fn transfer(idempotency_key: String, from: i64, to: i64, micros: i64, why: &str) -> NewTransaction {
    NewTransaction {
        idempotency_key,
        kind: TransactionKind::CreditsTransfer,
        memo: format!("from key {from} to key {to}: {why}"),
        postings: vec![
            Posting { account: Account::Credits { api_key_id: from }, amount: -micros },
            Posting { account: Account::Credits { api_key_id: to }, amount: micros },
        ],
    }
}

mod sign_in;
pub use sign_in::wallet_root;
