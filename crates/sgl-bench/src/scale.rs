//! `scale`: the coordinator under many synthetic nodes and concurrent callers.
//!
//! The real `sgl-grid` runs as a child process (SQLite in a temporary directory, then, with
//! `--postgres-url`, a fresh PostgreSQL database). One load generator process holds every
//! synthetic node (`scale::fleet`: registered, heartbeating, on the job WebSocket, answering
//! each job at once with a sealed, signed result) and the callers (`scale::callers`). Levels
//! run in ascending order on one grid per backend, nodes being added as the level rises. Per
//! level: a heartbeat-only window, then a warm-up and a window with callers. The load
//! generator shares the machine's cores with the grid, so its own CPU is reported too.
//!
//! Output (one JSON object):
//!
//! - `callers`, `seconds`, `warmup_secs`, `heartbeat_secs`, `heartbeat_window_secs`, `cores`,
//!   `model`: the run's settings; `targets`: `jobs_per_s` (5000) and
//!   `grid_cpu_heartbeat_pct_at_10000_nodes` (50).
//! - `backends`: one entry per backend: `backend` (`sqlite` or `postgres`), `rss_empty_kib`
//!   (grid RSS before any node), `levels`, and `error` if the backend stopped early.
//! - each level: `nodes`; `callers` (the concurrent callers used: `--callers`, at most 16 per
//!   node, the grid's per-node slot ceiling); `connect_secs` (registering and connecting the
//!   nodes added at this level); `jobs_per_s` (200 answers ÷ window); `latency_ms` (`Summary`
//!   of 200s: n, mean, stddev, p50, p99, min, max); `failures` (non-200 answers by status, plus
//!   `transport` and `bad_body`); `node_job_errors` (jobs a node could not answer or whose
//!   result the grid refused); `heartbeats_per_s` (heartbeats answered 200 in the heartbeat
//!   window ÷ its length) beside `heartbeats_expected_per_s` (nodes ÷ interval) and
//!   `heartbeat_failures`; `rss_kib` and `rss_per_node_kib` ((RSS − empty RSS) ÷ nodes);
//!   `grid_cpu_heartbeat_pct` and `grid_cpu_jobs_pct` (grid user+system CPU over each window as
//!   % of the whole machine); `loadgen_cpu_heartbeat_pct` and `loadgen_cpu_pct` (this process,
//!   same windows); `socket_drops` (WebSocket closes or failed connects so far);
//!   `connections_refused` (connections the grid closed over its caps so far: the caps are set
//!   to the run's budget, so anything above 0 means the grid's open-file limit lowered them, as
//!   its log says, or the budget was short); `error` if
//!   the level failed. The first level also has `queue`: `--queue-callers` callers on its
//!   `slots` for `seconds` (`jobs_per_s`, `latency_ms`, `failures`, and `bound_secs`, the
//!   grid's default queue bound). `nodes_joined` is how many nodes were connected; when the grid could not
//!   take all `nodes` within `--connect-timeout-secs`, `shortfall` says so, the level is
//!   measured with the nodes that joined (per-node figures divide by those), and higher
//!   levels are skipped.

pub(crate) mod callers;
pub(crate) mod fleet;
mod grid;
pub(crate) mod procfs;

pub(crate) use grid::{PgDatabase, create_api_key, free_port};

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::stats::Summary;
use fleet::{Counters, Fleet};
use grid::{Backend, Grid};
use procfs::Proc;

/// Arguments of the scale benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The `sgl-grid` binary to measure (e.g. target/release/sgl-grid).
    #[arg(long, value_name = "PATH")]
    grid_bin: PathBuf,
    /// Also measure on PostgreSQL: any database URL of the server; a fresh database
    /// `sglbench_<pid>_<n>` is created there with `psql` and dropped afterwards.
    #[arg(long, value_name = "URL")]
    postgres_url: Option<String>,
    /// Node counts to measure, ascending; nodes are added to one grid as the level rises.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000,10000", value_parser = parse_level)]
    nodes: Vec<usize>,
    /// Concurrent callers (at most 16 per node are used: the grid's per-node slot ceiling).
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Measured seconds of calls per level (after the warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds of calls per level, not measured.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Seconds between a node's heartbeats (each jittered by ±10 %).
    #[arg(long, default_value_t = 5)]
    heartbeat_secs: u64,
    /// Length of the heartbeat-only window per level; several heartbeat rounds should fit.
    #[arg(long, default_value_t = 15)]
    heartbeat_window_secs: u64,
    /// Longest time to register and connect the nodes a level adds; a level that cannot is
    /// reported with its error, and higher levels are skipped.
    #[arg(long, default_value_t = 120)]
    connect_timeout_secs: u64,
    /// The model name the nodes advertise and the callers ask for.
    #[arg(long, default_value = "bench-model")]
    model: String,
    /// At the first level only (the fewest nodes, 16 slots each): a window with this many
    /// callers, far more than the slots, so most wait in the grid's admission queue; 0 skips it.
    #[arg(long, default_value_t = 200)]
    queue_callers: usize,
    /// Measured seconds of the queue window.
    #[arg(long, default_value_t = 60)]
    queue_secs: u64,
}

fn parse_level(text: &str) -> anyhow::Result<usize> {
    let text = text.trim().replace('_', "");
    match text.parse::<usize>() {
        Ok(0) => anyhow::bail!("a level needs at least one node"),
        Ok(n) => Ok(n),
        Err(_) => anyhow::bail!("{text:?} is not a node count"),
    }
}

/// Runs the scale benchmark.
pub(crate) fn run(args: &Args) -> anyhow::Result<Value> {
    let mut levels = args.nodes.clone();
    levels.sort_unstable();
    levels.dedup();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("the tokio runtime")?;
    let mut backends = vec![Backend::Sqlite];
    backends.extend(args.postgres_url.clone().map(Backend::Postgres));
    let mut reports = Vec::new();
    for (tag, backend) in backends.iter().enumerate() {
        eprintln!("scale: {} backend", backend.name());
        let max_nodes = levels.last().copied().unwrap_or(1);
        let max_connections = grid::connection_budget(max_nodes, args.callers.max(args.queue_callers));
        let report = match Grid::start(&args.grid_bin, backend, tag, max_connections) {
            Ok(mut grid) => runtime.block_on(async {
                match grid.wait_ready().await {
                    Ok(()) => measure_backend(args, &grid, &levels, cores).await,
                    Err(error) => json!({"error": format!("{error:#}")}),
                }
            }),
            Err(error) => json!({"error": format!("{error:#}")}),
        };
        let mut report = report;
        report["backend"] = json!(backend.name());
        reports.push(report);
    }
    Ok(json!({
        "backends": reports,
        "callers": args.callers,
        "seconds": args.seconds,
        "warmup_secs": args.warmup_secs,
        "heartbeat_secs": args.heartbeat_secs,
        "heartbeat_window_secs": args.heartbeat_window_secs,
        "cores": cores,
        "model": args.model,
        "targets": {"jobs_per_s": 5000, "grid_cpu_heartbeat_pct_at_10000_nodes": 50},
    }))
}

/// Every level on one grid; a failed level ends the backend (the next level would only
/// fail harder) but keeps what was measured.
async fn measure_backend(args: &Args, grid: &Grid, levels: &[usize], cores: usize) -> Value {
    let heartbeat = Duration::from_secs(args.heartbeat_secs.max(1));
    let mut fleet = match Fleet::new(&grid.base_url, &args.model, heartbeat) {
        Ok(fleet) => fleet,
        Err(error) => return json!({"error": format!("{error:#}")}),
    };
    let gridproc = Proc::Pid(grid.pid());
    let rss_empty = match gridproc.rss_kib() {
        Ok(rss) => rss,
        Err(error) => return json!({"error": format!("{error:#}")}),
    };
    let mut results = Vec::new();
    let mut failure = None;
    for &nodes in levels {
        match measure_level(args, grid, &mut fleet, nodes, rss_empty, cores).await {
            Ok(mut level) => {
                if results.is_empty() && args.queue_callers > 0 {
                    level["queue"] = measure_queue(args, grid, &fleet).await;
                }
                eprintln!("scale: {nodes} nodes: {level}");
                let saturated = level.get("shortfall").is_some();
                results.push(level);
                if saturated {
                    failure = Some(format!("the grid took fewer than {nodes} nodes in time; higher levels skipped"));
                    break;
                }
            }
            Err(error) => {
                let text = format!("{error:#}");
                eprintln!("scale: {nodes} nodes failed: {text}");
                results.push(json!({"nodes": nodes, "error": text}));
                failure = Some(text);
                break;
            }
        }
    }
    fleet.shutdown().await;
    let mut report = json!({"rss_empty_kib": rss_empty, "levels": results});
    if let Some(error) = failure {
        report["error"] = json!(error);
    }
    report
}

async fn measure_level(
    args: &Args,
    grid: &Grid,
    fleet: &mut Fleet,
    nodes: usize,
    rss_empty: u64,
    cores: usize,
) -> anyhow::Result<Value> {
    let heartbeat = Duration::from_secs(args.heartbeat_secs.max(1));
    let gridproc = Proc::Pid(grid.pid());
    let added = nodes.saturating_sub(fleet.len());
    eprintln!("scale: adding {added} nodes (to {nodes})");
    let connect_started = Instant::now();
    let connect_timeout = Duration::from_secs(args.connect_timeout_secs);
    // A grid that cannot take every node in time is still measured with those it took: that
    // is the saturation figure. Higher levels are then skipped.
    let shortfall = match fleet.grow_to(nodes, connect_timeout).await {
        Ok(()) => None,
        Err(error) => {
            eprintln!("scale: {error:#}; measuring the {} nodes that joined", fleet.len());
            Some(format!("{error:#}"))
        }
    };
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let joined = fleet.len();
    if joined == 0 {
        anyhow::bail!("no node joined; {}", grid.log_tail());
    }
    // Every new node's first jittered wait ends within one interval: after it, beats are steady.
    tokio::time::sleep(heartbeat).await;
    let rss = gridproc.rss_kib()?;

    eprintln!("scale: {nodes} nodes: heartbeat-only window");
    let counters = fleet.counters();
    let quiet =
        heartbeat_window(&gridproc, counters, Duration::from_secs(args.heartbeat_window_secs.max(1)), cores).await?;

    let n_callers = args.callers.min(joined.saturating_mul(fleet::SLOTS as usize)).max(1);
    eprintln!("scale: {nodes} nodes: {n_callers} callers");
    let errors_before = counters.job_errors.load(Ordering::Relaxed);
    let warmup = Duration::from_secs(args.warmup_secs);
    let seconds = Duration::from_secs(args.seconds.max(1));
    let calls = callers::run(&grid.base_url, &grid.api_key, &args.model, n_callers, warmup, seconds);
    let sample = async {
        tokio::time::sleep(warmup).await;
        let before = (gridproc.cpu(), Proc::This.cpu());
        tokio::time::sleep(seconds).await;
        (before, (gridproc.cpu(), Proc::This.cpu()))
    };
    let (report, ((grid_before, own_before), (grid_after, own_after))) = tokio::join!(calls, sample);
    let report = report?;
    let grid_cpu_jobs = grid_after?.percent_since(&grid_before?, cores);
    let loadgen_cpu_jobs = own_after?.percent_since(&own_before?, cores);
    let node_job_errors = counters.job_errors.load(Ordering::Relaxed) - errors_before;
    let window_secs = report.window.as_secs_f64().max(f64::EPSILON);
    let mut level = json!({
        "nodes": nodes,
        "nodes_joined": joined,
        "callers": n_callers,
        "connect_secs": round(connect_secs),
        "jobs_per_s": round(report.latencies_ms.len() as f64 / window_secs),
        "latency_ms": Summary::of(&report.latencies_ms),
        "failures": report.failures,
        "node_job_errors": node_job_errors,
        "heartbeats_per_s": round(quiet.beats as f64 / quiet.window.as_secs_f64()),
        "heartbeats_expected_per_s": round(joined as f64 / heartbeat.as_secs_f64()),
        "heartbeat_failures": quiet.beat_failures,
        "rss_kib": rss,
        "rss_per_node_kib": round(rss.saturating_sub(rss_empty) as f64 / joined as f64),
        "grid_cpu_heartbeat_pct": round(quiet.grid_cpu),
        "grid_cpu_jobs_pct": round(grid_cpu_jobs),
        "loadgen_cpu_heartbeat_pct": round(quiet.loadgen_cpu),
        "loadgen_cpu_pct": round(loadgen_cpu_jobs),
        "socket_drops": counters.socket_drops.load(Ordering::Relaxed),
        "connections_refused": grid.connections_refused().await?,
    });
    if let Some(shortfall) = shortfall {
        level["shortfall"] = json!(shortfall);
    }
    Ok(level)
}

/// What a window of heartbeats alone measured.
struct Quiet {
    window: Duration,
    beats: u64,
    beat_failures: u64,
    grid_cpu: f64,
    loadgen_cpu: f64,
}

/// Heartbeats alone for `length`: how many went through, and the grid's and this process's CPU.
async fn heartbeat_window(
    gridproc: &Proc,
    counters: &Counters,
    length: Duration,
    cores: usize,
) -> anyhow::Result<Quiet> {
    let (beats_before, failures_before) =
        (counters.heartbeats_ok.load(Ordering::Relaxed), counters.heartbeats_failed.load(Ordering::Relaxed));
    let (grid_cpu, own_cpu, started) = (gridproc.cpu()?, Proc::This.cpu()?, Instant::now());
    tokio::time::sleep(length).await;
    Ok(Quiet {
        window: started.elapsed(),
        beats: counters.heartbeats_ok.load(Ordering::Relaxed) - beats_before,
        beat_failures: counters.heartbeats_failed.load(Ordering::Relaxed) - failures_before,
        grid_cpu: gridproc.cpu()?.percent_since(&grid_cpu, cores),
        loadgen_cpu: Proc::This.cpu()?.percent_since(&own_cpu, cores),
    })
}

/// The admission queue under load: `--queue-callers` callers against the fleet's slots for
/// `--queue-secs`. Every caller should be served (no 503 a queue could have avoided) within
/// the grid's queue bound (`[admission] wait_secs`, 30 s by default).
async fn measure_queue(args: &Args, grid: &Grid, fleet: &Fleet) -> Value {
    let slots = fleet.len() * fleet::SLOTS as usize;
    eprintln!("scale: queue window: {} callers on {slots} slots", args.queue_callers);
    let (warmup, seconds) = (Duration::from_secs(args.warmup_secs), Duration::from_secs(args.queue_secs.max(1)));
    match callers::run(&grid.base_url, &grid.api_key, &args.model, args.queue_callers, warmup, seconds).await {
        Ok(report) => json!({
            "callers": args.queue_callers,
            "slots": slots,
            "seconds": args.queue_secs,
            "jobs_per_s": round(report.latencies_ms.len() as f64 / report.window.as_secs_f64().max(f64::EPSILON)),
            "latency_ms": Summary::of(&report.latencies_ms),
            "failures": report.failures,
            "bound_secs": 30,
        }),
        Err(error) => json!({"error": format!("{error:#}")}),
    }
}

/// Two decimals are plenty for a report.
pub(crate) fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn node_levels_parse_as_a_comma_list() {
        let cli = Cli::try_parse_from(["x", "--grid-bin", "g", "--nodes", "1,100,10_000"]).unwrap();
        assert_eq!(cli.args.nodes, vec![1, 100, 10_000]);
        let cli = Cli::try_parse_from(["x", "--grid-bin", "g"]).unwrap();
        assert_eq!(cli.args.nodes, vec![1, 100, 1000, 10_000]);
        assert!(Cli::try_parse_from(["x", "--grid-bin", "g", "--nodes", "1,0"]).is_err());
        assert!(Cli::try_parse_from(["x", "--grid-bin", "g", "--nodes", "ten"]).is_err());
    }

    #[test]
    fn figures_are_rounded_to_two_decimals() {
        assert_eq!(round(1.23456), 1.23);
        assert_eq!(round(2.0 / 3.0), 0.67);
    }
}
