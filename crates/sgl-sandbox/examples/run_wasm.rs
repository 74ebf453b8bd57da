//! Runs one Wasm module in the [`Sandbox`] and prints one JSON line about the run, for timing
//! a job outside the node (`cargo xtask bench classes` drives it for the `train` class):
//!
//! ```sh
//! cargo run --release -p sgl-sandbox --example run_wasm -- MODULE --in DIR --out DIR \
//!     [--fuel N] [--memory-mib M] [--wall-secs S] [--seed S] -- ARGV0 ARGS…
//! # {"exit_code":0,"fuel_used":715024290,"wall_seconds":0.31,"peak_memory_bytes":4325376,
//! #  "output_bytes":203640,"stdout":"…","stderr":""}
//! ```
//!
//! `DIR`s are the guest's `/in` (read-only) and `/out`; everything after `--` is the guest's
//! `argv`, its program name first. Limits default to [`WasmLimits::default`]. The exit status
//! is 0 whenever the guest exited (its own code is in the JSON) and 1 when the run failed (out
//! of fuel, memory or time, an invalid module), with the error on stderr.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use sgl_sandbox::{Sandbox, WasmLimits, WasmRun};

/// What the guest's wall clock reads (2026-12-01T00:00:00Z), as in the sandbox's tests.
const START_UNIX_SECS: u64 = 1_796_083_200;

/// The parsed command line.
struct Options {
    module: PathBuf,
    input: PathBuf,
    output: PathBuf,
    seed: u64,
    limits: WasmLimits,
    argv: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse(&args)?;
    let module = std::fs::read(&options.module).with_context(|| format!("reading {}", options.module.display()))?;
    let run = WasmRun {
        module: &module,
        args: options.argv,
        input_dir: &options.input,
        output_dir: &options.output,
        secrets_dir: None,
        seed: options.seed,
        start_unix_secs: START_UNIX_SECS,
        limits: options.limits,
    };
    let report = Sandbox::new()?.run(&run)?;
    let line = json!({
        "exit_code": report.exit_code,
        "fuel_used": report.fuel_used,
        "wall_seconds": report.wall_time.as_secs_f64(),
        "peak_memory_bytes": report.peak_memory_bytes,
        "output_bytes": report.output.bytes,
        "stdout": String::from_utf8_lossy(&report.stdout),
        "stderr": String::from_utf8_lossy(&report.stderr),
    });
    println!("{line}");
    Ok(())
}

/// `MODULE --in DIR --out DIR [options] -- ARGV…`.
fn parse(args: &[String]) -> anyhow::Result<Options> {
    let Some(split) = args.iter().position(|arg| arg == "--") else {
        bail!(
            "usage: run_wasm MODULE --in DIR --out DIR [--fuel N] [--memory-mib M] [--wall-secs S] [--seed S] -- ARGV…"
        )
    };
    let (flags, argv) = (&args[..split], args[split + 1..].to_vec());
    let Some((module, mut rest)) = flags.split_first() else { bail!("no module given") };
    let (mut input, mut output, mut seed, mut limits) = (None, None, 1, WasmLimits::default());
    while let [flag, value, tail @ ..] = rest {
        match flag.as_str() {
            "--in" => input = Some(PathBuf::from(value)),
            "--out" => output = Some(PathBuf::from(value)),
            "--fuel" => limits.fuel = value.parse().context("--fuel")?,
            "--memory-mib" => limits.memory_bytes = value.parse::<usize>().context("--memory-mib")? << 20,
            "--wall-secs" => limits.wall_clock = Duration::from_secs(value.parse().context("--wall-secs")?),
            "--seed" => seed = value.parse().context("--seed")?,
            other => bail!("unknown option {other}"),
        }
        rest = tail;
    }
    if let [dangling] = rest {
        bail!("{dangling} needs a value");
    }
    if argv.is_empty() {
        bail!("no guest argv after `--` (its first word is the program's name)");
    }
    Ok(Options {
        module: PathBuf::from(module),
        input: input.context("--in DIR is required")?,
        output: output.context("--out DIR is required")?,
        seed,
        limits,
        argv,
    })
}
