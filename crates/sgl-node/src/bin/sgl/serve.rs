//! `sgl start`: load the registered node and the engine, then run the agent until stopped.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sgl_engine::Engine;
use sgl_node::agent::{Agent, AgentConfig};
use sgl_node::detect;
use sgl_node::node::LocalNode;
use sgl_node::start::{EngineKind, EngineOptions, Preset, load_in_process, watchdog_after};

/// The flags of `sgl start`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StartArgs {
    /// The GGUF model to serve. Without it the node heartbeats but serves nothing.
    #[arg(long, value_name = "FILE")]
    pub(crate) model_path: Option<PathBuf>,
    /// The name the model is advertised under [default: the file name without .gguf].
    #[arg(long)]
    pub(crate) model_name: Option<String>,
    /// The share of this machine the node may use: scales threads, GPU layers and job slots.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub(crate) resource_percent: u8,
    /// CPU threads [default: from --resource-percent].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) threads: Option<u32>,
    /// Layers offloaded to the GPU, 99 for all [default: from --resource-percent].
    #[arg(long)]
    pub(crate) gpu_layers: Option<u32>,
    /// Context per job slot, in tokens.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(512..=131_072))]
    pub(crate) context_size: u32,
    /// Jobs run in parallel (scaled by --resource-percent).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub(crate) max_jobs: u32,
    /// Prompt tokens decoded per batch.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(32..=8192))]
    pub(crate) batch_size: u32,
    /// The port for a llama-server engine (127.0.0.1 only; another is chosen if taken).
    #[arg(long, default_value_t = 8081)]
    pub(crate) inference_port: u16,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) heartbeat_interval: u64,
    /// The engine: inprocess (llama.cpp in this process), llama-server, or url.
    #[arg(long, env = "SGL_ENGINE", default_value = "inprocess")]
    pub(crate) engine: EngineKind,
    /// For --engine url: the OpenAI-compatible server's base URL.
    #[arg(long, env = "SGL_ENGINE_URL")]
    pub(crate) engine_url: Option<String>,
    /// Accepted for compatibility with the seed; streaming is always on.
    #[arg(long, hide = true)]
    pub(crate) enable_streaming: bool,
    /// Take jobs only from heartbeats (no WebSocket push).
    #[arg(long)]
    pub(crate) no_websocket: bool,
    /// Logs as JSON lines instead of text.
    #[arg(long)]
    pub(crate) log_json: bool,
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Prints load progress on one line, in 10 % steps.
fn progress_printer() -> impl FnMut(f32) + Send + 'static {
    let mut last = -1i32;
    move |p: f32| {
        let step = (p * 10.0).floor() as i32;
        if step > last {
            last = step;
            eprint!("\rloading model: {:>3}%", step * 10);
            if step >= 10 {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
}

async fn engine(args: &StartArgs, preset: Preset) -> anyhow::Result<Option<Arc<dyn Engine>>> {
    match args.engine {
        EngineKind::InProcess => {
            let Some(model_path) = &args.model_path else {
                tracing::warn!("no --model-path: the node heartbeats but serves no model");
                return Ok(None);
            };
            check_model(model_path)?;
            let options = EngineOptions {
                model_path: model_path.clone(),
                model_name: args.model_name.clone(),
                context_size: args.context_size,
                batch_size: args.batch_size,
                preset,
            };
            let engine = load_in_process(options, progress_printer())
                .await
                .with_context(|| format!("loading {}", model_path.display()))?;
            Ok(Some(engine))
        }
        EngineKind::LlamaServer | EngineKind::Url => {
            bail!("the {:?} engine is not available in this build yet; use --engine inprocess", args.engine)
        }
    }
}

fn check_model(path: &Path) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(path).with_context(|| format!("model file {}", path.display()))?;
    if !metadata.is_file() {
        bail!("{} is not a file", path.display());
    }
    Ok(())
}

/// Runs the node.
pub(crate) async fn start(config_dir: &Path, grid_url: Option<&str>, args: StartArgs) -> anyhow::Result<()> {
    init_logs(args.log_json);
    let node = LocalNode::load(config_dir, grid_url)?;
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get() as u32);
    let preset = Preset::compute(cpus, args.resource_percent, args.max_jobs, args.threads, args.gpu_layers);
    let engine = engine(&args, preset).await?;
    let model_bytes = args.model_path.as_deref().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len());
    let config = AgentConfig {
        config_dir: config_dir.to_owned(),
        heartbeat_interval: Duration::from_secs(args.heartbeat_interval),
        watchdog_after: watchdog_after(model_bytes),
        binary_hash: detect::binary_sha256().unwrap_or_default(),
        reserved_share: 1.0 - f64::from(args.resource_percent) / 100.0,
        websocket: !args.no_websocket,
    };
    let slots = if engine.is_some() { preset.slots } else { 1 };
    tracing::info!(
        node_id = %node.file.node_id,
        grid = node.client.base(),
        model = engine.as_ref().map(|e| e.model_name()),
        slots,
        threads = preset.threads,
        "node starting"
    );
    let agent = Agent::new(node.client, node.file, node.identity, engine, slots, config);
    agent.run(shutdown_signal()).await?;
    tracing::info!("node stopped");
    Ok(())
}
