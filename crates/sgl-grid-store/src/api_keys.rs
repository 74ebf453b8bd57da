//! Callers' API keys. Only a SHA-256 hash of each key is stored; the key itself is shown once,
//! when it is created.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// A stored API key (without the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key's id; its credits live in `Account::Credits { api_key_id }`.
    pub id: i64,
    /// The first characters of the key, to tell keys apart in listings.
    pub prefix: String,
    /// The operator's label.
    pub label: String,
    /// The wallet the key is bound to, if any.
    pub wallet: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once revoked.
    pub revoked_at: Option<i64>,
    /// The root key of the account this key was created in; `None` for a root key.
    pub account_id: Option<i64>,
    /// Unix ms when it stops working (a wallet sign-in's key); `None`: it does not expire.
    pub expires_at: Option<i64>,
}

impl ApiKeyRecord {
    /// Whether the key works at `now_ms`: not revoked, not expired.
    pub fn live_at(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now_ms < at)
    }

    /// The id of this key's account: its root key.
    pub fn account(&self) -> i64 {
        self.account_id.unwrap_or(self.id)
    }
}

/// A key to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey<'a> {
    /// Lowercase hex SHA-256 of the full key.
    pub key_hash: &'a str,
    /// The first characters of the key.
    pub prefix: &'a str,
    /// A label.
    pub label: &'a str,
    /// The wallet to bind it to.
    pub wallet: Option<&'a str>,
    /// The account it joins (a root key's id); `None` makes it a root.
    pub account_id: Option<i64>,
    /// Unix ms when it stops working; `None`: never.
    pub expires_at: Option<i64>,
}

fn record(row: &AnyRow) -> Result<ApiKeyRecord, sqlx::Error> {
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        prefix: row.try_get("prefix")?,
        label: row.try_get("label")?,
        wallet: row.try_get("wallet")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        account_id: row.try_get("account_id")?,
        expires_at: row.try_get("expires_at")?,
    })
}

const COLUMNS: &str = "id, prefix, label, wallet, created_at, revoked_at, account_id, expires_at";

impl Store {
    /// Stores a new key.
    pub async fn create_api_key(&self, key: &NewApiKey<'_>, now_ms: i64) -> Result<ApiKeyRecord, StoreError> {
        let mut tx = self.pool().begin().await?;
        let record = insert_key(&mut tx, key, now_ms).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Creates `key` and posts, in the same transaction, the movement `funding` makes for its
    /// id (credits moved to the new key): the key exists only if its credits arrived.
    pub async fn create_funded_api_key(
        &self,
        key: &NewApiKey<'_>,
        funding: impl FnOnce(i64) -> crate::ledger::NewTransaction,
        now_ms: i64,
    ) -> Result<ApiKeyRecord, crate::ledger::PostError> {
        let mut tx = self.pool().begin().await?;
        let record = insert_key(&mut tx, key, now_ms).await?;
        self.post_in(&mut tx, &funding(record.id), now_ms).await?;
        tx.commit().await?;
        Ok(record)
    }
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &NewApiKey<'_>,
    now_ms: i64,
) -> Result<ApiKeyRecord, StoreError> {
    let sql = format!(
        "INSERT INTO api_keys (key_hash, prefix, label, wallet, created_at, account_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(key.key_hash)
        .bind(key.prefix)
        .bind(key.label)
        .bind(key.wallet)
        .bind(now_ms)
        .bind(key.account_id)
        .bind(key.expires_at)
        .fetch_one(&mut **tx)
        .await?;
    Ok(record(&row)?)
}

impl Store {
    /// The key with this hash that is not revoked (it may have expired: see
    /// [`ApiKeyRecord::live_at`]).
    pub async fn find_live_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL");
        let row = sqlx::query(&sql).bind(key_hash).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// The key with this id, live or revoked.
    pub async fn api_key(&self, id: i64) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// Every key, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Sets the label of key `id`; false when there is no such key.
    pub async fn set_api_key_label(&self, id: i64, label: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET label = $1 WHERE id = $2")
            .bind(label)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The keys of the account whose root key is `account`, live or revoked, oldest first.
    pub async fn account_api_keys(&self, account: i64) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1 OR account_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(account).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// The root key of `wallet`'s account (lowercase `0x…`), created from `new_key` when the
    /// wallet has none. Two replicas creating it at once agree on one: the loser's fresh key is
    /// revoked before it ever held credit.
    pub async fn wallet_account_key(
        &self,
        wallet: &str,
        new_key: &NewApiKey<'_>,
        now_ms: i64,
    ) -> Result<ApiKeyRecord, StoreError> {
        if let Some(id) = self.wallet_account_id(wallet).await? {
            return self.api_key(id).await?.ok_or(StoreError::OutOfRange("a wallet account without its key"));
        }
        let created =
            self.create_api_key(&NewApiKey { wallet: Some(wallet), account_id: None, ..*new_key }, now_ms).await?;
        sqlx::query(
            "INSERT INTO wallet_accounts (wallet, api_key_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (wallet) DO NOTHING",
        )
        .bind(wallet)
        .bind(created.id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        let winner =
            self.wallet_account_id(wallet).await?.ok_or(StoreError::OutOfRange("a wallet account vanished"))?;
        if winner == created.id {
            return Ok(created);
        }
        self.revoke_api_key(created.id, now_ms).await?;
        self.api_key(winner).await?.ok_or(StoreError::OutOfRange("a wallet account without its key"))
    }

    /// The root key id bound to `wallet`, if any.
    pub async fn wallet_account_id(&self, wallet: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT api_key_id FROM wallet_accounts WHERE wallet = $1")
            .bind(wallet)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("api_key_id")).transpose()?)
    }

    /// Revokes a key; returns false if there is no such live key.
    pub async fn revoke_api_key(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() == 1)
    }
}
