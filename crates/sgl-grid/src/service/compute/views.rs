//! What a requester sees of its jobs: state per slice and attempt, the verified result with
//! its receipts, the attempts' logs; and cancelling. A job is visible to every key of the
//! account that submitted it and to no one else (others get 404).

use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_grid_store::compute::{AttemptRecord, ComputeJobRecord, SliceRecord};
use sgl_protocol::api::compute::{
    AttemptState, AttemptView, JobList, JobLog, JobResult, JobView, LogStream, SliceResult, SliceView, WorkState,
};
use sgl_protocol::compute::receipt::Receipt;
use sgl_protocol::compute::{Digest, JobClass};

use super::WorkError;
use crate::service::rfc3339;
use crate::state::AppState;

/// The most jobs one listing returns.
pub const MAX_LISTED: i64 = 100;

async fn owned(state: &AppState, caller: &ApiKeyRecord, id: &str) -> Result<ComputeJobRecord, WorkError> {
    let job = state.store().compute_job(id).await?;
    job.filter(|job| job.account_id == Some(caller.account())).ok_or(WorkError::NotFound)
}

fn corrupt(what: &str) -> WorkError {
    WorkError::Refused(format!("a stored job's {what} is corrupt"))
}

fn digest(text: Option<&str>) -> Result<Option<Digest>, WorkError> {
    text.map(|t| t.parse().map_err(|_| corrupt("digest"))).transpose()
}

fn summary(job: &ComputeJobRecord) -> Result<JobView, WorkError> {
    Ok(JobView {
        id: job.id.parse().map_err(|_| corrupt("id"))?,
        object: "job".into(),
        class: job.class.parse::<JobClass>().map_err(|_| corrupt("class"))?,
        state: job.state,
        bundle_hash: job.bundle_hash.parse().map_err(|_| corrupt("bundle hash"))?,
        redundancy: job.redundancy,
        slice_count: job.slice_count,
        slices_done: job.slices_done,
        price_micros_per_gfuel: u64::try_from(job.price_micros_per_gfuel).unwrap_or(0),
        escrow_micros: job.escrow_micros,
        charged_micros: job.charged_micros,
        refunded_micros: job.refunded_micros,
        error: job.error.clone(),
        created_at: rfc3339::format(job.created_at),
        ended_at: job.ended_at.map(rfc3339::format),
        slices: Vec::new(),
        management_api_key: None,
    })
}

fn attempt_view(attempt: &AttemptRecord, targets: &Targets) -> Result<AttemptView, WorkError> {
    Ok(AttemptView {
        attempt: attempt.attempt,
        attempt_id: attempt.id,
        node_id: attempt.node_id.parse().map_err(|_| corrupt("node id"))?,
        state: attempt.state,
        result_digest: digest(attempt.result_digest.as_deref())?,
        fuel: attempt.fuel.and_then(|f| u64::try_from(f).ok()),
        error: attempt.error.clone(),
        charged_micros: attempt.charged_micros,
        leased_at: rfc3339::format(attempt.leased_at),
        ended_at: attempt.ended_at.map(rfc3339::format),
        secrets_to: targets.get(&attempt.id).cloned(),
    })
}

/// Attempts waiting for secrets, by id.
type Targets = std::collections::HashMap<i64, sgl_protocol::api::compute::SecretsTarget>;

fn slice_view(slice: &SliceRecord, attempts: &[AttemptRecord], targets: &Targets) -> Result<SliceView, WorkError> {
    let own = attempts.iter().filter(|a| a.slice == slice.index);
    Ok(SliceView {
        index: slice.index,
        state: slice.state,
        result_digest: digest(slice.result_digest.as_deref())?,
        attempts: own.map(|a| attempt_view(a, targets)).collect::<Result<_, _>>()?,
    })
}

/// `GET /v1/jobs/{id}`.
pub async fn job(state: &AppState, caller: &ApiKeyRecord, id: &str) -> Result<JobView, WorkError> {
    let job = owned(state, caller, id).await?;
    let slices = state.store().compute_slices(id).await?;
    let attempts = state.store().compute_attempts(id).await?;
    let mut view = summary(&job)?;
    let manifest = sgl_protocol::compute::bundle::BundleManifest::parse(job.manifest.as_bytes())?;
    let targets = super::secrets::targets(state, &manifest, &attempts);
    view.slices = slices.iter().map(|s| slice_view(s, &attempts, &targets)).collect::<Result<_, _>>()?;
    Ok(view)
}

/// `GET /v1/jobs`: the account's jobs, newest first.
pub async fn list(state: &AppState, caller: &ApiKeyRecord) -> Result<JobList, WorkError> {
    let jobs = state.store().compute_jobs_of_account(caller.account(), MAX_LISTED).await?;
    let data = jobs.iter().map(summary).collect::<Result<_, _>>()?;
    Ok(JobList { object: "list".into(), data })
}

/// `GET /v1/jobs/{id}/result`: each slice's accepted outputs and the receipts that agreed.
pub async fn result(state: &AppState, caller: &ApiKeyRecord, id: &str) -> Result<JobResult, WorkError> {
    let job = owned(state, caller, id).await?;
    if job.state != WorkState::Done {
        let why = job.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        return Err(WorkError::Conflict(format!("the job is {}, not done{why}", job.state.as_str())));
    }
    let attempts = state.store().compute_attempts(id).await?;
    let mut slices = Vec::new();
    for slice in state.store().compute_slices(id).await? {
        let receipts = attempts
            .iter()
            .filter(|a| a.slice == slice.index && a.state == AttemptState::Accepted)
            .filter_map(|a| a.receipt.as_deref())
            .map(|r| serde_json::from_str::<Receipt>(r).map_err(|_| corrupt("receipt")))
            .collect::<Result<Vec<_>, _>>()?;
        let first = receipts.first().ok_or_else(|| corrupt("accepted receipts"))?;
        slices.push(SliceResult {
            index: slice.index,
            result_digest: first.result_digest,
            exit_code: first.exit_code,
            outputs: first.outputs.clone(),
            receipts,
        });
    }
    let mut public_keys = std::collections::BTreeMap::new();
    for receipt in slices.iter().flat_map(|slice: &SliceResult| &slice.receipts) {
        if let Some(node) = state.store().node(&receipt.node_id.to_string()).await? {
            public_keys.insert(receipt.node_id, node.public_key);
        }
    }
    Ok(JobResult { job_id: job.id.parse().map_err(|_| corrupt("id"))?, slices, public_keys })
}

/// The logs of every attempt that reported, in slice and attempt order, and whether the job
/// has ended (nothing more will come).
pub async fn logs(state: &AppState, caller: &ApiKeyRecord, id: &str) -> Result<(Vec<JobLog>, bool), WorkError> {
    let job = owned(state, caller, id).await?;
    let mut logs = Vec::new();
    for attempt in state.store().compute_attempts(id).await? {
        let node_id = attempt.node_id.parse().map_err(|_| corrupt("node id"))?;
        for (stream, text) in [(LogStream::Stdout, &attempt.stdout), (LogStream::Stderr, &attempt.stderr)] {
            if let Some(text) = text.as_deref().filter(|t| !t.is_empty()) {
                logs.push(JobLog {
                    slice: attempt.slice,
                    attempt: attempt.attempt,
                    node_id,
                    stream,
                    text: text.to_owned(),
                });
            }
        }
    }
    Ok((logs, job.state.is_final()))
}

/// `DELETE /v1/jobs/{id}`: ends the job and gives back the escrow not yet paid out.
pub async fn cancel(state: &AppState, caller: &ApiKeyRecord, id: &str) -> Result<JobView, WorkError> {
    let nodes = state.store().cancel_compute_job(id, caller.account(), state.now_ms()).await?;
    tracing::info!(target: "sgl::events::compute", job = %id, nodes = nodes.len(), "compute job cancelled");
    job(state, caller, id).await
}
