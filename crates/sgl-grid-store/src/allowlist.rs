//! The node binary allowlist (`GET /grid/allowed-binaries`, `sgl-grid admin allow-binary`):
//! sha256 hashes of node builds the grid accepts.

use sqlx::Row;

use crate::{Store, StoreError};

impl Store {
    /// Adds a binary hash (lowercase hex); returns false if it was already allowed.
    pub async fn allow_binary(&self, sha256: &str, now_ms: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO allowed_binaries (sha256, added_at) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256.to_ascii_lowercase())
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes a binary hash; returns false if it was not allowed.
    pub async fn disallow_binary(&self, sha256: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM allowed_binaries WHERE sha256 = $1")
            .bind(sha256.to_ascii_lowercase())
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Every allowed hash, sorted.
    pub async fn allowed_binaries(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT sha256 FROM allowed_binaries ORDER BY sha256").fetch_all(self.pool()).await?;
        rows.iter().map(|row| row.try_get("sha256").map_err(StoreError::from)).collect()
    }
}
