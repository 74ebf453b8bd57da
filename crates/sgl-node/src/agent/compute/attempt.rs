//! One leased attempt, start to receipt. Anything that stops it before a receipt (a bundle
//! that does not verify, a blob that cannot be fetched, a sandbox limit) is reported as a
//! failure, so the grid gives the slice to another node at once rather than when the lease
//! runs out. A guest that exits non-zero still gets a receipt: that is its result.

use std::sync::atomic::Ordering;

use sgl_protocol::api::compute::{AttemptFailure, Lease, ReceiptPost};
use sgl_protocol::compute::Digest;
use sgl_protocol::compute::bundle::SignedBundle;
use sgl_protocol::compute::receipt::{OutputFile, Receipt, ResourceUsage};

use super::files::{self, FilesError};
use super::run::Ran;
use super::{TestFault, Worker};
use crate::agent::Shared;
use crate::agent::report::with_retries;

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
    let module = files::prepare(shared, manifest, &lease.carry, &input_dir).await?;
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
    let dirs =
        super::run::Dirs { input: &input_dir, output: &output_dir, secrets: secrets.as_ref().map(|files| files.dir()) };
    let ran = super::run::run(shared, worker, manifest, lease.slice, lease.start_unix, module, &dirs)
        .await
        .map_err(|error| Failure::Report(error.to_string()))?;
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
    let described = files::described(&outputs, manifest.class.compares_pixels())?;
    let receipt = receipt(shared, lease, &bundle, &ran, described);
    let post = ReceiptPost { receipt, stdout: ran.stdout.clone(), stderr: ran.stderr.clone() };
    let token = shared.token();
    let ack = with_retries("receipt", &lease.job_id, None, || async {
        shared.client.post_receipt(&token, lease.attempt_id, &post).await.map(Some)
    })
    .await
    .map_err(|error| Failure::Dropped(error.to_string()))?;
    tracing::info!(
        target: "sgl::events::compute", job = %lease.job_id, slice = lease.slice, work = ran.work,
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

/// The signed receipt for what the run reported.
fn receipt(shared: &Shared, lease: &Lease, bundle: &SignedBundle, ran: &Ran, outputs: Vec<OutputFile>) -> Receipt {
    let millis = u64::try_from(ran.wall.as_millis()).unwrap_or(u64::MAX);
    Receipt {
        job_id: lease.job_id.clone(),
        slice: lease.slice,
        attempt: lease.attempt,
        node_id: shared.node_id,
        bundle_hash: bundle.hash,
        inputs: bundle.manifest.inputs.clone(),
        outputs,
        exit_code: ran.exit_code,
        runtime: ran.runtime.clone(),
        usage: ResourceUsage {
            fuel: Some(ran.work),
            cpu_ms: millis,
            peak_memory_bytes: ran.peak_memory_bytes,
            wall_ms: millis,
        },
        result_digest: Digest::of(b""),
        proof: Digest::of(b""),
        signature: String::new(),
    }
    .seal(&shared.identity)
}
