//! The engine table: `sgl-bench engine` against `llama-bench`, side by side.

use serde_json::Value;

use super::{Driver, f64_at, ratio_cell, update_section};

const COMMAND: &str = "cargo xtask bench engine";
/// Target for in-process decode speed relative to llama-bench (issue 7).
const TARGET: f64 = 0.98;

/// Runs the engine benchmark and updates its section of BENCHMARKS.md.
pub(crate) fn run(driver: &Driver) -> anyhow::Result<()> {
    let llama_bench = crate::llama_server::build_path()?.with_file_name("llama-bench");
    let mut args = vec!["engine".to_owned(), "--model".to_owned(), driver.model_arg()];
    args.extend(["--llama-bench".to_owned(), llama_bench.display().to_string()]);
    let report = driver.sgl_bench(&args)?;
    let table = table(&report)?;
    eprint!("{table}");
    let section = format!(
        "Command: `{COMMAND}`. {} threads, {} prompt tokens, {} generated, {} rounds × {} repetitions per side \
         (alternating llama-bench and the engine), context {} and batch {} (the node's defaults).\n{}\n\n{table}",
        report["threads"],
        report["prompt_tokens"],
        report["generated_tokens"],
        report["rounds"],
        report["reps"],
        report["context_size"],
        report["batch_size"],
        super::machine()?,
    );
    update_section("engine", &section)
}

fn table(report: &Value) -> anyhow::Result<String> {
    let cell = |path: &str| -> anyhow::Result<String> {
        Ok(format!(
            "{:.1} ± {:.1}",
            f64_at(report, &format!("{path}/summary/p50"))?,
            f64_at(report, &format!("{path}/summary/stddev"))?
        ))
    };
    let median = |path: &str| f64_at(report, &format!("{path}/summary/p50"));
    let mut table = String::from(
        "| workload (tokens/s, median ± sd) | llama-bench | sgl engine | ratio | target |\n|---|---:|---:|---:|---:|\n",
    );
    let p = report["prompt_tokens"].as_u64().unwrap_or(0);
    let n = report["generated_tokens"].as_u64().unwrap_or(0);
    table.push_str(&format!(
        "| pp{p}: prompt decode, random tokens | {} | {} | {} | ≥ {TARGET} |\n",
        cell("/llama_bench/pp")?,
        cell("/engine/pp")?,
        ratio_cell(median("/engine/pp")? / median("/llama_bench/pp")?, TARGET),
    ));
    table.push_str(&format!(
        "| tg{n}: single-token decodes, random tokens | {} | {} | {} | ≥ {TARGET} |\n",
        cell("/llama_bench/tg")?,
        cell("/engine/tg")?,
        ratio_cell(median("/engine/tg")? / median("/llama_bench/tg")?, TARGET),
    ));
    table.push_str(&format!(
        "| real generation: greedy sampling and text, up to {n} tokens | {} (tg{n}) | {} | {:.3} | – |\n",
        cell("/llama_bench/tg")?,
        cell("/generate/generation_tps")?,
        median("/generate/generation_tps")? / median("/llama_bench/tg")?,
    ));
    table.push_str(&format!(
        "| real generation: time to first token (ms, p50 / p99) | – | {:.1} / {:.1} | – | – |\n",
        f64_at(report, "/generate/ttft_ms/summary/p50")?,
        f64_at(report, "/generate/ttft_ms/summary/p99")?,
    ));
    Ok(table)
}
