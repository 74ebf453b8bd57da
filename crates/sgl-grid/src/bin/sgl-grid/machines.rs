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
use sgl_machines::kvm::Kvm;
use sgl_machines::local::{LocalBackend, LocalConfig};
use sgl_machines::qemu::{Accel, QemuBackend, QemuConfig, TcgPolicy};
use sgl_machines::secret::ProviderToken;
use sgl_machines::vultr::{VultrClient, VultrConfig};

/// Installs every configured backend that can run; one line on stderr for each.
pub(crate) async fn install(state: &AppState, data_dir: &Path, image: Option<PathBuf>) {
    let config = state.config();
    for name in config.machines.backends.clone() {
        let backend: anyhow::Result<Arc<dyn MachineBackend>> = match name {
            BackendName::Local => local(config, data_dir, image.clone()).await,
            BackendName::LocalVm => local_vm(config, data_dir),
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
    let adopted = backend.recover().await?;
    if !adopted.is_empty() {
        eprintln!("sgl-grid: {} local machine(s) still running, adopted", adopted.len());
    }
    Ok(Arc::new(backend))
}

/// The newest `<hash>/{rootfs,vm}` folder `.ci/install-machine-image` left in the cache.
fn newest_cached(inner: &str) -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    std::fs::read_dir(home.join(".cache/sgl-grid/machine-image"))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(inner))
        .filter(|path| path.is_dir())
        .max_by_key(|path| path.metadata().and_then(|m| m.modified()).ok())
}

/// QEMU machines: with real KVM, or under TCG where the operator allows it; otherwise off, with
/// the reason read from the host (`sgl_machines::kvm`).
fn local_vm(config: &Config, data_dir: &Path) -> anyhow::Result<Arc<dyn MachineBackend>> {
    let settings = &config.machines.local;
    let policy = if settings.vm_software_emulation { TcgPolicy::Allowed } else { TcgPolicy::Refused };
    let accel = Accel::choose(Kvm::detect(Path::new("/")), policy).map_err(|why| anyhow::anyhow!(why))?;
    let vm_dir = settings.vm_image.clone().or_else(|| newest_cached("vm")).context(
        "no QEMU machine image (build one with .ci/install-machine-image --with-vm-kernel, or set vm_image)",
    )?;
    let mut qemu = QemuConfig::new(vm_dir, data_dir.to_owned(), accel);
    qemu.max_machines = settings.max_machines;
    qemu.ssh_ports = settings.vm_ssh_ports.0..=settings.vm_ssh_ports.1;
    qemu.public_host = settings.public_host;
    let backend = QemuBackend::new(qemu);
    backend.probe()?;
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
