//! `sgl-cloud jobs …`: submit a bundle (and wait for it), follow, inspect, download and cancel
//! jobs, all through `sgl-client`; this module parses arguments and prints.

mod render;
pub(crate) mod secrets;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;
use sgl_client::{Client, Error, JobEvent};
use sgl_protocol::api::compute::{JobResult, JobView, SubmitJobRequest, WorkState};
use sgl_protocol::compute::Digest;
use sgl_protocol::compute::bundle::{SignedBundle, check_path};
use sgl_protocol::ids::JobId;

use crate::bundle::{KeyArg, requester_key};
use crate::bundle_dir;
use crate::output;
use crate::requester_key::KeyLookup;

/// What the job commands do, for `jobs --help`.
pub(crate) const ABOUT: &str = "\
Run bundles on the grid and follow them.

`submit` checks the bundle (as `bundle verify` does), uploads its files and inputs as
content-addressed blobs (what the grid has already is not stored twice), and submits it; the
job's escrow (slices × redundancy × fuel limit at the grid's price) is held from your key's
credits, and what a finished job did not use goes back. Every command needs an API key.";

/// Examples for `jobs --help`.
pub(crate) const EXAMPLE: &str = "\
Example:
  sgl-cloud jobs submit primes --wait          # progress on stderr, the job on stdout
  sgl-cloud jobs list
  sgl-cloud jobs logs 3f2a… --follow
  sgl-cloud jobs result 3f2a… -o results       # results/slice-0/…, hashes checked
  sgl-cloud jobs cancel 3f2a…";

/// Times a followed job is picked up again after its stream broke.
const MAX_REFOLLOWS: u32 = 5;

/// `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Verify, upload and submit the bundle in DIR; with --wait, follow it until it ends.
    #[command(
        long_about = "Verify the bundle in DIR (a bundle that does not verify is refused before anything is \
                      uploaded, exit 1), upload its files and inputs, and submit it. Prints the job; with --wait, \
                      prints progress on stderr and the job as it ended on stdout, and exits 0 only if it is done.",
        after_help = "Example:\n  sgl-cloud jobs submit primes\n  sgl-cloud jobs submit primes --redundancy 2 --wait --json"
    )]
    Submit(SubmitArgs),
    /// A job, per slice and attempt.
    #[command(after_help = "Example:\n  sgl-cloud jobs status 3f2a… --json")]
    Status {
        /// The job's id.
        id: JobId,
    },
    /// Your account's jobs, newest first.
    List,
    /// What the job's runs printed; --follow streams it until the job ends.
    #[command(after_help = "Example:\n  sgl-cloud jobs logs 3f2a… -f")]
    Logs {
        /// The job's id.
        id: JobId,
        /// Keep printing until the job ends (with --json, one JSON object per line).
        #[arg(short, long)]
        follow: bool,
    },
    /// Download a done job's outputs to DIR/slice-N/PATH, checking every hash.
    #[command(after_help = "Example:\n  sgl-cloud jobs result 3f2a… -o results")]
    Result {
        /// The job's id.
        id: JobId,
        /// Where to write the outputs.
        #[arg(short, long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Cancel a job; the escrow not yet paid out goes back to your credits.
    Cancel {
        /// The job's id.
        id: JobId,
    },
}

/// `jobs submit` options.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The bundle directory.
    dir: PathBuf,
    /// Nodes per slice, when not the manifest's (the manifest is rewritten and signed again).
    #[arg(long)]
    redundancy: Option<u32>,
    /// Follow the job until it ends; exit 0 only if it is done.
    #[arg(long)]
    wait: bool,
    /// A secret the bundle declares, `NAME=VALUE` or `NAME=@FILE` (repeat for each): sealed to
    /// each node that leases a slice, for that attempt only; implies --wait.
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    secrets: Vec<String>,
    #[command(flatten)]
    key: KeyArg,
}

/// A waited-for job ended other than `done`; `main` prints the job with the error.
#[derive(Debug)]
pub(crate) struct JobEnded {
    /// The job as it ended.
    pub(crate) job: Box<JobView>,
}

impl std::fmt::Display for JobEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {} ended {}", self.job.id, self.job.state.as_str())?;
        match &self.job.error {
            Some(error) => write!(f, ": {error}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for JobEnded {}

pub(crate) async fn run(
    client: &Client,
    command: JobsCommand,
    key_defaults: &KeyLookup,
    json: bool,
) -> anyhow::Result<()> {
    if !client.has_api_key() {
        return Err(Error::MissingApiKey.into());
    }
    match command {
        JobsCommand::Submit(args) => submit(client, args, key_defaults, json).await,
        JobsCommand::Status { id } => {
            let job = client.job(&id).await?;
            output(json, &job, || render::job(&job))
        }
        JobsCommand::List => {
            let list = client.jobs().await?;
            output(json, &list, || render::list(&list.data))
        }
        JobsCommand::Logs { id, follow: false } => {
            let logs = client.job_logs(&id).await?;
            output(json, &json!({"job_id": id, "logs": logs}), || logs.iter().map(render::log).collect())
        }
        JobsCommand::Logs { id, follow: true } => follow_logs(client, &id, json).await,
        JobsCommand::Result { id, out } => download(client, &id, &out, json).await,
        JobsCommand::Cancel { id } => {
            let job = client.cancel_job(&id).await?;
            output(json, &job, || {
                let usd = crate::micros_to_usd;
                let (charged, refunded) = (usd(job.charged_micros), usd(job.refunded_micros));
                format!("job {} cancelled: charged ${charged:.6}, refunded ${refunded:.6}", job.id)
            })
        }
    }
}

async fn submit(client: &Client, args: SubmitArgs, key_defaults: &KeyLookup, json: bool) -> anyhow::Result<()> {
    let shown = args.dir.display();
    let mut bundle = bundle_dir::verify(&args.dir)
        .with_context(|| format!("the bundle in {shown} does not verify; nothing was uploaded"))?;
    if let Some(redundancy) = args.redundancy.filter(|k| *k != bundle.manifest.redundancy) {
        let key = requester_key(&args.key, key_defaults)?;
        bundle = bundle_dir::sign(&args.dir, &key.identity, Some(redundancy))?;
        eprintln!("set redundancy {redundancy} in {shown}/manifest.json and signed it again");
    }
    let secrets = secrets::parse(&args.secrets)?;
    secrets::check(&bundle.manifest.secrets, &secrets)?;
    let wait = args.wait || !secrets.is_empty();
    let job = submit_verified(client, &args.dir, &bundle, &secrets, wait).await?;
    let job = if wait { require_done(job, json)? } else { job };
    output(json, &job, || render::job(&job))
}

/// Uploads a verified bundle's files and inputs from `dir`, submits it, and, with `wait` (or
/// secrets to serve), follows it with progress on stderr until it ends. Returns the job as
/// submitted, or as it ended.
pub(crate) async fn submit_verified(
    client: &Client,
    dir: &Path,
    bundle: &SignedBundle,
    secrets: &secrets::Secrets,
    wait: bool,
) -> anyhow::Result<JobView> {
    upload(client, dir, bundle).await?;
    let manifest = String::from_utf8(bundle.manifest_bytes.clone()).context("manifest.json is not UTF-8")?;
    let job = client.submit_job(&SubmitJobRequest { manifest, signature: bundle.signature.clone() }).await?;
    if !wait && secrets.is_empty() {
        return Ok(job);
    }
    eprintln!("job {} submitted: {} slice(s) × {}; waiting for it", job.id, job.slice_count, job.redundancy);
    if secrets.is_empty() {
        wait_for(client, &job.id).await?;
        return Ok(client.job(&job.id).await?);
    }
    secrets::serve(client, &job.id, secrets).await
}

/// The job, when it ended `done`; otherwise its text on stdout (unless `json`, where `main`
/// prints it with the error) and a [`JobEnded`] error.
pub(crate) fn require_done(job: JobView, json: bool) -> anyhow::Result<JobView> {
    if job.state == WorkState::Done {
        return Ok(job);
    }
    if !json {
        println!("{}", render::job(&job));
    }
    Err(JobEnded { job: Box::new(job) }.into())
}

/// Uploads every file and input once, checking each still has the bytes that were verified.
async fn upload(client: &Client, dir: &Path, bundle: &SignedBundle) -> anyhow::Result<()> {
    let manifest = &bundle.manifest;
    let listed =
        manifest.files.iter().map(|(n, d)| (n, d, false)).chain(manifest.inputs.iter().map(|(n, d)| (n, d, true)));
    let mut seen = BTreeSet::new();
    let mut created = 0;
    for (name, digest, input) in listed {
        if !seen.insert(*digest) {
            continue;
        }
        let path = bundle_dir::file_path(dir, name, input);
        let bytes = tokio::fs::read(&path).await.with_context(|| format!("reading {}", path.display()))?;
        if Digest::of(&bytes) != *digest {
            bail!("{} changed after the bundle was verified; sign it again", path.display());
        }
        created += usize::from(client.put_blob(&bytes).await?.created);
    }
    eprintln!("uploaded {} blob(s), {created} new", seen.len());
    Ok(())
}

/// Follows the job until it ends, printing each change to stderr; picks the stream up again
/// when it breaks.
async fn wait_for(client: &Client, id: &JobId) -> anyhow::Result<()> {
    let mut refollows = 0;
    loop {
        let mut events = client.follow_job(id).await?;
        loop {
            match events.next().await {
                Ok(Some(JobEvent::State(job))) => eprintln!("{}", render::progress(&job)),
                Ok(Some(JobEvent::Log(_))) => {}
                Ok(Some(JobEvent::Done) | None) => return Ok(()),
                Err(error @ (Error::JobStreamTruncated | Error::Stalled(_) | Error::Transport(_)))
                    if refollows < MAX_REFOLLOWS =>
                {
                    refollows += 1;
                    eprintln!("note: {error}; following the job again");
                    break;
                }
                Err(error) => return Err(error.into()),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `jobs logs -f`: logs to stdout as they come, changes to stderr (or one JSON line each).
async fn follow_logs(client: &Client, id: &JobId, json: bool) -> anyhow::Result<()> {
    let mut events = client.follow_job(id).await?;
    while let Some(event) = events.next().await? {
        let line = match (&event, json) {
            (JobEvent::Log(log), true) => json!({"event": "log", "log": log}),
            (JobEvent::State(job), true) => json!({"event": "state", "job": job}),
            (JobEvent::Done, true) => json!({"event": "done"}),
            (JobEvent::Log(log), false) => {
                print!("{}", render::log(log));
                continue;
            }
            (JobEvent::State(job), false) => {
                eprintln!("{}", render::progress(job));
                continue;
            }
            (JobEvent::Done, false) => continue,
        };
        println!("{line}");
    }
    Ok(())
}

/// One downloaded output.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Written {
    /// The slice it came from.
    pub(crate) slice: u32,
    /// Its path in the slice's output.
    pub(crate) path: String,
    /// Where it was written.
    pub(crate) file: PathBuf,
    /// Its SHA-256, checked.
    pub(crate) sha256: Digest,
    /// Its size in bytes.
    pub(crate) size: u64,
}

/// `jobs result`: the verified result downloaded ([`fetch`]) and printed.
async fn download(client: &Client, id: &JobId, out: &Path, json: bool) -> anyhow::Result<()> {
    let (result, written) = fetch(client, id, out).await?;
    let exit_codes: Vec<_> =
        result.slices.iter().map(|s| json!({"index": s.index, "exit_code": s.exit_code})).collect();
    let printed = json!({"job_id": id, "dir": out, "slices": exit_codes, "files": written});
    output(json, &printed, || render::written(&result, &written))
}

/// The verified result, each output fetched through `get_blob` (which refuses bytes that do
/// not hash to their name) into `out/slice-<index>/<path>`.
pub(crate) async fn fetch(client: &Client, id: &JobId, out: &Path) -> anyhow::Result<(JobResult, Vec<Written>)> {
    let result = client.job_result(id).await?;
    let mut written = Vec::new();
    for slice in &result.slices {
        let slice_dir = out.join(format!("slice-{}", slice.index));
        tokio::fs::create_dir_all(&slice_dir).await.with_context(|| format!("creating {}", slice_dir.display()))?;
        for file in &slice.outputs {
            check_path(&file.path).with_context(|| format!("slice {}: refusing output path", slice.index))?;
            let target = file.path.split('/').fold(slice_dir.clone(), |path, part| path.join(part));
            let bytes = client.get_blob(&file.sha256).await?;
            if bytes.len() as u64 != file.size {
                bail!(
                    "slice {} {}: {} bytes arrived, the result says {}",
                    slice.index,
                    file.path,
                    bytes.len(),
                    file.size
                );
            }
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await.with_context(|| format!("creating {}", parent.display()))?;
            }
            tokio::fs::write(&target, &bytes).await.with_context(|| format!("writing {}", target.display()))?;
            written.push(Written {
                slice: slice.index,
                path: file.path.clone(),
                file: target,
                sha256: file.sha256,
                size: file.size,
            });
        }
    }
    Ok((result, written))
}
