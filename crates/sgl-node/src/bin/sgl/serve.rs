//! `sgl start`: load the registered node and the engine, then run the agent until stopped.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sgl_engine::Engine;
use sgl_engine::server::{LlamaServerEngine, LlamaServerOptions};
use sgl_engine::upstream::{UpstreamEngine, UpstreamOptions};
use sgl_node::agent::compute::engines::{self, EnginePaths};
use sgl_node::agent::compute::{ComputeConfig, TestFault};
use sgl_node::agent::{Agent, AgentConfig, Models};
use sgl_node::detect;
use sgl_node::harden::HardeningReport;
use sgl_node::instance_lock::InstanceLock;
use sgl_node::logfile::{RotatingLog, Rotation};
use sgl_node::node::LocalNode;
use sgl_node::start::{EngineKind, EngineOptions, Preset, load_embedder, load_in_process, watchdog_after};
use sgl_protocol::compute::JobClass;

/// The flags of `sgl start`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StartArgs {
    /// The GGUF model to serve. Without it the node heartbeats but serves nothing.
    #[arg(long, value_name = "FILE")]
    pub(crate) model_path: Option<PathBuf>,
    /// The name the model is advertised under [default: the file name without .gguf].
    #[arg(long)]
    pub(crate) model_name: Option<String>,
    /// The share of this machine the node may use: scales threads, GPU layers and job slots
    /// [default: 100 for `start`, 50 for `service install`].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub(crate) resource_percent: Option<u8>,
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
    /// For --engine url: the OpenAI-compatible server's base URL (vLLM, Ollama, a remote
    /// llama-server); its API key, if any, comes from SGL_ENGINE_API_KEY.
    #[arg(long, env = "SGL_ENGINE_URL")]
    pub(crate) engine_url: Option<String>,
    /// For --engine llama-server: the binary [default: llama-server on PATH, then
    /// /usr/local/bin and /opt/sgl/bin].
    #[arg(long, env = "SGL_LLAMA_SERVER", value_name = "FILE")]
    pub(crate) llama_server: Option<PathBuf>,
    /// For --engine llama-server: one of llama.cpp's built-in chat templates (gemma, chatml,
    /// llama3, ...) for a GGUF without its own [default: the GGUF's template].
    #[arg(long)]
    pub(crate) chat_template: Option<String>,
    /// Also write logs to this file, rotated at 10 MiB, five kept, mode 0600.
    #[arg(long, env = "SGL_LOG_FILE", value_name = "FILE")]
    pub(crate) log_file: Option<PathBuf>,
    /// Accepted for compatibility with the seed; streaming is always on.
    #[arg(long, hide = true)]
    pub(crate) enable_streaming: bool,
    /// Take jobs only from heartbeats (no WebSocket push).
    #[arg(long)]
    pub(crate) no_websocket: bool,
    /// Serve in this cluster (a compute market, e.g. gpu-eu): callers who name it are served
    /// only by its nodes; callers who name none by any node.
    #[arg(long, env = "SGL_CLUSTER", value_name = "SLUG", value_parser = cluster_slug)]
    pub(crate) cluster: Option<String>,
    /// What the node runs, comma-separated: `chat` (the model of --model-path) and general
    /// compute classes (`wasm`, `train`, `llm`, `image`, `render`; `sgl detect` shows which this
    /// machine can serve). A class whose engine is missing is not offered. Example:
    /// `--workloads chat,wasm,train`.
    #[arg(long, env = "SGL_WORKLOADS", value_delimiter = ',', default_value = "chat")]
    pub(crate) workloads: Vec<Workload>,
    /// An embedding model (a GGUF such as all-MiniLM-L6-v2) to serve for `/v1/embeddings`, beside
    /// the chat model or alone.
    #[arg(long, env = "SGL_EMBEDDING_MODEL", value_name = "FILE")]
    pub(crate) embedding_model: Option<PathBuf>,
    /// The name the embedding model is advertised under [default: the file name without .gguf].
    #[arg(long, requires = "embedding_model")]
    pub(crate) embedding_model_name: Option<String>,
    /// General-compute slices run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub(crate) compute_slots: u32,
    /// Where the native classes' engines are.
    #[command(flatten)]
    pub(crate) engines: EngineArgs,
    /// Logs as JSON lines instead of text.
    #[arg(long)]
    pub(crate) log_json: bool,
}

/// `--cluster` is not a slug.
#[derive(Debug, thiserror::Error)]
#[error("expected 1 to 64 lowercase letters, digits and inner dashes, such as gpu-eu")]
struct NotASlug;

/// One kind of work `--workloads` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Workload {
    /// Chat inference with the model of --model-path.
    Chat,
    /// WebAssembly jobs (general compute) in the sandbox.
    Wasm,
    /// Chat prompts as compute jobs in deterministic mode (greedy, the model of --model-path),
    /// checked by redundancy like any job.
    Llm,
    /// Small training runs in the Wasm sandbox, one epoch per slice, resumed from checkpoints.
    Train,
    /// Image generation with the sgl-image worker (ONNX Runtime) in the native sandbox.
    Image,
    /// Rendering with Blender (Cycles on CPU) in the native sandbox.
    Render,
}

/// Where the native classes' engines are, when not in their default places.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct EngineArgs {
    /// The image worker [default: sgl-image beside sgl, then on PATH].
    #[arg(long, value_name = "FILE")]
    pub(crate) image_worker: Option<PathBuf>,
    /// ONNX Runtime's shared library, which the image worker opens.
    #[arg(long, env = "ORT_DYLIB_PATH", value_name = "FILE")]
    pub(crate) ort_library: Option<PathBuf>,
    /// Blender [default: blender on PATH].
    #[arg(long, value_name = "FILE")]
    pub(crate) blender: Option<PathBuf>,
}

impl EngineArgs {
    /// The paths for [`engines::detect`].
    pub(crate) fn paths(&self, has_model: bool) -> EnginePaths {
        EnginePaths {
            image_worker: self.image_worker.clone(),
            ort_library: self.ort_library.clone(),
            blender: self.blender.clone(),
            has_model,
        }
    }
}

impl Workload {
    /// The name `--workloads` takes.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Wasm => "wasm",
            Self::Llm => "llm",
            Self::Train => "train",
            Self::Image => "image",
            Self::Render => "render",
        }
    }
}

/// The general-compute settings `args` ask for, if any: the classes asked for whose engines
/// were found (the others are named in a warning and not offered).
fn compute_config(args: &StartArgs, config_dir: &Path) -> Option<ComputeConfig> {
    let asked: Vec<JobClass> = args
        .workloads
        .iter()
        .filter_map(|w| match w {
            Workload::Chat => None,
            Workload::Wasm => Some(JobClass::Wasm),
            Workload::Llm => Some(JobClass::Llm),
            Workload::Train => Some(JobClass::Train),
            Workload::Image => Some(JobClass::Image),
            Workload::Render => Some(JobClass::Render),
        })
        .collect();
    if asked.is_empty() {
        return None;
    }
    let (engines, reports) = engines::detect(&args.engines.paths(args.model_path.is_some()));
    let mut classes = Vec::new();
    for report in reports.into_iter().filter(|r| asked.contains(&r.class)) {
        match report.unavailable {
            None => classes.push(report.class),
            Some(why) => tracing::warn!(class = %report.class, why, "not offering a class whose engine is missing"),
        }
    }
    (!classes.is_empty()).then(|| ComputeConfig {
        classes,
        slots: args.compute_slots,
        work_dir: config_dir.join("work"),
        test_fault: TestFault::from_env(),
        engines,
    })
}

fn cluster_slug(text: &str) -> Result<String, NotASlug> {
    sgl_protocol::api::node::is_cluster_slug(text).then(|| text.to_owned()).ok_or(NotASlug)
}

fn init_logs(json: bool, log_file: Option<&Path>) -> anyhow::Result<()> {
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let file = match log_file {
        Some(path) => Some(
            RotatingLog::open(path, Rotation::DEFAULT)
                .with_context(|| format!("opening the log file {}", path.display()))?,
        ),
        None => None,
    };
    let ansi = file.is_none() && std::io::stderr().is_terminal();
    let writer = match file {
        Some(log) => BoxMakeWriter::new(std::io::stderr.and(log)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
    Ok(())
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

async fn engine(args: &StartArgs, preset: Preset, config_dir: &Path) -> anyhow::Result<Option<Arc<dyn Engine>>> {
    let model_name = |path: &Path| {
        args.model_name
            .clone()
            .unwrap_or_else(|| path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned()))
    };
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
        EngineKind::LlamaServer => {
            let model_path = args.model_path.as_ref().context("--engine llama-server needs --model-path")?;
            check_model(model_path)?;
            let log_path = config_dir.join("llama-server.log");
            let options = LlamaServerOptions {
                binary: args.llama_server.clone(),
                model_path: model_path.clone(),
                model_name: Some(model_name(model_path)),
                context_size: args.context_size,
                slots: preset.slots,
                threads: preset.threads,
                gpu_layers: preset.gpu_layers,
                batch_size: args.batch_size,
                inference_port: args.inference_port,
                log_path: log_path.clone(),
                chat_template: args.chat_template.clone(),
            };
            eprintln!("starting llama-server (log: {})", log_path.display());
            let engine = LlamaServerEngine::start(options).await?;
            Ok(Some(Arc::new(engine)))
        }
        EngineKind::Url => {
            let base_url = args.engine_url.clone().context("--engine url needs --engine-url (or SGL_ENGINE_URL)")?;
            let model = args.model_name.clone().context("--engine url needs --model-name: the upstream's model")?;
            let options = UpstreamOptions {
                base_url,
                api_key: std::env::var("SGL_ENGINE_API_KEY").ok().filter(|k| !k.is_empty()),
                model_name: model,
                slots: preset.slots,
                context_size: args.context_size,
                model_sha256: None,
            };
            Ok(Some(Arc::new(UpstreamEngine::new(&options)?)))
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

/// Bidding on the order book: the policy in the config directory, and what this machine has
/// for a policy without `[resources]`.
fn market_config(config_dir: &Path) -> sgl_node::agent::market::MarketConfig {
    let hardware = detect::detect();
    let offered = sgl_protocol::api::market::Resources {
        cpu_cores: hardware.cpu_cores,
        memory_mb: (hardware.memory_gb * 1024.0).floor() as u32,
        gpus: u32::try_from(hardware.gpus.len()).unwrap_or(u32::MAX),
    };
    sgl_node::agent::market::MarketConfig { config_dir: config_dir.to_owned(), offered }
}

/// Runs the node; `hardening` is what `main` applied to this process before anything else.
pub(crate) async fn start(
    config_dir: &Path,
    grid_url: Option<&str>,
    args: StartArgs,
    hardening: &HardeningReport,
) -> anyhow::Result<()> {
    let node = LocalNode::load(config_dir, grid_url)?;
    // Before the log file is opened (and perhaps rotated) or the engine loaded: a second start
    // of this node stops here. Held until this function returns.
    let _instance = InstanceLock::acquire(config_dir)?;
    init_logs(args.log_json, args.log_file.as_deref())?;
    tracing::info!(applied = hardening.fully_applied(), report = ?hardening, "process hardening");
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get() as u32);
    let resource_percent = args.resource_percent.unwrap_or(100);
    let preset = Preset::compute(cpus, resource_percent, args.max_jobs, args.threads, args.gpu_layers);
    let uses_model = args.workloads.iter().any(|w| matches!(w, Workload::Chat | Workload::Llm));
    if !uses_model && args.model_path.is_some() {
        tracing::warn!("--model-path is ignored: --workloads includes neither chat nor llm");
    }
    let engine = if uses_model { engine(&args, preset, config_dir).await? } else { None };
    let embedder = match &args.embedding_model {
        Some(path) => {
            check_model(path)?;
            let name = args.embedding_model_name.clone();
            Some(load_embedder(path.clone(), name, preset).await.context("loading the embedding model")?)
        }
        None => None,
    };
    let model_bytes = args.model_path.as_deref().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len());
    let compute = compute_config(&args, config_dir);
    let market = compute.as_ref().map(|_| market_config(config_dir));
    let config = AgentConfig {
        config_dir: config_dir.to_owned(),
        heartbeat_interval: Duration::from_secs(args.heartbeat_interval),
        watchdog_after: watchdog_after(model_bytes),
        binary_hash: detect::binary_sha256().unwrap_or_default(),
        reserved_share: 1.0 - f64::from(resource_percent) / 100.0,
        websocket: !args.no_websocket,
        cluster: args.cluster.clone(),
        compute,
        market,
    };
    let slots = if engine.is_some() { preset.slots } else { 1 };
    tracing::info!(
        node_id = %node.file.node_id,
        grid = node.client.base(),
        model = engine.as_ref().map(|e| e.model_name()),
        embedding_model = embedder.as_ref().map(|e| e.model_name()),
        slots,
        workloads = ?args.workloads,
        threads = preset.threads,
        "node starting"
    );
    let agent = Agent::new(node.client, node.file, node.identity, Models { engine, embedder }, slots, config)?;
    agent.run(shutdown_signal()).await?;
    tracing::info!("node stopped");
    Ok(())
}
