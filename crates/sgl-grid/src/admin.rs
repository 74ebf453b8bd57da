//! Operator commands that work directly on the store (`sgl-grid admin …`). Each returns a JSON
//! value for `--json` and a line of text for people.

use serde_json::{Value, json};
use sgl_grid_store::api_keys::NewApiKey;
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posting, TransactionKind};
use sgl_grid_store::{Store, StoreError};
use sgl_protocol::encoding::is_sha256_hex;

use crate::service::pricing::usd_to_micros;
use crate::service::{rfc3339, secrets};

/// An admin command.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminCommand {
    /// Create an API key with starting credits.
    ApiKeyCreate {
        /// Starting credits in USD (0 for none).
        credits_usd: f64,
        /// A label.
        label: String,
        /// A wallet to bind the key to.
        wallet: Option<String>,
    },
    /// List API keys.
    ApiKeyList,
    /// Revoke an API key.
    ApiKeyRevoke {
        /// The key's id.
        id: i64,
    },
    /// Grant credits to an API key.
    CreditsAdd {
        /// The key's id.
        key_id: i64,
        /// USD.
        usd: f64,
    },
    /// Show an API key's credits.
    CreditsBalance {
        /// The key's id.
        key_id: i64,
    },
    /// Record a stake deposit for an operator wallet.
    Stake {
        /// The wallet.
        wallet: String,
        /// SGL.
        amount_sgl: u64,
    },
    /// Issue a single-use registration code bound to a wallet.
    RegistrationCode {
        /// The wallet.
        wallet: String,
        /// How long it stays valid.
        ttl_secs: u64,
    },
    /// Approve a device login (`sgl login`) for a wallet, as the grid operator.
    ApproveDevice {
        /// The code the node printed.
        user_code: String,
        /// The operator's wallet.
        wallet: String,
    },
    /// Allow a node binary by its sha256.
    AllowBinary {
        /// Lowercase or uppercase hex.
        sha256: String,
    },
    /// Audit the ledger; the output's `sound` is false when anything is wrong.
    LedgerCheck,
    /// Fund an address with test USDC in the local x402 facilitator (Base Sepolia by default).
    Faucet {
        /// The EVM address to fund, `0x…`.
        address: String,
        /// USDC to add.
        usdc: f64,
    },
}

/// What a command printed.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminOutput {
    /// For `--json`.
    pub json: Value,
    /// For people.
    pub text: String,
}

/// A command was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// An argument is invalid; the message says which and why.
    #[error("{0}")]
    Invalid(&'static str),
    /// No API key with this id.
    #[error("no API key with id {0}")]
    UnknownKey(i64),
    /// The device login could not be approved.
    #[error(transparent)]
    Device(#[from] sgl_grid_store::devices::ApproveDeviceError),
    /// The ledger refused the movement.
    #[error(transparent)]
    Ledger(#[from] PostError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn admin_source(asset: Asset) -> Account {
    Account::External { source: "admin".into(), asset }
}

/// Runs one command at `now_ms`.
pub async fn run(store: &Store, command: AdminCommand, now_ms: i64) -> Result<AdminOutput, AdminError> {
    match command {
        AdminCommand::ApiKeyCreate { credits_usd, label, wallet } => {
            api_key_create(store, credits_usd, label, wallet, now_ms).await
        }
        AdminCommand::ApiKeyList => api_key_list(store).await,
        AdminCommand::ApiKeyRevoke { id } => api_key_revoke(store, id, now_ms).await,
        AdminCommand::CreditsAdd { key_id, usd } => credits_add(store, key_id, usd, now_ms).await,
        AdminCommand::CreditsBalance { key_id } => credits_balance(store, key_id).await,
        AdminCommand::Stake { wallet, amount_sgl } => stake(store, wallet, amount_sgl, now_ms).await,
        AdminCommand::RegistrationCode { wallet, ttl_secs } => registration_code(store, wallet, ttl_secs, now_ms).await,
        AdminCommand::ApproveDevice { user_code, wallet } => approve_device(store, user_code, wallet, now_ms).await,
        AdminCommand::Faucet { address, usdc } => faucet(store, address, usdc).await,
        AdminCommand::LedgerCheck => ledger_check(store).await,
        AdminCommand::AllowBinary { sha256 } => allow_binary(store, sha256, now_ms).await,
    }
}

async fn api_key_create(
    store: &Store,
    credits_usd: f64,
    label: String,
    wallet: Option<String>,
    now_ms: i64,
) -> Result<AdminOutput, AdminError> {
    let micros = if credits_usd == 0.0 {
        0
    } else {
        usd_to_micros(credits_usd).ok_or(AdminError::Invalid("--credits-usd must be a positive amount"))?
    };
    let key = secrets::api_key();
    let prefix: String = key.chars().take(10).collect();
    let new_key = NewApiKey {
        key_hash: &secrets::hash(&key),
        prefix: &prefix,
        label: &label,
        wallet: wallet.as_deref(),
        account_id: None,
        expires_at: None,
    };
    // The key and its starting credits are one transaction.
    let record = if micros > 0 {
        let funding = |id| grant_movement(id, micros, &format!("grant:key:{id}:initial"));
        store.create_funded_api_key(&new_key, funding, now_ms).await?
    } else {
        store.create_api_key(&new_key, now_ms).await?
    };
    Ok(AdminOutput {
        text: format!("api key {} (id {}) with ${credits_usd:.2} of credits:\n{key}", record.prefix, record.id),
        json: json!({"id": record.id, "api_key": key, "prefix": record.prefix, "credits_usd": credits_usd}),
    })
}

async fn api_key_list(store: &Store) -> Result<AdminOutput, AdminError> {
    let keys = store.list_api_keys().await?;
    let mut rows = Vec::new();
    for key in &keys {
        let balance = store.balance(&Account::Credits { api_key_id: key.id }).await?;
        rows.push(json!({
            "id": key.id, "prefix": key.prefix, "label": key.label, "wallet": key.wallet,
            "created_at": rfc3339::format(key.created_at), "revoked": key.revoked_at.is_some(),
            "expires_at": key.expires_at.map(rfc3339::format), "credits_usd": balance as f64 / 1e6,
        }));
    }
    let text = rows
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}\t${:.6}\t{}",
                r["id"],
                r["prefix"].as_str().unwrap_or_default(),
                if r["revoked"] == true { "revoked" } else { "live" },
                r["credits_usd"].as_f64().unwrap_or(0.0),
                r["label"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Ok(AdminOutput { json: Value::Array(rows), text: if keys.is_empty() { "no API keys".into() } else { text } })
}

async fn api_key_revoke(store: &Store, id: i64, now_ms: i64) -> Result<AdminOutput, AdminError> {
    if !store.revoke_api_key(id, now_ms).await? {
        return Err(AdminError::UnknownKey(id));
    }
    Ok(AdminOutput { json: json!({"id": id, "revoked": true}), text: format!("api key {id} revoked") })
}

async fn credits_add(store: &Store, key_id: i64, usd: f64, now_ms: i64) -> Result<AdminOutput, AdminError> {
    let micros = usd_to_micros(usd).ok_or(AdminError::Invalid("--usd must be a positive amount"))?;
    ensure_key(store, key_id).await?;
    let idempotency_key = format!("grant:key:{key_id}:{}", secrets::random_b58(16));
    grant(store, key_id, micros, &idempotency_key, now_ms).await?;
    let balance = store.balance(&Account::Credits { api_key_id: key_id }).await?;
    Ok(AdminOutput {
        json: json!({"key_id": key_id, "added_usd": usd, "credits_usd": balance as f64 / 1e6}),
        text: format!("added ${usd:.2} to api key {key_id}; balance ${:.6}", balance as f64 / 1e6),
    })
}

async fn credits_balance(store: &Store, key_id: i64) -> Result<AdminOutput, AdminError> {
    ensure_key(store, key_id).await?;
    let balance = store.balance(&Account::Credits { api_key_id: key_id }).await?;
    Ok(AdminOutput {
        json: json!({"key_id": key_id, "credits_usd": balance as f64 / 1e6}),
        text: format!("api key {key_id}: ${:.6}", balance as f64 / 1e6),
    })
}

async fn stake(store: &Store, wallet: String, amount_sgl: u64, now_ms: i64) -> Result<AdminOutput, AdminError> {
    if wallet.trim().is_empty() {
        return Err(AdminError::Invalid("--wallet must not be empty"));
    }
    let micros = i64::try_from(amount_sgl).ok().and_then(|a| a.checked_mul(1_000_000)).filter(|m| *m > 0);
    let micros = micros.ok_or(AdminError::Invalid("--amount must be a positive number of SGL"))?;
    let stake = Account::Stake { wallet: wallet.clone() };
    let transaction = NewTransaction {
        idempotency_key: format!("stake:{wallet}:{now_ms}:{}", secrets::random_b58(8)),
        kind: TransactionKind::StakeDeposit,
        memo: "recorded by sgl-grid admin stake".into(),
        postings: vec![
            Posting { account: admin_source(Asset::Sgl), amount: -micros },
            Posting { account: stake.clone(), amount: micros },
        ],
    };
    store.post(&transaction, now_ms).await?;
    let total = store.balance(&stake).await? / 1_000_000;
    Ok(AdminOutput {
        json: json!({"wallet": wallet, "added_sgl": amount_sgl, "stake_sgl": total}),
        text: format!("wallet {wallet} now has {total} SGL staked"),
    })
}

async fn registration_code(
    store: &Store,
    wallet: String,
    ttl_secs: u64,
    now_ms: i64,
) -> Result<AdminOutput, AdminError> {
    if wallet.trim().is_empty() {
        return Err(AdminError::Invalid("--wallet must not be empty"));
    }
    let ttl_ms = i64::try_from(ttl_secs).ok().and_then(|t| t.checked_mul(1000)).filter(|t| *t > 0);
    let ttl_ms = ttl_ms.ok_or(AdminError::Invalid("--ttl-secs must be positive"))?;
    let code = secrets::registration_code();
    store.create_registration_code(&secrets::hash(&code), &wallet, now_ms, now_ms + ttl_ms).await?;
    let expires_at = rfc3339::format(now_ms + ttl_ms);
    Ok(AdminOutput {
        text: format!("registration code for {wallet}, single use, valid until {expires_at}:\n{code}"),
        json: json!({"wallet": wallet, "registration_code": code, "expires_at": expires_at}),
    })
}

async fn approve_device(
    store: &Store,
    user_code: String,
    wallet: String,
    now_ms: i64,
) -> Result<AdminOutput, AdminError> {
    if wallet.trim().is_empty() {
        return Err(AdminError::Invalid("--wallet must not be empty"));
    }
    let user_code = user_code.trim().to_ascii_uppercase();
    crate::routes::device::approve_login(store, &user_code, &wallet, now_ms).await?;
    Ok(AdminOutput {
        json: json!({"user_code": user_code, "wallet": wallet, "approved": true}),
        text: format!("approved device login {user_code} for {wallet}; the node registers on its next poll"),
    })
}

async fn faucet(store: &Store, address: String, usdc: f64) -> Result<AdminOutput, AdminError> {
    let parsed: alloy_primitives::Address =
        address.trim().parse().map_err(|_| AdminError::Invalid("--address must be a 0x EVM address"))?;
    let micros = usd_to_micros(usdc).ok_or(AdminError::Invalid("--usdc must be a positive amount"))?;
    let network = sgl_pay::network::NetworkConfig::BASE_SEPOLIA;
    let account =
        sgl_pay::ledger::AccountKey { network: network.caip2.to_string(), asset: network.asset, address: parsed };
    let units = alloy_primitives::U256::from(u64::try_from(micros).unwrap_or(0));
    let balance = store.x402_credit(&account, units).await?;
    Ok(AdminOutput {
        json: json!({
            "address": format!("{parsed:#x}"), "network": network.caip2, "asset": format!("{:#x}", network.asset),
            "added_units": micros, "balance_units": balance.to_string(),
        }),
        text: format!("funded {parsed:#x} with {usdc} USDC on {} (balance {balance} units)", network.caip2),
    })
}

async fn ledger_check(store: &Store) -> Result<AdminOutput, AdminError> {
    let audit = store.audit_ledger().await?;
    let summary =
        format!("{} transactions, {} postings, {} accounts", audit.transactions, audit.postings, audit.accounts);
    let text = if audit.is_sound() {
        format!("ledger sound: {summary}; every transaction balances, no balance is negative")
    } else {
        format!("ledger NOT sound ({summary}):\n{}", audit.problems.join("\n"))
    };
    Ok(AdminOutput {
        json: json!({
            "sound": audit.is_sound(), "transactions": audit.transactions, "postings": audit.postings,
            "accounts": audit.accounts, "problems": audit.problems,
        }),
        text,
    })
}

async fn allow_binary(store: &Store, sha256: String, now_ms: i64) -> Result<AdminOutput, AdminError> {
    let sha256 = sha256.trim().to_ascii_lowercase();
    if !is_sha256_hex(&sha256) {
        return Err(AdminError::Invalid("the binary hash must be 64 hex characters (sha256sum of the sgl binary)"));
    }
    let added = store.allow_binary(&sha256, now_ms).await?;
    Ok(AdminOutput {
        json: json!({"sha256": sha256, "added": added}),
        text: if added { format!("allowed {sha256}") } else { format!("{sha256} was already allowed") },
    })
}

async fn ensure_key(store: &Store, key_id: i64) -> Result<(), AdminError> {
    let live = store.api_key(key_id).await?.is_some_and(|key| key.revoked_at.is_none());
    if live { Ok(()) } else { Err(AdminError::UnknownKey(key_id)) }
}

async fn grant(store: &Store, key_id: i64, micros: i64, idempotency_key: &str, now_ms: i64) -> Result<(), AdminError> {
    store.post(&grant_movement(key_id, micros, idempotency_key), now_ms).await?;
    Ok(())
}

/// `micros` of credits granted to key `key_id` by the operator.
fn grant_movement(key_id: i64, micros: i64, idempotency_key: &str) -> NewTransaction {
    NewTransaction {
        idempotency_key: idempotency_key.to_owned(),
        kind: TransactionKind::CreditsGrant,
        memo: "granted by sgl-grid admin".into(),
        postings: vec![
            Posting { account: admin_source(Asset::Usd), amount: -micros },
            Posting { account: Account::Credits { api_key_id: key_id }, amount: micros },
        ],
    }
}
