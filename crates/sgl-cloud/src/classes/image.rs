//! `sgl-cloud image`: an `image` job of an `sgl-image` pipeline (`crates/sgl-image/README.md`):
//! the pipeline file is the entry, every file of its directory goes into the bundle, and each
//! slice makes a few images.
//!
//! The node runs `sgl-image generate --pipeline /in/<entry> --out /out --threads 1 <job args>
//! <slice args>`. The job's arguments are `--prompt TEXT` (when given); slice `i`'s are
//! `--seed S+i --count K` (the worker has no image offset, and image `j` of a run is noise
//! stream `j` of its seed, so each slice gets a seed of its own). The images come back as
//! `OUT/slice-i/image-000j.png` and are copied to `OUT/image-NNNN.png`, numbered across the
//! job: image `n` is image `n mod K` of `sgl-image generate --seed S+n/K --count K`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use sgl_client::Client;
use sgl_protocol::compute::JobClass;
use sgl_protocol::compute::bundle::{MAX_SLICES, ResourceLimits};

use super::{BundlePlan, CommonArgs, Content, ManifestParts, Summary};
use crate::bundle_dir;
use crate::jobs::Written;
use crate::requester_key::KeyLookup;

/// The engine the manifest pins by default (nodes announce it as `sgl-image version` reports).
pub(crate) const DEFAULT_ENGINE: &str = "onnxruntime 1.32.0";
/// Work metered per image: the unit the grid's image price is per.
pub(crate) const WORK_PER_IMAGE: u64 = 1_000_000_000;

/// What the command does, for `image --help`.
pub(crate) const ABOUT: &str = "\
Generate images on the grid with an sgl-image pipeline (ONNX Runtime on the nodes).

PIPELINE is a pipeline.json (see crates/sgl-image/README.md); every file of its directory (the
ONNX models it names) goes into the bundle. The images are split into slices of --per-slice
images; slice i runs with seed --seed + i, so each image has a seed of its own and is the same
whichever node makes it. Only nodes with exactly --engine lease the job, and redundant nodes
must agree on the decoded pixels. An image is 10^9 work units (the grid's image price is per
image).

The outputs land in OUT/slice-N/image-000J.png and are copied to OUT/image-NNNN.png, numbered
across the job: image n is image n mod K of `sgl-image generate --seed S+n/K --count K`.";

/// Examples for `image --help`.
pub(crate) const EXAMPLE: &str = "\
Example:
  sgl-cloud image terrain/pipeline.json --images 8 --seed 7 -o heightmaps
  sgl-cloud image tiny/pipeline.json --prompt \"a red hill\" --images 2 --per-slice 1 --redundancy 2 -o pics";

/// `image` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct ImageArgs {
    /// The pipeline file; every file of its directory goes into the bundle.
    #[arg(value_name = "PIPELINE")]
    pub(crate) pipeline: PathBuf,
    /// Images to make in all.
    #[arg(long, default_value_t = 1)]
    pub(crate) images: u64,
    /// Images per slice (the last slice makes what is left).
    #[arg(long, default_value_t = 4)]
    pub(crate) per_slice: u64,
    /// The first slice's seed; slice i uses seed + i.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// The prompt, for text-to-image pipelines.
    #[arg(long)]
    pub(crate) prompt: Option<String>,
    /// The engine and version every run must use.
    #[arg(long, default_value = DEFAULT_ENGINE)]
    pub(crate) engine: String,
    /// The most you pay, micro-USD per image (10^9 work units).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) max_price: u64,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// The bundle: the pipeline's directory, one slice per `--per-slice` images.
pub(crate) fn image_bundle(args: &ImageArgs) -> anyhow::Result<BundlePlan> {
    let counts = slice_counts(args.images, args.per_slice)?;
    if args.seed.checked_add(counts.len() as u64 - 1).is_none() {
        bail!("--seed {} leaves no room for {} slice seeds below 2^64", args.seed, counts.len());
    }
    let (dir, entry) = pipeline_parts(&args.pipeline)?;
    let files = directory_files(&dir)?;
    let slices = counts.iter().zip(0..).map(|(count, i)| {
        let seed = args.seed + i;
        vec!["--seed".to_owned(), seed.to_string(), "--count".to_owned(), count.to_string()]
    });
    let most = counts.iter().copied().max().unwrap_or(1);
    let parts = ManifestParts {
        class: JobClass::Image,
        entry,
        args: args.prompt.iter().flat_map(|p| ["--prompt".to_owned(), p.clone()]).collect(),
        slices: slices.collect(),
        limits: ResourceLimits {
            fuel: most * WORK_PER_IMAGE,
            memory_mb: 1024,
            wall_secs: args.common.wall_secs,
            output_mb: 64,
            output_files: u32::try_from(most).unwrap_or(u32::MAX),
        },
        max_price: args.max_price,
        seed: args.seed,
        engine: Some(args.engine.clone()),
    };
    Ok(BundlePlan { manifest: super::manifest(parts, &args.common)?, files, inputs: BTreeMap::new() })
}

/// How many images each slice makes: `per_slice` each, the last what is left.
pub(crate) fn slice_counts(images: u64, per_slice: u64) -> anyhow::Result<Vec<u64>> {
    if images == 0 {
        bail!("--images must be at least 1");
    }
    if !(1..=1024).contains(&per_slice) {
        bail!("--per-slice must be 1 to 1024");
    }
    let slices = images.div_ceil(per_slice);
    if slices > MAX_SLICES as u64 {
        bail!("{images} images at {per_slice} per slice is {slices} slices; a job has at most {MAX_SLICES}");
    }
    Ok((0..slices).map(|i| per_slice.min(images - i * per_slice)).collect())
}

/// The pipeline's directory and its file name (the entry).
fn pipeline_parts(pipeline: &Path) -> anyhow::Result<(PathBuf, String)> {
    if !pipeline.is_file() {
        bail!("{}: no such pipeline file", pipeline.display());
    }
    let entry = pipeline.file_name().and_then(|n| n.to_str()).context("the pipeline's file name is not UTF-8")?;
    let dir = pipeline.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((dir.to_owned(), entry.to_owned()))
}

/// Every regular file under `dir` (symlinks to files followed), by `/`-joined relative path.
/// The names a bundle keeps for itself are refused at the top.
pub(crate) fn directory_files(dir: &Path) -> anyhow::Result<BTreeMap<String, Content>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![(String::new(), dir.to_owned())];
    while let Some((prefix, current)) = stack.pop() {
        for entry in fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))? {
            let path = entry.with_context(|| format!("reading {}", current.display()))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                bail!("{} has a name that is not UTF-8", path.display());
            };
            let reserved = [bundle_dir::MANIFEST, bundle_dir::SIGNATURE, bundle_dir::INPUTS];
            if prefix.is_empty() && reserved.contains(&name) {
                bail!("{} is in the pipeline's directory; a bundle keeps that name for itself", path.display());
            }
            let relative = format!("{prefix}{name}");
            let kind = fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?.file_type();
            if kind.is_dir() {
                stack.push((format!("{relative}/"), path));
            } else if path.is_file() {
                files.insert(relative, Content::File(path));
            } else {
                bail!("{} is not a regular file or directory", path.display());
            }
        }
    }
    Ok(files)
}

/// Runs `image`: build, submit, wait, download, summarise.
pub(crate) async fn run(client: &Client, args: &ImageArgs, key_defaults: &KeyLookup, json: bool) -> anyhow::Result<()> {
    let plan = image_bundle(args)?;
    let finished = super::run_plan(client, &plan, &args.common, key_defaults, json).await?;
    let counts = slice_counts(args.images, args.per_slice)?;
    let summary = summarise(&finished.written, &counts, &finished.dir)?;
    super::print(&finished, summary, json)
}

/// Each slice's images copied to `out/image-NNNN.png`, numbered across the job.
pub(crate) fn summarise(written: &[Written], counts: &[u64], out: &Path) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let mut number = 0u64;
    for (slice, count) in (0..).zip(counts) {
        for index in 0..*count {
            let source = super::output_file(written, slice, &format!("image-{index:04}.png"))?;
            let target = out.join(format!("image-{number:04}.png"));
            super::copy_product(source, &target)?;
            summary.files.push(target);
            number += 1;
        }
    }
    summary.lines.push(format!("{number} image(s):"));
    summary.fields.insert("images".into(), number.into());
    Ok(summary)
}

#[cfg(test)]
mod tests;
