//! The overhead table: `sgl-bench overhead`, straight to the engine against the grid's paths.

use serde_json::Value;

use super::{Driver, f64_at, update_section};

const COMMAND: &str = "cargo xtask bench overhead";
/// Targets of issue 7: added latency at p50, added time to first token, throughput ratio.
const ADDED_P50_MS: f64 = 2.0;
const ADDED_TTFT_MS: f64 = 5.0;
const THROUGHPUT: f64 = 0.97;
const PATHS: [(&str, &str); 5] = [
    ("direct", "straight to the engine (baseline)"),
    ("plain", "plain, through grid and node"),
    ("plain_stream", "plain, streamed"),
    ("sealed", "sealed end to end"),
    ("sealed_stream", "sealed, streamed"),
];

/// Runs the overhead benchmark and updates its section of BENCHMARKS.md.
pub(crate) fn run(driver: &Driver) -> anyhow::Result<()> {
    let args: Vec<String> = [
        "overhead",
        "--model",
        &driver.model_arg(),
        "--grid-bin",
        &driver.binary("sgl-grid"),
        "--node-bin",
        &driver.binary("sgl"),
    ]
    .map(str::to_owned)
    .to_vec();
    let report = driver.sgl_bench(&args)?;
    let table = table(&report)?;
    eprint!("{table}");
    let section = format!(
        "Command: `{COMMAND}`. {} measured rounds after a warm-up; each round sends the same request \
         (a {}-word prompt, temperature 0, `max_tokens` {}) once along every path, in an order that rotates per round; one `sgl` node \
         and the direct engine both use {} threads. \"Added\" is the per-round difference against \
         the direct engine in the same round.\n{}\n\n{table}",
        report["rounds"],
        report["prompt"].as_str().unwrap_or_default().split_whitespace().count(),
        report["max_tokens"],
        report["threads"],
        super::machine()?,
    );
    update_section("overhead", &section)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

fn table(report: &Value) -> anyhow::Result<String> {
    let mut table = String::from(
        "| path | latency p50 / p99 (ms) | added p50 / p99 (ms) | TTFT p50 (ms) | added TTFT p50 / p99 (ms) | \
         tokens/s ratio |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let direct_tps = f64_at(report, "/paths/direct/tokens_per_s/p50")?;
    for (path, label) in PATHS {
        let at = |field: &str| f64_at(report, &format!("/paths/{path}/{field}"));
        let latency = format!("{:.1} / {:.1}", at("latency_ms/p50")?, at("latency_ms/p99")?);
        let ttft = at("ttft_ms/p50").map_or_else(|_| "–".to_owned(), |v| format!("{v:.1}"));
        let (added, added_ttft, ratio) = if path == "direct" {
            ("–".to_owned(), "–".to_owned(), "1".to_owned())
        } else {
            let added_p50 = at("added_latency_ms/p50")?;
            let added = format!(
                "{added_p50:.1} / {:.1} ({} ≤ {ADDED_P50_MS})",
                at("added_latency_ms/p99")?,
                verdict(added_p50 <= ADDED_P50_MS)
            );
            let added_ttft = match (at("added_ttft_ms/p50"), at("added_ttft_ms/p99")) {
                (Ok(p50), Ok(p99)) => {
                    format!("{p50:.1} / {p99:.1} ({} ≤ {ADDED_TTFT_MS})", verdict(p50 <= ADDED_TTFT_MS))
                }
                _ => "–".to_owned(),
            };
            let ratio = at("tokens_per_s/p50")? / direct_tps;
            (added, added_ttft, format!("{ratio:.3} ({} ≥ {THROUGHPUT})", verdict(ratio >= THROUGHPUT)))
        };
        table.push_str(&format!("| {label} | {latency} | {added} | {ttft} | {added_ttft} | {ratio} |\n"));
    }
    Ok(table)
}
