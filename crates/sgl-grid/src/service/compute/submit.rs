//! A requester's job, checked before anything is paid: the signature, the manifest, the
//! grid's limits and price, and every file and input present as a blob. Then enqueued with its
//! escrow held from the payer.

use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_grid_store::compute::{Funding, NewComputeJob, attempt_cost};
use sgl_protocol::api::compute::SubmitJobRequest;
use sgl_protocol::compute::bundle::{ResourceLimits, SignedBundle};

use super::WorkError;
use crate::state::AppState;

/// A job that passed every check and may be paid for.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The verified bundle.
    pub bundle: SignedBundle,
    /// The grid's price, micro-USD per 10^9 fuel.
    pub price: u64,
    /// The most one attempt is paid.
    pub attempt_hold_micros: i64,
    /// Everything held at submit.
    pub escrow_micros: i64,
    /// How long a lease lasts.
    pub lease_ms: i64,
}

/// Checks a submission without charging anything.
pub async fn check(state: &AppState, request: SubmitJobRequest) -> Result<Plan, WorkError> {
    let bundle = SignedBundle::open(request.manifest.into_bytes(), request.signature)?;
    let config = &state.config().compute;
    within(&bundle.manifest.limits, &config.max_limits)?;
    let price = config.price_for(bundle.manifest.class);
    let cap = bundle.manifest.max_price_micros_per_gfuel;
    if price > cap {
        return Err(WorkError::PriceAboveCap { price, cap });
    }
    for digest in bundle.manifest.files.values().chain(bundle.manifest.inputs.values()) {
        if super::blob_size(state, *digest).await?.is_none() {
            return Err(WorkError::MissingBlob(digest.to_hex()));
        }
    }
    let limits = bundle.manifest.limits;
    let attempt_hold_micros = attempt_cost(i64::try_from(limits.fuel).unwrap_or(i64::MAX), price as i64, i64::MAX);
    let attempts =
        i64::try_from(bundle.manifest.slices.len()).unwrap_or(i64::MAX) * i64::from(bundle.manifest.redundancy);
    let escrow_micros = attempt_hold_micros.saturating_mul(attempts);
    let lease_ms = (i64::from(limits.wall_secs) + i64::try_from(config.lease_grace_secs).unwrap_or(60)) * 1000;
    Ok(Plan { bundle, price, attempt_hold_micros, escrow_micros, lease_ms })
}

/// Refuses limits above the grid's maxima, naming the first.
fn within(limits: &ResourceLimits, max: &ResourceLimits) -> Result<(), WorkError> {
    let checks = [
        ("fuel", limits.fuel, max.fuel),
        ("memory_mb", limits.memory_mb.into(), max.memory_mb.into()),
        ("wall_secs", limits.wall_secs.into(), max.wall_secs.into()),
        ("output_mb", limits.output_mb.into(), max.output_mb.into()),
        ("output_files", limits.output_files.into(), max.output_files.into()),
    ];
    match checks.into_iter().find(|(_, asked, most)| asked > most) {
        Some((name, asked, most)) => {
            Err(WorkError::Refused(format!("limits.{name} is {asked}, above this grid's maximum of {most}")))
        }
        None => Ok(()),
    }
}

/// Enqueues a checked job, its escrow held from `payer`'s credits. Returns its id.
pub async fn enqueue(state: &AppState, plan: &Plan, payer: &ApiKeyRecord) -> Result<String, WorkError> {
    let id = super::new_job_id();
    let model = plan.bundle.manifest.model.map(|pin| pin.sha256.to_hex());
    let signature = serde_json::to_string(&plan.bundle.signature).map_err(|e| WorkError::Refused(e.to_string()))?;
    let manifest = std::str::from_utf8(&plan.bundle.manifest_bytes)
        .map_err(|_| WorkError::Refused("manifest.json is not UTF-8".into()))?;
    let job = NewComputeJob {
        id: &id,
        funding: Funding::Credits { api_key_id: payer.id, account_id: payer.account() },
        requester: &plan.bundle.signature.requester,
        class: plan.bundle.manifest.class.as_str(),
        bundle_hash: &plan.bundle.hash.to_hex(),
        manifest,
        signature: &signature,
        redundancy: plan.bundle.manifest.redundancy,
        slice_count: u32::try_from(plan.bundle.manifest.slices.len()).unwrap_or(u32::MAX),
        price_micros_per_gfuel: i64::try_from(plan.price).unwrap_or(i64::MAX),
        attempt_hold_micros: plan.attempt_hold_micros,
        lease_ms: plan.lease_ms,
        target_node: None,
        expected: None,
        model_sha256: model.as_deref(),
        engine: plan.bundle.manifest.engine.as_deref(),
    };
    state.store().submit_compute_job(&job, state.now_ms()).await?;
    tracing::info!(
        target: "sgl::events::compute", job = %id, class = %plan.bundle.manifest.class,
        slices = job.slice_count, redundancy = job.redundancy, escrow_micros = plan.escrow_micros, "compute job queued"
    );
    Ok(id)
}
