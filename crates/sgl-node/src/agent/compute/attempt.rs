//! One leased attempt, start to receipt. Anything that stops it before a receipt (a bundle
//! that does not verify, a blob that cannot be fetched, a sandbox limit) is reported as a
//! failure, so the grid gives the slice to another node at once rather than when the lease
//! runs out. A guest that exits non-zero still gets a receipt: that is its result.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sgl_protocol::api::compute::{AttemptFailure, Lease, ReceiptPost};
use sgl_protocol::compute::Digest;
use sgl_protocol::compute::bundle::SignedBundle;
use sgl_protocol::compute::receipt::{Receipt, ResourceUsage};
use sgl_sandbox::{WasmLimits, WasmReport, WasmRun};

use super::files::{self, FilesError};
use super::{TestFault, Worker};
use crate::agent::Shared;
use crate::agent::report::with_retries;

/// The most of each log stream kept and sent.
const LOG_BYTES: usize = 64 << 10;

/// Why an attempt ended without a receipt.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// Reported to the grid as the attempt's failure.
    #[error("{0}")]
    Report(String),
    /// The grid no longer wants it (the lease expired or the job was cancelled): dropped.
    #[error("the grid took the attempt back: {0}")]
    Dropped(String),
}

impl From<FilesError> for Failure {
    fn from(error: FilesError) -> Self {
        Self::Report(error.to_string())
    }
}

/// Runs a lease to its end and reports it.
pub(super) async fn run(shared: &Shared, worker: &Worker, lease: Lease) {
    let job_id = lease.job_id.clone();
    let outcome = attempt(shared, worker, &lease).await;
    let reported = match outcome {
        Ok(()) => {
            worker.reported.fetch_add(1, Ordering::SeqCst);
            return;
        }
        Err(Failure::Dropped(why)) => {
            tracing::info!(target: "sgl::events::compute", job = %job_id, slice = lease.slice, why, "attempt dropped");
            return;
        }
        Err(Failure::Report(reason)) => {
            worker.failed.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(target: "sgl::events::compute", job = %job_id, slice = lease.slice, %reason, "attempt failed");
            let failure = AttemptFailure { reason, stderr: String::new() };
            let token = shared.token();
            with_retries("fail", &job_id, (), || async {
                shared.client.fail_attempt(&token, lease.attempt_id, &failure).await.map(|_| ())
            })
            .await
        }
    };
    if let Err(error) = reported {
        tracing::warn!(job = %job_id, %error, "could not report the attempt's failure");
    }
}

async fn attempt(shared: &Shared, worker: &Worker, lease: &Lease) -> Result<(), Failure> {
    let bundle = SignedBundle::open(lease.manifest.clone().into_bytes(), lease.signature.clone())
        .map_err(|error| Failure::Report(format!("the bundle does not verify: {error}")))?;
    let manifest = &bundle.manifest;
    if !worker.config.classes.contains(&manifest.class) {
        return Err(Failure::Report(format!("this node does not run {} jobs", manifest.class)));
    }
    let dir = tempfile::Builder::new().prefix("attempt-").tempdir_in(prepare_work_dir(worker)?)?;
    let (input_dir, output_dir) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir_all(&input_dir)?;
    std::fs::create_dir_all(&output_dir)?;
    let module = files::prepare(shared, manifest, &input_dir).await?;
    shared
        .client
        .start_attempt(&shared.token(), lease.attempt_id)
        .await
        .map_err(|error| Failure::Dropped(error.to_string()))?;
    tracing::info!(target: "sgl::events::compute", job = %lease.job_id, slice = lease.slice, attempt = lease.attempt, "attempt started");
    let secrets = match manifest.secrets.is_empty() {
        true => None,
        false => Some(
            super::secrets::receive(shared, lease, &manifest.secrets, dir.path())
                .await
                .map_err(|e| Failure::Report(e.to_string()))?,
        ),
    };
    let limits = WasmLimits {
        fuel: manifest.limits.fuel,
        memory_bytes: usize::try_from(manifest.limits.memory_mb).unwrap_or(usize::MAX).saturating_mul(1 << 20),
        wall_clock: Duration::from_secs(manifest.limits.wall_secs.into()),
        log_bytes: LOG_BYTES,
        output_bytes: u64::from(manifest.limits.output_mb) << 20,
        output_files: manifest.limits.output_files.into(),
    };
    let (sandbox, args, seed, start) =
        (worker.sandbox.clone(), manifest.argv(lease.slice as usize), manifest.seed, lease.start_unix);
    let (input, output) = (input_dir.clone(), output_dir.clone());
    let secrets_dir = secrets.as_ref().map(|files| files.dir().to_owned());
    let report = tokio::task::spawn_blocking(move || {
        sandbox.run(&WasmRun {
            module: &module,
            args,
            input_dir: &input,
            output_dir: &output,
            secrets_dir: secrets_dir.as_deref(),
            seed,
            start_unix_secs: start,
            limits,
        })
    })
    .await
    .map_err(|_| Failure::Report("the sandbox thread died".into()))?
    .map_err(|error| Failure::Report(format!("the sandbox stopped the guest: {error}")))?;
    // The secrets are wiped as soon as the guest is done with them.
    drop(secrets);
    let mut outputs = files::outputs(&output_dir)?;
    if worker.config.test_fault == Some(TestFault::WrongOutput) {
        for (_, bytes) in &mut outputs {
            bytes.push(b'!');
        }
    }
    for (_, bytes) in &outputs {
        shared
            .client
            .put_blob(&shared.token(), bytes.clone())
            .await
            .map_err(|e| Failure::Report(format!("uploading an output: {e}")))?;
    }
    let receipt = receipt(shared, lease, &bundle.hash, &report, &outputs);
    let post = ReceiptPost {
        receipt,
        stdout: String::from_utf8_lossy(&report.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&report.stderr).into_owned(),
    };
    let token = shared.token();
    let ack = with_retries("receipt", &lease.job_id, None, || async {
        shared.client.post_receipt(&token, lease.attempt_id, &post).await.map(Some)
    })
    .await
    .map_err(|error| Failure::Dropped(error.to_string()))?;
    tracing::info!(
        target: "sgl::events::compute", job = %lease.job_id, slice = lease.slice, fuel = report.fuel_used,
        state = ack.map(|a| a.state.as_str()), "receipt reported"
    );
    Ok(())
}

fn prepare_work_dir(worker: &Worker) -> Result<&std::path::Path, Failure> {
    std::fs::create_dir_all(&worker.config.work_dir)?;
    Ok(&worker.config.work_dir)
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Self::Report(format!("the attempt's working directory: {error}"))
    }
}

/// The signed receipt for what the sandbox reported.
fn receipt(
    shared: &Shared,
    lease: &Lease,
    bundle_hash: &Digest,
    report: &WasmReport,
    outputs: &[(String, Vec<u8>)],
) -> Receipt {
    let manifest: Option<sgl_protocol::compute::bundle::BundleManifest> = serde_json::from_str(&lease.manifest).ok();
    Receipt {
        job_id: lease.job_id.clone(),
        slice: lease.slice,
        attempt: lease.attempt,
        node_id: shared.node_id,
        bundle_hash: *bundle_hash,
        inputs: manifest.map(|m| m.inputs).unwrap_or_default(),
        outputs: files::described(outputs),
        exit_code: report.exit_code,
        runtime: sgl_sandbox::WASM_RUNTIME.to_owned(),
        usage: ResourceUsage {
            fuel: Some(report.fuel_used),
            cpu_ms: u64::try_from(report.wall_time.as_millis()).unwrap_or(u64::MAX),
            peak_memory_bytes: report.peak_memory_bytes as u64,
            wall_ms: u64::try_from(report.wall_time.as_millis()).unwrap_or(u64::MAX),
        },
        result_digest: Digest::of(b""),
        proof: Digest::of(b""),
        signature: String::new(),
    }
    .seal(&shared.identity)
}
