//! A renter's changes to a machine: more time, another plan, its password, its end. Each
//! finds the machine in the caller's account first (anything else is "no such machine"), and
//! each change to a backend happens before the store records it, so a provider's refusal
//! changes nothing and costs nothing.

use sgl_grid_store::machines::{EventIn, MachineRecord, TimeChange};
use sgl_machines::backend::{BackendName, MachineBackend, ResizeSpec};
use sgl_machines::lifecycle::running;
use sgl_machines::price::{Hours, Rate, extended, resized};
use sgl_protocol::api::machines::{EndReason, MachineEventKind, MachinePassword, MachineState};

use super::{MachineError, Machines};

impl Machines {
    /// `account`'s machine `id`, or [`MachineError::NotFound`] (also for another account's).
    pub async fn find(&self, account: i64, id: &str) -> Result<MachineRecord, MachineError> {
        self.store().machine_of(account, id).await?.ok_or(MachineError::NotFound)
    }

    fn backend_of(&self, machine: &MachineRecord) -> Result<std::sync::Arc<dyn MachineBackend>, MachineError> {
        BackendName::from_name(&machine.backend).and_then(|name| self.backend(name)).ok_or_else(|| {
            MachineError::Conflict(format!("on backend {}, which this grid no longer runs", machine.backend))
        })
    }

    /// What `hours` more of `account`'s machine cost now (for a 402 quote), checking it can be
    /// extended.
    pub async fn extension_price(&self, account: i64, id: &str, hours: u32) -> Result<i64, MachineError> {
        let machine = self.find(account, id).await?;
        let (_, hours, rate) = extendable(&machine, hours)?;
        Ok(rate.price(hours))
    }

    /// Adds `hours`, paid from `payer_key`'s credits; an expired machine in its grace period
    /// is started again first.
    pub async fn extend(
        &self,
        account: i64,
        payer_key: i64,
        id: &str,
        hours: u32,
    ) -> Result<MachineRecord, MachineError> {
        let machine = self.find(account, id).await?;
        let (expires_at, hours, rate) = extendable(&machine, hours)?;
        let now = self.now_ms();
        let expires_after = extended(expires_at, now, hours);
        let restart = machine.state == MachineState::Expired;
        if restart {
            let backend = self.backend_of(&machine)?;
            backend.start(machine.provider_id.as_deref().unwrap_or(&machine.id)).await?;
        }
        let change = TimeChange {
            expires_before: expires_at,
            expires_after,
            cost_micros: rate.price(hours),
            hours: hours.get(),
            plan: None,
            state_after: running(expires_after, now),
        };
        if let Err(error) = self.store().change_machine_time(id, payer_key, change, now).await {
            if restart {
                self.stop_again(&machine).await;
            }
            return Err(error.into());
        }
        if restart {
            let entry = EventIn::new(MachineEventKind::Restarted, "started again after an extension");
            self.store().machine_event(id, entry, now).await?;
        }
        self.find(account, id).await
    }

    async fn stop_again(&self, machine: &MachineRecord) {
        if let Ok(backend) = self.backend_of(machine)
            && let Err(error) = backend.stop(machine.provider_id.as_deref().unwrap_or(&machine.id)).await
        {
            tracing::warn!(machine = %machine.id, %error, "stopping an unpaid restart failed; the leader will");
        }
    }

    /// Moves the machine to `plan`, keeping the prepaid value left; charges nothing.
    pub async fn resize(
        &self,
        account: i64,
        id: &str,
        plan: &str,
        confirm_disk: bool,
    ) -> Result<MachineRecord, MachineError> {
        let machine = self.find(account, id).await?;
        let (Some(expires_at), MachineState::Active | MachineState::Expiring, None) =
            (machine.expires_at, machine.state, machine.end_reason)
        else {
            return Err(MachineError::Conflict(format!(
                "{}: only a running machine can be resized",
                describe(&machine)
            )));
        };
        let new = self.plan(plan).await?;
        if new.backend.as_str() != machine.backend {
            return Err(MachineError::OtherBackend(plan.to_owned()));
        }
        let old = self.plan(&machine.plan).await?;
        if new.smaller_than(&old) && !new.capabilities.downgrade {
            return Err(MachineError::Downgrade);
        }
        let grow_disk = new.plan.disk_gb > old.plan.disk_gb && new.capabilities.disk_growth_permanent;
        if grow_disk && !confirm_disk {
            return Err(MachineError::DiskResizeUnconfirmed(plan.to_owned()));
        }
        let now = self.now_ms();
        let old_rate = Rate::per_hour(machine.hourly_micros).map_err(MachineError::TooLittleLeft)?;
        let expires_after = resized(expires_at, now, old_rate, new.rate).map_err(MachineError::TooLittleLeft)?;
        let backend = self.backend_of(&machine)?;
        let spec = ResizeSpec { plan: new.plan.clone(), grow_disk };
        backend.resize(machine.provider_id.as_deref().unwrap_or(&machine.id), &spec).await?;
        let change = TimeChange {
            expires_before: expires_at,
            expires_after,
            cost_micros: 0,
            hours: 0,
            plan: Some((&new.plan.id, new.rate.micros_per_hour())),
            state_after: running(expires_after, now),
        };
        self.store().change_machine_time(id, machine.api_key_id, change, now).await?;
        self.find(account, id).await
    }

    /// The one-time root password; a second call is refused.
    pub async fn password(&self, account: i64, id: &str) -> Result<MachinePassword, MachineError> {
        self.find(account, id).await?;
        let sealed = self.store().take_machine_password(id, self.now_ms()).await?.ok_or(MachineError::NoPassword)?;
        let password = self.inner.passwords.open(&sealed)?;
        Ok(MachinePassword { id: id.to_owned(), password: password.expose().to_owned() })
    }

    /// Ends the machine at its renter's word and removes it. If the backend cannot remove it
    /// now, the leader tries again; the machine is recorded as ended either way.
    pub async fn destroy(&self, account: i64, id: &str) -> Result<MachineRecord, MachineError> {
        let machine = self.find(account, id).await?;
        if machine.state == MachineState::Destroyed {
            return Err(MachineError::Conflict("destroyed already".to_owned()));
        }
        if machine.state == MachineState::Pending && machine.end_reason.is_none() {
            return Err(MachineError::Conflict(
                "still being made; destroy it once it is active (if it never is, it is refunded)".to_owned(),
            ));
        }
        self.store().end_machine(id, EndReason::DestroyedByUser, self.now_ms()).await?;
        let backend = self.backend_of(&machine)?;
        self.tear_down(id, backend.as_ref(), machine.provider_id.as_deref()).await;
        self.find(account, id).await
    }

    /// Removes what the backend holds of a machine that ended and records it destroyed once
    /// nothing is left; on failure it stays for the leader to try again.
    pub(super) async fn tear_down(&self, id: &str, backend: &dyn MachineBackend, provider_id: Option<&str>) {
        if let Some(provider_id) = provider_id
            && let Err(error) = backend.destroy(provider_id).await
        {
            tracing::warn!(machine = %id, %error, "destroying the machine failed; the leader tries again");
            return;
        }
        let from = [MachineState::Pending, MachineState::Active, MachineState::Expiring, MachineState::Expired];
        let entry = EventIn::new(MachineEventKind::Destroyed, "removed; nothing of it is left");
        match self.store().move_machine(id, &from, MachineState::Destroyed, None, Some(entry), self.now_ms()).await {
            Ok(true) => {
                tracing::info!(target: "sgl::events::machine", machine = %id, "machine destroyed");
                self.notify(id, MachineEventKind::Destroyed, "removed; nothing of it is left").await;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(machine = %id, %error, "recording a destroyed machine failed"),
        }
    }
}

/// The `expires_at`, hours and rate of an extension, if the machine can be extended.
fn extendable(machine: &MachineRecord, hours: u32) -> Result<(i64, Hours, Rate), MachineError> {
    let hours = Hours::new(u64::from(hours)).map_err(MachineError::Duration)?;
    match (machine.expires_at, machine.state, machine.end_reason) {
        (Some(expires_at), MachineState::Active | MachineState::Expiring | MachineState::Expired, None) => {
            let rate = Rate::per_hour(machine.hourly_micros).map_err(MachineError::Duration)?;
            Ok((expires_at, hours, rate))
        }
        _ => Err(MachineError::Conflict(format!("{}: it cannot be extended", describe(machine)))),
    }
}

fn describe(machine: &MachineRecord) -> String {
    match machine.end_reason {
        Some(reason) => format!("{} ({})", machine.state.as_str(), reason.as_str()),
        None => machine.state.as_str().to_owned(),
    }
}
