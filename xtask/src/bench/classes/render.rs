//! The render class's rows: seconds per frame of `examples/render/scene.blend` (frame 1, its
//! 160×120, 16 samples) at 1 and 2 threads, Blender run directly and in the native sandbox as
//! the node runs it, through sgl-media's `render_timing` example (`--json`). A setting that
//! cannot run here (no usable bubblewrap) is a row with the reason.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::Value;

use super::{Bench, Figure, Measured, RUNS, Row, threads};
use crate::command::output;

/// Where `render_timing` (and the sandbox, which binds only `/usr`) expects Blender.
const BLENDER: &str = "/usr/bin/blender";

/// `render_timing RUNS --json`, one row per setting.
pub(super) fn measure(bench: &Bench) -> Measured {
    if !Path::new(BLENDER).is_file() {
        let note = format!("skipped: Blender is not installed at {BLENDER} (`.ci/install-blender` installs it)");
        return Ok((vec![Row::note("render", "seconds per frame", note)], vec![]));
    }
    let timing = bench.example("sgl-media", "render_timing")?;
    let mut command = Command::new(timing);
    command.args([RUNS.to_string(), "--json".to_owned()]);
    let report: Value = serde_json::from_str(output(&mut command)?.trim()).context("parsing render_timing's report")?;
    let mut rows = Vec::new();
    for cell in report["cells"].as_array().context("cells in render_timing's report")? {
        let run = cell["run"].as_str().unwrap_or("?");
        let what = format!("frame 1, {}, {run}", threads(cell["threads"].as_u64().unwrap_or(0)));
        let figure = match (cell["seconds"].as_array(), cell["error"].as_str()) {
            (Some(seconds), _) => Figure::Spread {
                values: seconds.iter().filter_map(Value::as_f64).collect(),
                unit: "s / frame",
                decimals: 2,
            },
            (None, error) => Figure::Note(format!("skipped: {}", error.unwrap_or("no figures"))),
        };
        let command = format!("cargo run --release -p sgl-media --example render_timing -- {RUNS} --json");
        rows.push(Row::new("render", what, command, figure));
    }
    Ok((rows, vec![digest_note(&report)]))
}

/// Blender's version and whether every render gave the same pixels.
fn digest_note(report: &Value) -> String {
    let version = report["blender"].as_str().unwrap_or("unknown");
    let digests: Vec<&str> =
        report["pixel_digests"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let agreement = match digests.as_slice() {
        [one] => format!("every render had the pixel digest `{one}`"),
        many => format!("**the renders disagree: {} distinct pixel digests**", many.len()),
    };
    format!("render: Blender {version}, Cycles on the CPU; {agreement}.")
}
