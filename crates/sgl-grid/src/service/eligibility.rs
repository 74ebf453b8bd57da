//! Why a node gets no work, as the scheduler decides it, for `GET /grid/nodes/{id}` (the node
//! asking about itself, `sgl status`) and `GET /grid/operators/{wallet}/nodes` (the
//! dashboard's operator page). The reasons come from [`LiveNode::not_serving`], the test the
//! scheduler itself applies, with the stake read from the ledger (which tells unstaking from
//! below the minimum); nothing here guesses.

use sgl_grid_store::StoreError;
use sgl_grid_store::nodes::NodeRecord;
use sgl_protocol::api::node::{NodeLifecycle, NotServingReason};
use sgl_protocol::api::operator::{ModelStanding, OperatorNode, OperatorNodes, StakeState};

use crate::registry::{Attestation, LiveNode};
use crate::service::pricing::blended_per_m;
use crate::service::{rfc3339, schedule};
use crate::state::AppState;

/// Why `node` gets no work now: the scheduler's own test on its live state (or, without one,
/// what its record says), with the operator's stake `stake`.
pub fn not_serving(
    node: &NodeRecord,
    live: Option<&LiveNode>,
    stake: StakeState,
    now: i64,
    timeout_ms: i64,
) -> Vec<NotServingReason> {
    let mut reasons = match live {
        Some(live) => live.not_serving(now, timeout_ms),
        None => {
            let attestation = Attestation::of(node.attested, node.binary_hash.as_deref(), "");
            let mut reasons = vec![NotServingReason::Offline];
            reasons.extend(node.off_grid.then_some(NotServingReason::OffGrid));
            reasons.extend((attestation == Attestation::Missing).then_some(NotServingReason::NotAttested));
            reasons
        }
    };
    reasons.retain(|reason| *reason != NotServingReason::BelowStake);
    match stake {
        StakeState::Staked => {}
        StakeState::BelowMinimum => reasons.push(NotServingReason::BelowStake),
        StakeState::Unstaking => reasons.push(NotServingReason::Unstaking),
        StakeState::NotBonded => reasons.push(NotServingReason::NotBonded),
    }
    reasons
}

/// A node's lifecycle: off the grid by its operator, else active while heard from.
pub fn lifecycle(node: &NodeRecord, online: bool) -> NodeLifecycle {
    match (node.off_grid, online) {
        (true, _) => NodeLifecycle::OffGrid,
        (false, true) => NodeLifecycle::Active,
        (false, false) => NodeLifecycle::Offline,
    }
}

/// Every node registered under `wallet`, each with what it serves and why it gets no work.
pub async fn operator_nodes(state: &AppState, wallet: &str) -> Result<OperatorNodes, StoreError> {
    let (stake, _) = crate::service::stake::standing(state, wallet).await?;
    let (now, timeout_ms) = (state.now_ms(), state.config().node_timeout_ms());
    let registry = state.registry().snapshot();
    let live: std::collections::HashMap<String, &LiveNode> =
        registry.iter().map(|node| (node.node_id.to_string(), node)).collect();
    let (mut nodes, mut too_long) = (Vec::new(), TooLong::default());
    for node in state.store().wallet_nodes(wallet).await? {
        let live = live.get(&node.id).copied();
        let online = live.is_some_and(|live| live.is_online(now, timeout_ms));
        let standing = match live {
            Some(live) => standing(state, &registry, live, now, &mut too_long).await?,
            None => Vec::new(),
        };
        nodes.push(OperatorNode {
            node_id: node.id.clone(),
            status: lifecycle(&node, online),
            models: live.filter(|_| online).map(|live| live.models.clone()).unwrap_or_default(),
            busy_slots: live.filter(|_| online).map_or(0, LiveNode::busy),
            slots: live.filter(|_| online).map_or(0, |live| live.max_concurrent_jobs),
            reputation: node.reputation_at(now),
            attested: live.map_or(node.attested, LiveNode::attested),
            binary_allowed: live.is_none_or(|live| live.binary_allowed),
            jobs_completed: u64::try_from(node.jobs_completed).unwrap_or(0),
            jobs_failed: u64::try_from(node.jobs_failed).unwrap_or(0),
            last_seen: live.map(|live| rfc3339::format(live.last_seen_ms)),
            not_serving: not_serving(&node, live, stake, now, timeout_ms),
            standing,
        });
    }
    Ok(OperatorNodes { wallet: wallet.to_owned(), nodes })
}

/// The last day's prompts too long for a context, by model and context size: read once per
/// pair however many of the wallet's nodes share it.
type TooLong = std::collections::HashMap<(String, u32), i64>;

/// Where the scheduler ranks `node` among the live nodes `registry` for each chat model it
/// serves (none while it is not eligible: it is then in no ranking), and how many of the last
/// day's prompts for the model its context could not hold (the negation of
/// [`schedule::holds`]: at least `context_size` tokens).
async fn standing(
    state: &AppState,
    registry: &[LiveNode],
    node: &LiveNode,
    now: i64,
    too_long: &mut TooLong,
) -> Result<Vec<ModelStanding>, StoreError> {
    let config = state.config();
    let mut standings = Vec::new();
    for model in &node.models {
        let Some((position, of)) = schedule::position(config, registry, &node.node_id, model, now) else { continue };
        let price_per_m = blended_per_m(schedule::effective_price(config, node, model).0);
        let reference_per_m = blended_per_m(config.reference_price(model));
        let key = (model.clone(), node.context_size);
        let counted = match too_long.get(&key) {
            Some(count) => *count,
            None => {
                let since = now - sgl_grid_store::reports::DAY_MS;
                let count = state.store().prompts_at_least(model, since, i64::from(node.context_size)).await?;
                too_long.insert(key, count);
                count
            }
        };
        standings.push(ModelStanding {
            model: model.clone(),
            position,
            of,
            price_per_m,
            reference_per_m,
            above_reference: price_per_m > reference_per_m,
            context_size: node.context_size,
            prompts_too_long_24h: u64::try_from(counted).unwrap_or(0),
        });
    }
    Ok(standings)
}
