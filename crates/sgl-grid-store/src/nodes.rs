//! Registered nodes: identity, bearer-token hashes (with rotation), maintenance and attestation
//! flags, job counters and reputation, custom prices, attestation challenges and tamper
//! evidence. What changes every heartbeat (load, models, keys) lives in the coordinator's
//! memory, not here.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::reputation::{self, Outcome};
use crate::{Store, StoreError};

/// A node to register.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNode<'a> {
    /// The issued UUID, dashed.
    pub id: &'a str,
    /// Base58 ed25519 identity key.
    pub public_key: &'a str,
    /// The operator's wallet.
    pub wallet: &'a str,
    /// The declared tier.
    pub tee_type: &'a str,
    /// SHA-256 hex of the bearer token.
    pub token_hash: &'a str,
    /// When the token stops being accepted (Unix ms).
    pub token_expires_at: i64,
    /// Logical CPUs.
    pub cpu_cores: i64,
    /// RAM in GiB.
    pub ram_gb: f64,
    /// GPU model.
    pub gpu_model: &'a str,
    /// The signed capability manifest, as JSON, if one was sent.
    pub manifest: Option<&'a str>,
}

/// What a node's refused result was: the closed set of tamper evidence, recorded in the
/// `tamper_events.kind` column and as the reason of the slash it brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TamperKind {
    /// The result's envelope signature does not verify.
    BadResultSignature,
    /// The sealed result does not open, or its plaintext is not a result.
    UnreadableResult,
    /// A sealed stream chunk does not open.
    UnreadableChunk,
    /// A compute receipt that missed a canary's known answer, or that a unanimous quorum of
    /// other nodes outvoted on deterministic work.
    WrongComputeResult,
}

impl TamperKind {
    /// The name stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadResultSignature => "bad_result_signature",
            Self::UnreadableResult => "unreadable_result",
            Self::UnreadableChunk => "unreadable_chunk",
            Self::WrongComputeResult => "wrong_compute_result",
        }
    }
}

impl std::fmt::Display for TamperKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    /// The UUID, dashed.
    pub id: String,
    /// Base58 ed25519 identity key.
    pub public_key: String,
    /// The operator's wallet.
    pub wallet: String,
    /// The declared tier.
    pub tee_type: String,
    /// When the current token expires (Unix ms).
    pub token_expires_at: i64,
    /// Unix ms.
    pub registered_at: i64,
    /// In maintenance: no dispatch, no offline penalty.
    pub off_grid: bool,
    /// Passed attestation.
    pub attested: bool,
    /// The binary hash reported at attestation.
    pub binary_hash: Option<String>,
    /// 0..=1, 0.5 is neutral, as last set; read it through [`NodeRecord::reputation_at`].
    pub reputation: f64,
    /// When `reputation` was last set, Unix ms.
    pub reputation_set_at: i64,
    /// Completed jobs.
    pub jobs_completed: i64,
    /// Failed jobs.
    pub jobs_failed: i64,
    /// Found by [`Store::node_by_token`] through the token that was rotated away: the node
    /// missed its last rotation.
    pub via_previous_token: bool,
    /// CPU cores it registered.
    pub cpu_cores: i64,
    /// Memory it registered, GB.
    pub ram_gb: f64,
    /// The GPU it registered (`none` for none).
    pub gpu_model: String,
}

impl NodeRecord {
    /// The reputation as of `now_ms`, decayed toward neutral since it was last set.
    pub fn reputation_at(&self, now_ms: i64) -> f64 {
        reputation::decayed(self.reputation, self.reputation_set_at, now_ms)
    }
}

/// A node's custom price for one model, USD per 1M tokens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomPrice {
    /// Input price.
    pub input_per_m: f64,
    /// Output price.
    pub output_per_m: f64,
}

const COLUMNS: &str = "id, public_key, wallet, tee_type, token_expires_at, registered_at, off_grid, attested, \
                       binary_hash, reputation, reputation_at, jobs_completed, jobs_failed, cpu_cores, ram_gb, \
                       gpu_model";

fn record(row: &AnyRow) -> Result<NodeRecord, sqlx::Error> {
    Ok(NodeRecord {
        id: row.try_get("id")?,
        public_key: row.try_get("public_key")?,
        wallet: row.try_get("wallet")?,
        tee_type: row.try_get("tee_type")?,
        token_expires_at: row.try_get("token_expires_at")?,
        registered_at: row.try_get("registered_at")?,
        off_grid: row.try_get::<i64, _>("off_grid")? != 0,
        attested: row.try_get::<i64, _>("attested")? != 0,
        binary_hash: row.try_get("binary_hash")?,
        reputation: row.try_get("reputation")?,
        reputation_set_at: row.try_get("reputation_at")?,
        jobs_completed: row.try_get("jobs_completed")?,
        jobs_failed: row.try_get("jobs_failed")?,
        via_previous_token: false,
        cpu_cores: row.try_get("cpu_cores")?,
        ram_gb: row.try_get("ram_gb")?,
        gpu_model: row.try_get("gpu_model")?,
    })
}

impl Store {
    /// Registers a node. Fails (as a database error) if its id, key or token hash is taken.
    pub async fn insert_node(&self, node: &NewNode<'_>, now_ms: i64) -> Result<NodeRecord, StoreError> {
        let mut tx = self.pool().begin().await?;
        let record = insert_node_in(&mut tx, node, now_ms).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Whether a node with this identity key is registered.
    pub async fn public_key_registered(&self, public_key: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT id FROM nodes WHERE public_key = $1")
            .bind(public_key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// The node whose current (unexpired) or just-rotated-away token has this hash. Using the
    /// current token retires the previous one.
    pub async fn node_by_token(&self, token_hash: &str, now_ms: i64) -> Result<Option<NodeRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS}, token_hash, previous_token_hash FROM nodes \
             WHERE (token_hash = $1 OR previous_token_hash = $1) AND token_expires_at > $2"
        );
        let Some(row) = sqlx::query(&sql).bind(token_hash).bind(now_ms).fetch_optional(self.pool()).await? else {
            return Ok(None);
        };
        let current: String = row.try_get("token_hash")?;
        let previous: Option<String> = row.try_get("previous_token_hash")?;
        let mut node = record(&row)?;
        node.via_previous_token = current != token_hash;
        // Only a write when there is something to retire: every node request comes through
        // here, and on SQLite even an UPDATE that changes nothing takes the write lock.
        if current == token_hash && previous.is_some() {
            sqlx::query(
                "UPDATE nodes SET previous_token_hash = NULL WHERE id = $1 AND previous_token_hash IS NOT NULL",
            )
            .bind(&node.id)
            .execute(self.pool())
            .await?;
        }
        Ok(Some(node))
    }

    /// The node with this id.
    pub async fn node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM nodes WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// Every node, oldest first.
    pub async fn list_nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM nodes ORDER BY registered_at, id");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Replaces the node's token. The token the node holds keeps working until the new one is
    /// first used, so a rotation the node never received does not lock it out: when the node
    /// still uses the previous token, that one stays and only the unreceived one is replaced.
    pub async fn rotate_node_token(
        &self,
        node: &NodeRecord,
        new_hash: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let sql = if node.via_previous_token {
            "UPDATE nodes SET token_hash = $1, token_expires_at = $2 WHERE id = $3"
        } else {
            "UPDATE nodes SET previous_token_hash = token_hash, token_hash = $1, token_expires_at = $2 WHERE id = $3"
        };
        sqlx::query(sql).bind(new_hash).bind(expires_at_ms).bind(&node.id).execute(self.pool()).await?;
        Ok(())
    }

    /// Puts a node into or out of maintenance.
    pub async fn set_off_grid(&self, id: &str, off_grid: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET off_grid = $1 WHERE id = $2")
            .bind(i64::from(off_grid))
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records an attestation outcome and the binary hash it was made with.
    pub async fn set_attested(&self, id: &str, attested: bool, binary_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET attested = $1, binary_hash = $2 WHERE id = $3")
            .bind(i64::from(attested))
            .bind(binary_hash)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Stores a fresh attestation challenge, replacing any earlier one.
    pub async fn put_challenge(&self, id: &str, challenge: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO node_challenges (node_id, challenge, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (node_id) DO UPDATE SET challenge = excluded.challenge, expires_at = excluded.expires_at",
        )
        .bind(id)
        .bind(challenge)
        .bind(expires_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes and returns the node's challenge if it has not expired: each is usable once.
    pub async fn take_challenge(&self, id: &str, now_ms: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("DELETE FROM node_challenges WHERE node_id = $1 RETURNING challenge, expires_at")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        Ok((expires_at > now_ms).then(|| row.try_get("challenge")).transpose()?)
    }

    /// Sets a custom price for one model.
    pub async fn set_price(&self, id: &str, model: &str, price: CustomPrice) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO node_prices (node_id, model, input_per_m, output_per_m) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (node_id, model) DO UPDATE SET input_per_m = excluded.input_per_m, output_per_m = excluded.output_per_m",
        )
        .bind(id)
        .bind(model)
        .bind(price.input_per_m)
        .bind(price.output_per_m)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a custom price; returns false if there was none.
    pub async fn reset_price(&self, id: &str, model: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM node_prices WHERE node_id = $1 AND model = $2")
            .bind(id)
            .bind(model)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// A node's custom prices by model.
    pub async fn prices(&self, id: &str) -> Result<Vec<(String, CustomPrice)>, StoreError> {
        let rows =
            sqlx::query("SELECT model, input_per_m, output_per_m FROM node_prices WHERE node_id = $1 ORDER BY model")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|row| {
                let price = CustomPrice {
                    input_per_m: row.try_get("input_per_m")?,
                    output_per_m: row.try_get("output_per_m")?,
                };
                Ok((row.try_get("model")?, price))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Counts a finished job and moves reputation (see [`crate::reputation`]).
    pub async fn record_job_outcome(&self, id: &str, completed: bool, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        self.record_outcome_in(&mut tx, id, completed, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Store::record_job_outcome`] inside the caller's transaction.
    pub(crate) async fn record_outcome_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &str,
        completed: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let counter = if completed {
            "UPDATE nodes SET jobs_completed = jobs_completed + 1 WHERE id = $1"
        } else {
            "UPDATE nodes SET jobs_failed = jobs_failed + 1 WHERE id = $1"
        };
        sqlx::query(counter).bind(id).execute(&mut **tx).await?;
        let outcome = if completed { Outcome::Completed } else { Outcome::Failed };
        self.move_reputation(tx, id, outcome, now_ms).await
    }

    /// Decays the stored reputation to `now_ms`, applies `outcome`, and stores the result.
    async fn move_reputation(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &str,
        outcome: Outcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT reputation, reputation_at FROM nodes WHERE id = $1{}", self.row_lock());
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await? else { return Ok(()) };
        let current = reputation::decayed(row.try_get("reputation")?, row.try_get("reputation_at")?, now_ms);
        sqlx::query("UPDATE nodes SET reputation = $1, reputation_at = $2 WHERE id = $3")
            .bind(reputation::after(current, outcome))
            .bind(now_ms)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Records tamper evidence (a forged or mismatched signature) and halves reputation.
    pub async fn record_tamper(
        &self,
        node_id: &str,
        job_id: &str,
        kind: TamperKind,
        evidence: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO tamper_events (node_id, job_id, kind, evidence, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(node_id)
        .bind(job_id)
        .bind(kind.as_str())
        .bind(evidence)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        self.move_reputation(&mut tx, node_id, Outcome::Tampered, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The number of tamper events recorded against a node.
    pub async fn tamper_count(&self, node_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM tamper_events WHERE node_id = $1")
            .bind(node_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }
}

/// Records `node` inside `tx`.
pub(crate) async fn insert_node_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    node: &NewNode<'_>,
    now_ms: i64,
) -> Result<NodeRecord, StoreError> {
    let sql = format!(
        "INSERT INTO nodes (id, public_key, wallet, tee_type, token_hash, token_expires_at, registered_at, \
         cpu_cores, ram_gb, gpu_model, manifest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(node.id)
        .bind(node.public_key)
        .bind(node.wallet)
        .bind(node.tee_type)
        .bind(node.token_hash)
        .bind(node.token_expires_at)
        .bind(now_ms)
        .bind(node.cpu_cores)
        .bind(node.ram_gb)
        .bind(node.gpu_model)
        .bind(node.manifest)
        .fetch_one(&mut **tx)
        .await?;
    Ok(record(&row)?)
}
