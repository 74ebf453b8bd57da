//! Seconds per frame of the example scene (`examples/render/scene.blend`) at the test settings
//! (160×120, 16 samples), at 1 and 2 threads, run directly and in the native sandbox the way the
//! node runs it, round by round (each setting once per round); every render must give the same
//! pixel digest. Prints a Markdown table for `examples/render/README.md`, or with `--json` one
//! JSON line for `cargo xtask bench classes`:
//!
//! ```sh
//! cargo run -p sgl-media --example render_timing -- [RUNS] [--json]   # RUNS per cell, default 5
//! # --json: {"blender":"3.4.1","runs":5,"cells":[{"threads":1,"run":"direct","seconds":[…]},
//! #          {"threads":1,"run":"sandboxed","error":"…"},…],"pixel_digests":["0d44…"]}
//! ```
//!
//! With `--json` a setting that cannot run (no usable sandbox on this machine) is a cell with an
//! `error` instead of times, and the distinct pixel digests are listed for the caller to check;
//! the Markdown form fails on either.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use sgl_media::blender::{RenderSettings, RenderSlice, SANDBOX_ENV, SANDBOX_READ_ONLY_PATHS, detect, render_args};
use sgl_media::pixels::pixel_digest;
use sgl_sandbox::native::{NativeLimits, NativeRun, NativeSandbox, ReadOnlyBind};

const BLENDER: &str = "/usr/bin/blender";

/// One setting's renders: wall seconds, sorted, or why it could not run.
struct Cell {
    threads: u32,
    sandboxed: bool,
    seconds: anyhow::Result<Vec<f64>>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|arg| arg == "--json");
    let runs: usize = args.iter().find(|arg| *arg != "--json").map(|n| n.parse()).transpose()?.unwrap_or(5);
    ensure!(runs > 0, "RUNS must be at least 1");
    let version = detect(Path::new(BLENDER)).context("blender")?;
    let scene = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/render/scene.blend").canonicalize()?;
    let sandbox = NativeSandbox::probe();
    let mut cells = Vec::new();
    for threads in [1, 2] {
        for sandboxed in [false, true] {
            let seconds = match (&sandbox, sandboxed) {
                (Err(error), true) => Err(anyhow::anyhow!("no native sandbox: {error}")),
                _ => Ok(Vec::with_capacity(runs)),
            };
            cells.push(Cell { threads, sandboxed, seconds });
        }
    }
    let mut digests = Vec::new();
    // Round by round, every setting once per round, so that a busy spell slows them alike.
    for _ in 0..runs {
        for cell in &mut cells {
            let Ok(seconds) = &mut cell.seconds else { continue };
            let settings = RenderSettings { samples: 16, threads: cell.threads, resolution: None, seed: 0 };
            let rendered = match (&sandbox, cell.sandboxed) {
                (Ok(sandbox), true) => in_sandbox(sandbox, &scene, &settings),
                _ => direct(&scene, &settings),
            };
            match rendered.and_then(|(time, png)| Ok((time, pixel_digest(&png)?))) {
                Ok((time, digest)) => {
                    seconds.push(time.as_secs_f64());
                    digests.push(digest);
                }
                Err(error) => cell.seconds = Err(error),
            }
        }
    }
    for cell in &mut cells {
        if let Ok(seconds) = &mut cell.seconds {
            seconds.sort_by(f64::total_cmp);
        }
    }
    digests.sort();
    digests.dedup();
    if json {
        println!("{}", json_report(&version.to_string(), runs, &cells, &digests));
        return Ok(());
    }
    print_markdown(&version.to_string(), runs, cells)?;
    ensure!(digests.len() == 1, "the renders disagree: {} pixel digests", digests.len());
    println!("\nEvery render's pixel digest: {}", hex::encode(digests[0]));
    Ok(())
}

fn how(sandboxed: bool) -> &'static str {
    if sandboxed { "sandboxed" } else { "direct" }
}

fn json_report(version: &str, runs: usize, cells: &[Cell], digests: &[[u8; 32]]) -> Value {
    let cells: Vec<Value> = cells
        .iter()
        .map(|cell| match &cell.seconds {
            Ok(seconds) => json!({ "threads": cell.threads, "run": how(cell.sandboxed), "seconds": seconds }),
            Err(error) => json!({ "threads": cell.threads, "run": how(cell.sandboxed), "error": format!("{error:#}") }),
        })
        .collect();
    let digests: Vec<String> = digests.iter().map(hex::encode).collect();
    json!({ "blender": version, "runs": runs, "cells": cells, "pixel_digests": digests })
}

fn print_markdown(version: &str, runs: usize, cells: Vec<Cell>) -> anyhow::Result<()> {
    println!("Blender {version}, frame 1, 160x120, 16 samples; wall seconds per frame over {runs} runs\n");
    println!("| threads | run | min | median | max |");
    println!("|---|---|---|---|---|");
    for cell in cells {
        let seconds = cell.seconds?;
        let (min, median, max) = (seconds[0], seconds[seconds.len() / 2], seconds[seconds.len() - 1]);
        println!("| {} | {} | {min:.2} | {median:.2} | {max:.2} |", cell.threads, how(cell.sandboxed));
    }
    Ok(())
}

/// Frame 1 rendered by Blender directly: its wall time and PNG.
fn direct(scene: &Path, settings: &RenderSettings) -> anyhow::Result<(Duration, Vec<u8>)> {
    let out = tempfile::tempdir()?;
    let slice = RenderSlice::frame(1)?;
    let args = render_args(scene, out.path(), &slice, settings)?;
    let start = Instant::now();
    let output = Command::new(BLENDER).args(&args).output()?;
    let time = start.elapsed();
    if !output.status.success() {
        bail!("blender failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok((time, std::fs::read(out.path().join(slice.output_file_name()))?))
}

/// Frame 1 rendered in the native sandbox, the scene in `/in`: the sandbox's wall time
/// (bubblewrap's start included) and the PNG.
fn in_sandbox(sandbox: &NativeSandbox, scene: &Path, settings: &RenderSettings) -> anyhow::Result<(Duration, Vec<u8>)> {
    let (input, output) = (tempfile::tempdir()?, tempfile::tempdir()?);
    std::fs::copy(scene, input.path().join("scene.blend"))?;
    let slice = RenderSlice::frame(1)?;
    let run = NativeRun {
        program: BLENDER,
        args: render_args(Path::new("/in/scene.blend"), Path::new("/out"), &slice, settings)?,
        env: SANDBOX_ENV.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
        input_dir: input.path(),
        output_dir: output.path(),
        read_only_binds: SANDBOX_READ_ONLY_PATHS
            .iter()
            .map(|path| ReadOnlyBind { host_path: PathBuf::from(path), sandbox_path: PathBuf::from(path) })
            .collect(),
        limits: NativeLimits {
            memory_bytes: 2 << 30,
            pids: 256,
            wall_clock: Duration::from_secs(120),
            ..NativeLimits::default()
        },
    };
    let report = sandbox.run(&run)?;
    ensure!(report.exit_code == 0, "blender failed: {}", String::from_utf8_lossy(&report.stderr));
    Ok((report.wall_time, std::fs::read(output.path().join(slice.output_file_name()))?))
}
