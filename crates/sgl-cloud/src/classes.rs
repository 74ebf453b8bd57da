//! `sgl-cloud train|image|render`: one command per job class that builds the class's bundle
//! from a few flags, signs it, runs it on the grid through the same path as `jobs submit`
//! (upload, submit, follow with progress on stderr), downloads the verified outputs as `jobs
//! result` does (`OUT/slice-N/…`) and adds the class's products at the top of `OUT`.
//!
//! The classes only differ in the bundle they plan ([`BundlePlan`]) and in what they make of
//! the downloaded outputs; [`run_plan`] is everything in between.

pub(crate) mod image;
pub(crate) mod render;
pub(crate) mod train;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};
use sgl_client::{Client, Error};
use sgl_protocol::api::compute::JobView;
use sgl_protocol::compute::JobClass;
use sgl_protocol::compute::bundle::{
    BundleFormat, BundleManifest, MAX_REDUNDANCY, MAX_SLICES, ResourceLimits, SignedBundle, SliceSpec,
};
use sgl_protocol::identity::NodeIdentity;

use crate::bundle::{KeyArg, requester_key};
use crate::jobs::{self, Written};
use crate::requester_key::KeyLookup;
use crate::{bundle_dir, micros_to_usd, output};

/// Flags every class command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct CommonArgs {
    /// Where to write the outputs (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Nodes of different operators that run each slice; their results must agree.
    #[arg(long, default_value_t = 1)]
    pub(crate) redundancy: u32,
    /// Each slice's wall-clock limit, seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) wall_secs: u32,
    /// Build the bundle in DIR (new or empty) and keep it; by default it is built in a
    /// temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    pub(crate) bundle_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) key: KeyArg,
}

/// Where a bundle file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// Bytes built into the binary.
    Embedded(&'static [u8]),
    /// A file on this machine, copied into the bundle.
    File(PathBuf),
}

/// A bundle to build: its manifest (whose `files` and `inputs` signing fills in) and where
/// each file's and input's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BundlePlan {
    /// The manifest, with `files` and `inputs` empty.
    pub(crate) manifest: BundleManifest,
    /// The files, by path in the bundle.
    pub(crate) files: BTreeMap<String, Content>,
    /// The inputs, by path under `in/` (the job sees them under `/in`).
    pub(crate) inputs: BTreeMap<String, Content>,
}

/// What a class's manifest has besides its files, inputs, format and secrets.
#[derive(Debug, Clone)]
pub(crate) struct ManifestParts {
    /// The class.
    pub(crate) class: JobClass,
    /// The entry file.
    pub(crate) entry: String,
    /// The job's arguments.
    pub(crate) args: Vec<String>,
    /// Each slice's own arguments.
    pub(crate) slices: Vec<Vec<String>>,
    /// Per-run limits.
    pub(crate) limits: ResourceLimits,
    /// The most paid, micro-USD per 10^9 work units.
    pub(crate) max_price: u64,
    /// The manifest's seed.
    pub(crate) seed: u64,
    /// The native engine, for `image` and `render`.
    pub(crate) engine: Option<String>,
}

/// The manifest of `parts` with `common`'s redundancy, after checking the counts the protocol
/// bounds (so the user hears about them before anything is written).
pub(crate) fn manifest(parts: ManifestParts, common: &CommonArgs) -> anyhow::Result<BundleManifest> {
    if !(1..=MAX_REDUNDANCY).contains(&common.redundancy) {
        bail!("--redundancy must be 1 to {MAX_REDUNDANCY}");
    }
    if !(1..=MAX_SLICES).contains(&parts.slices.len()) {
        bail!("this makes {} slices; a job has 1 to {MAX_SLICES}", parts.slices.len());
    }
    if common.wall_secs == 0 {
        bail!("--wall-secs must be above zero");
    }
    if let Some(engine) = &parts.engine
        && !sgl_protocol::compute::bundle::is_engine_name(engine)
    {
        bail!("--engine {engine:?} must be a name and a version, e.g. \"blender 3.4.1\"");
    }
    Ok(BundleManifest {
        format: BundleFormat::V1,
        class: parts.class,
        entry: parts.entry,
        args: parts.args,
        files: BTreeMap::new(),
        inputs: BTreeMap::new(),
        limits: ResourceLimits { wall_secs: common.wall_secs, ..parts.limits },
        slices: parts.slices.into_iter().map(|args| SliceSpec { args }).collect(),
        redundancy: common.redundancy,
        max_price_micros_per_gfuel: parts.max_price,
        seed: parts.seed,
        secrets: Vec::new(),
        model: None,
        engine: parts.engine,
    })
}

impl BundlePlan {
    /// Writes the bundle into `dir` (which must be empty), signs it with `identity` and verifies
    /// it as `jobs submit` does.
    pub(crate) fn write_signed(&self, dir: &Path, identity: &NodeIdentity) -> anyhow::Result<SignedBundle> {
        let mut text = serde_json::to_vec_pretty(&self.manifest).context("serialising the manifest")?;
        text.push(b'\n');
        fs::write(dir.join(bundle_dir::MANIFEST), text).with_context(|| format!("writing into {}", dir.display()))?;
        let inputs = dir.join(bundle_dir::INPUTS);
        fs::create_dir_all(&inputs).with_context(|| format!("creating {}", inputs.display()))?;
        for (name, content) in &self.files {
            place(content, &bundle_dir::file_path(dir, name, false))?;
        }
        for (name, content) in &self.inputs {
            place(content, &bundle_dir::file_path(dir, name, true))?;
        }
        bundle_dir::sign(dir, identity, None)?;
        bundle_dir::verify(dir).with_context(|| format!("the bundle built in {} does not verify", dir.display()))
    }
}

/// Writes `content` at `target`, creating its directory.
fn place(content: &Content, target: &Path) -> anyhow::Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    match content {
        Content::Embedded(bytes) => fs::write(target, bytes).with_context(|| format!("writing {}", target.display())),
        Content::File(source) => fs::copy(source, target)
            .map(|_| ())
            .with_context(|| format!("copying {} into the bundle", source.display())),
    }
}

/// The bundle's directory: `--bundle-dir` (new or empty, kept), or a temporary one.
#[derive(Debug)]
enum BundleHome {
    Kept(PathBuf),
    Temporary(tempfile::TempDir),
}

impl BundleHome {
    fn new(kept: Option<&Path>) -> anyhow::Result<Self> {
        let Some(dir) = kept else {
            let temporary = tempfile::Builder::new().prefix("sgl-cloud-bundle-").tempdir();
            return Ok(Self::Temporary(temporary.context("creating a temporary bundle directory")?));
        };
        if dir.exists() && fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
            bail!("--bundle-dir {} is not empty; give a new or empty directory", dir.display());
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self::Kept(dir.to_owned()))
    }

    fn path(&self) -> &Path {
        match self {
            Self::Kept(dir) => dir,
            Self::Temporary(dir) => dir.path(),
        }
    }
}

/// A class job that ended `done`, its outputs downloaded.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The job as it ended.
    pub(crate) job: JobView,
    /// `OUT`.
    pub(crate) dir: PathBuf,
    /// Every output, as written under `OUT/slice-N/`.
    pub(crate) written: Vec<Written>,
}

/// Builds, signs and verifies `plan`'s bundle, submits it and waits for it through `jobs`
/// (exactly as `jobs submit --wait`), and downloads its outputs into `common.out`. A job that
/// does not end `done` is a [`jobs::JobEnded`] error.
pub(crate) async fn run_plan(
    client: &Client,
    plan: &BundlePlan,
    common: &CommonArgs,
    key_defaults: &KeyLookup,
    json: bool,
) -> anyhow::Result<Finished> {
    if !client.has_api_key() {
        return Err(Error::MissingApiKey.into());
    }
    let home = BundleHome::new(common.bundle_dir.as_deref())?;
    let key = requester_key(&common.key, key_defaults)?;
    let bundle = plan.write_signed(home.path(), &key.identity)?;
    if let BundleHome::Kept(dir) = &home {
        eprintln!("bundle {} kept in {}", bundle.hash, dir.display());
    }
    let job = jobs::submit_verified(client, home.path(), &bundle, &jobs::secrets::Secrets::new(), true).await?;
    drop(home);
    let job = jobs::require_done(job, json)?;
    fs::create_dir_all(&common.out).with_context(|| format!("creating {}", common.out.display()))?;
    let (_, written) = jobs::fetch(client, &job.id, &common.out).await?;
    Ok(Finished { job, dir: common.out.clone(), written })
}

/// What a class made of a finished job: its products at the top of `OUT`, the class's own
/// JSON fields and text lines.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// The products, in order.
    pub(crate) files: Vec<PathBuf>,
    /// Fields added to the JSON object.
    pub(crate) fields: serde_json::Map<String, Value>,
    /// Lines printed after the job's line, before the files.
    pub(crate) lines: Vec<String>,
}

/// Prints the finished job with its summary: one JSON object, or text.
pub(crate) fn print(finished: &Finished, summary: Summary, json: bool) -> anyhow::Result<()> {
    let (object, text) = describe(finished, summary);
    output(json, &object, || text)
}

/// The finished job with its summary, as the JSON object and as text.
fn describe(finished: &Finished, summary: Summary) -> (Value, String) {
    let job = &finished.job;
    let mut object = json!({
        "job_id": job.id, "state": job.state.as_str(), "class": job.class, "dir": finished.dir,
        "files": summary.files, "outputs": finished.written, "charged_micros": job.charged_micros,
        "refunded_micros": job.refunded_micros,
    });
    if let Some(fields) = object.as_object_mut() {
        fields.extend(summary.fields);
    }
    let mut lines = vec![format!(
        "job {} done: {} slice(s) × {}, charged ${:.6}, refunded ${:.6}",
        job.id,
        job.slice_count,
        job.redundancy,
        micros_to_usd(job.charged_micros),
        micros_to_usd(job.refunded_micros)
    )];
    lines.extend(summary.lines);
    lines.extend(summary.files.iter().map(|file| format!("  {}", file.display())));
    (object, lines.join("\n"))
}

/// The downloaded file of slice `slice` at output path `path`, or an error naming both.
pub(crate) fn output_file<'a>(written: &'a [Written], slice: u32, path: &str) -> anyhow::Result<&'a Path> {
    match written.iter().find(|w| w.slice == slice && w.path == path) {
        Some(file) => Ok(&file.file),
        None => bail!("slice {slice} has no output {path}"),
    }
}

/// Copies a downloaded output to `target` (a product at the top of `OUT`).
pub(crate) fn copy_product(source: &Path, target: &Path) -> anyhow::Result<()> {
    fs::copy(source, target).with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vector;
