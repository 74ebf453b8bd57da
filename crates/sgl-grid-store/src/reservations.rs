//! Reservations shared by every replica (PostgreSQL only): a node held for one sealed request,
//! named by a single-use token, so that the request may reach another replica than the one
//! that reserved it. A SQLite grid keeps them in memory.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// One reservation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationRow {
    /// The single-use token.
    pub token: String,
    /// The node held.
    pub node_id: String,
    /// The model.
    pub model: String,
    /// The quoted input price, USD per 1M tokens.
    pub input_per_m: f64,
    /// The quoted output price, USD per 1M tokens.
    pub output_per_m: f64,
    /// The API key that made it; `None` when made without one.
    pub api_key_id: Option<i64>,
    /// The client address of a keyless one.
    pub address: Option<String>,
    /// Unix ms after which it is void.
    pub expires_at: i64,
}

/// How many open reservations one holder has, for the bounds on what anybody may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenCounts {
    /// Held by the same API key (keyed reservations).
    pub same_key: i64,
    /// Held without a key by the same address.
    pub same_address: i64,
    /// Held without a key by anybody.
    pub anonymous: i64,
}

const COLUMNS: &str = "token, node_id, model, input_per_m, output_per_m, api_key_id, address, expires_at";
/// Reservation `$1`, live at `$2`, made by `$3` (NULL: without a key).
const LIVE_AND_OWNED: &str = "token = $1 AND expires_at > $2 AND COALESCE(api_key_id, -1) = COALESCE($3, -1)";

fn row(row: &AnyRow) -> Result<ReservationRow, sqlx::Error> {
    Ok(ReservationRow {
        token: row.try_get("token")?,
        node_id: row.try_get("node_id")?,
        model: row.try_get("model")?,
        input_per_m: row.try_get("input_per_m")?,
        output_per_m: row.try_get("output_per_m")?,
        api_key_id: row.try_get("api_key_id")?,
        address: row.try_get("address")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl Store {
    /// What `api_key_id` (or, without a key, `address`) holds open at `now_ms`.
    pub async fn open_reservations(
        &self,
        api_key_id: Option<i64>,
        address: Option<&str>,
        now_ms: i64,
    ) -> Result<OpenCounts, StoreError> {
        let counts = sqlx::query(
            "SELECT \
               COALESCE(SUM(CASE WHEN api_key_id = $1 THEN 1 ELSE 0 END), 0) AS same_key, \
               COALESCE(SUM(CASE WHEN api_key_id IS NULL AND address = $2 THEN 1 ELSE 0 END), 0) AS same_address, \
               COALESCE(SUM(CASE WHEN api_key_id IS NULL THEN 1 ELSE 0 END), 0) AS anonymous \
             FROM reservations WHERE expires_at > $3 AND (api_key_id = $1 OR api_key_id IS NULL)",
        )
        .bind(api_key_id)
        .bind(address)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(OpenCounts {
            same_key: counts.try_get("same_key")?,
            same_address: counts.try_get("same_address")?,
            anonymous: counts.try_get("anonymous")?,
        })
    }

    /// Stores `reservation`.
    pub async fn insert_reservation(&self, reservation: &ReservationRow) -> Result<(), StoreError> {
        sqlx::query(&format!("INSERT INTO reservations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(&reservation.token)
            .bind(&reservation.node_id)
            .bind(&reservation.model)
            .bind(reservation.input_per_m)
            .bind(reservation.output_per_m)
            .bind(reservation.api_key_id)
            .bind(reservation.address.as_deref())
            .bind(reservation.expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The live reservation `token` made by `owner` (`None`: without a key), deleted: whoever
    /// takes it first, on any replica, has it.
    pub async fn take_reservation(
        &self,
        token: &str,
        owner: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<ReservationRow>, StoreError> {
        let sql = format!("DELETE FROM reservations WHERE {LIVE_AND_OWNED} RETURNING {COLUMNS}");
        self.live_and_owned(&sql, token, owner, now_ms).await
    }

    /// The live reservation `token` made by `owner`, left in place.
    pub async fn peek_reservation(
        &self,
        token: &str,
        owner: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<ReservationRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM reservations WHERE {LIVE_AND_OWNED}");
        self.live_and_owned(&sql, token, owner, now_ms).await
    }

    /// Runs `sql` (conditioned by [`LIVE_AND_OWNED`]) for one reservation.
    async fn live_and_owned(
        &self,
        sql: &str,
        token: &str,
        owner: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<ReservationRow>, StoreError> {
        let found = sqlx::query(sql).bind(token).bind(now_ms).bind(owner).fetch_optional(self.pool()).await?;
        Ok(found.as_ref().map(row).transpose()?)
    }

    /// Deletes reservations expired by `now_ms`.
    pub async fn purge_reservations(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM reservations WHERE expires_at <= $1").bind(now_ms).execute(self.pool()).await?;
        Ok(done.rows_affected())
    }
}
