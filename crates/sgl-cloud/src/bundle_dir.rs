//! A bundle as a directory: `manifest.json`, the files it lists (paths relative to the
//! directory), the inputs under `in/` (paths relative to `in/`), and `manifest.sig`, the
//! requester's signature over the manifest's exact bytes.
//!
//! [`init`] writes a starter manifest, [`sign`] hashes the directory into the manifest and signs
//! what it wrote, [`verify`] checks all of it. A bundle that does not verify is a
//! [`BundleProblem`] (the CLI exits 1 for those); anything else (I/O, a manifest that cannot
//! be signed) is an ordinary error.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::Value;
use sgl_protocol::compute::bundle::{
    BundleError, BundleFormat, BundleManifest, BundleSignature, MAX_REDUNDANCY, MAX_SLICES, ResourceLimits,
    SignedBundle, SliceSpec, check_path,
};
use sgl_protocol::compute::{Digest, JobClass};
use sgl_protocol::identity::{NodeIdentity, VerifyError};

/// The manifest's file name.
pub(crate) const MANIFEST: &str = "manifest.json";
/// The signature's file name.
pub(crate) const SIGNATURE: &str = "manifest.sig";
/// The inputs' directory.
pub(crate) const INPUTS: &str = "in";

/// Why a bundle directory does not verify; each names the first problem found.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BundleProblem {
    /// There is no `manifest.sig`.
    #[error("{SIGNATURE} is missing: sign the bundle first (sgl-cloud bundle sign DIR)")]
    Unsigned,
    /// `manifest.sig` is not a signature file.
    #[error("{SIGNATURE} is not a bundle signature: {0}")]
    SignatureFile(String),
    /// The signature does not verify over the manifest's bytes.
    #[error("{SIGNATURE} does not verify over {MANIFEST} (was it changed after signing?)")]
    Signature(#[source] VerifyError),
    /// The signed manifest is not acceptable.
    #[error(transparent)]
    Manifest(BundleError),
    /// A listed file or input is not there.
    #[error("{0} is listed in {MANIFEST} but missing")]
    Missing(String),
    /// A listed file or input has other bytes than the manifest says.
    #[error("{path} does not match {MANIFEST}: listed sha256 {listed}, found {found}")]
    Changed {
        /// The path, inputs under `in/`.
        path: String,
        /// The digest the manifest lists.
        listed: Digest,
        /// The digest of the file.
        found: Digest,
    },
    /// A file in the directory that the manifest does not list.
    #[error("{0} is in the bundle directory but not in {MANIFEST} (sign again, or remove it)")]
    Unlisted(String),
}

/// What `init` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitOptions {
    /// The entry file.
    pub(crate) entry: String,
    /// How many slices, each with empty arguments.
    pub(crate) slices: usize,
    /// How many nodes run each slice.
    pub(crate) redundancy: u32,
}

/// The starter manifest `init` writes.
pub(crate) fn starter_manifest(options: &InitOptions) -> BundleManifest {
    BundleManifest {
        format: BundleFormat::V1,
        class: JobClass::Wasm,
        entry: options.entry.clone(),
        args: Vec::new(),
        files: BTreeMap::new(),
        inputs: BTreeMap::new(),
        limits: ResourceLimits { fuel: 10_000_000_000, memory_mb: 64, wall_secs: 60, output_mb: 16, output_files: 16 },
        slices: vec![SliceSpec::default(); options.slices],
        redundancy: options.redundancy,
        max_price_micros_per_gfuel: 1000,
        seed: 0,
        secrets: Vec::new(),
        model: None,
        engine: None,
    }
}

/// Writes a starter `manifest.json` (and an empty `in/`) in `dir`, creating it; never
/// overwrites a manifest. Returns the manifest's path.
pub(crate) fn init(dir: &Path, options: &InitOptions) -> anyhow::Result<PathBuf> {
    check_path(&options.entry).with_context(|| format!("--entry {:?}", options.entry))?;
    if !(1..=MAX_SLICES).contains(&options.slices) {
        bail!("--slices must be 1 to {MAX_SLICES}");
    }
    if !(1..=MAX_REDUNDANCY).contains(&options.redundancy) {
        bail!("--redundancy must be 1 to {MAX_REDUNDANCY}");
    }
    let inputs = dir.join(INPUTS);
    fs::create_dir_all(&inputs).with_context(|| format!("creating {}", inputs.display()))?;
    let path = dir.join(MANIFEST);
    let file = fs::OpenOptions::new().write(true).create_new(true).open(&path);
    let mut file = match file {
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            bail!("{} already exists; not overwriting it", path.display())
        }
        other => other.with_context(|| format!("creating {}", path.display()))?,
    };
    let text = pretty(&starter_manifest(options))?;
    std::io::Write::write_all(&mut file, &text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// What a directory holds besides the manifest and its signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Contents {
    /// Every file outside `in/`, by path relative to the directory.
    pub(crate) files: BTreeMap<String, Digest>,
    /// Every file under `in/`, by path relative to `in/`.
    pub(crate) inputs: BTreeMap<String, Digest>,
}

/// Hashes every file of `dir` (recursively) into [`Contents`].
pub(crate) fn contents(dir: &Path) -> anyhow::Result<Contents> {
    let hash = |paths: Vec<(String, PathBuf)>| -> anyhow::Result<BTreeMap<String, Digest>> {
        paths.into_iter().map(|(name, path)| Ok((name, hash_file(&path)?))).collect()
    };
    let files = hash(walk(dir, true)?)?;
    let inputs_dir = dir.join(INPUTS);
    let inputs = if inputs_dir.is_dir() { hash(walk(&inputs_dir, false)?)? } else { BTreeMap::new() };
    Ok(Contents { files, inputs })
}

/// Hashes `dir` into its manifest (setting `redundancy` when given), rewrites the manifest as
/// pretty JSON, checks it, and signs the exact bytes written into `manifest.sig`.
pub(crate) fn sign(dir: &Path, identity: &NodeIdentity, redundancy: Option<u32>) -> anyhow::Result<SignedBundle> {
    let path = dir.join(MANIFEST);
    let text = read_manifest(dir)?;
    let mut value: Value = serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(object) = value.as_object_mut() else { bail!("{} is not a JSON object", path.display()) };
    let contents = contents(dir)?;
    object.insert("files".into(), serde_json::to_value(&contents.files)?);
    object.insert("inputs".into(), serde_json::to_value(&contents.inputs)?);
    if let Some(redundancy) = redundancy {
        object.insert("redundancy".into(), redundancy.into());
    }
    let manifest: BundleManifest =
        serde_json::from_value(value).with_context(|| format!("{} is not a bundle manifest", path.display()))?;
    let bytes = pretty(&manifest)?;
    BundleManifest::parse(&bytes).with_context(|| format!("cannot sign {}", path.display()))?;
    let signature = BundleSignature::sign(identity, &bytes);
    fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    let sig_path = dir.join(SIGNATURE);
    fs::write(&sig_path, pretty(&signature)?).with_context(|| format!("writing {}", sig_path.display()))?;
    SignedBundle::open(bytes, signature).context("the bundle just signed does not open")
}

/// Checks the signature over the manifest's exact bytes, every listed file and input present
/// with its hash, and nothing in `dir` the manifest does not list. The first problem found is
/// a [`BundleProblem`].
pub(crate) fn verify(dir: &Path) -> anyhow::Result<SignedBundle> {
    let bytes = read_manifest(dir)?;
    let sig_path = dir.join(SIGNATURE);
    let sig_text = match fs::read(&sig_path) {
        Err(error) if error.kind() == ErrorKind::NotFound => return Err(BundleProblem::Unsigned.into()),
        other => other.with_context(|| format!("reading {}", sig_path.display()))?,
    };
    let signature: BundleSignature =
        serde_json::from_slice(&sig_text).map_err(|e| BundleProblem::SignatureFile(e.to_string()))?;
    let bundle = SignedBundle::open(bytes, signature).map_err(|error| match error {
        BundleError::Signature(error) => BundleProblem::Signature(error),
        other => BundleProblem::Manifest(other),
    })?;
    let found = contents(dir)?;
    compare(&bundle.manifest.files, &found.files, "")?;
    compare(&bundle.manifest.inputs, &found.inputs, "in/")?;
    Ok(bundle)
}

/// Listed against found: a missing or changed entry first, then an unlisted one.
fn compare(
    listed: &BTreeMap<String, Digest>,
    found: &BTreeMap<String, Digest>,
    prefix: &str,
) -> Result<(), BundleProblem> {
    for (path, digest) in listed {
        match found.get(path) {
            None => return Err(BundleProblem::Missing(format!("{prefix}{path}"))),
            Some(actual) if actual != digest => {
                return Err(BundleProblem::Changed {
                    path: format!("{prefix}{path}"),
                    listed: *digest,
                    found: *actual,
                });
            }
            Some(_) => {}
        }
    }
    match found.keys().find(|path| !listed.contains_key(*path)) {
        Some(path) => Err(BundleProblem::Unlisted(format!("{prefix}{path}"))),
        None => Ok(()),
    }
}

/// The path of a listed file (`input` false) or input (`input` true) inside `dir`.
pub(crate) fn file_path(dir: &Path, name: &str, input: bool) -> PathBuf {
    let base = if input { dir.join(INPUTS) } else { dir.to_owned() };
    name.split('/').fold(base, |path, part| path.join(part))
}

/// Every regular file under `root`, as (`/`-joined relative path, full path), sorted. At the
/// top of a bundle (`top`), the manifest, its signature and `in/` are left out. Anything but
/// regular files and directories (a symlink, a socket) is refused.
fn walk(root: &Path, top: bool) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut stack = vec![(String::new(), root.to_owned())];
    while let Some((prefix, dir)) = stack.pop() {
        let entries = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                bail!("{} has a name that is not UTF-8", path.display());
            };
            let kind = entry.file_type().with_context(|| format!("reading {}", path.display()))?;
            let relative = format!("{prefix}{name}");
            if top && prefix.is_empty() && (name == MANIFEST || name == SIGNATURE || (name == INPUTS && kind.is_dir()))
            {
                continue;
            }
            if kind.is_dir() {
                stack.push((format!("{relative}/"), path));
            } else if kind.is_file() {
                check_path(&relative).with_context(|| format!("{} cannot be in a bundle", path.display()))?;
                found.push((relative, path));
            } else {
                bail!("{} is not a regular file or directory (a bundle holds no symlinks)", path.display());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The manifest's exact bytes; a directory without one is told how to get one.
fn read_manifest(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(MANIFEST);
    match fs::read(&path) {
        Err(error) if error.kind() == ErrorKind::NotFound => {
            bail!("{} has no {MANIFEST}: start one with `sgl-cloud bundle init {}`", dir.display(), dir.display())
        }
        read => read.with_context(|| format!("reading {}", path.display())),
    }
}

fn hash_file(path: &Path) -> anyhow::Result<Digest> {
    Ok(Digest::of(fs::read(path).with_context(|| format!("reading {}", path.display()))?))
}

/// Pretty JSON with a final newline.
fn pretty(value: &impl serde::Serialize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).context("serialising JSON")?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests;
