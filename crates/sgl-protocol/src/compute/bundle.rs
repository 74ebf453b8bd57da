//! The job bundle (`docs/protocol.md` §9): `manifest.json`, whose exact bytes are signed by the
//! requester's ed25519 key and whose SHA-256 is the bundle's name, and the files and inputs it
//! names by SHA-256. A change to any byte of the manifest breaks the signature; a change to any
//! byte of a file or input breaks the hash the manifest lists for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Digest, JobClass, Runtime};
use crate::identity::{NodeIdentity, NodePublicKey, VerifyError};

/// The manifest's format tag.
pub const BUNDLE_FORMAT: &str = "sgl-bundle-v1";
/// Domain tag of the signed message: this, then the manifest's 32-byte SHA-256.
pub const BUNDLE_DOMAIN: &[u8] = b"sgl-bundle-v1\0";
/// The most slices one job may have.
pub const MAX_SLICES: usize = 1024;
/// The highest redundancy a job may ask for.
pub const MAX_REDUNDANCY: u32 = 9;
/// The most files plus inputs a bundle may name.
pub const MAX_FILES: usize = 256;
/// The most secrets a job may declare.
pub const MAX_SECRETS: usize = 16;

mod path;

pub use path::{MAX_PATH_BYTES, check_path};

/// The manifest's `format` field, which has one value today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum BundleFormat {
    /// `sgl-bundle-v1`.
    #[serde(rename = "sgl-bundle-v1")]
    V1,
}

/// What one run of a slice may use. The sandbox stops a run at the first limit it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// Wasm fuel (about one unit per instruction); the work a slice is billed by.
    pub fuel: u64,
    /// Linear memory, MiB.
    pub memory_mb: u32,
    /// Wall-clock deadline, seconds.
    pub wall_secs: u32,
    /// Total size of `/out`, MiB.
    pub output_mb: u32,
    /// Files in `/out`.
    pub output_files: u32,
}

/// One slice: the arguments it adds to the job's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SliceSpec {
    /// Appended to the job's `args`.
    #[serde(default)]
    pub args: Vec<String>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    /// `sgl-bundle-v1`.
    pub format: BundleFormat,
    /// The job class.
    pub class: JobClass,
    /// The file that runs (for `wasm`, the module), a key of `files`.
    pub entry: String,
    /// Arguments after the entry's name, before the slice's own.
    #[serde(default)]
    pub args: Vec<String>,
    /// Every file of the bundle by relative path.
    pub files: BTreeMap<String, Digest>,
    /// The inputs, visible read-only under `/in` by relative path.
    #[serde(default)]
    pub inputs: BTreeMap<String, Digest>,
    /// Per-run limits.
    pub limits: ResourceLimits,
    /// The slices, each run independently (at least one).
    pub slices: Vec<SliceSpec>,
    /// How many nodes of different operators run each slice.
    #[serde(default = "one")]
    pub redundancy: u32,
    /// The most the requester pays, micro-USD per 10^9 fuel.
    pub max_price_micros_per_gfuel: u64,
    /// The seed of the guest's random bytes.
    #[serde(default)]
    pub seed: u64,
    /// Names of secrets the job needs, sealed to each executing node after it leases a slice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// For class `llm` (and only for it): the model and how long an answer may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelPin>,
    /// For the native classes (`image`, `render`, where it is required): the engine and version
    /// every run must use, as nodes announce it (`onnxruntime 1.32.0`, `blender 3.4.1`), so
    /// redundant runs can agree bit for bit. Only nodes with that exact engine lease the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

/// The model an `llm` job runs: every slice's one argument is a user prompt, answered greedily
/// by that exact GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPin {
    /// SHA-256 of the GGUF file; only nodes serving it lease the job.
    pub sha256: Digest,
    /// The most completion tokens per answer.
    pub max_tokens: u32,
}

/// Metered work an `llm` attempt reports per token (prompt and completion): the unit its
/// `limits.fuel` and price are in.
pub const WORK_PER_TOKEN: u64 = 1_000_000;

/// Metered work an `image` attempt reports per image it made: an image is 10^9 units, so a
/// price per 10^9 units is a price per image.
pub const WORK_PER_IMAGE: u64 = 1_000_000_000;

fn one() -> u32 {
    1
}

/// The requester's signature over a manifest (`manifest.sig` beside it in a bundle directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleSignature {
    /// Base58 ed25519 key of the requester.
    pub requester: String,
    /// Base58 signature over `sgl-bundle-v1\0 ‖ SHA-256(manifest bytes)`.
    pub signature: String,
}

/// A bundle that is not acceptable. Every variant is the requester's fault (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// `manifest.json` is not a valid manifest (an unknown class lands here, named).
    #[error("manifest.json is invalid: {0}")]
    Manifest(String),
    /// The signature or the requester key is invalid.
    #[error("the bundle's signature does not verify: {0}")]
    Signature(#[from] VerifyError),
    /// A field is out of range or inconsistent.
    #[error("manifest.json: {0}")]
    Invalid(String),
}

impl BundleManifest {
    /// Parses exact manifest bytes and checks them ([`BundleManifest::check`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(|e| BundleError::Manifest(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The protocol's own rules (the grid adds its configured maxima): safe relative paths, the
    /// entry among the files, counts and limits in range, secret names well formed.
    pub fn check(&self) -> Result<(), BundleError> {
        let invalid = |message: String| Err(BundleError::Invalid(message));
        for path in self.files.keys().chain(self.inputs.keys()) {
            check_path(path)?;
        }
        if !self.files.contains_key(&self.entry) {
            return invalid(format!("entry {:?} is not one of the files", self.entry));
        }
        if self.files.len() + self.inputs.len() > MAX_FILES {
            return invalid(format!("at most {MAX_FILES} files and inputs"));
        }
        if self.slices.is_empty() || self.slices.len() > MAX_SLICES {
            return invalid(format!("slices must number 1 to {MAX_SLICES}"));
        }
        if !(1..=MAX_REDUNDANCY).contains(&self.redundancy) {
            return invalid(format!("redundancy must be 1 to {MAX_REDUNDANCY}"));
        }
        let l = &self.limits;
        if l.fuel == 0 || l.memory_mb == 0 || l.wall_secs == 0 || l.output_mb == 0 || l.output_files == 0 {
            return invalid("every limit must be above zero".to_owned());
        }
        match (self.class, &self.model) {
            (JobClass::Llm, None) => return invalid("class llm needs `model` (its sha256 and max_tokens)".to_owned()),
            (JobClass::Llm, Some(pin)) if pin.max_tokens == 0 => {
                return invalid("model.max_tokens must be above zero".to_owned());
            }
            (JobClass::Llm, Some(_)) if self.slices.iter().any(|s| s.args.len() != 1) => {
                return invalid("each slice of an llm job has exactly one argument, its prompt".to_owned());
            }
            (JobClass::Llm, _) => {}
            (_, Some(_)) => return invalid("`model` is only for class llm".to_owned()),
            (_, None) => {}
        }
        self.check_engine()?;
        if self.class.is_chained() && self.inputs.keys().any(|path| path.starts_with("prev/")) {
            return invalid(format!(
                "class {} gives the guest the previous slice's outputs in prev/: no input may be there",
                self.class
            ));
        }
        if self.class.runtime() == Runtime::Native && self.files.keys().any(|path| self.inputs.contains_key(path)) {
            return invalid("the files and inputs of a native class share /in: a path may not be both".to_owned());
        }
        if self.secrets.len() > MAX_SECRETS {
            return invalid(format!("at most {MAX_SECRETS} secrets"));
        }
        for name in &self.secrets {
            check_secret_name(name)?;
        }
        Ok(())
    }

    fn check_engine(&self) -> Result<(), BundleError> {
        let invalid = |message: String| Err(BundleError::Invalid(message));
        match (self.class.runtime(), &self.engine) {
            (Runtime::Native, None) => invalid(format!(
                "class {} needs `engine`, the engine and version every run uses (e.g. {:?})",
                self.class,
                example_engine(self.class)
            )),
            (Runtime::Native, Some(engine)) if !is_engine_name(engine) => invalid(format!(
                "engine {engine:?} must be a name and a version, e.g. {:?}",
                example_engine(self.class)
            )),
            (Runtime::Native, Some(_)) => Ok(()),
            (_, Some(_)) => {
                invalid(format!("`engine` is only for the native classes (image, render), not {}", self.class))
            }
            (_, None) => Ok(()),
        }
    }

    /// The guest's argv for `slice`: the entry, the job's arguments, the slice's.
    pub fn argv(&self, slice: usize) -> Vec<String> {
        let own = self.slices.get(slice).map(|s| s.args.as_slice()).unwrap_or_default();
        std::iter::once(self.entry.clone()).chain(self.args.iter().cloned()).chain(own.iter().cloned()).collect()
    }
}

/// An engine as nodes announce it: a name and a version, 3 to 64 printable ASCII characters
/// with one space between them.
pub fn is_engine_name(engine: &str) -> bool {
    let mut parts = engine.split(' ');
    let word = |w: Option<&str>| w.is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_graphic()));
    (3..=64).contains(&engine.len()) && word(parts.next()) && word(parts.next()) && parts.next().is_none()
}

fn example_engine(class: JobClass) -> &'static str {
    match class {
        JobClass::Render => "blender 3.4.1",
        _ => "onnxruntime 1.32.0",
    }
}

/// A secret's name becomes a file name: 1 to 64 of `A-Z a-z 0-9 _ - .`, not starting with a dot.
fn check_secret_name(name: &str) -> Result<(), BundleError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        return Ok(());
    }
    Err(BundleError::Invalid(format!("secret name {name:?} must be 1 to 64 of A-Z a-z 0-9 _ - . (no leading dot)")))
}

/// The bundle's name: the SHA-256 of the exact manifest bytes.
pub fn bundle_hash(manifest: &[u8]) -> Digest {
    Digest::of(manifest)
}

fn signed_message(manifest: &[u8]) -> Vec<u8> {
    let mut message = BUNDLE_DOMAIN.to_vec();
    message.extend_from_slice(bundle_hash(manifest).as_bytes());
    message
}

impl BundleSignature {
    /// Signs exact manifest bytes with the requester's key.
    pub fn sign(identity: &NodeIdentity, manifest: &[u8]) -> Self {
        Self { requester: identity.public_key().to_b58(), signature: identity.sign_b58(&signed_message(manifest)) }
    }

    /// Verifies the signature over exact manifest bytes and returns the requester's key.
    pub fn verify(&self, manifest: &[u8]) -> Result<NodePublicKey, VerifyError> {
        let key = NodePublicKey::from_b58(&self.requester)?;
        key.verify_b58(&signed_message(manifest), &self.signature)?;
        Ok(key)
    }
}

/// A manifest whose signature verified and whose fields passed [`BundleManifest::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBundle {
    /// The parsed manifest.
    pub manifest: BundleManifest,
    /// The exact bytes that were signed.
    pub manifest_bytes: Vec<u8>,
    /// The signature.
    pub signature: BundleSignature,
    /// SHA-256 of `manifest_bytes`.
    pub hash: Digest,
}

impl SignedBundle {
    /// Verifies the signature first (so an unsigned manifest is not even parsed), then parses
    /// and checks the manifest.
    pub fn open(manifest_bytes: Vec<u8>, signature: BundleSignature) -> Result<Self, BundleError> {
        signature.verify(&manifest_bytes)?;
        let manifest = BundleManifest::parse(&manifest_bytes)?;
        let hash = bundle_hash(&manifest_bytes);
        Ok(Self { manifest, manifest_bytes, signature, hash })
    }
}

#[cfg(test)]
mod tests;
