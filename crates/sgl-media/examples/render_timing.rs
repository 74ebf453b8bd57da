//! Seconds per frame of the example scene (`examples/render/scene.blend`) at the test settings
//! (160×120, 16 samples), at 1 and 2 threads, run directly and in the native sandbox the way the
//! node runs it; every render of a setting must give the same pixel digest. Prints a Markdown
//! table for `examples/render/README.md`:
//!
//! ```sh
//! cargo run -p sgl-media --example render_timing -- [RUNS]   # RUNS per cell, default 5
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sgl_media::blender::{RenderSettings, RenderSlice, SANDBOX_ENV, SANDBOX_READ_ONLY_PATHS, detect, render_args};
use sgl_media::pixels::pixel_digest;
use sgl_sandbox::native::{NativeLimits, NativeRun, NativeSandbox, ReadOnlyBind};

const BLENDER: &str = "/usr/bin/blender";

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(5);
    let blender = Path::new(BLENDER);
    let version = detect(blender).context("blender")?;
    let scene = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/render/scene.blend").canonicalize()?;
    let sandbox = NativeSandbox::probe()?;
    println!("Blender {version}, frame 1, 160x120, 16 samples; wall seconds per frame over {runs} runs\n");
    println!("| threads | run | min | median | max |");
    println!("|---|---|---|---|---|");
    let mut digests = Vec::new();
    for threads in [1, 2] {
        let settings = RenderSettings { samples: 16, threads, resolution: None, seed: 0 };
        for sandboxed in [false, true] {
            let mut times = Vec::new();
            for _ in 0..runs {
                let (time, png) =
                    if sandboxed { in_sandbox(&sandbox, &scene, &settings)? } else { direct(&scene, &settings)? };
                times.push(time);
                digests.push(pixel_digest(&png)?);
            }
            times.sort();
            let seconds = |time: Duration| format!("{:.2}", time.as_secs_f64());
            let (min, median, max) = (times[0], times[times.len() / 2], times[times.len() - 1]);
            let how = if sandboxed { "sandboxed" } else { "direct" };
            println!("| {threads} | {how} | {} | {} | {} |", seconds(min), seconds(median), seconds(max));
        }
    }
    digests.dedup();
    ensure!(digests.len() == 1, "the renders disagree: {} pixel digests", digests.len());
    println!("\nEvery render's pixel digest: {}", hex::encode(digests[0]));
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
