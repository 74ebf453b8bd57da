//! The Vultr client: configuration, the calls, and [`MachineBackend`] over them.

use std::net::{IpAddr, SocketAddr};

use futures_util::future::BoxFuture;

use super::wire;
use crate::backend::{
    BackendError, BackendName, BackendPlan, BackendRegion, Capabilities, CreateSpec, Created, Gpu, Leftover,
    MachineBackend, Password, ResizeSpec, Status,
};
use crate::cloud::{hostname, key_name, segment, tag};
use crate::price::micros_from_decimal;
use crate::retry::{Api, Request, RetryPolicy, success};
use crate::secret::ProviderToken;

/// Where Vultr's API is.
pub const DEFAULT_API_URL: &str = "https://api.vultr.com/v2";
/// Debian 12 x64, the image a machine gets when the renter names none.
pub const DEFAULT_OS_ID: u32 = 2136;
/// Pages of a list followed at most, against a provider that never says "last page".
const MAX_PAGES: usize = 100;

/// How the grid reaches Vultr.
#[derive(Debug, Clone)]
pub struct VultrConfig {
    /// The API base (default [`DEFAULT_API_URL`]; a test double's URL in tests).
    pub api_url: String,
    /// The operator's API key.
    pub token: ProviderToken,
    /// The grid's markup on Vultr's prices, in basis points (the grid applies it, not the client).
    pub markup_bps: u32,
    /// The operating system when the renter names none (default [`DEFAULT_OS_ID`]).
    pub default_os_id: u32,
    /// The port machines answer SSH on (22).
    pub ssh_port: u16,
    /// Timeouts and retries.
    pub retry: RetryPolicy,
}

impl VultrConfig {
    /// Vultr's own API with `token`, no markup, and the defaults above.
    pub fn new(token: ProviderToken) -> Self {
        Self {
            api_url: DEFAULT_API_URL.to_owned(),
            token,
            markup_bps: 0,
            default_os_id: DEFAULT_OS_ID,
            ssh_port: 22,
            retry: RetryPolicy::default(),
        }
    }
}

/// Vultr as a [`MachineBackend`].
#[derive(Debug)]
pub struct VultrClient {
    api: Api,
    markup_bps: u32,
    default_os_id: u32,
    ssh_port: u16,
}

impl VultrClient {
    /// A client for `config`.
    pub fn new(config: VultrConfig) -> Result<Self, BackendError> {
        Ok(Self {
            api: Api::new(&config.api_url, config.token, config.retry)?,
            markup_bps: config.markup_bps,
            default_os_id: config.default_os_id,
            ssh_port: config.ssh_port,
        })
    }

    /// The grid's markup on this provider, in basis points.
    pub fn markup_bps(&self) -> u32 {
        self.markup_bps
    }

    async fn send(&self, request: Request) -> Result<crate::retry::Answer, BackendError> {
        success(self.api.call(&request).await?, wire::error_message)
    }

    async fn list_plans(&self) -> Result<Vec<BackendPlan>, BackendError> {
        let mut plans = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_PAGES {
            let mut request = Request::get("/plans").query("per_page", "500");
            if !cursor.is_empty() {
                request = request.query("cursor", cursor.as_str());
            }
            let page: wire::PlanList = self.send(request).await?.decode("GET /plans")?;
            plans.extend(page.plans.into_iter().filter_map(plan));
            if page.meta.links.next.is_empty() {
                return Ok(plans);
            }
            cursor = page.meta.links.next;
        }
        Err(BackendError::Unavailable(format!("Vultr listed more than {MAX_PAGES} pages of plans")))
    }

    async fn list_regions(&self) -> Result<Vec<BackendRegion>, BackendError> {
        let mut regions = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_PAGES {
            let mut request = Request::get("/regions").query("per_page", "500");
            if !cursor.is_empty() {
                request = request.query("cursor", cursor.as_str());
            }
            let page: wire::RegionList = self.send(request).await?.decode("GET /regions")?;
            regions.extend(page.regions.into_iter().map(|r| BackendRegion {
                id: r.id,
                city: r.city,
                country: r.country,
            }));
            if page.meta.links.next.is_empty() {
                return Ok(regions);
            }
            cursor = page.meta.links.next;
        }
        Err(BackendError::Unavailable(format!("Vultr listed more than {MAX_PAGES} pages of regions")))
    }

    async fn make(&self, spec: &CreateSpec) -> Result<Created, BackendError> {
        let key = match &spec.ssh_public_key {
            Some(public_key) => Some(self.register_key(&spec.machine_id, public_key).await?),
            None => None,
        };
        let made = self.create_instance(spec, key.as_deref()).await;
        if let Some(key) = &key {
            self.forget_key(key).await;
        }
        let instance = made?;
        // With a key the renter logs in with it; Vultr's password is for keyless machines only.
        let password = match key {
            Some(_) => None,
            None => instance.default_password.filter(|p| !p.is_empty()).map(Password::new),
        };
        if spec.ssh_public_key.is_none() && password.is_none() {
            tracing::warn!(provider_id = %instance.id, "Vultr's create answer had no default_password");
        }
        Ok(Created { provider_id: instance.id, password })
    }

    async fn register_key(&self, machine_id: &str, public_key: &str) -> Result<String, BackendError> {
        let name = key_name(machine_id);
        let body = wire::NewKey { name: &name, ssh_key: public_key };
        let reply: wire::KeyReply =
            self.send(Request::post("/ssh-keys", Some(&body))?).await?.decode("POST /ssh-keys")?;
        Ok(reply.ssh_key.id)
    }

    /// Deletes a key registered for one create; a failure is logged, never the create's.
    async fn forget_key(&self, key: &str) {
        let deleted = match segment(key) {
            Ok(key) => self.send(Request::delete(format!("/ssh-keys/{key}"))).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(error) = deleted {
            tracing::warn!(key, %error, "could not delete the renter's SSH key from the Vultr account");
        }
    }

    async fn create_instance(&self, spec: &CreateSpec, key: Option<&str>) -> Result<wire::Instance, BackendError> {
        let host = hostname(&spec.machine_id);
        let body = wire::NewInstance {
            region: &spec.region,
            plan: &spec.plan.id,
            os_id: spec.os_id.unwrap_or(self.default_os_id),
            label: spec.label.as_deref().unwrap_or(&spec.machine_id),
            hostname: &host,
            sshkey_id: key.into_iter().collect(),
            tags: vec![tag(&spec.machine_id)],
            activation_email: false,
        };
        let reply: wire::InstanceReply =
            self.send(Request::post("/instances", Some(&body))?).await?.decode("POST /instances")?;
        Ok(reply.instance)
    }

    async fn instance(&self, id: &str) -> Result<wire::Instance, BackendError> {
        let id = segment(id)?;
        let reply: wire::InstanceReply =
            self.send(Request::get(format!("/instances/{id}"))).await?.decode("GET /instances/{id}")?;
        Ok(reply.instance)
    }

    async fn read_status(&self, id: &str) -> Result<Status, BackendError> {
        match self.instance(id).await {
            Ok(instance) => Ok(status(&instance, self.ssh_port)),
            Err(BackendError::NotFound) => Ok(Status::Gone),
            Err(e) => Err(e),
        }
    }

    async fn power(&self, id: &str, verb: &str) -> Result<(), BackendError> {
        let id = segment(id)?;
        self.send(Request::post(format!("/instances/{id}/{verb}"), None::<&()>)?).await.map(drop)
    }

    async fn change_plan(&self, id: &str, to: &ResizeSpec) -> Result<(), BackendError> {
        let id = segment(id)?;
        let request = Request::get(format!("/instances/{id}/upgrades")).query("type", "plans");
        let offered: wire::UpgradesReply = self.send(request).await?.decode("GET /instances/{id}/upgrades")?;
        if !offered.upgrades.plans.contains(&to.plan.id) {
            return Err(BackendError::Unsupported("downgrade"));
        }
        let body = wire::PlanChange { plan: &to.plan.id };
        self.send(Request::patch(format!("/instances/{id}"), &body)?).await.map(drop)
    }

    async fn delete(&self, id: &str) -> Result<(), BackendError> {
        let id = match segment(id) {
            Ok(id) => id,
            Err(_) => return Ok(()),
        };
        match self.send(Request::delete(format!("/instances/{id}"))).await {
            Ok(_) | Err(BackendError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn left(&self, id: &str) -> Result<Vec<Leftover>, BackendError> {
        match self.instance(id).await {
            Ok(_) => Ok(vec![Leftover { kind: "instance", what: id.to_owned() }]),
            Err(BackendError::NotFound) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// A Vultr plan as the grid sells it; a plan whose price is not a plain decimal is left out.
fn plan(p: wire::Plan) -> Option<BackendPlan> {
    let Some(monthly_micros) = micros_from_decimal(p.monthly_cost.get()) else {
        tracing::warn!(plan = %p.id, cost = p.monthly_cost.get(), "Vultr plan without a readable monthly_cost; left out");
        return None;
    };
    let gpu = p.gpu_type.map(|model| Gpu { model, count: 1, vram_gb: p.gpu_vram_gb.unwrap_or(0) });
    Some(BackendPlan {
        id: p.id,
        vcpus: p.vcpu_count,
        memory_mb: p.ram,
        disk_gb: p.disk,
        gpu,
        monthly_micros,
        regions: p.locations,
    })
}

/// Where an instance stands: running only once active, booted and addressed.
fn status(instance: &wire::Instance, ssh_port: u16) -> Status {
    if instance.power_status == "stopped" {
        return Status::Stopped;
    }
    let address = instance.main_ip.parse::<IpAddr>().ok().filter(|ip| !ip.is_unspecified());
    match address {
        Some(ip) if instance.status == "active" && instance.server_status == "ok" => {
            Status::Running { ssh: SocketAddr::new(ip, ssh_port) }
        }
        _ => Status::Provisioning,
    }
}

impl MachineBackend for VultrClient {
    fn name(&self) -> BackendName {
        BackendName::Vultr
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { password_login: true, downgrade: false, disk_growth_permanent: false }
    }

    fn plans(&self) -> BoxFuture<'_, Result<Vec<BackendPlan>, BackendError>> {
        Box::pin(self.list_plans())
    }

    fn regions(&self) -> BoxFuture<'_, Result<Vec<BackendRegion>, BackendError>> {
        Box::pin(self.list_regions())
    }

    fn create<'a>(&'a self, spec: &'a CreateSpec) -> BoxFuture<'a, Result<Created, BackendError>> {
        Box::pin(self.make(spec))
    }

    fn status<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<Status, BackendError>> {
        Box::pin(self.read_status(provider_id))
    }

    fn stop<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.power(provider_id, "halt"))
    }

    fn start<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.power(provider_id, "start"))
    }

    fn resize<'a>(&'a self, provider_id: &'a str, to: &'a ResizeSpec) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.change_plan(provider_id, to))
    }

    fn destroy<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.delete(provider_id))
    }

    fn leftovers<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<Vec<Leftover>, BackendError>> {
        Box::pin(self.left(provider_id))
    }
}
