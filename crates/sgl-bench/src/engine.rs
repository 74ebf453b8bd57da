//! `sgl-bench engine`: the in-process engine against llama.cpp's own `llama-bench`, same model,
//! same threads, alternating in one run so a noisy machine slows both alike.
//!
//! Each round runs `llama-bench -p P -n N -r R -o json`, then the engine's
//! [`LlamaEngine::bench_decode`] (the same workload on a serving slot's context: one warm-up,
//! then R repetitions), then R real generations through [`Engine::generate`] (a fixed prompt,
//! temperature 0, greedy sampling over the whole vocabulary, detokenised text), which is what a
//! caller gets. The JSON output has, per side, the tokens/s samples and their summary:
//! `llama_bench.{pp,tg}`, `engine.{pp,tg}`, `generate.{prompt_tps,generation_tps,ttft_ms}`,
//! with the settings used.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sgl_engine::llama::{DecodeBench, LlamaEngine, LlamaOptions};
use sgl_engine::{Engine, EngineEvent, GenerateRequest, Sampling};
use sgl_protocol::api::inference::Usage;

use crate::stats::Summary;

/// The prompt of every real generation (here and in `overhead`): a plain continuation a base
/// model carries on with.
pub(crate) const PROMPT: &str = "The history of the lighthouse begins on a rocky coast, where the keeper";

/// Arguments of the engine benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF model.
    #[arg(long)]
    model: PathBuf,
    /// The `llama-bench` binary (`cargo xtask llama-server` builds it).
    #[arg(long)]
    llama_bench: PathBuf,
    /// CPU threads, for both.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Prompt tokens (llama-bench `-p`).
    #[arg(long, default_value_t = 512)]
    prompt_tokens: u32,
    /// Generated tokens (llama-bench `-n`, and `max_tokens` of the real generations).
    #[arg(long, default_value_t = 128)]
    generated_tokens: u32,
    /// Repetitions per round and side (after one warm-up).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Rounds, alternating llama-bench and the engine.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// The engine's context per slot (the node's default).
    #[arg(long, default_value_t = 4096)]
    context_size: u32,
    /// The engine's prompt batch (the node's default).
    #[arg(long, default_value_t = 512)]
    batch_size: u32,
}

#[derive(Debug, Default)]
struct Samples {
    bench_pp: Vec<f64>,
    bench_tg: Vec<f64>,
    engine_pp: Vec<f64>,
    engine_tg: Vec<f64>,
    generate_pp: Vec<f64>,
    generate_tg: Vec<f64>,
    ttft_ms: Vec<f64>,
    completion_tokens: Vec<u64>,
}

/// Runs the engine benchmark.
pub(crate) fn run(args: &Args) -> anyhow::Result<Value> {
    let engine = load(&args.model, args.threads, args.context_size, args.batch_size)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut samples = Samples::default();
    for round in 1..=args.rounds {
        eprintln!("engine round {round}/{}: llama-bench", args.rounds);
        llama_bench(args, &mut samples)?;
        eprintln!("engine round {round}/{}: in-process decode", args.rounds);
        let workload = DecodeBench {
            prompt_tokens: args.prompt_tokens,
            generated_tokens: args.generated_tokens,
            seed: round as u64,
        };
        engine.bench_decode(workload)?;
        for _ in 0..args.reps {
            let timing = engine.bench_decode(workload)?;
            samples.engine_pp.push(f64::from(args.prompt_tokens) / timing.prompt.as_secs_f64());
            samples.engine_tg.push(f64::from(args.generated_tokens) / timing.generation.as_secs_f64());
        }
        eprintln!("engine round {round}/{}: real generations", args.rounds);
        runtime.block_on(generate_timed(&engine, args.generated_tokens))?;
        for _ in 0..args.reps {
            let timed = runtime.block_on(generate_timed(&engine, args.generated_tokens))?;
            let ttft = timed.ttft.as_secs_f64();
            samples.ttft_ms.push(ttft * 1e3);
            samples.generate_pp.push(timed.usage.prompt_tokens as f64 / ttft);
            let rest = timed.usage.completion_tokens.saturating_sub(1) as f64;
            samples.generate_tg.push(rest / (timed.latency - timed.ttft).as_secs_f64());
            samples.completion_tokens.push(timed.usage.completion_tokens);
        }
    }
    let summary = |s: &[f64]| json!({ "samples": s, "summary": Summary::of(s) });
    Ok(json!({
        "model": args.model,
        "threads": args.threads,
        "prompt_tokens": args.prompt_tokens,
        "generated_tokens": args.generated_tokens,
        "reps": args.reps,
        "rounds": args.rounds,
        "context_size": args.context_size,
        "batch_size": args.batch_size,
        "llama_bench": { "pp": summary(&samples.bench_pp), "tg": summary(&samples.bench_tg) },
        "engine": { "pp": summary(&samples.engine_pp), "tg": summary(&samples.engine_tg) },
        "generate": {
            "prompt_tps": summary(&samples.generate_pp),
            "generation_tps": summary(&samples.generate_tg),
            "ttft_ms": summary(&samples.ttft_ms),
            "completion_tokens": samples.completion_tokens,
        },
    }))
}

/// One `llama-bench` run of `reps` repetitions (it warms up itself).
fn llama_bench(args: &Args, samples: &mut Samples) -> anyhow::Result<()> {
    let mut command = Command::new(&args.llama_bench);
    command
        .arg("-m")
        .arg(&args.model)
        .args(["-t", &args.threads.to_string()])
        .args(["-p", &args.prompt_tokens.to_string()])
        .args(["-n", &args.generated_tokens.to_string()])
        .args(["-r", &args.reps.to_string()])
        .args(["-o", "json"]);
    let output = command.output().with_context(|| format!("running {}", args.llama_bench.display()))?;
    if !output.status.success() {
        bail!("llama-bench failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    let tests: Vec<Value> = serde_json::from_slice(&output.stdout).context("parsing llama-bench's JSON")?;
    for test in &tests {
        let rates: Vec<f64> = test["samples_ts"]
            .as_array()
            .context("samples_ts in llama-bench's JSON")?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        match (test["n_prompt"].as_u64(), test["n_gen"].as_u64()) {
            (Some(p), Some(0)) if p > 0 => samples.bench_pp.extend(rates),
            (Some(0), Some(n)) if n > 0 => samples.bench_tg.extend(rates),
            other => bail!("unexpected llama-bench test {other:?}"),
        }
    }
    Ok(())
}

/// An in-process engine with one slot, `threads` threads, and the given context and batch.
pub(crate) fn load(model: &Path, threads: u32, context_size: u32, batch_size: u32) -> anyhow::Result<LlamaEngine> {
    let options = LlamaOptions {
        model_path: model.to_owned(),
        model_name: None,
        context_size,
        slots: 1,
        threads,
        gpu_layers: 0,
        batch_size,
    };
    LlamaEngine::load(&options, |_| {}).context("loading the model")
}

/// A timed generation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timed {
    /// From the request to the end.
    pub(crate) latency: Duration,
    /// From the request to the first text.
    pub(crate) ttft: Duration,
    /// The engine's exact counts.
    pub(crate) usage: Usage,
}

/// One greedy generation of [`PROMPT`] of at most `max_tokens` tokens, timed.
pub(crate) async fn generate_timed(engine: &LlamaEngine, max_tokens: u32) -> anyhow::Result<Timed> {
    let request = GenerateRequest {
        messages: vec![("user".to_owned(), PROMPT.to_owned())],
        sampling: Sampling { temperature: 0.0, max_tokens, ..Sampling::default() },
    };
    let started = Instant::now();
    let mut generation = engine.generate(request);
    let mut ttft = None;
    while let Some(event) = generation.events.recv().await {
        match event {
            EngineEvent::Text(_) => {
                ttft.get_or_insert_with(|| started.elapsed());
            }
            EngineEvent::Done { usage, .. } => {
                let ttft = ttft.context("a generation without text")?;
                return Ok(Timed { latency: started.elapsed(), ttft, usage });
            }
            EngineEvent::Failed(error) => return Err(error.into()),
        }
    }
    bail!("the engine stopped mid-generation")
}
