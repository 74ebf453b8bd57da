//! A node asking for work: it must be live and eligible (online, on the grid, attested with an
//! allowed binary, staked), and it gets only the classes its heartbeat announced. A node that
//! is given work is, at the configured rate, given a canary to lease next, like any other job.

use sgl_grid_store::compute::{LeaseAsk, LeasedAttempt};
use sgl_grid_store::nodes::NodeRecord;
use sgl_protocol::api::compute::{AttemptState, Lease, LeaseRequest, LeaseResponse};
use sgl_protocol::api::node::NotServingReason;
use sgl_protocol::compute::JobClass;
use sgl_protocol::compute::receipt::{OutputFile, Receipt};
use sgl_protocol::ids::NodeId;

use super::{WorkError, canary};
use crate::service::rfc3339;
use crate::state::AppState;

/// The most slices one request leases.
pub const MAX_SLOTS: u32 = 16;

/// Leases slices to `node`.
pub async fn lease(state: &AppState, node: &NodeRecord, request: LeaseRequest) -> Result<LeaseResponse, WorkError> {
    let node_id: NodeId = node.id.parse().map_err(|_| WorkError::NotFound)?;
    let now = state.now_ms();
    let live = state
        .registry()
        .get(&node_id)
        .ok_or_else(|| WorkError::Conflict("the node is not live: send a heartbeat first".into()))?;
    let barred: Vec<String> = live
        .not_serving(now, state.config().node_timeout_ms())
        .into_iter()
        .filter(|reason| *reason != NotServingReason::NoModel)
        .map(|reason| serde_json::to_value(reason).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
        .collect();
    if !barred.is_empty() {
        return Err(WorkError::Conflict(format!("the node may not lease work: {}", barred.join(", "))));
    }
    let classes: Vec<&str> =
        request.classes.iter().filter(|class| live.workloads.contains(class)).map(|class| class.as_str()).collect();
    if classes.is_empty() {
        return Err(WorkError::Conflict(
            "none of the classes asked for is announced in the node's heartbeat (workloads)".into(),
        ));
    }
    let engines: Vec<&str> = live.engines.iter().map(String::as_str).collect();
    let ask = LeaseAsk {
        node_id: &node.id,
        operator: &node.wallet,
        classes: &classes,
        slots: request.slots.min(MAX_SLOTS),
        model_sha256: live.model_sha256.as_deref(),
        engines: &engines,
    };
    let leased = state.store().lease_compute(&ask, now).await?;
    // A node that is given work is, at the configured rate, given a canary next.
    if !leased.is_empty() && canary::due(state.config().compute.canary_rate) {
        canary::plant(state, &live).await?;
    }
    let mut leases = Vec::with_capacity(leased.len());
    for attempt in leased {
        let carry = carried(state, &attempt).await?;
        leases.push(Lease { carry, ..wire(attempt)? });
    }
    for lease in &leases {
        tracing::info!(
            target: "sgl::events::compute", job = %lease.job_id, slice = lease.slice, attempt = lease.attempt,
            node = %node.id, "slice leased"
        );
    }
    Ok(LeaseResponse { leases })
}

/// For a chained class, the outputs of the slice before's accepted result (what `/in/prev/`
/// holds for the guest); nothing otherwise.
async fn carried(state: &AppState, leased: &LeasedAttempt) -> Result<Vec<OutputFile>, WorkError> {
    let chained = leased.class.parse::<JobClass>().is_ok_and(JobClass::is_chained);
    if !chained || leased.slice == 0 {
        return Ok(Vec::new());
    }
    let attempts = state.store().compute_attempts(&leased.job_id).await?;
    let accepted = attempts
        .iter()
        .find(|a| a.slice == leased.slice - 1 && a.state == AttemptState::Accepted)
        .and_then(|a| a.receipt.as_deref())
        .ok_or_else(|| {
            WorkError::Conflict(format!("slice {} has no accepted result to resume from", leased.slice - 1))
        })?;
    let receipt: Receipt =
        serde_json::from_str(accepted).map_err(|_| WorkError::Refused("a stored receipt is corrupt".into()))?;
    Ok(receipt.outputs)
}

fn wire(leased: LeasedAttempt) -> Result<Lease, WorkError> {
    let corrupt = |what: &str| WorkError::Refused(format!("a stored job's {what} is corrupt"));
    Ok(Lease {
        attempt_id: leased.attempt_id,
        job_id: leased.job_id.parse().map_err(|_| corrupt("id"))?,
        slice: leased.slice,
        attempt: leased.attempt,
        manifest: leased.manifest,
        signature: serde_json::from_str(&leased.signature).map_err(|_| corrupt("signature"))?,
        start_unix: u64::try_from(leased.created_at / 1000).unwrap_or(0),
        expires_at: rfc3339::format(leased.expires_at),
        carry: Vec::new(),
    })
}
