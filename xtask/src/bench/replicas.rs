//! The replicas table: `sgl-bench replicas`, 1, 2 and 3 `sgl-grid serve` replicas on one
//! PostgreSQL behind HAProxy (`deploy/haproxy.cfg`), synthetic nodes and callers through it.

use anyhow::Context;
use serde_json::Value;

use super::{Driver, f64_at, update_section};
use crate::command::workspace_root;

/// Runs the replicas benchmark and updates its section of BENCHMARKS.md.
pub(crate) fn run(driver: &Driver) -> anyhow::Result<()> {
    let postgres = std::env::var("SGL_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .context("the replicas benchmark needs PostgreSQL: set SGL_TEST_DATABASE_URL")?;
    let config = workspace_root().join("deploy/haproxy.cfg").display().to_string();
    let args: Vec<String> = vec![
        "replicas".into(),
        "--grid-bin".into(),
        driver.binary("sgl-grid"),
        "--postgres-url".into(),
        postgres,
        "--haproxy-config".into(),
        config,
    ];
    let report = driver.sgl_bench(&args)?;
    let table = table(&report);
    eprint!("{table}");
    let section = format!(
        "Command: `SGL_TEST_DATABASE_URL=postgres://… cargo xtask bench replicas`. Release `sgl-grid serve` \
         replicas on one PostgreSQL database behind HAProxy with `deploy/haproxy.cfg`; {} synthetic nodes and {} \
         callers reach them only through the balancer; {} s of calls after {} s of warm-up. The replicas, \
         PostgreSQL, HAProxy and the load generator share the machine.\n{}\n\n{table}",
        report["nodes"],
        report["callers"],
        report["seconds"],
        report["warmup_secs"],
        super::machine()?,
    );
    update_section("replicas", &section)
}

fn num(value: &Value, field: &str) -> f64 {
    f64_at(value, &format!("/{field}")).unwrap_or(f64::NAN)
}

fn table(report: &Value) -> String {
    let mut table = String::from(
        "| replicas | jobs/s | latency p50 / p99 (ms) | failed calls | node job errors | replicas' CPU | load generator CPU |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in report["runs"].as_array().into_iter().flatten() {
        let replicas = run["replicas"].as_u64().unwrap_or(0);
        if let Some(error) = run["error"].as_str() {
            table.push_str(&format!(
                "| {replicas} | failed: {} | | | | | |\n",
                error.lines().next().unwrap_or_default()
            ));
            continue;
        }
        let failed: u64 = run["failures"].as_object().into_iter().flatten().filter_map(|(_, n)| n.as_u64()).sum();
        table.push_str(&format!(
            "| {replicas} | {:.0} | {:.1} / {:.1} | {failed} | {} | {:.1} % | {:.1} % |\n",
            num(run, "jobs_per_s"),
            num(&run["latency_ms"], "p50"),
            num(&run["latency_ms"], "p99"),
            run["node_job_errors"],
            num(run, "grid_cpu_pct"),
            num(run, "loadgen_cpu_pct"),
        ));
    }
    table
}
