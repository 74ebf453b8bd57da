//! `sgl-cloud bundle init|sign|verify`: make, sign and check a job bundle directory (the logic
//! is in [`crate::bundle_dir`]; this module parses arguments and prints).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::bundle_dir::{self, InitOptions};
use crate::output;
use crate::requester_key::{self, KeyLookup};

/// What a bundle is, for `bundle --help`.
pub(crate) const ABOUT: &str = "\
Make, sign and check job bundles.

A bundle is a directory:
  manifest.json   what runs (the entry file), its limits, its slices and the most you pay
  <files>         everything else in the directory: the entry (a WASI .wasm module) and
                  anything it needs, listed in the manifest by SHA-256
  in/             inputs, listed by SHA-256 too; the job sees them read-only under /in
  manifest.sig    your signature over the exact bytes of manifest.json

Each slice runs the entry with the manifest's `args` followed by the slice's own `args`, on
`redundancy` nodes of different operators whose results must agree.";

pub(crate) const EXAMPLE: &str = "\
Example:
  sgl-cloud bundle init primes --entry primes.wasm --slices 2
  cp examples/wasm/primes/primes.wasm primes/
  # edit primes/manifest.json: \"slices\": [{\"args\": [\"0\", \"1000\"]}, {\"args\": [\"1000\", \"2000\"]}]
  sgl-cloud bundle sign primes
  sgl-cloud bundle verify primes
  sgl-cloud jobs submit primes --wait";

/// `bundle` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BundleCommand {
    /// Write a starter manifest.json in DIR (never overwriting one).
    #[command(after_help = "Example:\n  sgl-cloud bundle init primes --entry primes.wasm --slices 4 --redundancy 2")]
    Init {
        /// The bundle directory (created if missing).
        dir: PathBuf,
        /// The file that runs, relative to DIR.
        #[arg(long, default_value = "main.wasm")]
        entry: String,
        /// How many slices (each runs the entry once; give each its own args).
        #[arg(long, default_value_t = 1)]
        slices: usize,
        /// How many nodes of different operators run each slice.
        #[arg(long, default_value_t = 1)]
        redundancy: u32,
    },
    /// Hash every file and input of DIR into manifest.json and sign it into manifest.sig.
    #[command(
        long_about = "Hash every file of DIR (but manifest.json, manifest.sig and in/) into the manifest's \
                      `files`, every file under DIR/in/ into its `inputs`, rewrite manifest.json, check it, and \
                      sign its exact bytes with your requester key into manifest.sig. Run it again after any change.",
        after_help = "Example:\n  sgl-cloud bundle sign primes\n  sgl-cloud bundle sign primes --key ~/keys/lab.json"
    )]
    Sign {
        /// The bundle directory.
        dir: PathBuf,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Check DIR: the signature, every listed file and input, and nothing unlisted (exit 1 if not).
    #[command(after_help = "Example:\n  sgl-cloud bundle verify primes && sgl-cloud jobs submit primes")]
    Verify {
        /// The bundle directory.
        dir: PathBuf,
    },
}

/// `--key`, shared by the commands that sign.
#[derive(Debug, Clone, Args)]
pub(crate) struct KeyArg {
    /// The requester key file (created on first use). Default:
    /// $XDG_CONFIG_HOME/sgl-cloud/requester.json, else ~/.config/sgl-cloud/requester.json.
    #[arg(long = "key", value_name = "PATH", env = "SGL_CLOUD_KEY")]
    pub(crate) path: Option<PathBuf>,
}

impl KeyArg {
    /// The lookup, with the config directories `main` read from the environment.
    pub(crate) fn lookup(&self, defaults: &KeyLookup) -> KeyLookup {
        KeyLookup { explicit: self.path.clone(), ..defaults.clone() }
    }
}

/// Loads (or creates, saying so on stderr) the requester key.
pub(crate) fn requester_key(key: &KeyArg, defaults: &KeyLookup) -> anyhow::Result<requester_key::RequesterKey> {
    let key = requester_key::load_or_create(&key.lookup(defaults).path()?)?;
    if key.created {
        eprintln!("created a new requester key at {} (keep it; it signs your bundles)", key.path.display());
    }
    Ok(key)
}

pub(crate) fn run(command: BundleCommand, key_defaults: &KeyLookup, json: bool) -> anyhow::Result<()> {
    match command {
        BundleCommand::Init { dir, entry, slices, redundancy } => {
            let options = InitOptions { entry, slices, redundancy };
            let path = bundle_dir::init(&dir, &options)?;
            let printed = json!({
                "manifest": path, "entry": options.entry, "slices": slices, "redundancy": redundancy,
            });
            output(json, &printed, || {
                format!(
                    "wrote {} ({} slice(s), redundancy {redundancy})\nnext: put {} in {}, inputs in {}, set each \
                     slice's args, then run: sgl-cloud bundle sign {}",
                    path.display(),
                    slices,
                    options.entry,
                    dir.display(),
                    dir.join(bundle_dir::INPUTS).display(),
                    dir.display()
                )
            })
        }
        BundleCommand::Sign { dir, key } => {
            let key = requester_key(&key, key_defaults)?;
            let bundle = bundle_dir::sign(&dir, &key.identity, None)?;
            let printed = json!({
                "bundle_hash": bundle.hash, "requester": bundle.signature.requester, "key_file": key.path,
                "key_created": key.created, "files": bundle.manifest.files.len(),
                "inputs": bundle.manifest.inputs.len(),
            });
            output(json, &printed, || {
                format!(
                    "signed {}: {} file(s), {} input(s)\nbundle    {}\nrequester {}",
                    dir.display(),
                    bundle.manifest.files.len(),
                    bundle.manifest.inputs.len(),
                    bundle.hash,
                    bundle.signature.requester
                )
            })
        }
        BundleCommand::Verify { dir } => {
            let bundle = bundle_dir::verify(&dir)?;
            let manifest = &bundle.manifest;
            let printed = json!({
                "verified": true, "bundle_hash": bundle.hash, "requester": bundle.signature.requester,
                "files": manifest.files.len(), "inputs": manifest.inputs.len(), "slices": manifest.slices.len(),
                "redundancy": manifest.redundancy,
            });
            output(json, &printed, || {
                format!(
                    "verified {}: bundle {}, signed by {}; {} file(s), {} input(s), {} slice(s) × {}",
                    dir.display(),
                    bundle.hash,
                    bundle.signature.requester,
                    manifest.files.len(),
                    manifest.inputs.len(),
                    manifest.slices.len(),
                    manifest.redundancy
                )
            })
        }
    }
}
