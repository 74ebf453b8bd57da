//! A machine's lifecycle: pending → active → expiring → expired → destroyed. Which state follows
//! what happens to a machine ([`after`]), and what the leader owes a machine at a moment
//! ([`due`]): the 24 h and 1 h warnings, the stop when its time runs out, the destroy when the
//! grace period after it ends. Pure: the moment is passed in, and the store makes each duty
//! happen once (keyed by the duty and the `expires_at` it was computed for).

use sgl_protocol::api::machines::{EndReason, MachineState};

use crate::price::HOUR_MS;

/// A day: the first warning, and the line between active and expiring.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Why making a machine failed; it is destroyed and its renter refunded in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionFailure {
    /// The provider refused it.
    Rejected,
    /// The provider failed while making it.
    Failed,
    /// It did not answer SSH before the deadline.
    NotReachable,
}

impl ProvisionFailure {
    /// The end reason recorded for it.
    pub const fn reason(self) -> EndReason {
        match self {
            Self::Rejected => EndReason::ProviderRejected,
            Self::Failed => EndReason::ProviderFailed,
            Self::NotReachable => EndReason::NotReachable,
        }
    }
}

/// Something that happens to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    /// It answered SSH for the first time; its time counts from now.
    Reachable,
    /// Making it failed.
    ProvisionFailed(ProvisionFailure),
    /// Its renter bought more time.
    Extended,
    /// Its time ran out: it is stopped, its disk kept.
    RanOut,
    /// Its renter destroyed it.
    DestroyedByUser,
    /// Its grace period ended: it is destroyed.
    GraceOver,
}

impl Happening {
    const fn name(self) -> &'static str {
        match self {
            Self::Reachable => "become reachable",
            Self::ProvisionFailed(_) => "fail to provision",
            Self::Extended => "be extended",
            Self::RanOut => "run out",
            Self::DestroyedByUser => "be destroyed",
            Self::GraceOver => "end its grace period",
        }
    }
}

/// A happening that cannot happen to a machine in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {} machine cannot {}", .state.as_str(), .happening.name())]
pub struct NotNow {
    /// The machine's state.
    pub state: MachineState,
    /// What was asked.
    pub happening: Happening,
}

/// The state of a machine running until `expires_at`, at `now`.
pub fn running(expires_at: i64, now: i64) -> MachineState {
    match expires_at.saturating_sub(now) {
        left if left <= 0 => MachineState::Expired,
        left if left <= DAY_MS => MachineState::Expiring,
        _ => MachineState::Active,
    }
}

/// The state after `happening` to a machine in `state` whose time runs until `expires_at` (as
/// it stands after the happening: from now for [`Happening::Reachable`], the new end for
/// [`Happening::Extended`]), and the end reason when it ends.
pub fn after(
    state: MachineState,
    happening: Happening,
    expires_at: i64,
    now: i64,
) -> Result<(MachineState, Option<EndReason>), NotNow> {
    use MachineState::{Active, Destroyed, Expired, Expiring, Pending};
    let live = matches!(state, Active | Expiring | Expired);
    match (state, happening) {
        (Pending, Happening::Reachable) => Ok((running(expires_at, now), None)),
        (Pending, Happening::ProvisionFailed(failure)) => Ok((Destroyed, Some(failure.reason()))),
        (_, Happening::Extended) if live => Ok((running(expires_at, now), None)),
        (Active | Expiring, Happening::RanOut) => Ok((Expired, None)),
        (_, Happening::DestroyedByUser) if state != Destroyed => Ok((Destroyed, Some(EndReason::DestroyedByUser))),
        (Expired, Happening::GraceOver) => Ok((Destroyed, Some(EndReason::Expired))),
        _ => Err(NotNow { state, happening }),
    }
}

/// A warning before a machine's time runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Warning {
    /// A day before.
    Day,
    /// An hour before.
    Hour,
}

impl Warning {
    /// How long before the end it is given.
    pub const fn lead_ms(self) -> i64 {
        match self {
            Self::Day => DAY_MS,
            Self::Hour => HOUR_MS,
        }
    }
}

/// What the leader owes a machine now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// Mark it expiring (a day or less left).
    MarkExpiring,
    /// Give this warning (once for each `expires_at`).
    Warn(Warning),
    /// Stop it: its time ran out.
    Stop,
    /// Destroy it: its grace period is over.
    Destroy,
}

/// A machine as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    /// Its state.
    pub state: MachineState,
    /// When it first answered SSH, if it has.
    pub active_at: Option<i64>,
    /// When its time runs out, once it is active.
    pub expires_at: Option<i64>,
}

/// What is due for `stay` at `now`, with `grace_ms` between running out and destruction. A
/// warning whose moment came before the machine was active is skipped (a five-hour rental gets
/// no 24 h warning); one whose moment has come is due until the machine runs out.
pub fn due(stay: Stay, now: i64, grace_ms: i64) -> Vec<Duty> {
    let (Some(active_at), Some(expires_at)) = (stay.active_at, stay.expires_at) else { return Vec::new() };
    let mut duties = Vec::new();
    match stay.state {
        MachineState::Active | MachineState::Expiring if now >= expires_at => duties.push(Duty::Stop),
        MachineState::Active | MachineState::Expiring => {
            if stay.state == MachineState::Active && running(expires_at, now) == MachineState::Expiring {
                duties.push(Duty::MarkExpiring);
            }
            for warning in [Warning::Day, Warning::Hour] {
                let at = expires_at - warning.lead_ms();
                if now >= at && active_at < at {
                    duties.push(Duty::Warn(warning));
                }
            }
        }
        MachineState::Expired if now >= expires_at.saturating_add(grace_ms) => duties.push(Duty::Destroy),
        _ => {}
    }
    duties
}

#[cfg(test)]
mod tests;
