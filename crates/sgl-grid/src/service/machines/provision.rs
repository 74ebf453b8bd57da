//! A provision, from the renter's request to the machine answering SSH. [`Machines::order`]
//! checks everything before any money moves; [`Machines::provision`] records the machine and
//! holds its price, then a task asks the backend for it and probes it until it answers SSH
//! (the price is taken) or fails or misses its deadline (destroyed, the price given back whole).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_grid_store::machines::{MachineRecord, NewMachine};
use sgl_machines::backend::{BackendError, CreateSpec, Created, MachineBackend, Status};
use sgl_machines::lifecycle::{ProvisionFailure, running};
use sgl_machines::price::Hours;
use sgl_machines::ssh_probe;
use sgl_protocol::api::machines::{MachineEventKind, ProvisionRequest, check_ssh_public_key};

use super::catalog::PricedPlan;
use super::{MachineError, Machines};

/// A provision that passed every check, priced.
#[derive(Debug, Clone)]
pub struct Order {
    /// The new machine's id.
    pub id: String,
    /// The plan.
    pub plan: PricedPlan,
    /// The region.
    pub region: String,
    /// Prepaid hours.
    pub hours: Hours,
    /// The whole price, micro-USD.
    pub price_micros: i64,
    /// The renter's key.
    pub ssh_key: Option<String>,
    /// The label.
    pub label: Option<String>,
    /// The operating system.
    pub os_id: Option<u32>,
    /// Where warnings and the end are POSTed.
    pub webhook_url: Option<String>,
}

/// The longest label.
const MAX_LABEL: usize = 100;

fn check_label(label: Option<&str>) -> Result<Option<String>, MachineError> {
    let Some(label) = label.map(str::trim).filter(|label| !label.is_empty()) else { return Ok(None) };
    if label.chars().count() > MAX_LABEL {
        return Err(MachineError::BadLabel("is longer than 100 characters"));
    }
    if label.chars().any(char::is_control) {
        return Err(MachineError::BadLabel("has control characters"));
    }
    Ok(Some(label.to_owned()))
}

impl Machines {
    /// Checks a provision request and prices it; nothing is recorded or paid.
    pub async fn order(&self, request: &ProvisionRequest) -> Result<Order, MachineError> {
        let hours = Hours::from_request(request.prepaid_hours, request.prepaid_days, request.prepaid_months)
            .map_err(MachineError::Duration)?;
        let label = check_label(request.label.as_deref())?;
        let webhook_url = request
            .webhook_url
            .as_deref()
            .map(|url| super::webhook::check_url(url, self.config().webhook_allow_private))
            .transpose()?;
        let ssh_key = request.ssh_public_key.as_deref().map(check_ssh_public_key).transpose()?.map(str::to_owned);
        let plan = self.plan(&request.plan).await?;
        if !plan.plan.regions.contains(&request.region) {
            return Err(MachineError::UnknownRegion { plan: plan.plan.id, region: request.region.clone() });
        }
        if ssh_key.is_none() && !plan.capabilities.password_login {
            return Err(MachineError::KeyRequired);
        }
        Ok(Order {
            id: format!("vm_{}", uuid::Uuid::new_v4().simple()),
            price_micros: plan.rate.price(hours),
            region: request.region.clone(),
            plan,
            hours,
            ssh_key,
            label,
            os_id: request.os_id,
            webhook_url,
        })
    }

    /// Records the machine, holds its price from `payer`'s credits, and starts making it.
    pub async fn provision(&self, order: &Order, payer: &ApiKeyRecord) -> Result<MachineRecord, MachineError> {
        let now = self.now_ms();
        let deadline_ms = i64::try_from(self.config().ready_deadline_secs).unwrap_or(i64::MAX / 2) * 1000;
        let machine = NewMachine {
            id: &order.id,
            api_key_id: payer.id,
            account_id: payer.account(),
            label: order.label.as_deref(),
            plan: &order.plan.plan.id,
            region: &order.region,
            backend: order.plan.backend.as_str(),
            os_id: order.os_id,
            hourly_micros: order.plan.rate.micros_per_hour(),
            prepaid_hours: order.hours.get(),
            paid_micros: order.price_micros,
            ssh_key: order.ssh_key.as_deref(),
            ready_deadline: now.saturating_add(deadline_ms),
            webhook_url: order.webhook_url.as_deref(),
        };
        self.store().provision_machine(&machine, now).await?;
        tracing::info!(target: "sgl::events::machine", machine = %order.id, plan = %order.plan.plan.id,
            hours = order.hours.get(), micros = order.price_micros, "machine paid for; making it");
        let spec = CreateSpec {
            machine_id: order.id.clone(),
            plan: order.plan.plan.clone(),
            region: order.region.clone(),
            os_id: order.os_id,
            label: order.label.clone(),
            ssh_public_key: order.ssh_key.clone(),
        };
        if let Some(backend) = self.backend(order.plan.backend) {
            let machines = self.clone();
            self.inner.tasks.lock().await.spawn(async move { machines.make(backend, spec).await });
        }
        self.store().machine(&order.id).await?.ok_or(MachineError::NotFound)
    }

    /// Makes the machine and waits for SSH; every way out leaves it active or refunded.
    async fn make(self, backend: Arc<dyn MachineBackend>, spec: CreateSpec) {
        let id = spec.machine_id.clone();
        let backend = backend.as_ref();
        let created = match backend.create(&spec).await {
            Ok(created) => created,
            Err(error) => {
                let message = format!("the provider refused or failed: {error}");
                return self.fail(&id, failure_of(&error), &message, backend, None).await;
            }
        };
        let provider_id = created.provider_id.as_str();
        if let Err(error) = self.record_created(&id, &created).await {
            let message = format!("recording the machine failed: {error}");
            return self.fail(&id, ProvisionFailure::Failed, &message, backend, Some(provider_id)).await;
        }
        if let Err((failure, message)) = self.await_ssh(backend, &id, provider_id).await {
            self.fail(&id, failure, &message, backend, Some(provider_id)).await;
        }
    }

    async fn record_created(&self, id: &str, created: &Created) -> Result<(), MachineError> {
        let sealed = created.password.as_ref().map(|password| self.inner.passwords.seal(password)).transpose()?;
        let now = self.now_ms();
        Ok(self.store().machine_created(id, &created.provider_id, sealed.as_deref(), now).await?)
    }

    /// Polls the backend and the SSH port until the machine answers or its deadline passes.
    async fn await_ssh(
        &self,
        backend: &dyn MachineBackend,
        id: &str,
        provider_id: &str,
    ) -> Result<(), (ProvisionFailure, String)> {
        loop {
            let machine = match self.store().machine(id).await {
                Ok(Some(machine)) if machine.end_reason.is_none() => machine,
                // Failed meanwhile (the leader's deadline) or gone: nothing more to do here.
                Ok(_) => return Ok(()),
                Err(error) => return Err((ProvisionFailure::Failed, format!("reading the machine: {error}"))),
            };
            if self.now_ms() >= machine.ready_deadline {
                return Err((ProvisionFailure::NotReachable, "not reachable by SSH before the deadline".to_owned()));
            }
            match backend.status(provider_id).await {
                Ok(Status::Running { ssh }) if ssh_probe::answers(ssh, Duration::from_secs(2)).await => {
                    return self.activate(&machine, ssh).await;
                }
                Ok(Status::Gone) => return Err((ProvisionFailure::Failed, "the provider lost the machine".to_owned())),
                Ok(_) | Err(BackendError::RateLimited) => {}
                Err(error) => tracing::warn!(machine = %id, %error, "machine status failed; trying again"),
            }
            tokio::time::sleep(self.poll()).await;
        }
    }

    async fn activate(&self, machine: &MachineRecord, ssh: SocketAddr) -> Result<(), (ProvisionFailure, String)> {
        let now = self.now_ms();
        let expires_at = now + i64::from(machine.prepaid_hours) * sgl_machines::price::HOUR_MS;
        let state = running(expires_at, now);
        let host = ssh.ip().to_string();
        match self.store().activate_machine(&machine.id, (&host, ssh.port()), state, now).await {
            Ok(_) => {
                tracing::info!(target: "sgl::events::machine", machine = %machine.id, %ssh,
                    seconds = (now - machine.created_at) as f64 / 1000.0, "machine reachable; its time runs");
                Ok(())
            }
            // It failed meanwhile (the deadline, seen by the leader): it stays refunded.
            Err(error) => Err((ProvisionFailure::NotReachable, format!("activating: {error}"))),
        }
    }

    /// Records the failure and refunds (one transaction), then removes what the provider made.
    pub(super) async fn fail(
        &self,
        id: &str,
        failure: ProvisionFailure,
        message: &str,
        backend: &dyn MachineBackend,
        provider_id: Option<&str>,
    ) {
        match self.store().fail_machine(id, failure.reason(), message, self.now_ms()).await {
            Ok(()) => {
                tracing::warn!(target: "sgl::events::machine", machine = %id, reason = failure.reason().as_str(),
                    %message, "machine never served; refunded in full");
                self.notify(id, MachineEventKind::ProvisionFailed, message).await;
            }
            Err(error) => tracing::debug!(machine = %id, %error, "already ended"),
        }
        self.tear_down(id, backend, provider_id).await;
    }
}

/// How a create failure is recorded: the provider's refusal, or its failure.
fn failure_of(error: &BackendError) -> ProvisionFailure {
    match error {
        BackendError::Rejected { .. } | BackendError::Unsupported(_) => ProvisionFailure::Rejected,
        _ => ProvisionFailure::Failed,
    }
}
