//! A machine as its renter sees it: times in RFC 3339 and milliseconds, hours left, the SSH
//! command while it runs, and (in the detail view) its log.

use sgl_grid_store::machines::{MachineEventRecord, MachineRecord};
use sgl_machines::price::HOUR_MS;
use sgl_protocol::api::machines::{MachineEvent, MachineList, MachineState, MachineView, SshAccess};

use super::{MachineError, Machines};
use crate::service::rfc3339;

/// The most machines a list shows.
const LIST_LIMIT: i64 = 100;

impl Machines {
    /// `account`'s machines, newest first.
    pub async fn list(&self, account: i64) -> Result<MachineList, MachineError> {
        let now = self.now_ms();
        let machines = self.store().machines_of(account, LIST_LIMIT).await?;
        Ok(MachineList { instances: machines.iter().map(|machine| view(machine, &[], now)).collect() })
    }

    /// `account`'s machine with its log.
    pub async fn show(&self, account: i64, id: &str) -> Result<MachineView, MachineError> {
        let machine = self.find(account, id).await?;
        let events = self.store().machine_events(id).await?;
        Ok(view(&machine, &events, self.now_ms()))
    }

    /// The view of a machine just changed (no log).
    pub fn view(&self, machine: &MachineRecord) -> MachineView {
        view(machine, &[], self.now_ms())
    }
}

fn time(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339::format)
}

/// The renter's view of `machine` at `now`.
pub fn view(machine: &MachineRecord, events: &[MachineEventRecord], now: i64) -> MachineView {
    let running =
        matches!(machine.state, MachineState::Active | MachineState::Expiring) && machine.end_reason.is_none();
    let ssh = machine.ssh.as_ref().filter(|_| running).map(|(host, port)| SshAccess {
        host: host.clone(),
        port: *port,
        user: "root".to_owned(),
    });
    let ssh_command = ssh.as_ref().map(|ssh| match ssh.port {
        22 => format!("ssh {}@{}", ssh.user, ssh.host),
        port => format!("ssh -p {port} {}@{}", ssh.user, ssh.host),
    });
    let hours_left = machine
        .expires_at
        .filter(|_| machine.end_reason.is_none())
        .map(|expires_at| (expires_at - now).max(0) as f64 / HOUR_MS as f64);
    MachineView {
        id: machine.id.clone(),
        object: "machine".to_owned(),
        label: machine.label.clone(),
        plan: machine.plan.clone(),
        region: machine.region.clone(),
        backend: machine.backend.clone(),
        os_id: machine.os_id,
        state: machine.state,
        end_reason: machine.end_reason,
        created_at: rfc3339::format(machine.created_at),
        created_at_ms: machine.created_at,
        active_at: time(machine.active_at),
        active_at_ms: machine.active_at,
        expires_at: time(machine.expires_at),
        expires_at_ms: machine.expires_at,
        hours_left,
        destroy_at: time(machine.destroy_at),
        destroy_at_ms: machine.destroy_at,
        ended_at: time(machine.ended_at),
        ended_at_ms: machine.ended_at,
        ssh,
        ssh_command,
        password_available: machine.password_waiting,
        hourly_micros: machine.hourly_micros,
        paid_micros: machine.paid_micros,
        refunded_micros: machine.refunded_micros,
        webhook_url: machine.webhook_url.clone(),
        events: events.iter().map(event).collect(),
        management_api_key: None,
    }
}

fn event(event: &MachineEventRecord) -> MachineEvent {
    MachineEvent {
        at: rfc3339::format(event.at),
        at_ms: event.at,
        kind: event.kind,
        message: event.message.clone(),
        expires_at_before_ms: event.expires_before,
        expires_at_ms: event.expires_after,
        plan_before: event.plan_before.clone(),
    }
}
