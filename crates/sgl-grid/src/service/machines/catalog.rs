//! What is on sale: every installed backend's plans with the grid's hourly rate (configured
//! for local machines; the provider's monthly price over 672 hours plus the markup for clouds),
//! and the regions. A backend that cannot list right now is left out and logged, so one
//! provider's outage never empties the catalogue.

use sgl_machines::backend::{BackendName, BackendPlan, Capabilities, MachineBackend};
use sgl_machines::price::Rate;
use sgl_protocol::api::machines::{GpuInfo, Plan, PlanKind, Region};

use super::{MachineError, Machines};

/// A plan with the grid's price.
#[derive(Debug, Clone)]
pub struct PricedPlan {
    /// The backend's plan.
    pub plan: BackendPlan,
    /// Its backend.
    pub backend: BackendName,
    /// What the grid charges per hour.
    pub rate: Rate,
    /// What its backend can do.
    pub capabilities: Capabilities,
}

impl PricedPlan {
    /// The plan on the wire.
    pub fn to_wire(&self) -> Plan {
        let hourly = self.rate.micros_per_hour();
        let monthly = hourly * 720;
        Plan {
            id: self.plan.id.clone(),
            kind: kind_of(&self.plan),
            backend: self.backend.as_str().to_owned(),
            vcpus: self.plan.vcpus,
            memory_mb: self.plan.memory_mb,
            disk_gb: self.plan.disk_gb,
            gpu: self.plan.gpu.as_ref().map(|gpu| GpuInfo {
                model: gpu.model.clone(),
                count: gpu.count,
                vram_gb: gpu.vram_gb,
            }),
            hourly_micros: hourly,
            hourly_usd: hourly as f64 / 1e6,
            monthly_micros: monthly,
            monthly_usd: monthly as f64 / 1e6,
            regions: self.plan.regions.clone(),
            can_downgrade: self.capabilities.downgrade,
            disk_growth_permanent: self.capabilities.disk_growth_permanent,
            password_login: self.capabilities.password_login,
        }
    }

    /// Whether `self` is smaller than `other` in any resource.
    pub fn smaller_than(&self, other: &PricedPlan) -> bool {
        self.plan.vcpus < other.plan.vcpus
            || self.plan.memory_mb < other.plan.memory_mb
            || self.plan.disk_gb < other.plan.disk_gb
    }
}

fn kind_of(plan: &BackendPlan) -> PlanKind {
    let id = plan.id.trim_start_matches("do:");
    match () {
        _ if plan.id.starts_with("local:") || plan.id.starts_with("local-vm:") => PlanKind::Local,
        _ if plan.gpu.is_some() || id.starts_with("vcg-") || id.starts_with("gpu-") => PlanKind::Gpu,
        _ if id.starts_with("vhp-") || id.starts_with("vhf-") || id.starts_with("c-") => PlanKind::HighPerformance,
        _ if id.starts_with("vdc-") || id.starts_with("vbm-") => PlanKind::Dedicated,
        _ => PlanKind::Vps,
    }
}

impl Machines {
    /// Every plan on sale, cheapest first.
    pub async fn plans(&self) -> Vec<PricedPlan> {
        let mut all = Vec::new();
        for backend in self.backends() {
            all.extend(self.priced(backend.as_ref()).await);
        }
        all.sort_by(|a, b| (a.rate, &a.plan.id).cmp(&(b.rate, &b.plan.id)));
        all
    }

    async fn priced(&self, backend: &dyn MachineBackend) -> Vec<PricedPlan> {
        let plans = match backend.plans().await {
            Ok(plans) => plans,
            Err(error) => {
                tracing::warn!(backend = backend.name().as_str(), %error, "listing plans failed; left out");
                return Vec::new();
            }
        };
        // A plan is sold only in regions the backend has open now (a provider may list a size
        // in a region that takes no new machines).
        let open: Vec<String> = match backend.regions().await {
            Ok(regions) => regions.into_iter().map(|region| region.id).collect(),
            Err(error) => {
                tracing::warn!(backend = backend.name().as_str(), %error, "listing regions failed; plans left out");
                return Vec::new();
            }
        };
        let capabilities = backend.capabilities();
        let name = backend.name();
        plans
            .into_iter()
            .filter_map(|mut plan| {
                plan.regions.retain(|region| open.contains(region));
                let rate = match name {
                    BackendName::Local | BackendName::LocalVm => {
                        Rate::per_hour(*self.config().local.rates.get(&plan.id)?)
                    }
                    BackendName::Vultr => Rate::from_monthly(plan.monthly_micros, self.config().vultr.markup_bps),
                    BackendName::DigitalOcean => {
                        Rate::from_monthly(plan.monthly_micros, self.config().digitalocean.markup_bps)
                    }
                };
                Some(PricedPlan { plan, backend: name, rate: rate.ok()?, capabilities })
            })
            .collect()
    }

    /// The plan `id` on sale.
    pub async fn plan(&self, id: &str) -> Result<PricedPlan, MachineError> {
        let backend = self.backend(BackendName::of_plan(id)).ok_or_else(|| MachineError::UnknownPlan(id.to_owned()))?;
        self.priced(backend.as_ref())
            .await
            .into_iter()
            .find(|plan| plan.plan.id == id)
            .ok_or_else(|| MachineError::UnknownPlan(id.to_owned()))
    }

    /// Every region of every backend.
    pub async fn regions(&self) -> Vec<Region> {
        let mut all = Vec::new();
        for backend in self.backends() {
            match backend.regions().await {
                Ok(regions) => all.extend(regions.into_iter().map(|region| Region {
                    id: region.id,
                    backend: backend.name().as_str().to_owned(),
                    city: region.city,
                    country: region.country,
                })),
                Err(error) => tracing::warn!(backend = backend.name().as_str(), %error, "listing regions failed"),
            }
        }
        all
    }
}
