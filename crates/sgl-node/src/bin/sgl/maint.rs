//! Maintenance commands: `service install|status|uninstall` and `update`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;
use sgl_node::harden::current_uid;
use sgl_node::node::LocalNode;
use sgl_node::service::{
    self, Platform, ServicePaths, ServiceSpec, StartOptions, SystemCommands, default_log_file, persisted_environment,
};
use sgl_node::update::{UpdateOutcome, apply_update, download};

use crate::serve::StartArgs;

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from).context("HOME is not set")
}

fn platform() -> anyhow::Result<Platform> {
    Platform::current().context("services are supported on Linux (systemd --user) and macOS (launchd) only")
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// The flags of `sgl service install` beyond `start`'s.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct InstallArgs {
    /// Every flag of `sgl start`; `--resource-percent` defaults to 50 for a service.
    #[command(flatten)]
    pub(crate) start: StartArgs,
    /// Another environment variable for the service, NAME=VALUE (repeatable). SGL_ENGINE,
    /// SGL_ENGINE_URL, RUST_LOG, SGL_ORCHESTRATOR_URL and SGL_CONFIG_DIR are kept when set.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub(crate) env: Vec<String>,
    /// Another path the sandboxed service may read (repeatable), e.g. a multi-file model.
    #[arg(long = "read-only", value_name = "PATH")]
    pub(crate) read_only: Vec<PathBuf>,
    /// Print the service file and the commands, and change nothing.
    #[arg(long)]
    pub(crate) print: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

fn spec(config_dir: &Path, grid_url: Option<&str>, args: &InstallArgs) -> anyhow::Result<(ServiceSpec, ServicePaths)> {
    let platform = platform()?;
    let home = home()?;
    let start = &args.start;
    let config_dir = absolute(config_dir)?;
    let log_file = match &start.log_file {
        Some(path) => absolute(path)?,
        None => default_log_file(platform, &home),
    };
    let mut options = StartOptions::new(config_dir, log_file);
    options.model_path = start.model_path.as_deref().map(absolute).transpose()?;
    options.model_name.clone_from(&start.model_name);
    if let Some(percent) = start.resource_percent {
        options.resource_percent = percent;
    }
    options.threads = start.threads;
    options.gpu_layers = start.gpu_layers;
    options.context_size = Some(start.context_size);
    options.max_jobs = Some(start.max_jobs);
    options.batch_size = Some(start.batch_size);
    options.inference_port = Some(start.inference_port);
    options.heartbeat_interval = Some(start.heartbeat_interval);
    options.engine = Some(start.engine.as_str().to_owned());
    options.engine_url.clone_from(&start.engine_url);
    options.llama_server = start.llama_server.as_deref().map(absolute).transpose()?;
    options.chat_template.clone_from(&start.chat_template);
    options.orchestrator_url = grid_url.map(str::to_owned);
    options.no_websocket = start.no_websocket;
    options.cluster.clone_from(&start.cluster);
    if start.workloads != [crate::serve::Workload::Chat] {
        let names: Vec<&str> = start.workloads.iter().map(|w| w.as_str()).collect();
        options.workloads = Some(names.join(","));
        options.compute_slots = Some(start.compute_slots);
    }
    options.log_json = start.log_json;
    let mut environment = persisted_environment(|name| std::env::var(name).ok());
    for pair in &args.env {
        let (name, value) = pair.split_once('=').with_context(|| format!("--env {pair}: expected NAME=VALUE"))?;
        environment.retain(|(n, _)| n != name);
        environment.push((name.to_owned(), value.to_owned()));
    }
    let executable = std::env::current_exe().context("finding this executable")?;
    let mut spec = ServiceSpec::new(&executable, &options, environment, &home)?;
    for path in args.read_only.iter().chain(&options.llama_server) {
        spec = spec.with_read_only_path(absolute(path)?);
    }
    Ok((spec, ServicePaths::new(platform, &home, current_uid())))
}

/// `sgl service install`.
pub(crate) fn install(config_dir: &Path, grid_url: Option<&str>, args: &InstallArgs) -> anyhow::Result<()> {
    if !args.print && !config_dir.join(sgl_node::init::NODE_FILE).exists() {
        bail!("{} is not registered yet: run sgl init (or sgl login) first", config_dir.display());
    }
    let (spec, paths) = spec(config_dir, grid_url, args)?;
    if args.print {
        let plan = service::plan_install(&spec, &paths)?;
        if args.json {
            println!("{}", serde_json::to_string(&plan)?);
        } else {
            println!("# {}\n{}", plan.service_file.display(), plan.contents);
            for command in &plan.commands {
                println!("$ {}", command.argv.join(" "));
            }
        }
        return Ok(());
    }
    let installed = service::install(&spec, &paths, &SystemCommands)?;
    if args.json {
        println!("{}", serde_json::to_string(&installed)?);
    } else {
        println!("installed {} and started the node", installed.service_file.display());
        for hint in &installed.hints {
            println!("{hint}");
        }
    }
    Ok(())
}

/// `sgl service status`.
pub(crate) fn status(json: bool) -> anyhow::Result<()> {
    let paths = ServicePaths::new(platform()?, &home()?, current_uid());
    let status = service::status(&paths, &SystemCommands)?;
    if json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        println!("Service       {}", paths.service_file.display());
        println!("Installed     {}", if status.installed { "yes" } else { "no" });
        println!("State         {}{}", status.state, status.sub_state.map(|s| format!(" ({s})")).unwrap_or_default());
        if let Some(pid) = status.pid {
            println!("PID           {pid}");
        }
        if let Some(restarts) = status.restarts {
            println!("Restarts      {restarts}");
        }
        if let Some(code) = status.last_exit_code {
            println!("Last exit     {code}");
        }
    }
    Ok(())
}

/// `sgl service uninstall`.
pub(crate) fn uninstall(json: bool) -> anyhow::Result<()> {
    let paths = ServicePaths::new(platform()?, &home()?, current_uid());
    let removed = service::uninstall(&paths, &SystemCommands)?;
    if json {
        println!("{}", json!({"removed": removed, "service_file": paths.service_file}));
    } else if removed {
        println!("stopped the node and removed {}", paths.service_file.display());
    } else {
        println!("no service was installed at {}", paths.service_file.display());
    }
    Ok(())
}

/// `sgl update --binary FILE | --url URL`: fail closed on the grid's allowlist.
pub(crate) async fn update(
    config_dir: &Path,
    grid_url: Option<&str>,
    binary: Option<&Path>,
    url: Option<&str>,
    target: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let node = LocalNode::load(config_dir, grid_url)?;
    let allowed = node.client.allowed_binaries().await.context("reading the grid's allowlist")?.hashes;
    if allowed.is_empty() {
        bail!("the grid publishes no allowlist, so no update can be verified; nothing was changed");
    }
    let download_dir = tempfile_dir(config_dir)?;
    let candidate = match (binary, url) {
        (Some(path), None) => path.to_owned(),
        (None, Some(url)) => {
            let dest = download_dir.join("sgl.download");
            let bytes = download(url, &dest).await?;
            eprintln!("downloaded {bytes} bytes from {url}");
            dest
        }
        _ => bail!("give exactly one of --binary FILE or --url URL"),
    };
    let target = match target {
        Some(path) => path.to_owned(),
        None => std::env::current_exe().context("finding this executable")?,
    };
    let outcome = apply_update(&candidate, &target, &allowed);
    let _ = std::fs::remove_dir_all(&download_dir);
    match outcome? {
        UpdateOutcome::AlreadyUpToDate { hash } => {
            if json {
                println!("{}", json!({"updated": false, "sha256": hash}));
            } else {
                println!("already up to date ({hash})");
            }
        }
        UpdateOutcome::Replaced { path, previous_hash, new_hash } => {
            if json {
                println!(
                    "{}",
                    json!({"updated": true, "path": path, "previous_sha256": previous_hash, "sha256": new_hash})
                );
            } else {
                println!("updated {} to {new_hash} (allowlisted)", path.display());
                println!(
                    "restart the node (`systemctl --user restart cc.x402compute.sglnode.service` or `launchctl kickstart -k gui/$(id -u)/cc.x402compute.sglnode`), then run `sgl attest`"
                );
            }
        }
    }
    Ok(())
}

/// A private scratch directory for a download, inside the config directory.
fn tempfile_dir(config_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = config_dir.join(format!(".update-{}", std::process::id()));
    sgl_protocol::keyfile::create_private_dir(&dir)?;
    Ok(dir)
}
