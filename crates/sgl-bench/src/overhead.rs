//! `sgl-bench overhead`: what the grid adds to a completion. The same request (a fixed prompt,
//! temperature 0, a fixed `max_tokens`) is sent, round after round, along five paths:
//!
//! - `direct`: straight to the in-process engine in this process (the baseline);
//! - `plain`: OpenAI JSON to a real `sgl-grid up` grid, which seals it to its real `sgl` node;
//! - `plain_stream`: the same, streamed;
//! - `sealed`: sealed end to end by `sgl-client` (reserve, seal, post, verify, open);
//! - `sealed_stream`: the same, streamed, every chunk verified and opened.
//!
//! The node serves the same model with the same threads as the direct engine; only one request
//! runs at a time, so the two engines never compete. Each round visits every path once, in an
//! order that rotates from round to round, so slow phases of a shared machine hit all paths
//! alike; the first round is a warm-up. The JSON output
//! has, per path, `latency_ms` and (streams and direct) `ttft_ms` summaries, `tokens_per_s`
//! (completion tokens over the whole latency), and the paired per-round differences against
//! `direct` (`added_latency_ms`, `added_ttft_ms`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::engine::{PROMPT, generate_timed};
use crate::stats::Summary;
use crate::up::LocalGrid;
use anyhow::Context;
use serde_json::{Value, json};
use sgl_client::{ApiKey, ChatRequest, Client};
use sgl_engine::llama::LlamaEngine;
use sgl_protocol::api::openai::{ChatMessage, StreamOptions};
/// The paths, in the order each round visits them.
const PATHS: [&str; 5] = ["direct", "plain", "plain_stream", "sealed", "sealed_stream"];

/// Arguments of the overhead benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF model.
    #[arg(long)]
    model: PathBuf,
    /// The `sgl-grid` binary.
    #[arg(long)]
    grid_bin: PathBuf,
    /// The `sgl` node binary.
    #[arg(long)]
    node_bin: PathBuf,
    /// Rounds (each sends one request along every path); the first is a warm-up.
    #[arg(long, default_value_t = 61)]
    rounds: usize,
    /// `max_tokens` of every request: short, so that the engine's own run-to-run spread does
    /// not drown the milliseconds the grid adds.
    #[arg(long, default_value_t = 8)]
    max_tokens: u32,
    /// CPU threads of the direct engine (the node uses all cores, 2 here).
    #[arg(long, default_value_t = 2)]
    threads: u32,
}

/// One request's timing along one path.
#[derive(Debug, Clone, Copy)]
struct Sample {
    latency: Duration,
    ttft: Option<Duration>,
    completion_tokens: u64,
}

/// Runs the overhead benchmark.
pub(crate) fn run(args: &Args) -> anyhow::Result<Value> {
    // The node's defaults: a 4096-token context and prompt batches of 512.
    let engine = crate::engine::load(&args.model, args.threads, 4096, 512)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(measure(args, &engine))
}

async fn measure(args: &Args, engine: &LlamaEngine) -> anyhow::Result<Value> {
    let up: Vec<std::ffi::OsString> = vec![
        "--no-machines".into(),
        "--model".into(),
        args.model.clone().into(),
        "--nodes".into(),
        "1".into(),
        "--sgl".into(),
        args.node_bin.clone().into(),
    ];
    let grid = LocalGrid::start(&args.grid_bin, &up, &[]).await?;
    let outcome = measure_on(args, engine, &grid).await;
    grid.stop().await;
    outcome
}

async fn measure_on(args: &Args, engine: &LlamaEngine, grid: &LocalGrid) -> anyhow::Result<Value> {
    let client = Client::builder(&grid.field("base_url")?)
        .api_key(ApiKey::new(grid.field("api_key")?))
        .request_timeout(Duration::from_secs(120))
        .build()?;
    let model = client.models().await?.data.first().map(|m| m.id.clone()).context("the grid lists no model")?;
    let mut request = ChatRequest::new(model, vec![ChatMessage::text("user", PROMPT)]);
    request.max_tokens = Some(u64::from(args.max_tokens));
    request.temperature = Some(0.0);
    request.seed = Some(0);

    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for round in 0..args.rounds {
        if round % 10 == 0 {
            eprintln!("overhead round {}/{}", round + 1, args.rounds);
        }
        // The order rotates, so no path always runs right after another.
        for path in PATHS.iter().cycle().skip(round % PATHS.len()).take(PATHS.len()).copied() {
            let sample = match path {
                "direct" => direct(engine, args.max_tokens).await?,
                "plain" => plain(&client, &request).await?,
                "plain_stream" => plain_stream(&client, &request).await?,
                "sealed" => sealed(&client, &request).await?,
                _ => sealed_stream(&client, &request).await?,
            };
            if round > 0 {
                samples.entry(path).or_default().push(sample);
            }
        }
    }
    report(args, &samples)
}

/// The JSON report: per path its distributions and the paired differences against `direct`.
fn report(args: &Args, samples: &BTreeMap<&str, Vec<Sample>>) -> anyhow::Result<Value> {
    let direct = samples.get("direct").context("no direct samples")?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut paths = serde_json::Map::new();
    for path in PATHS {
        let list = samples.get(path).context("a path without samples")?;
        let latency: Vec<f64> = list.iter().map(|s| ms(s.latency)).collect();
        let ttft: Vec<f64> = list.iter().filter_map(|s| s.ttft.map(ms)).collect();
        let tps: Vec<f64> = list.iter().map(|s| s.completion_tokens as f64 / s.latency.as_secs_f64()).collect();
        let added: Vec<f64> = list.iter().zip(direct).map(|(s, d)| ms(s.latency) - ms(d.latency)).collect();
        let added_ttft: Vec<f64> =
            list.iter().zip(direct).filter_map(|(s, d)| Some(ms(s.ttft?) - ms(d.ttft?))).collect();
        let tokens: Vec<u64> = list.iter().map(|s| s.completion_tokens).collect();
        paths.insert(
            path.to_owned(),
            json!({
                "latency_ms": Summary::of(&latency),
                "ttft_ms": (!ttft.is_empty()).then(|| Summary::of(&ttft)),
                "tokens_per_s": Summary::of(&tps),
                "added_latency_ms": Summary::of(&added),
                "added_ttft_ms": (!added_ttft.is_empty()).then(|| Summary::of(&added_ttft)),
                "completion_tokens": { "min": tokens.iter().min(), "max": tokens.iter().max() },
            }),
        );
    }
    Ok(json!({
        "rounds": args.rounds - 1,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "prompt": PROMPT,
        "paths": paths,
    }))
}

async fn direct(engine: &LlamaEngine, max_tokens: u32) -> anyhow::Result<Sample> {
    let timed = generate_timed(engine, max_tokens).await?;
    Ok(Sample { latency: timed.latency, ttft: Some(timed.ttft), completion_tokens: timed.usage.completion_tokens })
}

async fn plain(client: &Client, request: &ChatRequest) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let completion = client.chat_plain(&request.to_openai(false)).await?;
    let usage = completion.usage.context("a plain completion without usage")?;
    Ok(Sample { latency: started.elapsed(), ttft: None, completion_tokens: usage.completion_tokens })
}

async fn plain_stream(client: &Client, request: &ChatRequest) -> anyhow::Result<Sample> {
    let mut openai = request.to_openai(true);
    openai.stream_options = Some(StreamOptions { include_usage: true });
    let started = Instant::now();
    let mut stream = client.chat_plain_stream(&openai).await?;
    let mut ttft = None;
    while stream.next_delta().await?.is_some() {
        ttft.get_or_insert_with(|| started.elapsed());
    }
    let latency = started.elapsed();
    let usage = stream.usage().context("a plain stream without usage")?;
    Ok(Sample { latency, ttft, completion_tokens: usage.completion_tokens })
}

async fn sealed(client: &Client, request: &ChatRequest) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let chat = client.chat(request).await?;
    let usage = chat.usage().context("a sealed completion without usage")?;
    Ok(Sample { latency: started.elapsed(), ttft: None, completion_tokens: usage.completion_tokens })
}

async fn sealed_stream(client: &Client, request: &ChatRequest) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let mut stream = client.chat_stream(request).await?;
    let mut ttft = None;
    while stream.next_delta().await?.is_some() {
        ttft.get_or_insert_with(|| started.elapsed());
    }
    let latency = started.elapsed();
    let end = stream.end().context("a sealed stream without its signed end")?;
    Ok(Sample { latency, ttft, completion_tokens: end.usage.completion_tokens })
}
