//! Running one attempt's work, by class: a Wasm module in the sandbox (`wasm`, and `train`,
//! whose guest finds the previous epoch's checkpoint under `/in/prev/`), an `llm` prompt
//! answered greedily by the node's engine (the deterministic chat mode), or a native engine
//! in the native sandbox (`image`, `render`: [`super::native`]). Either way the result is the
//! files left in the output directory and a [`Ran`] for the receipt.

use std::path::Path;
use std::time::{Duration, Instant};

use sgl_engine::{EngineEvent, GenerateRequest, Sampling};
use sgl_protocol::compute::JobClass;
use sgl_protocol::compute::bundle::{BundleManifest, WORK_PER_TOKEN};
use sgl_sandbox::{WasmLimits, WasmRun};

use super::Worker;
use crate::agent::Shared;

/// The most of each log stream kept and sent.
pub(super) const LOG_BYTES: usize = 64 << 10;

/// What a run reports for its receipt.
#[derive(Debug, Clone)]
pub(super) struct Ran {
    pub(super) exit_code: i32,
    /// Metered work: Wasm fuel, or for `llm` the tokens times [`WORK_PER_TOKEN`].
    pub(super) work: u64,
    pub(super) peak_memory_bytes: u64,
    pub(super) wall: Duration,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) runtime: String,
}

/// The work could not run to an end.
#[derive(Debug, thiserror::Error)]
pub(super) enum RunError {
    /// The sandbox stopped the guest (a limit) or could not start it.
    #[error("the sandbox stopped the guest: {0}")]
    Sandbox(#[from] sgl_sandbox::SandboxError),
    /// The engine is missing, serves another model, or failed.
    #[error("{0}")]
    Engine(String),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
}

/// Where a run reads and writes.
pub(super) struct Dirs<'a> {
    pub(super) input: &'a Path,
    pub(super) output: &'a Path,
    pub(super) secrets: Option<&'a Path>,
}

/// Runs slice `slice` of `manifest`; `entry` is the entry file's bytes.
pub(super) async fn run(
    shared: &Shared,
    worker: &Worker,
    manifest: &BundleManifest,
    slice: u32,
    start_unix: u64,
    entry: Vec<u8>,
    dirs: &Dirs<'_>,
) -> Result<Ran, RunError> {
    match manifest.class {
        JobClass::Wasm | JobClass::Train => wasm(worker, manifest, slice, start_unix, entry, dirs).await,
        JobClass::Llm => llm(shared, manifest, slice, &entry, dirs.output).await,
        JobClass::Image => super::native::image(worker, manifest, slice, dirs).await,
        JobClass::Render => super::native::render(worker, manifest, slice, dirs).await,
    }
}

async fn wasm(
    worker: &Worker,
    manifest: &BundleManifest,
    slice: u32,
    start_unix: u64,
    module: Vec<u8>,
    dirs: &Dirs<'_>,
) -> Result<Ran, RunError> {
    let limits = WasmLimits {
        fuel: manifest.limits.fuel,
        memory_bytes: usize::try_from(manifest.limits.memory_mb).unwrap_or(usize::MAX).saturating_mul(1 << 20),
        wall_clock: Duration::from_secs(manifest.limits.wall_secs.into()),
        log_bytes: LOG_BYTES,
        output_bytes: u64::from(manifest.limits.output_mb) << 20,
        output_files: manifest.limits.output_files.into(),
    };
    let (sandbox, args, seed) = (worker.sandbox.clone(), manifest.argv(slice as usize), manifest.seed);
    let (input, output) = (dirs.input.to_owned(), dirs.output.to_owned());
    let secrets = dirs.secrets.map(Path::to_owned);
    let report = tokio::task::spawn_blocking(move || {
        sandbox.run(&WasmRun {
            module: &module,
            args,
            input_dir: &input,
            output_dir: &output,
            secrets_dir: secrets.as_deref(),
            seed,
            start_unix_secs: start_unix,
            limits,
        })
    })
    .await
    .map_err(|_| RunError::Engine("the sandbox thread died".into()))??;
    Ok(Ran {
        exit_code: report.exit_code,
        work: report.fuel_used,
        peak_memory_bytes: report.peak_memory_bytes as u64,
        wall: report.wall_time,
        stdout: String::from_utf8_lossy(&report.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&report.stderr).into_owned(),
        runtime: sgl_sandbox::WASM_RUNTIME.to_owned(),
    })
}

/// The deterministic chat mode: the slice's one argument as the user prompt (after the entry
/// file's text as a system prompt, when it has any), greedy, seed 0, on one of the engine's own
/// slots, with the pinned model; the answer goes to `completion.txt`.
async fn llm(
    shared: &Shared,
    manifest: &BundleManifest,
    slice: u32,
    entry: &[u8],
    output: &Path,
) -> Result<Ran, RunError> {
    let engine = shared.engine.clone().ok_or_else(|| RunError::Engine("this node has no engine".into()))?;
    let pin = manifest.model.ok_or_else(|| RunError::Engine("an llm job without a model".into()))?;
    if engine.model_sha256() != Some(pin.sha256.to_hex().as_str()) {
        return Err(RunError::Engine(format!("this node does not serve model {}", pin.sha256)));
    }
    let prompt = manifest.slices.get(slice as usize).and_then(|s| s.args.first()).cloned().unwrap_or_default();
    let system = String::from_utf8_lossy(entry).trim().to_owned();
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(("system".to_owned(), system));
    }
    messages.push(("user".to_owned(), prompt));
    let sampling =
        Sampling { temperature: 0.0, top_k: Some(1), seed: 0, max_tokens: pin.max_tokens, ..Sampling::default() };
    let started = Instant::now();
    let mut generation = engine.generate(GenerateRequest { messages, sampling });
    let mut text = String::new();
    let usage = loop {
        match generation.events.recv().await {
            Some(EngineEvent::Text(piece)) => text.push_str(&piece),
            Some(EngineEvent::Done { usage, .. }) => break usage,
            Some(EngineEvent::Failed(error)) => return Err(RunError::Engine(error.to_string())),
            None => return Err(RunError::Engine("the engine stopped".into())),
        }
        shared.touch();
    };
    std::fs::write(output.join("completion.txt"), text.as_bytes())?;
    let tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
    Ok(Ran {
        exit_code: 0,
        work: tokens.saturating_mul(WORK_PER_TOKEN),
        peak_memory_bytes: 0,
        wall: started.elapsed(),
        stdout: String::new(),
        stderr: String::new(),
        runtime: format!("llama.cpp (sgl {}) greedy", env!("CARGO_PKG_VERSION")),
    })
}
