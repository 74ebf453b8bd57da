//! Several coordinators (replicas) on one PostgreSQL: who is alive, which replica holds which
//! job, the message bus between them (`LISTEN/NOTIFY`, with a table for payloads too large for
//! a notification) and the leader's advisory lock. SQLite grids are one process and use none of
//! this.

use std::fmt;

use sqlx::Row;
use sqlx::postgres::{PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};

use crate::jobs::JobRecord;
use crate::{Store, StoreError};

/// The notification channel every replica listens on.
pub const BUS_CHANNEL: &str = "sgl_grid_bus";
/// The largest message sent inside a notification (PostgreSQL refuses payloads of 8,000 bytes
/// or more); a larger one goes through `bus_payloads`.
pub const MAX_INLINE_BYTES: usize = 7_900;
/// The advisory lock whose holder does the grid's leader duties.
const LEADER_LOCK: i64 = 0x5347_4c5f_4c45_4144; // "SGL_LEAD"
/// What starts a notification that refers to a row of `bus_payloads`.
const REF_PREFIX: char = '@';

/// A PostgreSQL URL, kept out of `Debug` output (it may hold a password).
#[derive(Clone)]
pub(crate) struct PgUrl(pub(crate) String);

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("postgres://…")
    }
}

/// Where a job stands, as far as which replica holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHome {
    /// The replica that dispatched it; `None` for jobs written before replicas existed.
    pub replica: Option<String>,
    /// Still dispatched (not finished).
    pub live: bool,
    /// When its replica last said it was alive (`None`: no such replica any more).
    pub replica_seen_at: Option<i64>,
}

/// The message bus between replicas. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bus {
    pool: PgPool,
}

impl Bus {
    /// Sends `messages`, in order, to every listening replica (this one included), in one
    /// transaction: notifications are delivered at commit, in the order sent.
    pub async fn publish(&self, messages: &[String], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut payloads = Vec::with_capacity(messages.len());
        for message in messages {
            if message.len() <= MAX_INLINE_BYTES {
                payloads.push(message.clone());
                continue;
            }
            let row = sqlx::query("INSERT INTO bus_payloads (body, created_at) VALUES ($1, $2) RETURNING id")
                .bind(message)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
            payloads.push(format!("{REF_PREFIX}{}", row.try_get::<i64, _>("id")?));
        }
        sqlx::query(
            "SELECT pg_notify($1, payload) FROM unnest($2::text[]) WITH ORDINALITY AS m(payload, n) ORDER BY n",
        )
        .bind(BUS_CHANNEL)
        .bind(&payloads)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts listening. Messages published from now on arrive through [`BusListener::recv`].
    pub async fn listen(&self) -> Result<BusListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(BUS_CHANNEL).await?;
        Ok(BusListener { listener, pool: self.pool.clone() })
    }

    /// Records nodes' live state: `(node id, state, last seen)`; a row is only replaced by a
    /// later one.
    pub async fn write_live_nodes(&self, rows: &[(String, String, i64)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = rows.iter().map(|(id, _, _)| id.as_str()).collect();
        let states: Vec<&str> = rows.iter().map(|(_, state, _)| state.as_str()).collect();
        let seen: Vec<i64> = rows.iter().map(|(_, _, seen)| *seen).collect();
        sqlx::query(
            "INSERT INTO live_nodes (node_id, state, last_seen) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
             ON CONFLICT (node_id) DO UPDATE SET state = excluded.state, last_seen = excluded.last_seen \
             WHERE live_nodes.last_seen <= excluded.last_seen",
        )
        .bind(&ids)
        .bind(&states)
        .bind(&seen)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Nodes' live state seen since `since_ms`: `(state, last seen)`.
    pub async fn live_nodes(&self, since_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, last_seen FROM live_nodes WHERE last_seen >= $1")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.try_get("state")?, row.try_get("last_seen")?))).collect()
    }

    /// Deletes live state not refreshed since `before_ms` (nodes long gone).
    pub async fn purge_live_nodes(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM live_nodes WHERE last_seen < $1").bind(before_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Deletes large payloads older than `before_ms` (every listener has read them by then).
    pub async fn purge(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM bus_payloads WHERE created_at < $1").bind(before_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

/// One replica's subscription to the bus.
#[derive(Debug)]
pub struct BusListener {
    listener: PgListener,
    pool: PgPool,
}

impl BusListener {
    /// The next message. If the connection drops it reconnects (messages sent meanwhile are
    /// lost: everything on the bus is either repeated, like a heartbeat, or waited for with a
    /// deadline, like a forwarded post).
    pub async fn recv(&mut self) -> Result<String, StoreError> {
        loop {
            let notification = self.listener.recv().await?;
            let payload = notification.payload();
            let Some(id) = payload.strip_prefix(REF_PREFIX) else { return Ok(payload.to_owned()) };
            let Ok(id) = id.parse::<i64>() else { continue };
            let row =
                sqlx::query("SELECT body FROM bus_payloads WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
            if let Some(row) = row {
                return Ok(row.try_get("body")?);
            }
        }
    }
}

/// The leader's advisory lock, held by one connection: the lock lasts as long as that
/// connection, so a replica that dies (or loses its database) loses it, and another takes it.
#[derive(Debug)]
pub struct Leadership {
    url: PgUrl,
    held: Option<PgConnection>,
}

impl Leadership {
    /// Whether this replica leads now: keeps the lock if it still holds it, tries to take it
    /// if not.
    pub async fn check(&mut self) -> bool {
        if let Some(conn) = self.held.as_mut() {
            if conn.execute("SELECT 1").await.is_ok() {
                return true;
            }
            self.held = None;
        }
        let Ok(mut conn) = PgConnection::connect(&self.url.0).await else { return false };
        let taken = sqlx::query("SELECT pg_try_advisory_lock($1) AS taken")
            .bind(LEADER_LOCK)
            .fetch_one(&mut conn)
            .await
            .and_then(|row| row.try_get::<bool, _>("taken"));
        if matches!(taken, Ok(true)) {
            self.held = Some(conn);
            return true;
        }
        let _ = conn.close().await;
        false
    }
}

impl Store {
    /// The bus between replicas, on PostgreSQL; `None` on SQLite.
    pub async fn bus(&self) -> Result<Option<Bus>, StoreError> {
        let Some(url) = self.pg_url() else { return Ok(None) };
        let pool = PgPoolOptions::new().max_connections(4).connect(&url.0).await?;
        Ok(Some(Bus { pool }))
    }

    /// Contention for the leader's lock, on PostgreSQL; `None` on SQLite (one process leads).
    pub fn leadership(&self) -> Option<Leadership> {
        self.pg_url().map(|url| Leadership { url: url.clone(), held: None })
    }

    /// Registers replica `id`, alive at `now_ms`.
    pub async fn register_replica(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO replicas (id, started_at, last_seen) VALUES ($1, $2, $2)")
            .bind(id)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Replica `id` is alive at `now_ms`. False if its row is gone (it was declared dead).
    pub async fn touch_replica(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE replicas SET last_seen = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replicas not seen since `before_ms`.
    pub async fn silent_replicas(&self, before_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM replicas WHERE last_seen < $1 ORDER BY id")
            .bind(before_ms)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// Replicas seen since `since_ms`, this one included.
    pub async fn live_replicas(&self, since_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM replicas WHERE last_seen >= $1 ORDER BY id")
            .bind(since_ms)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// Forgets replica `id` (stopped, or dead with its jobs released).
    pub async fn remove_replica(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM replicas WHERE id = $1").bind(id).execute(self.pool()).await?;
        Ok(())
    }

    /// Which replica holds job `id`, if the job exists.
    pub async fn job_home(&self, id: &str) -> Result<Option<JobHome>, StoreError> {
        let row = sqlx::query(
            "SELECT jobs.replica, jobs.status, replicas.last_seen FROM jobs \
             LEFT JOIN replicas ON replicas.id = jobs.replica WHERE jobs.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        Ok(Some(JobHome {
            replica: row.try_get("replica")?,
            live: status == "dispatched",
            replica_seen_at: row.try_get("last_seen")?,
        }))
    }

    /// Jobs still dispatched by replica `id`.
    pub async fn jobs_of_replica(&self, id: &str) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM jobs WHERE status = 'dispatched' AND replica = $1 ORDER BY created_at, id",
            crate::jobs::COLUMNS
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(crate::jobs::record).collect::<Result<_, _>>()?)
    }
}
