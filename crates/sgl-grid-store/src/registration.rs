//! Registration (provision) codes: single-use, bound to one wallet, short-lived. Only a hash of
//! each code is stored.

use sqlx::{Any, Row, Transaction};

use crate::nodes::{NewNode, NodeRecord};

use crate::{Store, StoreError};

/// A code could not be used to register.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeCodeError {
    /// No such code.
    #[error("unknown registration code")]
    Unknown,
    /// The code belongs to another wallet.
    #[error("registration code is bound to another wallet")]
    WrongWallet,
    /// The code has expired.
    #[error("registration code has expired")]
    Expired,
    /// The code was already used.
    #[error("registration code was already used")]
    AlreadyUsed,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ConsumeCodeError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl Store {
    /// Stores a new code for `wallet`, valid until `expires_at_ms`.
    pub async fn create_registration_code(
        &self,
        code_hash: &str,
        wallet: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registration_codes (code_hash, wallet, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(code_hash)
        .bind(wallet)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Uses the code whose hash is `code_hash` for `node_id` of `wallet`; refused, changing
    /// nothing, if it is unknown, bound to another wallet, expired or used.
    pub async fn consume_registration_code(
        &self,
        code_hash: &str,
        wallet: &str,
        node_id: &str,
        now_ms: i64,
    ) -> Result<(), ConsumeCodeError> {
        let mut tx = self.pool().begin().await?;
        consume_in(&mut tx, code_hash, wallet, node_id, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Registers `node` with the code whose hash is `code_hash` in one transaction: the code is
    /// used only if the node is recorded, and the node recorded only if the code was good.
    pub async fn insert_node_with_code(
        &self,
        node: &NewNode<'_>,
        code_hash: &str,
        now_ms: i64,
    ) -> Result<NodeRecord, ConsumeCodeError> {
        let mut tx = self.pool().begin().await?;
        consume_in(&mut tx, code_hash, node.wallet, node.id, now_ms).await?;
        let record = crate::nodes::insert_node_in(&mut tx, node, now_ms).await?;
        tx.commit().await?;
        Ok(record)
    }
}

async fn consume_in(
    tx: &mut Transaction<'_, Any>,
    code_hash: &str,
    wallet: &str,
    node_id: &str,
    now_ms: i64,
) -> Result<(), ConsumeCodeError> {
    let updated = sqlx::query(
        "UPDATE registration_codes SET used_at = $1, used_by_node = $2 \
         WHERE code_hash = $3 AND wallet = $4 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms)
    .bind(node_id)
    .bind(code_hash)
    .bind(wallet)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(());
    }
    let row = sqlx::query("SELECT wallet, expires_at, used_at FROM registration_codes WHERE code_hash = $1")
        .bind(code_hash)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Err(ConsumeCodeError::Unknown) };
    let used_at: Option<i64> = row.try_get("used_at")?;
    let bound_wallet: String = row.try_get("wallet")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    Err(if used_at.is_some() {
        ConsumeCodeError::AlreadyUsed
    } else if bound_wallet != wallet {
        ConsumeCodeError::WrongWallet
    } else if expires_at <= now_ms {
        ConsumeCodeError::Expired
    } else {
        // It was usable a moment ago and is not now: another registration won the race.
        ConsumeCodeError::AlreadyUsed
    })
}
