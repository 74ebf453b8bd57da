//! The image class's rows: terrain heightmaps per second and load time through
//! `sgl-image bench` (release), ONNX Runtime from `ORT_DYLIB_PATH` and the terrain consistency
//! model from `SGL_TEST_TERRAIN_ONNX` (both printed by `.ci/install-onnx`), at 1 and 2 threads.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::{Value, json};

use super::{Bench, Figure, Measured, RUNS, Row, env_file, threads as threads_label};
use crate::bench::f64_at;
use crate::command::output;

/// Images per `sgl-image bench` run.
const COUNT: u64 = 20;

/// Thread counts measured, alternating within each run.
const THREADS: [u16; 2] = [1, 2];

/// One `sgl-image bench` run's report.
struct BenchRun {
    threads: u16,
    images_per_second: f64,
    load_seconds: f64,
}

/// `RUNS` rounds of `sgl-image bench` at each thread count.
pub(super) fn measure(bench: &Bench) -> Measured {
    let (Some(ort), Some(model)) = (env_file("ORT_DYLIB_PATH"), env_file("SGL_TEST_TERRAIN_ONNX")) else {
        let note = "skipped: `ORT_DYLIB_PATH` or `SGL_TEST_TERRAIN_ONNX` does not name a file \
                    (`.ci/install-onnx` prints both to export)";
        return Ok((vec![Row::note("image", "images per second", note)], vec![]));
    };
    let worker = bench.binary("sgl-image", "sgl-image")?;
    let job = bench.fresh_dir("image")?;
    let pipeline = write_pipeline(&job, &model)?;
    let mut runs = Vec::new();
    let mut version = String::new();
    for _ in 0..RUNS {
        for threads in THREADS {
            let report = bench_once(&worker, &ort, &pipeline, threads)?;
            version = report["engine_version"].as_str().unwrap_or("unknown").to_owned();
            runs.push(BenchRun {
                threads,
                images_per_second: f64_at(&report, "/images_per_second")?,
                load_seconds: f64_at(&report, "/load_seconds")?,
            });
        }
    }
    let mut rows = Vec::new();
    for threads in THREADS {
        let of = |pick: fn(&BenchRun) -> f64| runs.iter().filter(|r| r.threads == threads).map(pick).collect();
        rows.push(Row::new(
            "image",
            format!("terrain 128×128, {}: images per second ({COUNT} per run)", threads_label(threads.into())),
            command(threads),
            Figure::Spread { values: of(|r| r.images_per_second), unit: "images/s", decimals: 2 },
        ));
        rows.push(Row::same_runs(
            "image",
            format!(
                "{}: load (`load_seconds`: open ONNX Runtime, load the 45 MB model)",
                threads_label(threads.into())
            ),
            Figure::Spread { values: of(|r| r.load_seconds), unit: "s", decimals: 2 },
        ));
    }
    let note = format!(
        "image: ONNX Runtime {version} (the library's own version string), the terrain consistency UNet at \
         difficulty 0.5 (`IN/pipeline.json` is crates/sgl-image/README.md's `consistency` example)."
    );
    Ok((rows, vec![note]))
}

/// The exact command of one row.
fn command(threads: u16) -> String {
    format!(
        "ORT_DYLIB_PATH=… cargo run --release -p sgl-image -- bench --pipeline IN/pipeline.json --count {COUNT} \
         --threads {threads}"
    )
}

/// `job/pipeline.json` with the model beside it as `terrain.onnx`; the pipeline's path.
fn write_pipeline(job: &Path, model: &Path) -> anyhow::Result<std::path::PathBuf> {
    fs::copy(model, job.join("terrain.onnx")).with_context(|| format!("copying {}", model.display()))?;
    let pipeline = json!({
        "kind": "consistency",
        "model": "terrain.onnx",
        "inputs": { "noise": "noisy", "sigma": "sigma", "condition": "difficulty" },
        "output": "denoised",
        "image": { "channels": 1, "height": 128, "width": 128 },
        "sigma": 80.0,
        "condition": 0.5,
        "pixels": { "map": "linear", "min": -1.0, "max": 1.0 }
    });
    let path = job.join("pipeline.json");
    fs::write(&path, pipeline.to_string()).context("writing pipeline.json")?;
    Ok(path)
}

/// One `sgl-image bench` run's JSON report.
fn bench_once(worker: &Path, ort: &Path, pipeline: &Path, threads: u16) -> anyhow::Result<Value> {
    let mut command = Command::new(worker);
    command.env("ORT_DYLIB_PATH", ort).arg("bench").arg("--pipeline").arg(pipeline);
    command.args(["--count", &COUNT.to_string(), "--threads", &threads.to_string()]);
    serde_json::from_str(output(&mut command)?.trim()).context("parsing sgl-image bench's report")
}
