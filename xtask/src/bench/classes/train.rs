//! The train class's rows: one epoch of `examples/wasm/mnist-train/train.wasm` on the MNIST
//! sample (`SGL_TEST_MNIST`) in `sgl_sandbox::Sandbox`, laid out as the class runs slice k
//! (`/in/mnist.csv`, and `/in/prev/ckpt.bin` for a resumed epoch), through sgl-sandbox's
//! `run_wasm` example: epoch 1, then epoch 2 resumed from that run's checkpoint, per run.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use serde_json::Value;

use super::{Bench, Figure, Measured, RUNS, Row, env_file};
use crate::bench::f64_at;
use crate::command::{output, workspace_root};

/// The committed module, relative to the workspace root.
const MODULE: &str = "examples/wasm/mnist-train/train.wasm";

/// The run's fuel and wall-clock limits: well above an epoch's 0.72e9 fuel and its second.
const LIMITS: [&str; 4] = ["--fuel", "2000000000", "--wall-secs", "300"];

/// What one epoch's run reported and left.
struct Epoch {
    wall_seconds: f64,
    fuel: u64,
    peak_memory_bytes: u64,
    ckpt: Vec<u8>,
    metrics: String,
}

/// Epochs 1 and 2, `RUNS` times.
pub(super) fn measure(bench: &Bench) -> Measured {
    let Some(data) = env_file("SGL_TEST_MNIST") else {
        let note = "skipped: `SGL_TEST_MNIST` does not name the MNIST sample \
                    (`.ci/install-mnist` prints its path last)";
        return Ok((vec![Row::note("train", "seconds and fuel per epoch", note)], vec![]));
    };
    let runner = bench.example("sgl-sandbox", "run_wasm")?;
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for index in 0..RUNS {
        let fresh = run_epoch(bench, &runner, &data, index, None)?;
        second.push(run_epoch(bench, &runner, &data, index, Some(&fresh.ckpt))?);
        first.push(fresh);
    }
    let mut rows = epoch_rows(1, "fresh", &first);
    rows.extend(epoch_rows(2, "resumed from epoch 1's checkpoint", &second));
    let notes = vec![format!(
        "train: epoch 1 wrote `{}` and epoch 2 `{}`; {}",
        first[0].metrics.trim(),
        second[0].metrics.trim(),
        reproducibility(&first, &second)
    )];
    Ok((rows, notes))
}

/// The exact command of epoch `epoch`, as the row shows it.
fn command(epoch: u32) -> String {
    let resume = if epoch > 1 { " --resume /in/prev/ckpt.bin" } else { "" };
    format!(
        "cargo run --release -p sgl-sandbox --example run_wasm -- {MODULE} --in IN --out OUT {} \
         -- train --data /in/mnist.csv --epoch {epoch}{resume}",
        LIMITS.join(" ")
    )
}

/// Wall seconds, fuel and peak memory of one epoch's runs.
fn epoch_rows(epoch: u32, how: &str, runs: &[Epoch]) -> Vec<Row> {
    let fuel: Vec<u64> = runs.iter().map(|run| run.fuel).collect();
    let memory: Vec<u64> = runs.iter().map(|run| run.peak_memory_bytes).collect();
    let wall = runs.iter().map(|run| run.wall_seconds).collect();
    vec![
        Row::new(
            "train",
            format!("epoch {epoch} ({how}): wall time, compile included"),
            command(epoch),
            Figure::Spread { values: wall, unit: "s / epoch", decimals: 3 },
        ),
        Row::same_runs("train", format!("epoch {epoch}: fuel"), Figure::same_in_every_run(&fuel, "fuel units")),
        Row::same_runs(
            "train",
            format!("epoch {epoch}: peak linear memory"),
            Figure::same_in_every_run(&memory, "bytes"),
        ),
    ]
}

/// Whether every run of an epoch gave the same checkpoint and metrics.
fn reproducibility(first: &[Epoch], second: &[Epoch]) -> String {
    let same = |runs: &[Epoch]| runs.iter().all(|run| run.ckpt == runs[0].ckpt && run.metrics == runs[0].metrics);
    if same(first) && same(second) {
        format!("each epoch's checkpoint and metrics were byte-identical in all {RUNS} runs.")
    } else {
        format!(
            "**the runs' checkpoints or metrics differed** (epoch 1 same: {}, epoch 2 same: {}).",
            same(first),
            same(second)
        )
    }
}

/// Runs epoch 1 (`prev` is `None`) or 2 (resuming from `prev`) in fresh job directories.
fn run_epoch(bench: &Bench, runner: &Path, data: &Path, index: usize, prev: Option<&[u8]>) -> anyhow::Result<Epoch> {
    let epoch = if prev.is_some() { 2 } else { 1 };
    let job = bench.fresh_dir(&format!("train/run{index}-epoch{epoch}"))?;
    let (input, out) = (job.join("in"), job.join("out"));
    fs::create_dir_all(&out)?;
    fs::create_dir_all(input.join("prev"))?;
    fs::copy(data, input.join("mnist.csv")).with_context(|| format!("copying {}", data.display()))?;
    let mut guest_args = vec!["train".to_owned(), "--data".into(), "/in/mnist.csv".into(), "--epoch".into()];
    guest_args.push(epoch.to_string());
    if let Some(prev) = prev {
        fs::write(input.join("prev/ckpt.bin"), prev)?;
        guest_args.extend(["--resume".to_owned(), "/in/prev/ckpt.bin".to_owned()]);
    }
    let mut command = Command::new(runner);
    command.arg(workspace_root().join(MODULE)).arg("--in").arg(&input).arg("--out").arg(&out);
    command.args(LIMITS).arg("--").args(&guest_args);
    let report: Value = serde_json::from_str(&output(&mut command)?).context("parsing run_wasm's report")?;
    ensure!(report["exit_code"] == 0, "epoch {epoch} exited {}: {}", report["exit_code"], report["stderr"]);
    Ok(Epoch {
        wall_seconds: f64_at(&report, "/wall_seconds")?,
        fuel: report["fuel_used"].as_u64().context("fuel_used in run_wasm's report")?,
        peak_memory_bytes: report["peak_memory_bytes"].as_u64().context("peak_memory_bytes in the report")?,
        ckpt: fs::read(out.join("ckpt.bin")).context("the epoch's ckpt.bin")?,
        metrics: fs::read_to_string(out.join("metrics.json")).context("the epoch's metrics.json")?,
    })
}
