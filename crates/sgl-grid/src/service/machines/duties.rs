//! The leader's work on machines, once per tick: destroy and refund machines that missed their
//! readiness deadline, give the 24 h and 1 h warnings, stop machines whose time ran out (their
//! disk kept), destroy them when the grace period ends, and retry removals that failed. Every
//! step is a guarded store call, so a replica that lost the lead mid-tick repeats nothing.

use sgl_grid_store::machines::{EventIn, MachineRecord};
use sgl_machines::backend::{BackendName, MachineBackend};
use sgl_machines::lifecycle::{Duty, ProvisionFailure, Stay, Warning, due};
use sgl_protocol::api::machines::{EndReason, MachineEventKind, MachineState};

use super::{MachineError, Machines};

/// Machines looked at per tick.
const PER_TICK: i64 = 500;

impl Machines {
    /// One round of the leader's duties.
    pub async fn duties(&self) -> Result<(), MachineError> {
        for machine in self.store().live_machines(PER_TICK).await? {
            let Some(backend) = BackendName::from_name(&machine.backend).and_then(|name| self.backend(name)) else {
                continue;
            };
            self.attend(&machine, backend.as_ref()).await;
        }
        Ok(())
    }

    async fn attend(&self, machine: &MachineRecord, backend: &dyn MachineBackend) {
        let now = self.now_ms();
        let provider_id = machine.provider_id.as_deref();
        match (machine.state, machine.end_reason) {
            (MachineState::Pending, None) if now >= machine.ready_deadline => {
                let message = "not reachable by SSH before the deadline";
                self.fail(&machine.id, ProvisionFailure::NotReachable, message, backend, provider_id).await;
            }
            (MachineState::Pending, None) => {}
            // Ended, not removed yet (a removal failed, or its grace just ended): try again.
            (_, Some(_)) => self.tear_down(&machine.id, backend, provider_id).await,
            (state, None) => {
                let stay = Stay { state, active_at: machine.active_at, expires_at: machine.expires_at };
                for duty in due(stay, now, self.config().grace_ms()) {
                    if let Err(error) = self.perform(machine, duty, backend, now).await {
                        tracing::warn!(machine = %machine.id, ?duty, %error, "a machine duty failed; next tick");
                    }
                }
            }
        }
    }

    async fn perform(
        &self,
        machine: &MachineRecord,
        duty: Duty,
        backend: &dyn MachineBackend,
        now: i64,
    ) -> Result<(), MachineError> {
        let id = machine.id.as_str();
        let expires_at = machine.expires_at.unwrap_or(now);
        match duty {
            Duty::MarkExpiring => {
                self.store().move_machine(id, &[MachineState::Active], MachineState::Expiring, None, None, now).await?;
            }
            Duty::Warn(warning) => {
                let (kind, text) = match warning {
                    Warning::Day => (MachineEventKind::Warning24h, "a day of prepaid time left; extend to keep it"),
                    Warning::Hour => (MachineEventKind::Warning1h, "an hour of prepaid time left; extend to keep it"),
                };
                let once = format!("{id}:{}:{expires_at}", kind.as_str());
                let entry = EventIn { once_key: Some(&once), ..EventIn::new(kind, text) };
                if self.store().machine_event(id, entry, now).await? {
                    tracing::info!(target: "sgl::events::machine", machine = %id, warning = kind.as_str(), "machine warned");
                    self.notify(id, kind, text).await;
                }
            }
            Duty::Stop => {
                backend.stop(machine.provider_id.as_deref().unwrap_or(id)).await?;
                let destroy_at = expires_at.saturating_add(self.config().grace_ms());
                let message = format!(
                    "its time ran out: stopped, its disk kept until {} unless extended",
                    crate::service::rfc3339::format(destroy_at)
                );
                let entry = EventIn::new(MachineEventKind::Stopped, &message);
                let live = [MachineState::Active, MachineState::Expiring];
                if self
                    .store()
                    .move_machine(id, &live, MachineState::Expired, Some(destroy_at), Some(entry), now)
                    .await?
                {
                    tracing::info!(target: "sgl::events::machine", machine = %id, "machine expired and stopped");
                    self.notify(id, MachineEventKind::Stopped, &message).await;
                }
            }
            Duty::Destroy => {
                if self.store().end_machine(id, EndReason::Expired, now).await? {
                    self.tear_down(id, backend, machine.provider_id.as_deref()).await;
                }
            }
        }
        Ok(())
    }
}
