//! The scale table: `sgl-bench scale`, the coordinator under synthetic nodes and callers, on
//! SQLite and (with `SGL_TEST_DATABASE_URL`) on PostgreSQL.

use serde_json::Value;

use super::{Driver, f64_at, update_section};

/// Targets of issue 7.
const JOBS_PER_S: f64 = 5000.0;
const CPU_AT_10K_PCT: f64 = 50.0;

/// Runs the scale benchmark and updates its section of BENCHMARKS.md.
pub(crate) fn run(driver: &Driver) -> anyhow::Result<()> {
    let mut args: Vec<String> = vec!["scale".into(), "--grid-bin".into(), driver.binary("sgl-grid")];
    let postgres = std::env::var("SGL_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty());
    if let Some(url) = &postgres {
        args.extend(["--postgres-url".into(), url.clone()]);
    } else {
        eprintln!("scale: SGL_TEST_DATABASE_URL is not set, so PostgreSQL is skipped");
    }
    let report = driver.sgl_bench(&args)?;
    let table = table(&report);
    eprint!("{table}");
    let command = if postgres.is_some() {
        "SGL_TEST_DATABASE_URL=postgres://… cargo xtask bench scale"
    } else {
        "cargo xtask bench scale (PostgreSQL skipped: SGL_TEST_DATABASE_URL was not set)"
    };
    let section = format!(
        "Command: `{command}`. The grid (`sgl-grid serve`, release) and the load generator share the \
         machine; {} callers at most (16 per node), {} s of calls after {} s of warm-up, a {} s \
         heartbeat-only window, heartbeats every {} s.\n{}\n\n{table}",
        report["callers"],
        report["seconds"],
        report["warmup_secs"],
        report["heartbeat_window_secs"],
        report["heartbeat_secs"],
        super::machine()?,
    );
    update_section("scale", &section)
}

/// A field's number, NaN (printed as such) when a level lacks it.
fn num(value: &Value, field: &str) -> f64 {
    f64_at(value, &format!("/{field}")).unwrap_or(f64::NAN)
}

fn table(report: &Value) -> String {
    let mut table = String::from(
        "| backend | nodes (joined) | jobs/s | latency p50 / p99 (ms) | failed calls | heartbeats/s (expected) | \
         grid CPU, heartbeats only | grid CPU, with calls | load generator CPU | grid RSS per node |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut best_jobs = 0.0_f64;
    let mut cpu_at_10k = Vec::new();
    for backend in report["backends"].as_array().into_iter().flatten() {
        let name = backend["backend"].as_str().unwrap_or("?");
        for level in backend["levels"].as_array().into_iter().flatten() {
            let nodes = level["nodes"].as_u64().unwrap_or(0);
            if let Some(error) = level["error"].as_str() {
                table.push_str(&format!("| {name} | {nodes} | failed: {error} | | | | | | | |\n"));
                continue;
            }
            let jobs = num(level, "jobs_per_s");
            best_jobs = best_jobs.max(jobs);
            let joined = level["nodes_joined"].as_u64().unwrap_or(nodes);
            if nodes >= 10_000 {
                cpu_at_10k.push((name, joined, num(level, "grid_cpu_heartbeat_pct")));
            }
            let failed: u64 = level["failures"].as_object().into_iter().flatten().filter_map(|(_, n)| n.as_u64()).sum();
            table.push_str(&format!(
                "| {name} | {nodes} ({joined}) | {jobs:.0} | {:.1} / {:.1} | {failed} | {:.0} ({:.0}) | {:.1} % | {:.1} % | {:.1} % | {:.0} KiB |\n",
                num(&level["latency_ms"], "p50"),
                num(&level["latency_ms"], "p99"),
                num(level, "heartbeats_per_s"),
                num(level, "heartbeats_expected_per_s"),
                num(level, "grid_cpu_heartbeat_pct"),
                num(level, "grid_cpu_jobs_pct"),
                num(level, "loadgen_cpu_pct"),
                num(level, "rss_per_node_kib"),
            ));
        }
        if let Some(error) = backend["error"].as_str() {
            table.push_str(&format!("\n{name}: {}\n", error.lines().next().unwrap_or_default()));
        }
    }
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    table.push_str(&queue_lines(report));
    table.push_str(&format!(
        "\nTargets: ≥ {JOBS_PER_S:.0} jobs/s: best {best_jobs:.0} ({}).",
        verdict(best_jobs >= JOBS_PER_S)
    ));
    for (name, joined, cpu) in cpu_at_10k {
        let met = joined >= 10_000 && cpu < CPU_AT_10K_PCT;
        table.push_str(&format!(
            " 10,000 nodes at 5 s heartbeats under {CPU_AT_10K_PCT:.0} % CPU, {name}: {joined} nodes joined, {cpu:.1} % ({}).",
            verdict(met)
        ));
    }
    table.push('\n');
    table
}

/// The admission-queue window of each backend: callers far beyond the slots, all to be served
/// (no 503) with p99 within the queue bound.
fn queue_lines(report: &Value) -> String {
    let mut lines = String::new();
    for backend in report["backends"].as_array().into_iter().flatten() {
        let name = backend["backend"].as_str().unwrap_or("?");
        let Some(queue) = backend["levels"][0].get("queue") else { continue };
        if let Some(error) = queue["error"].as_str() {
            lines.push_str(&format!("\nAdmission queue, {name}: failed: {error}\n"));
            continue;
        }
        let failed: u64 = queue["failures"].as_object().into_iter().flatten().filter_map(|(_, n)| n.as_u64()).sum();
        let (p99, bound) = (num(&queue["latency_ms"], "p99"), num(queue, "bound_secs"));
        let met = failed == 0 && p99 <= bound * 1000.0;
        lines.push_str(&format!(
            "\nAdmission queue, {name}: {} callers on {} slots for {} s: {:.0} jobs/s, latency p50 / p99 / max \
             {:.1} / {:.1} / {:.1} ms, {failed} failed calls. Target: no failed call and p99 within the \
             {bound:.0} s bound ({}).\n",
            queue["callers"],
            queue["slots"],
            queue["seconds"],
            num(queue, "jobs_per_s"),
            num(&queue["latency_ms"], "p50"),
            p99,
            num(&queue["latency_ms"], "max"),
            if met { "met" } else { "**missed**" },
        ));
    }
    lines
}
