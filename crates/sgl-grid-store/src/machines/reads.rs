//! Machines as stored, and the queries that read them.

use sgl_protocol::api::machines::{EndReason, MachineEventKind, MachineState};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{MachineStoreError, state_of};
use crate::{Store, StoreError};

/// A machine as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRecord {
    /// `vm_…`.
    pub id: String,
    /// The paying key.
    pub api_key_id: i64,
    /// The owning account.
    pub account_id: i64,
    /// The renter's label.
    pub label: Option<String>,
    /// The plan now.
    pub plan: String,
    /// The region.
    pub region: String,
    /// The backend's name.
    pub backend: String,
    /// The operating system asked for.
    pub os_id: Option<u32>,
    /// The plan's rate now.
    pub hourly_micros: i64,
    /// Hours bought in all.
    pub prepaid_hours: u32,
    /// Everything paid.
    pub paid_micros: i64,
    /// Everything given back.
    pub refunded_micros: i64,
    /// Extensions so far.
    pub extensions: i64,
    /// Where it stands.
    pub state: MachineState,
    /// Why it ended, once it has.
    pub end_reason: Option<EndReason>,
    /// The provider's id, once made.
    pub provider_id: Option<String>,
    /// Where to SSH to, once active.
    pub ssh: Option<(String, u16)>,
    /// The renter's SSH key.
    pub ssh_key: Option<String>,
    /// Whether a sealed one-time password waits.
    pub password_waiting: bool,
    /// When it was asked for.
    pub created_at: i64,
    /// When it must answer SSH.
    pub ready_deadline: i64,
    /// When it answered SSH.
    pub active_at: Option<i64>,
    /// When its prepaid time ends.
    pub expires_at: Option<i64>,
    /// When an expired machine is destroyed.
    pub destroy_at: Option<i64>,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// Where its warnings and end are POSTed.
    pub webhook_url: Option<String>,
}

/// One entry of a machine's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineEventRecord {
    /// When.
    pub at: i64,
    /// What.
    pub kind: MachineEventKind,
    /// In words.
    pub message: String,
    /// `expires_at` before.
    pub expires_before: Option<i64>,
    /// `expires_at` after.
    pub expires_after: Option<i64>,
    /// The plan before a resize.
    pub plan_before: Option<String>,
}

const COLUMNS: &str = "id, api_key_id, account_id, label, plan, region, backend, os_id, hourly_micros, prepaid_hours, \
     paid_micros, refunded_micros, extensions, state, end_reason, provider_id, ssh_host, ssh_port, ssh_key, \
     password_sealed IS NOT NULL AS password_waiting, created_at, ready_deadline, active_at, expires_at, destroy_at, \
     ended_at, webhook_url";

fn record(row: &AnyRow) -> Result<MachineRecord, StoreError> {
    let end_reason: Option<String> = row.try_get("end_reason")?;
    let end_reason = end_reason
        .map(|name| {
            EndReason::from_name(&name).ok_or_else(|| StoreError::Invariant(format!("unknown end reason {name:?}")))
        })
        .transpose()?;
    let host: Option<String> = row.try_get("ssh_host")?;
    let port: Option<i64> = row.try_get("ssh_port")?;
    let ssh = host.zip(port).map(|(host, port)| (host, u16::try_from(port).unwrap_or(0)));
    let os_id: Option<i64> = row.try_get("os_id")?;
    let prepaid_hours: i64 = row.try_get("prepaid_hours")?;
    Ok(MachineRecord {
        id: row.try_get("id")?,
        api_key_id: row.try_get("api_key_id")?,
        account_id: row.try_get("account_id")?,
        label: row.try_get("label")?,
        plan: row.try_get("plan")?,
        region: row.try_get("region")?,
        backend: row.try_get("backend")?,
        os_id: os_id.and_then(|id| u32::try_from(id).ok()),
        hourly_micros: row.try_get("hourly_micros")?,
        prepaid_hours: u32::try_from(prepaid_hours).map_err(|_| StoreError::OutOfRange("prepaid hours"))?,
        paid_micros: row.try_get("paid_micros")?,
        refunded_micros: row.try_get("refunded_micros")?,
        extensions: row.try_get("extensions")?,
        state: state_of(row)?,
        end_reason,
        provider_id: row.try_get("provider_id")?,
        ssh,
        ssh_key: row.try_get("ssh_key")?,
        password_waiting: row.try_get::<bool, _>("password_waiting").or_else(|_| {
            // SQLite answers a comparison as an integer.
            row.try_get::<i64, _>("password_waiting").map(|flag| flag != 0)
        })?,
        created_at: row.try_get("created_at")?,
        ready_deadline: row.try_get("ready_deadline")?,
        active_at: row.try_get("active_at")?,
        expires_at: row.try_get("expires_at")?,
        destroy_at: row.try_get("destroy_at")?,
        ended_at: row.try_get("ended_at")?,
        webhook_url: row.try_get("webhook_url")?,
    })
}

impl Store {
    /// A machine by id, whoever owns it.
    pub async fn machine(&self, id: &str) -> Result<Option<MachineRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM machines WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// A machine by id inside `tx`.
    pub(super) async fn machine_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: &str,
    ) -> Result<MachineRecord, MachineStoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM machines WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(MachineStoreError::NotFound)?;
        Ok(record(&row)?)
    }

    /// An account's machine, or `None` if it is not the account's (the same answer as no machine).
    pub async fn machine_of(&self, account_id: i64, id: &str) -> Result<Option<MachineRecord>, StoreError> {
        Ok(self.machine(id).await?.filter(|machine| machine.account_id == account_id))
    }

    /// An account's machines, newest first, at most `limit`.
    pub async fn machines_of(&self, account_id: i64, limit: i64) -> Result<Vec<MachineRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM machines WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(account_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }

    /// Machines not yet destroyed, oldest first, at most `limit`: the leader's work list.
    pub async fn live_machines(&self, limit: i64) -> Result<Vec<MachineRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM machines WHERE state <> 'destroyed' ORDER BY created_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }

    /// A machine's log, oldest first.
    pub async fn machine_events(&self, id: &str) -> Result<Vec<MachineEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, kind, message, expires_before, expires_after, plan_before FROM machine_events \
             WHERE machine_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(MachineEventRecord {
                    at: row.try_get("at")?,
                    kind: MachineEventKind::from_name(&kind)
                        .ok_or_else(|| StoreError::Invariant(format!("unknown machine event {kind:?}")))?,
                    message: row.try_get("message")?,
                    expires_before: row.try_get("expires_before")?,
                    expires_after: row.try_get("expires_after")?,
                    plan_before: row.try_get("plan_before")?,
                })
            })
            .collect()
    }
}
