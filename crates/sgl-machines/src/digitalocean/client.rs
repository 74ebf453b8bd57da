//! The DigitalOcean client: configuration, the calls, action polling, and [`MachineBackend`]
//! over them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::wire;
use crate::backend::{
    BackendError, BackendName, BackendPlan, BackendRegion, Capabilities, CreateSpec, Created, Gpu, Leftover,
    MachineBackend, ResizeSpec, Status,
};
use crate::cloud::{hostname, key_name, segment, tag};
use crate::price::micros_from_decimal;
use crate::retry::{Answer, Api, Request, RetryPolicy, success};
use crate::secret::ProviderToken;

/// Where DigitalOcean's API is (paths start with `/v2`).
pub const DEFAULT_API_URL: &str = "https://api.digitalocean.com";
/// Debian 12 x64, the image a droplet gets when the renter names none.
pub const DEFAULT_IMAGE: &str = "debian-12-x64";
/// The prefix of DigitalOcean's plan and region ids at the grid.
const PREFIX: &str = "do:";
/// Pages of a list followed at most, against a provider that never says "last page".
const MAX_PAGES: usize = 100;

/// How the grid reaches DigitalOcean.
#[derive(Debug, Clone)]
pub struct DigitalOceanConfig {
    /// The API base (default [`DEFAULT_API_URL`]; a test double's URL in tests).
    pub api_url: String,
    /// The operator's personal access token.
    pub token: ProviderToken,
    /// The grid's markup on DigitalOcean's prices, in basis points (the grid applies it).
    pub markup_bps: u32,
    /// The image when the renter names none (default [`DEFAULT_IMAGE`]).
    pub default_image: String,
    /// The port droplets answer SSH on (22).
    pub ssh_port: u16,
    /// Timeouts and retries of each call.
    pub retry: RetryPolicy,
    /// How often a running action is read again (5 s).
    pub action_poll: Duration,
    /// How long an action may run before the client gives up on it (10 minutes).
    pub action_deadline: Duration,
}

impl DigitalOceanConfig {
    /// DigitalOcean's own API with `token`, no markup, and the defaults above.
    pub fn new(token: ProviderToken) -> Self {
        Self {
            api_url: DEFAULT_API_URL.to_owned(),
            token,
            markup_bps: 0,
            default_image: DEFAULT_IMAGE.to_owned(),
            ssh_port: 22,
            retry: RetryPolicy::default(),
            action_poll: Duration::from_secs(5),
            action_deadline: Duration::from_secs(600),
        }
    }
}

/// DigitalOcean as a [`MachineBackend`].
#[derive(Debug)]
pub struct DigitalOceanClient {
    api: Api,
    markup_bps: u32,
    default_image: String,
    ssh_port: u16,
    action_poll: Duration,
    action_deadline: Duration,
}

impl DigitalOceanClient {
    /// A client for `config`.
    pub fn new(config: DigitalOceanConfig) -> Result<Self, BackendError> {
        Ok(Self {
            api: Api::new(&config.api_url, config.token, config.retry)?,
            markup_bps: config.markup_bps,
            default_image: config.default_image,
            ssh_port: config.ssh_port,
            action_poll: config.action_poll,
            action_deadline: config.action_deadline,
        })
    }

    /// The grid's markup on this provider, in basis points.
    pub fn markup_bps(&self) -> u32 {
        self.markup_bps
    }

    async fn send(&self, request: Request) -> Result<Answer, BackendError> {
        success(self.api.call(&request).await?, wire::error_message)
    }

    async fn list_sizes(&self) -> Result<Vec<BackendPlan>, BackendError> {
        let mut plans = Vec::new();
        for page in 1..=MAX_PAGES {
            let request = Request::get("/v2/sizes").query("per_page", "200").query("page", page.to_string());
            let list: wire::SizeList = self.send(request).await?.decode("GET /v2/sizes")?;
            plans.extend(list.sizes.into_iter().filter(|s| s.available).filter_map(size));
            if list.links.pages.next.is_none() {
                return Ok(plans);
            }
        }
        Err(BackendError::Unavailable(format!("DigitalOcean listed more than {MAX_PAGES} pages of sizes")))
    }

    async fn list_regions(&self) -> Result<Vec<BackendRegion>, BackendError> {
        let mut regions = Vec::new();
        for page in 1..=MAX_PAGES {
            let request = Request::get("/v2/regions").query("per_page", "200").query("page", page.to_string());
            let list: wire::RegionList = self.send(request).await?.decode("GET /v2/regions")?;
            regions.extend(list.regions.into_iter().filter(|r| r.available).map(|r| BackendRegion {
                country: country(&r.slug).to_owned(),
                id: format!("{PREFIX}{}", r.slug),
                city: r.name,
            }));
            if list.links.pages.next.is_none() {
                return Ok(regions);
            }
        }
        Err(BackendError::Unavailable(format!("DigitalOcean listed more than {MAX_PAGES} pages of regions")))
    }

    async fn make(&self, spec: &CreateSpec) -> Result<Created, BackendError> {
        // Without a key DigitalOcean e-mails the root password to the operator: refuse first.
        let Some(public_key) = spec.ssh_public_key.as_deref() else {
            return Err(BackendError::Unsupported("password"));
        };
        let (size, region) = (unprefixed(&spec.plan.id)?, unprefixed(&spec.region)?);
        let key = self.register_key(&spec.machine_id, public_key).await?;
        let made = self.create_droplet(spec, size, region, key).await;
        self.forget_key(key).await;
        Ok(Created { provider_id: made?.id.to_string(), password: None })
    }

    async fn register_key(&self, machine_id: &str, public_key: &str) -> Result<u64, BackendError> {
        let name = key_name(machine_id);
        let body = wire::NewKey { name: &name, public_key };
        let reply: wire::KeyReply =
            self.send(Request::post("/v2/account/keys", Some(&body))?).await?.decode("POST /v2/account/keys")?;
        Ok(reply.ssh_key.id)
    }

    /// Deletes a key registered for one create; a failure is logged, never the create's.
    async fn forget_key(&self, key: u64) {
        if let Err(error) = self.send(Request::delete(format!("/v2/account/keys/{key}"))).await {
            tracing::warn!(key, %error, "could not delete the renter's SSH key from the DigitalOcean account");
        }
    }

    async fn create_droplet(
        &self,
        spec: &CreateSpec,
        size: &str,
        region: &str,
        key: u64,
    ) -> Result<wire::Droplet, BackendError> {
        let name = hostname(&spec.machine_id);
        let image = spec.os_id.map_or(wire::Image::Slug(&self.default_image), wire::Image::Id);
        let body = wire::NewDroplet {
            name: &name,
            region,
            size,
            image,
            ssh_keys: vec![key],
            tags: vec![tag(&spec.machine_id)],
        };
        let reply: wire::DropletReply =
            self.send(Request::post("/v2/droplets", Some(&body))?).await?.decode("POST /v2/droplets")?;
        Ok(reply.droplet)
    }

    async fn droplet(&self, id: &str) -> Result<wire::Droplet, BackendError> {
        let id = segment(id)?;
        let reply: wire::DropletReply =
            self.send(Request::get(format!("/v2/droplets/{id}"))).await?.decode("GET /v2/droplets/{id}")?;
        Ok(reply.droplet)
    }

    async fn read_status(&self, id: &str) -> Result<Status, BackendError> {
        match self.droplet(id).await {
            Ok(droplet) => Ok(status(&droplet, self.ssh_port)),
            Err(BackendError::NotFound) => Ok(Status::Gone),
            Err(e) => Err(e),
        }
    }

    /// Starts an action on droplet `id` and waits until it has completed.
    async fn act(&self, id: &str, action: wire::ActionRequest<'_>) -> Result<(), BackendError> {
        let id = segment(id)?;
        let request = Request::post(format!("/v2/droplets/{id}/actions"), Some(&action))?;
        let started: wire::ActionReply = self.send(request).await?.decode("POST /v2/droplets/{id}/actions")?;
        self.wait(started.action).await
    }

    /// Reads `action` again every `action_poll` until it completed, errored or ran too long.
    async fn wait(&self, mut action: wire::Action) -> Result<(), BackendError> {
        let deadline = Instant::now() + self.action_deadline;
        loop {
            match action.status.as_str() {
                "completed" => return Ok(()),
                "errored" => {
                    return Err(BackendError::Unavailable(format!(
                        "DigitalOcean's {} action {} errored",
                        action.kind, action.id
                    )));
                }
                _ if Instant::now() >= deadline => {
                    return Err(BackendError::Unavailable(format!(
                        "DigitalOcean's {} action {} was still {} after {:?}",
                        action.kind, action.id, action.status, self.action_deadline
                    )));
                }
                _ => tokio::time::sleep(self.action_poll).await,
            }
            let reply: wire::ActionReply =
                self.send(Request::get(format!("/v2/actions/{}", action.id))).await?.decode("GET /v2/actions/{id}")?;
            action = reply.action;
        }
    }

    /// Power off (unless off already), resize, power on. The droplet is powered on again even
    /// when the resize failed, and the resize's error is the one returned.
    async fn change_size(&self, id: &str, to: &ResizeSpec) -> Result<(), BackendError> {
        let size = unprefixed(&to.plan.id)?;
        if self.droplet(id).await?.status != "off" {
            self.act(id, wire::ActionRequest::PowerOff).await?;
        }
        let resized = self.act(id, wire::ActionRequest::Resize { size, disk: to.grow_disk }).await;
        let powered_on = self.act(id, wire::ActionRequest::PowerOn).await;
        resized.and(powered_on)
    }

    async fn delete(&self, id: &str) -> Result<(), BackendError> {
        let Ok(id) = segment(id) else { return Ok(()) };
        match self.send(Request::delete(format!("/v2/droplets/{id}"))).await {
            Ok(_) | Err(BackendError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn left(&self, id: &str) -> Result<Vec<Leftover>, BackendError> {
        match self.droplet(id).await {
            Ok(droplet) if droplet.status != "archive" => Ok(vec![Leftover { kind: "instance", what: id.to_owned() }]),
            Ok(_) | Err(BackendError::NotFound) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// A DigitalOcean id at the grid (`do:nyc3`) without its prefix; an id of another backend is
/// not DigitalOcean's to make.
fn unprefixed(id: &str) -> Result<&str, BackendError> {
    id.strip_prefix(PREFIX)
        .filter(|s| !s.is_empty())
        .ok_or(BackendError::Unsupported("a plan or region of another backend"))
}

/// A size as the grid sells it; one whose price is not a plain decimal is left out.
fn size(s: wire::Size) -> Option<BackendPlan> {
    let Some(monthly_micros) = micros_from_decimal(s.price_monthly.get()) else {
        tracing::warn!(size = %s.slug, price = s.price_monthly.get(), "DigitalOcean size without a readable price_monthly; left out");
        return None;
    };
    let gpu = s.gpu_info.filter(|g| g.count > 0).map(|g| Gpu {
        model: g.model,
        count: g.count,
        vram_gb: g.vram.map_or(0, |v| v.amount),
    });
    Some(BackendPlan {
        id: format!("{PREFIX}{}", s.slug),
        vcpus: s.vcpus,
        memory_mb: s.memory,
        disk_gb: s.disk,
        gpu,
        monthly_micros,
        regions: s.regions.iter().map(|r| format!("{PREFIX}{r}")).collect(),
    })
}

/// Where a droplet stands: running once active with a public IPv4 address.
fn status(droplet: &wire::Droplet, ssh_port: u16) -> Status {
    let public = droplet
        .networks
        .v4
        .iter()
        .filter(|a| a.kind == "public")
        .find_map(|a| a.ip_address.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified());
    match (droplet.status.as_str(), public) {
        ("active", Some(ip)) => Status::Running { ssh: SocketAddr::new(ip, ssh_port) },
        ("off", _) => Status::Stopped,
        ("archive", _) => Status::Gone,
        _ => Status::Provisioning,
    }
}

/// The country of a DigitalOcean region, from its slug's city code (DigitalOcean lists none).
fn country(slug: &str) -> &'static str {
    match slug.get(..3).unwrap_or("") {
        "nyc" | "sfo" | "atl" => "US",
        "ams" => "NL",
        "sgp" => "SG",
        "lon" => "GB",
        "fra" => "DE",
        "tor" => "CA",
        "blr" => "IN",
        "syd" => "AU",
        _ => "",
    }
}

impl MachineBackend for DigitalOceanClient {
    fn name(&self) -> BackendName {
        BackendName::DigitalOcean
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { password_login: false, downgrade: true, disk_growth_permanent: true }
    }

    fn plans(&self) -> BoxFuture<'_, Result<Vec<BackendPlan>, BackendError>> {
        Box::pin(self.list_sizes())
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
        Box::pin(self.act(provider_id, wire::ActionRequest::PowerOff))
    }

    fn start<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.act(provider_id, wire::ActionRequest::PowerOn))
    }

    fn resize<'a>(&'a self, provider_id: &'a str, to: &'a ResizeSpec) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.change_size(provider_id, to))
    }

    fn destroy<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.delete(provider_id))
    }

    fn leftovers<'a>(&'a self, provider_id: &'a str) -> BoxFuture<'a, Result<Vec<Leftover>, BackendError>> {
        Box::pin(self.left(provider_id))
    }
}
