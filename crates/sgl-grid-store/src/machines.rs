//! Machines rented by the hour (issue 18): their rows, their log, and the money each step moves.
//!
//! - **provision**: the row (`pending`) and the hold of the whole prepaid price from the payer's
//!   credits into `escrow:job:{id}`, in one transaction;
//! - **activate** (it answered SSH): `pending → active`, its time starts, the escrow goes to the
//!   platform (`settle:machine:{id}`);
//! - **fail** (the provider refused or failed, or it was not reachable in time): the end reason
//!   and the escrow back to the payer's credits, under the same idempotency key, so a machine is
//!   either paid for or refunded, never both;
//! - **extend**: credits to the platform and `expires_at` moved, in one transaction, guarded by
//!   the `expires_at` the grid priced from; **resize**: no money, the plan and `expires_at`
//!   moved under the same guard;
//! - expiry and destruction: state changes guarded by the state they leave.
//!
//! Every state change checks the state it leaves in its `WHERE`, so two replicas (or the
//! leader and a request) never apply one event twice.

use sgl_protocol::api::machines::{EndReason, MachineEventKind, MachineState};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::ledger::{Account, NewTransaction, PostError, TransactionKind};
use crate::{Store, StoreError};

mod reads;

pub use reads::{MachineEventRecord, MachineRecord};

/// A machine to record; the grid checked everything and priced it.
#[derive(Debug, Clone)]
pub struct NewMachine<'a> {
    /// `vm_…`.
    pub id: &'a str,
    /// The paying key.
    pub api_key_id: i64,
    /// Its account, which owns the machine.
    pub account_id: i64,
    /// The renter's label.
    pub label: Option<&'a str>,
    /// The plan.
    pub plan: &'a str,
    /// The region.
    pub region: &'a str,
    /// `local`, `vultr` or `digitalocean`.
    pub backend: &'a str,
    /// The operating system asked for.
    pub os_id: Option<u32>,
    /// The plan's rate.
    pub hourly_micros: i64,
    /// Prepaid hours.
    pub prepaid_hours: u32,
    /// The whole price, held now.
    pub paid_micros: i64,
    /// The renter's SSH key, if any.
    pub ssh_key: Option<&'a str>,
    /// When it must answer SSH, or be destroyed and refunded.
    pub ready_deadline: i64,
    /// Where its warnings and end are POSTed.
    pub webhook_url: Option<&'a str>,
}

/// A machine operation was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MachineStoreError {
    /// The payer cannot cover the price.
    #[error("insufficient credits: this costs {needed} micro-USD, the key has {available}")]
    InsufficientCredits {
        /// The price.
        needed: i64,
        /// The key's credits.
        available: i64,
    },
    /// No such machine (or not the account's).
    #[error("no such machine")]
    NotFound,
    /// The machine is not in a state that allows this (it moved on, or another writer won).
    #[error("the machine is {0}")]
    Conflict(&'static str),
    /// A ledger movement was refused.
    #[error(transparent)]
    Post(#[from] PostError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MachineStoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(error))
    }
}

/// One entry for a machine's log.
#[derive(Debug, Clone, Copy)]
pub struct EventIn<'a> {
    /// What happened.
    pub kind: MachineEventKind,
    /// In words.
    pub message: &'a str,
    /// `expires_at` before, for an extension or resize.
    pub expires_before: Option<i64>,
    /// `expires_at` after.
    pub expires_after: Option<i64>,
    /// The plan before a resize.
    pub plan_before: Option<&'a str>,
    /// Makes the entry happen at most once (a warning per expiry).
    pub once_key: Option<&'a str>,
}

impl<'a> EventIn<'a> {
    /// An entry with only a kind and a message.
    pub fn new(kind: MachineEventKind, message: &'a str) -> Self {
        Self { kind, message, expires_before: None, expires_after: None, plan_before: None, once_key: None }
    }
}

/// A change of prepaid time: an extension (paid) or a resize (free).
#[derive(Debug, Clone, Copy)]
pub struct TimeChange<'a> {
    /// The `expires_at` the grid priced from; another value means another writer won.
    pub expires_before: i64,
    /// The new `expires_at`.
    pub expires_after: i64,
    /// What it costs (0 for a resize).
    pub cost_micros: i64,
    /// Hours added (0 for a resize).
    pub hours: u32,
    /// A resize's new plan and rate.
    pub plan: Option<(&'a str, i64)>,
    /// The state after (`active` or `expiring`; an extension in the grace period restarts it).
    pub state_after: MachineState,
}

impl Store {
    /// Records a machine and holds its price from the payer's credits, in one transaction.
    pub async fn provision_machine(&self, machine: &NewMachine<'_>, now_ms: i64) -> Result<(), MachineStoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO machines (id, api_key_id, account_id, label, plan, region, backend, os_id, hourly_micros, \
             prepaid_hours, paid_micros, state, ssh_key, created_at, ready_deadline, webhook_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14, $15)",
        )
        .bind(machine.id)
        .bind(machine.api_key_id)
        .bind(machine.account_id)
        .bind(machine.label)
        .bind(machine.plan)
        .bind(machine.region)
        .bind(machine.backend)
        .bind(machine.os_id.map(i64::from))
        .bind(machine.hourly_micros)
        .bind(i64::from(machine.prepaid_hours))
        .bind(machine.paid_micros)
        .bind(machine.ssh_key)
        .bind(now_ms)
        .bind(machine.ready_deadline)
        .bind(machine.webhook_url)
        .execute(&mut *tx)
        .await?;
        let hold = NewTransaction::from_amounts(
            format!("hold:machine:{}", machine.id),
            TransactionKind::EscrowHold,
            format!("prepaid {} h of machine {}", machine.prepaid_hours, machine.id),
            [
                (Account::Credits { api_key_id: machine.api_key_id }, -machine.paid_micros),
                (Account::Escrow { job_id: machine.id.to_owned() }, machine.paid_micros),
            ],
        );
        match self.post_in(&mut tx, &hold, now_ms).await {
            Err(PostError::InsufficientFunds { balance, .. }) => {
                return Err(MachineStoreError::InsufficientCredits { needed: machine.paid_micros, available: balance });
            }
            other => {
                other?;
            }
        }
        let message =
            format!("{} for {} h, {} micro-USD held", machine.plan, machine.prepaid_hours, machine.paid_micros);
        event_in(&mut tx, machine.id, now_ms, EventIn::new(MachineEventKind::Requested, &message)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The provider made the machine: its id there and, sealed, its one-time password.
    pub async fn machine_created(
        &self,
        id: &str,
        provider_id: &str,
        password_sealed: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MachineStoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE machines SET provider_id = $2, password_sealed = $3 WHERE id = $1 AND state = 'pending' \
             AND end_reason IS NULL",
        )
        .bind(id)
        .bind(provider_id)
        .bind(password_sealed)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(MachineStoreError::Conflict("no longer pending"));
        }
        event_in(&mut tx, id, now_ms, EventIn::new(MachineEventKind::Created, "made by the provider")).await?;
        tx.commit().await?;
        Ok(())
    }

    /// It answered SSH at `ssh`: its prepaid time starts now and its payment is taken.
    pub async fn activate_machine(
        &self,
        id: &str,
        ssh: (&str, u16),
        state: MachineState,
        now_ms: i64,
    ) -> Result<MachineRecord, MachineStoreError> {
        let machine = self.machine(id).await?.ok_or(MachineStoreError::NotFound)?;
        let expires_at = now_ms + i64::from(machine.prepaid_hours) * 3_600_000;
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE machines SET state = $2, active_at = $3, expires_at = $4, ssh_host = $5, ssh_port = $6 \
             WHERE id = $1 AND state = 'pending' AND end_reason IS NULL",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(now_ms)
        .bind(expires_at)
        .bind(ssh.0)
        .bind(i64::from(ssh.1))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(MachineStoreError::Conflict("no longer pending"));
        }
        let capture = NewTransaction::from_amounts(
            format!("settle:machine:{id}"),
            TransactionKind::Settlement,
            format!("machine {id} reachable: its prepaid time is taken"),
            [
                (Account::Escrow { job_id: id.to_owned() }, -machine.paid_micros),
                (Account::Platform, machine.paid_micros),
            ],
        );
        self.post_in(&mut tx, &capture, now_ms).await?;
        let message = format!("reachable by SSH at {}:{}", ssh.0, ssh.1);
        event_in(&mut tx, id, now_ms, EventIn::new(MachineEventKind::Active, &message)).await?;
        tx.commit().await?;
        self.machine(id).await?.ok_or(MachineStoreError::NotFound)
    }

    /// A pending machine failed (`reason` refunds in full): the reason, and its payment back to
    /// the payer's credits, in one transaction.
    pub async fn fail_machine(
        &self,
        id: &str,
        reason: EndReason,
        message: &str,
        now_ms: i64,
    ) -> Result<(), MachineStoreError> {
        let machine = self.machine(id).await?.ok_or(MachineStoreError::NotFound)?;
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE machines SET end_reason = $2, ended_at = $3, refunded_micros = paid_micros \
             WHERE id = $1 AND state = 'pending' AND end_reason IS NULL",
        )
        .bind(id)
        .bind(reason.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(MachineStoreError::Conflict("no longer pending"));
        }
        let refund = NewTransaction::from_amounts(
            format!("settle:machine:{id}"),
            TransactionKind::Release,
            format!("machine {id} never served ({}): refunded in full", reason.as_str()),
            [
                (Account::Escrow { job_id: id.to_owned() }, -machine.paid_micros),
                (Account::Credits { api_key_id: machine.api_key_id }, machine.paid_micros),
            ],
        );
        self.post_in(&mut tx, &refund, now_ms).await?;
        event_in(&mut tx, id, now_ms, EventIn::new(MachineEventKind::ProvisionFailed, message)).await?;
        let refunded = format!("{} micro-USD back to the paying key's credits", machine.paid_micros);
        event_in(&mut tx, id, now_ms, EventIn::new(MachineEventKind::Refunded, &refunded)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a running (or expired, in grace) machine's prepaid time: an extension paid from
    /// `api_key_id`'s credits, or a resize. Refused if `expires_at` moved since it was priced.
    pub async fn change_machine_time(
        &self,
        id: &str,
        api_key_id: i64,
        change: TimeChange<'_>,
        now_ms: i64,
    ) -> Result<(), MachineStoreError> {
        let mut tx = self.pool().begin().await?;
        let before = self.machine_in(&mut tx, id).await?;
        let (plan, hourly) = change.plan.unzip();
        let done = sqlx::query(
            "UPDATE machines SET expires_at = $2, state = $3, destroy_at = NULL, extensions = extensions + $4, \
             paid_micros = paid_micros + $5, prepaid_hours = prepaid_hours + $6, \
             plan = COALESCE($7, plan), hourly_micros = COALESCE($8, hourly_micros) \
             WHERE id = $1 AND expires_at = $9 AND end_reason IS NULL AND state IN ('active', 'expiring', 'expired')",
        )
        .bind(id)
        .bind(change.expires_after)
        .bind(change.state_after.as_str())
        .bind(i64::from(change.cost_micros > 0))
        .bind(change.cost_micros)
        .bind(i64::from(change.hours))
        .bind(plan)
        .bind(hourly)
        .bind(change.expires_before)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(MachineStoreError::Conflict("changed by another request; try again"));
        }
        let (kind, message) = match change.plan {
            None => {
                (MachineEventKind::Extended, format!("{} h added for {} micro-USD", change.hours, change.cost_micros))
            }
            Some((plan, _)) => (MachineEventKind::Resized, format!("now {plan}; the prepaid value left is kept")),
        };
        if change.cost_micros > 0 {
            let payment = NewTransaction::from_amounts(
                format!("extend:machine:{id}:{}", before.extensions),
                TransactionKind::MachineExtension,
                format!("{} h more of machine {id}", change.hours),
                [(Account::Credits { api_key_id }, -change.cost_micros), (Account::Platform, change.cost_micros)],
            );
            match self.post_in(&mut tx, &payment, now_ms).await {
                Err(PostError::InsufficientFunds { balance, .. }) => {
                    return Err(MachineStoreError::InsufficientCredits {
                        needed: change.cost_micros,
                        available: balance,
                    });
                }
                other => {
                    other?;
                }
            }
        }
        let entry = EventIn {
            kind,
            message: &message,
            expires_before: Some(change.expires_before),
            expires_after: Some(change.expires_after),
            plan_before: change.plan.map(|_| before.plan.as_str()),
            once_key: None,
        };
        event_in(&mut tx, id, now_ms, entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a machine from one state to another (`active → expiring`, expiry to `expired` with
    /// its `destroy_at`, `→ destroyed`), with its log entry; `Ok(false)` if it was not in `from`.
    pub async fn move_machine(
        &self,
        id: &str,
        from: &[MachineState],
        to: MachineState,
        destroy_at: Option<i64>,
        entry: Option<EventIn<'_>>,
        now_ms: i64,
    ) -> Result<bool, MachineStoreError> {
        let mut tx = self.pool().begin().await?;
        let from: Vec<String> = from.iter().map(|state| format!("'{}'", state.as_str())).collect();
        let destroyed = to == MachineState::Destroyed;
        let sql = format!(
            "UPDATE machines SET state = $2, destroy_at = COALESCE($3, destroy_at), \
             destroyed_at = CASE WHEN $4 = 1 THEN $5 ELSE destroyed_at END, \
             ended_at = CASE WHEN $4 = 1 THEN COALESCE(ended_at, $5) ELSE ended_at END \
             WHERE id = $1 AND state IN ({})",
            from.join(", ")
        );
        let done = sqlx::query(&sql)
            .bind(id)
            .bind(to.as_str())
            .bind(destroy_at)
            .bind(i64::from(destroyed))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(entry) = entry {
            event_in(&mut tx, id, now_ms, entry).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records why a running or expired machine ends (its renter destroyed it, or its grace
    /// ran out); the leader then destroys it. `Ok(false)` if it had ended already.
    pub async fn end_machine(&self, id: &str, reason: EndReason, now_ms: i64) -> Result<bool, MachineStoreError> {
        let done = sqlx::query(
            "UPDATE machines SET end_reason = $2, ended_at = $3 WHERE id = $1 AND end_reason IS NULL \
             AND state <> 'destroyed'",
        )
        .bind(id)
        .bind(reason.as_str())
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds an entry to a machine's log; `Ok(false)` if its `once_key` was used already.
    pub async fn machine_event(&self, id: &str, entry: EventIn<'_>, now_ms: i64) -> Result<bool, MachineStoreError> {
        if let Some(key) = entry.once_key {
            let seen = sqlx::query("SELECT 1 FROM machine_events WHERE once_key = $1")
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
            if seen.is_some() {
                return Ok(false);
            }
        }
        let mut tx = self.pool().begin().await?;
        match event_in(&mut tx, id, now_ms, entry).await {
            Err(StoreError::Database(sqlx::Error::Database(db))) if db.is_unique_violation() => return Ok(false),
            other => other?,
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The machine's sealed one-time password, taken: a second call finds none.
    pub async fn take_machine_password(&self, id: &str, now_ms: i64) -> Result<Option<String>, MachineStoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("SELECT password_sealed FROM machines WHERE id = $1 AND password_shown_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(sealed) = row.map(|row| row.try_get::<Option<String>, _>("password_sealed")).transpose()?.flatten()
        else {
            return Ok(None);
        };
        let done = sqlx::query(
            "UPDATE machines SET password_shown_at = $2, password_sealed = NULL \
             WHERE id = $1 AND password_shown_at IS NULL",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(sealed))
    }
}

/// Appends to a machine's log inside `tx`.
async fn event_in(tx: &mut Transaction<'_, Any>, id: &str, now_ms: i64, entry: EventIn<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO machine_events (machine_id, at, kind, message, expires_before, expires_after, plan_before, \
         once_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(now_ms)
    .bind(entry.kind.as_str())
    .bind(entry.message)
    .bind(entry.expires_before)
    .bind(entry.expires_after)
    .bind(entry.plan_before)
    .bind(entry.once_key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A stored state name, or an invariant error.
fn state_of(row: &AnyRow) -> Result<MachineState, StoreError> {
    let name: String = row.try_get("state")?;
    MachineState::from_name(&name).ok_or_else(|| StoreError::Invariant(format!("unknown machine state {name:?}")))
}
