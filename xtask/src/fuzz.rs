//! `cargo xtask fuzz [--seconds N] [TARGET…]`: builds the `cargo fuzz` targets in `fuzz/` and
//! runs each for a bounded time, failing on the first crash.
//!
//! The fuzz crate is its own workspace (libFuzzer and its compiler flags stay out of the product
//! build). Its builds go to `~/.cache/sgl-grid/fuzz-target`, never to the main target directory.
//! cargo-fuzz is installed from crates.io when it is missing. It passes `-Z` flags, which the
//! pinned stable compiler accepts under `RUSTC_BOOTSTRAP=1`; nothing else is built that way.
//!
//! Targets are built without a sanitizer: everything they reach is safe Rust (`unsafe_code` is
//! denied in the crates under test), so AddressSanitizer would find nothing and halve the
//! throughput. Debug assertions and overflow checks stay on. Each run reads the committed
//! `fuzz/seeds/TARGET` and grows the git-ignored `fuzz/corpus/TARGET`; a crash is saved under
//! `fuzz/artifacts/TARGET` and reproduces with `cargo fuzz run TARGET ARTIFACT` from `fuzz/`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::command::{cargo, output, run as exec, workspace_root};

/// The cargo-fuzz release installed when none is, the newest that builds on the pinned Rust.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Seconds per target when none are given: enough for CI to exercise every target.
const DEFAULT_SECONDS: u64 = 10;
/// Build flags shared by `build` and `run`, so `run` finds the build up to date.
const BUILD_FLAGS: &[&str] = &["--sanitizer", "none", "--debug-assertions"];

/// One target's run.
struct Outcome {
    target: String,
    executions: u64,
    per_second: u64,
    seconds: f64,
}

/// Parses `[--seconds N] [TARGET…]`, then builds and runs.
pub(crate) fn fuzz(args: &[&str]) -> anyhow::Result<()> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(&arg) = args.next() {
        if arg == "--seconds" {
            let value = args.next().context("--seconds needs a number")?;
            seconds = value.parse().with_context(|| format!("--seconds {value}"))?;
        } else if arg.starts_with('-') {
            bail!("unknown option {arg}");
        } else {
            targets.push(arg.to_owned());
        }
    }
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    run(&targets, seconds)
}

fn run(selected: &[String], seconds: u64) -> anyhow::Result<()> {
    install_cargo_fuzz()?;
    let all = list_targets()?;
    if let Some(unknown) = selected.iter().find(|target| !all.contains(target)) {
        bail!("no fuzz target {unknown}; the targets are: {}", all.join(", "));
    }
    let targets = if selected.is_empty() { all.clone() } else { selected.to_vec() };

    let started = Instant::now();
    let mut build = cargo_fuzz();
    build.args(["build"]).args(BUILD_FLAGS);
    if targets.len() == 1 {
        build.arg(&targets[0]);
    }
    exec(&mut build)?;
    eprintln!("built the fuzz targets in {:.0} s", started.elapsed().as_secs_f64());

    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(run_target(target, seconds)?);
    }
    eprintln!("\n{:<18} {:>14} {:>10} {:>8}", "target", "executions", "exec/s", "seconds");
    for outcome in &outcomes {
        let Outcome { target, executions, per_second, seconds } = outcome;
        eprintln!("{target:<18} {executions:>14} {per_second:>10} {seconds:>8.0}");
    }
    let total: u64 = outcomes.iter().map(|outcome| outcome.executions).sum();
    eprintln!("{:<18} {total:>14}", "total");
    eprintln!("fuzzing took {:.0} s in all, no crash", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs one target for `seconds`; a crash, a hang or a leak of memory fails with libFuzzer's
/// report.
fn run_target(target: &str, seconds: u64) -> anyhow::Result<Outcome> {
    let fuzz_dir = workspace_root().join("fuzz");
    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let mut command = cargo_fuzz();
    command.args(["run"]).args(BUILD_FLAGS).arg(target).arg(&corpus).arg(fuzz_dir.join("seeds").join(target)).args([
        "--",
        &format!("-max_total_time={seconds}"),
        "-timeout=10",
        "-print_final_stats=1",
    ]);
    eprintln!("fuzzing {target} for {seconds} s");
    let started = Instant::now();
    let result = command.output().with_context(|| format!("starting cargo fuzz run {target}"))?;
    let log = String::from_utf8_lossy(&result.stderr);
    if !result.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(80).collect();
        for line in tail.into_iter().rev() {
            eprintln!("{line}");
        }
        bail!("fuzz target {target} failed ({}); the input is under fuzz/artifacts/{target}/", result.status);
    }
    let stat = |name: &str| {
        log.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
            .with_context(|| format!("libFuzzer printed no {name} for {target}"))
    };
    Ok(Outcome {
        target: target.to_owned(),
        executions: stat("stat::number_of_executed_units:")?,
        per_second: stat("stat::average_exec_per_sec:")?,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The fuzz targets, as cargo-fuzz lists them.
fn list_targets() -> anyhow::Result<Vec<String>> {
    let mut list = cargo_fuzz();
    list.arg("list");
    Ok(output(&mut list)?.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect())
}

/// Installs cargo-fuzz from crates.io unless `cargo fuzz` already runs.
fn install_cargo_fuzz() -> anyhow::Result<()> {
    let mut probe = cargo();
    probe.args(["fuzz", "--version"]);
    if output(&mut probe).is_ok() {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz {CARGO_FUZZ_VERSION} from crates.io");
    let mut install = cargo();
    install.args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION]);
    exec(&mut install)
}

/// `cargo fuzz` in `fuzz/`, building into the cache and allowed its `-Z` flags.
fn cargo_fuzz() -> Command {
    let mut command = cargo();
    command
        .arg("fuzz")
        .current_dir(workspace_root().join("fuzz"))
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", target_dir());
    command
}

/// `~/.cache/sgl-grid/fuzz-target` (or under the system temporary directory without a home).
fn target_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from).join(".cache/sgl-grid/fuzz-target")
}
