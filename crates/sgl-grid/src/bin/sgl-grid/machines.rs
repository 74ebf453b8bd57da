//! Setting up the machine backends the configuration names (`[machines] backends`), for `serve`
//! and `up`. A backend that cannot run here (the local one without root or an image, a cloud one
//! without its token) is left out with one line saying why; the grid serves everything else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use sgl_grid::config::{CloudMachines, Config};
use sgl_grid::state::{AppState, Clock, SharedClock, SystemClock};
use sgl_machines::backend::{BackendName, MachineBackend};
use sgl_machines::digitalocean::{DigitalOceanClient, DigitalOceanConfig};
use sgl_machines::local::{LocalBackend, LocalConfig};
use sgl_machines::secret::ProviderToken;
use sgl_machines::vultr::{VultrClient, VultrConfig};

/// Installs every configured backend that can run; one line on stderr for each.
pub(crate) async fn install(state: &AppState, data_dir: &Path, image: Option<PathBuf>) {
    let config = state.config();
    for name in config.machines.backends.clone() {
        let backend: anyhow::Result<Arc<dyn MachineBackend>> = match name {
            BackendName::Local => local(config, data_dir, image.clone()).await,
            BackendName::LocalVm => Err(anyhow::anyhow!("QEMU machines (local-vm) are not offered by sgl-grid yet")),
            BackendName::Vultr => vultr(&config.machines.vultr),
            BackendName::DigitalOcean => digitalocean(&config.machines.digitalocean),
        };
        match backend {
            Ok(backend) => {
                state.machines().install(backend);
                eprintln!("sgl-grid: machines on the {} backend are on sale", name.as_str());
            }
            Err(error) => eprintln!("sgl-grid: machines on the {} backend are off: {error:#}", name.as_str()),
        }
    }
}

/// The local image: `--machines-image`, `[machines.local] image`, or the newest one
/// `.ci/install-machine-image` left under `~/.cache/sgl-grid/machine-image`.
fn image_path(config: &Config, explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(image) = explicit.or_else(|| config.machines.local.image.clone()) {
        return Ok(image);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).context("no image configured and no HOME to look in")?;
    let cache = home.join(".cache/sgl-grid/machine-image");
    let newest = std::fs::read_dir(&cache)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("rootfs"))
        .filter(|rootfs| rootfs.is_dir())
        .max_by_key(|rootfs| rootfs.metadata().and_then(|m| m.modified()).ok());
    newest.with_context(|| {
        format!(
            "no machine image in {} (build one with .ci/install-machine-image, or pass --machines-image)",
            cache.display()
        )
    })
}

async fn local(config: &Config, data_dir: &Path, image: Option<PathBuf>) -> anyhow::Result<Arc<dyn MachineBackend>> {
    let settings = &config.machines.local;
    let mut local = LocalConfig::new(image_path(config, image)?, data_dir.to_owned());
    local.max_machines = settings.max_machines;
    local.ssh_ports = settings.ssh_ports.0..=settings.ssh_ports.1;
    local.public_host = settings.public_host;
    let backend = LocalBackend::new(local);
    backend.probe()?;
    if let Some(why) = sgl_machines::kvm::Kvm::detect(Path::new("/")).why_not() {
        eprintln!("sgl-grid: {why}");
    }
    let adopted = backend.recover().await?;
    if !adopted.is_empty() {
        eprintln!("sgl-grid: {} local machine(s) still running, adopted", adopted.len());
    }
    Ok(Arc::new(backend))
}

/// The token from `SGL_MACHINES_{NAME}_API_KEY`, else the configured file.
fn token(name: &str, cloud: &CloudMachines) -> anyhow::Result<ProviderToken> {
    let variable = format!("SGL_MACHINES_{name}_API_KEY");
    let text = match std::env::var(&variable).ok().filter(|t| !t.trim().is_empty()) {
        Some(text) => text,
        None => match &cloud.api_key_file {
            Some(file) => std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
            None => bail!("no API token: set {variable} or api_key_file"),
        },
    };
    ProviderToken::new(text.trim().to_owned()).map_err(|error| anyhow::anyhow!("the API token: {error}"))
}

/// The API's URL: `SGL_MACHINES_{NAME}_API_URL`, else the configured one.
fn api_url(name: &str, cloud: &CloudMachines) -> Option<String> {
    std::env::var(format!("SGL_MACHINES_{name}_API_URL")).ok().or_else(|| cloud.api_url.clone())
}

fn vultr(cloud: &CloudMachines) -> anyhow::Result<Arc<dyn MachineBackend>> {
    let mut config = VultrConfig::new(token("VULTR", cloud)?);
    if let Some(url) = api_url("VULTR", cloud) {
        config.api_url = url;
    }
    config.markup_bps = cloud.markup_bps;
    Ok(Arc::new(VultrClient::new(config)?))
}

fn digitalocean(cloud: &CloudMachines) -> anyhow::Result<Arc<dyn MachineBackend>> {
    let mut config = DigitalOceanConfig::new(token("DIGITALOCEAN", cloud)?);
    if let Some(url) = api_url("DIGITALOCEAN", cloud) {
        config.api_url = url;
    }
    config.markup_bps = cloud.markup_bps;
    Ok(Arc::new(DigitalOceanClient::new(config)?))
}

/// Test-only: the system clock plus an offset in milliseconds read from a file (written by an
/// end-to-end test to move a running grid through a machine's expiry); a missing or unreadable
/// file is no offset.
#[derive(Debug)]
pub(crate) struct OffsetClock {
    file: PathBuf,
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.file).ok().and_then(|text| text.trim().parse::<i64>().ok());
        SystemClock.now_ms().saturating_add(offset.unwrap_or(0))
    }
}

/// The clock `up` runs on: the system's, or with `--test-clock-file` an [`OffsetClock`].
pub(crate) fn clock(test_clock_file: Option<PathBuf>) -> SharedClock {
    match test_clock_file {
        Some(file) => Arc::new(OffsetClock { file }),
        None => Arc::new(SystemClock),
    }
}
