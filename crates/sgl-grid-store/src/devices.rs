//! Device-authorization logins: created by a node, approved by a wallet owner (or the grid
//! operator), and polled by the node until it receives its registration code.

use sqlx::Row;

use crate::{Store, StoreError};

/// Where a device login stands, as its node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceLoginState {
    /// Waiting for approval.
    Pending,
    /// Approved by this wallet; the node gets a registration code bound to it.
    Approved {
        /// The approving wallet.
        wallet: String,
    },
    /// Expired before it was used.
    Expired,
}

/// A device login could not be approved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApproveDeviceError {
    /// No login with this user code.
    #[error("unknown user code")]
    Unknown,
    /// The login expired.
    #[error("this login has expired; run sgl login again")]
    Expired,
    /// It was approved already.
    #[error("this login was already approved")]
    AlreadyApproved,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ApproveDeviceError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

impl Store {
    /// Deletes logins that expired before `expired_before_ms`; returns how many. Anybody may
    /// start a login, so the rows must not pile up.
    pub async fn purge_device_logins(&self, expired_before_ms: i64) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM device_logins WHERE expires_at < $1")
            .bind(expired_before_ms)
            .execute(self.pool())
            .await?;
        Ok(deleted.rows_affected())
    }

    /// Logins on record, expired or not.
    pub async fn device_login_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM device_logins").fetch_one(self.pool()).await?;
        Ok(row.try_get("n")?)
    }

    /// Records a new login.
    pub async fn create_device_login(
        &self,
        device_code_hash: &str,
        user_code: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_logins (device_code_hash, user_code, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(device_code_hash)
        .bind(user_code)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Approves a pending, unexpired login for `wallet`. Exactly one approval wins.
    pub async fn approve_device_login(
        &self,
        user_code: &str,
        wallet: &str,
        now_ms: i64,
    ) -> Result<(), ApproveDeviceError> {
        let updated = sqlx::query(
            "UPDATE device_logins SET wallet = $1, approved_at = $2 \
             WHERE user_code = $3 AND approved_at IS NULL AND expires_at > $2",
        )
        .bind(wallet)
        .bind(now_ms)
        .bind(user_code)
        .execute(self.pool())
        .await?;
        if updated.rows_affected() == 1 {
            return Ok(());
        }
        let row = sqlx::query("SELECT approved_at, expires_at FROM device_logins WHERE user_code = $1")
            .bind(user_code)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Err(ApproveDeviceError::Unknown) };
        let approved_at: Option<i64> = row.try_get("approved_at")?;
        Err(if approved_at.is_some() { ApproveDeviceError::AlreadyApproved } else { ApproveDeviceError::Expired })
    }

    /// The state of the login with this device code, or `None` if there is none.
    pub async fn poll_device_login(
        &self,
        device_code_hash: &str,
        now_ms: i64,
    ) -> Result<Option<DeviceLoginState>, StoreError> {
        let row = sqlx::query("SELECT expires_at, wallet FROM device_logins WHERE device_code_hash = $1")
            .bind(device_code_hash)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        let wallet: Option<String> = row.try_get("wallet")?;
        Ok(Some(match (expires_at > now_ms, wallet) {
            (false, _) => DeviceLoginState::Expired,
            (true, Some(wallet)) => DeviceLoginState::Approved { wallet },
            (true, None) => DeviceLoginState::Pending,
        }))
    }

    /// For an approved login: replaces the registration code issued to it (an unused earlier one
    /// stops working) with a new one, of which only the hash is stored, valid as long as the
    /// login. Returns false if the login is not approved and unexpired.
    pub async fn issue_device_registration_code(
        &self,
        device_code_hash: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "SELECT wallet, expires_at, registration_code_hash FROM device_logins \
             WHERE device_code_hash = $1 AND wallet IS NOT NULL AND expires_at > $2",
        )
        .bind(device_code_hash)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let wallet: String = row.try_get("wallet")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let previous: Option<String> = row.try_get("registration_code_hash")?;
        if let Some(previous) = previous {
            sqlx::query("DELETE FROM registration_codes WHERE code_hash = $1 AND used_at IS NULL")
                .bind(previous)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO registration_codes (code_hash, wallet, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(code_hash)
        .bind(&wallet)
        .bind(now_ms)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE device_logins SET registration_code_hash = $1 WHERE device_code_hash = $2")
            .bind(code_hash)
            .bind(device_code_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}
