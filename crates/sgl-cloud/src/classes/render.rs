//! `sgl-cloud render`: a `render` job of a Blender scene (Cycles on the nodes' CPUs): the
//! `.blend` file is the entry, each slice a frame or a band of a frame's rows.
//!
//! The job's arguments are `--samples N [--resolution WxH] [--seed S]`, each slice's
//! `--frame N [--rows START-END]`, exactly what the node's render runner takes (`sgl-media`'s
//! `blender` module builds Blender's command line from them). A slice's output is Blender's
//! `frame_0001.png`, or `frame_0001_rows_0-60.png` for a band; after the job the whole frames
//! are copied, and the bands merged (by `sgl_media::merge`), into `OUT/frame_0001.png` ….

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use sgl_client::Client;
use sgl_media::blender::{MAX_RESOLUTION, MAX_SAMPLES, RenderSlice};
use sgl_media::merge::{PngBand, merge_png_bands};
use sgl_protocol::compute::JobClass;
use sgl_protocol::compute::bundle::{MAX_SLICES, ResourceLimits};

use super::{BundlePlan, CommonArgs, Content, ManifestParts, Summary};
use crate::jobs::Written;
use crate::requester_key::KeyLookup;

/// The engine the manifest pins by default (Debian 12's Blender, as nodes announce it).
pub(crate) const DEFAULT_ENGINE: &str = "blender 3.4.1";
/// The fuel limit (pixel samples) of a slice when the resolution is the scene's own, unknown
/// here: a 4K frame at 1,200 samples.
pub(crate) const UNKNOWN_SIZE_WORK: u64 = 10_000_000_000;

/// What the command does, for `render --help`.
pub(crate) const ABOUT: &str = "\
Render frames of a Blender scene on the grid (Cycles on the nodes' CPUs).

SCENE is a .blend file (pack its textures into it); it runs with Blender's scripts disabled.
Each frame is a slice, or with --bands B, B slices of its rows, which needs --resolution (the
bands are cut from the frame's height). Redundant nodes must agree on the decoded pixels of
the same slice, and bands are merged only after they are accepted. A slice is billed by its
pixel samples (width × rows × samples); with --resolution the escrow is exactly that, without
it a generous limit is held and what is not used goes back.

The outputs land in OUT/slice-N/frame_NNNN.png (or frame_NNNN_rows_A-B.png) and the frames,
whole or merged, in OUT/frame_NNNN.png.";

/// Examples for `render --help`.
pub(crate) const EXAMPLE: &str = "\
Example:
  sgl-cloud render examples/render/scene.blend --frames 1-4 --samples 16 -o frames
  sgl-cloud render scene.blend --frames 1 --resolution 320x240 --bands 4 --redundancy 2 -o frame1";

/// `render` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct RenderArgs {
    /// The scene, a .blend file.
    #[arg(value_name = "SCENE")]
    pub(crate) scene: PathBuf,
    /// The frames: N, A-B, or a list of them (1,3,5-8).
    #[arg(long, default_value = "1")]
    pub(crate) frames: String,
    /// Cycles samples per pixel.
    #[arg(long, default_value_t = 16)]
    pub(crate) samples: u32,
    /// WxH in pixels, replacing the scene's resolution; needed with --bands above 1.
    #[arg(long, value_name = "WxH", value_parser = parse_resolution)]
    pub(crate) resolution: Option<(u32, u32)>,
    /// Cycles' seed (when not given, the node's default).
    #[arg(long)]
    pub(crate) seed: Option<u32>,
    /// Bands of rows per frame, each its own slice.
    #[arg(long, default_value_t = 1)]
    pub(crate) bands: u32,
    /// The engine and version every run must use.
    #[arg(long, default_value = DEFAULT_ENGINE)]
    pub(crate) engine: String,
    /// The most you pay, micro-USD per 10^9 pixel samples.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) max_price: u64,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// A `--resolution` that is not `WxH` with each side 1 to Blender's largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected WIDTHxHEIGHT, each 1 to {MAX_RESOLUTION} (e.g. 320x240)")]
pub(crate) struct ResolutionError;

/// `WxH`, each side 1 to Blender's largest.
pub(crate) fn parse_resolution(text: &str) -> Result<(u32, u32), ResolutionError> {
    let side =
        |part: Option<&str>| part.and_then(|p| p.parse::<u32>().ok()).filter(|s| (1..=MAX_RESOLUTION).contains(s));
    let mut parts = text.split('x');
    match (side(parts.next()), side(parts.next()), parts.next()) {
        (Some(width), Some(height), None) => Ok((width, height)),
        _ => Err(ResolutionError),
    }
}

/// The frames of `N`, `A-B` and comma lists of them, in the order given, each once.
pub(crate) fn parse_frames(text: &str) -> anyhow::Result<Vec<u32>> {
    let mut frames = Vec::new();
    let mut seen = BTreeSet::new();
    for part in text.split(',') {
        let number = |t: &str| t.trim().parse::<u32>().with_context(|| format!("--frames: {part:?} is not N or A-B"));
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if first > last {
            bail!("--frames: {part:?} runs backwards");
        }
        if u64::from(last - first) + frames.len() as u64 >= MAX_SLICES as u64 {
            bail!("--frames {text:?} is more than {MAX_SLICES} frames, a job's most slices");
        }
        for frame in first..=last {
            if !seen.insert(frame) {
                bail!("--frames: frame {frame} is given twice");
            }
            frames.push(frame);
        }
    }
    Ok(frames)
}

/// Rows `start..end` of each of `bands` bands of a frame `height` rows tall, top to bottom,
/// as even as whole rows allow.
pub(crate) fn band_rows(height: u32, bands: u32) -> anyhow::Result<Vec<(u32, u32)>> {
    if !(1..=height).contains(&bands) {
        bail!("--bands must be 1 to the frame's height ({height} rows)");
    }
    let edge = |band: u32| u32::try_from(u64::from(band) * u64::from(height) / u64::from(bands)).unwrap_or(height);
    Ok((0..bands).map(|band| (edge(band), edge(band + 1))).collect())
}

/// The slices, frame by frame, each frame's bands top to bottom.
pub(crate) fn render_slices(args: &RenderArgs) -> anyhow::Result<Vec<RenderSlice>> {
    let frames = parse_frames(&args.frames)?;
    let bands = match (args.bands, args.resolution) {
        (1, _) => None,
        (0, _) => bail!("--bands must be at least 1"),
        (bands, None) => bail!(
            "--bands {bands} needs --resolution WxH: the bands are cut from the frame's height, which only \
             --resolution fixes"
        ),
        (bands, Some((_, height))) => Some(band_rows(height, bands)?),
    };
    let mut slices = Vec::new();
    for frame in frames {
        match &bands {
            None => slices.push(RenderSlice::frame(frame)?),
            Some(rows) => {
                for (start, end) in rows {
                    slices.push(RenderSlice::band(frame, *start, *end)?);
                }
            }
        }
    }
    Ok(slices)
}

/// A slice's own arguments.
pub(crate) fn slice_args(slice: &RenderSlice) -> Vec<String> {
    let mut args = vec!["--frame".to_owned(), slice.frame_number().to_string()];
    if let Some((start, end)) = slice.rows() {
        args.extend(["--rows".to_owned(), format!("{start}-{end}")]);
    }
    args
}

/// The bundle: the scene, one slice per frame or band.
pub(crate) fn render_bundle(args: &RenderArgs) -> anyhow::Result<BundlePlan> {
    if !(1..=MAX_SAMPLES).contains(&args.samples) {
        bail!("--samples must be 1 to {MAX_SAMPLES}");
    }
    let slices = render_slices(args)?;
    if !args.scene.is_file() {
        bail!("{}: no such scene file", args.scene.display());
    }
    let entry = args.scene.file_name().and_then(|n| n.to_str()).context("the scene's file name is not UTF-8")?;
    let mut job_args = vec!["--samples".to_owned(), args.samples.to_string()];
    if let Some((width, height)) = args.resolution {
        job_args.extend(["--resolution".to_owned(), format!("{width}x{height}")]);
    }
    if let Some(seed) = args.seed {
        job_args.extend(["--seed".to_owned(), seed.to_string()]);
    }
    let parts = ManifestParts {
        class: JobClass::Render,
        entry: entry.to_owned(),
        args: job_args,
        slices: slices.iter().map(slice_args).collect(),
        limits: ResourceLimits {
            fuel: slice_work(args.resolution, &slices, args.samples),
            memory_mb: 1024,
            wall_secs: args.common.wall_secs,
            output_mb: 64,
            output_files: 2,
        },
        max_price: args.max_price,
        seed: args.seed.map_or(0, u64::from),
        engine: Some(args.engine.clone()),
    };
    Ok(BundlePlan {
        manifest: super::manifest(parts, &args.common)?,
        files: BTreeMap::from([(entry.to_owned(), Content::File(args.scene.clone()))]),
        inputs: BTreeMap::new(),
    })
}

/// The most work one slice is billed: the largest slice's pixel samples when the resolution
/// is known, else [`UNKNOWN_SIZE_WORK`].
pub(crate) fn slice_work(resolution: Option<(u32, u32)>, slices: &[RenderSlice], samples: u32) -> u64 {
    let Some((width, height)) = resolution else { return UNKNOWN_SIZE_WORK };
    let rows = |slice: &RenderSlice| slice.rows().map_or(height, |(start, end)| end - start);
    let tallest = slices.iter().map(rows).max().unwrap_or(height);
    sgl_media::blender::work(width, tallest, samples)
}

/// Runs `render`: build, submit, wait, download, merge, summarise.
pub(crate) async fn run(
    client: &Client,
    args: &RenderArgs,
    key_defaults: &KeyLookup,
    json: bool,
) -> anyhow::Result<()> {
    let plan = render_bundle(args)?;
    let finished = super::run_plan(client, &plan, &args.common, key_defaults, json).await?;
    let slices = render_slices(args)?;
    let height = args.resolution.map(|(_, height)| height);
    let summary = summarise(&finished.written, &slices, height, &finished.dir)?;
    super::print(&finished, summary, json)
}

/// Every frame into `out/frame_NNNN.png`: a whole frame's slice copied, a frame's bands merged
/// (which needs the frame's `height`).
pub(crate) fn summarise(
    written: &[Written],
    slices: &[RenderSlice],
    height: Option<u32>,
    out: &Path,
) -> anyhow::Result<Summary> {
    let mut frames: Vec<(u32, Vec<(u32, RenderSlice)>)> = Vec::new();
    for (index, slice) in (0..).zip(slices) {
        match frames.last_mut() {
            Some((frame, parts)) if *frame == slice.frame_number() => parts.push((index, *slice)),
            _ => frames.push((slice.frame_number(), vec![(index, *slice)])),
        }
    }
    let mut summary = Summary::default();
    for (frame, parts) in &frames {
        let target = out.join(RenderSlice::frame(*frame)?.output_file_name());
        match parts.as_slice() {
            [(index, slice)] if slice.rows().is_none() => {
                super::copy_product(super::output_file(written, *index, &slice.output_file_name())?, &target)?;
            }
            _ => merge_frame(written, parts, height, &target)?,
        }
        summary.files.push(target);
    }
    summary.lines.push(format!("{} frame(s):", frames.len()));
    summary.fields.insert("frames".into(), frames.len().into());
    Ok(summary)
}

/// Reads a frame's downloaded bands and writes them merged into `target`.
fn merge_frame(
    written: &[Written],
    parts: &[(u32, RenderSlice)],
    height: Option<u32>,
    target: &Path,
) -> anyhow::Result<()> {
    let height = height.context("bands need the frame's height (--resolution)")?;
    let mut pngs = Vec::new();
    for (index, slice) in parts {
        let path = super::output_file(written, *index, &slice.output_file_name())?;
        let (start, end) = slice.rows().context("a whole frame among bands")?;
        pngs.push((start, end, std::fs::read(path).with_context(|| format!("reading {}", path.display()))?));
    }
    let bands: Vec<PngBand<'_>> =
        pngs.iter().map(|(start, end, png)| PngBand { start: *start, end: *end, png }).collect();
    let merged =
        merge_png_bands(&bands, height).with_context(|| format!("merging the bands of {}", target.display()))?;
    std::fs::write(target, merged).with_context(|| format!("writing {}", target.display()))
}

#[cfg(test)]
mod tests;
