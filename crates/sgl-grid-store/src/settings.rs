//! Grid-wide values shared by every replica, created once: the first replica to need a value
//! stores its candidate, and every replica (including it) reads back the one that won.

use sqlx::Row;

use crate::{Store, StoreError};

impl Store {
    /// The setting `name`, set to `candidate` if it has no value yet.
    pub async fn setting_or_insert(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO grid_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(self.pool())
            .await?;
        let row =
            sqlx::query("SELECT value FROM grid_settings WHERE name = $1").bind(name).fetch_one(self.pool()).await?;
        Ok(row.try_get("value")?)
    }
}
