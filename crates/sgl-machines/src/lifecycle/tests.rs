//! Every state against every happening, and the duties of each moment of a rental.

use sgl_protocol::api::machines::{EndReason, MachineState};

use super::*;

const NOW: i64 = 1_800_000_000_000;
const GRACE: i64 = 24 * HOUR_MS;

#[test]
fn a_machine_is_active_expiring_or_expired_by_the_time_left() {
    assert_eq!(running(NOW + DAY_MS + 1, NOW), MachineState::Active);
    assert_eq!(running(NOW + DAY_MS, NOW), MachineState::Expiring);
    assert_eq!(running(NOW + 1, NOW), MachineState::Expiring);
    assert_eq!(running(NOW, NOW), MachineState::Expired);
}

#[test]
fn each_state_takes_only_its_happenings() {
    use MachineState::*;
    let long = NOW + 30 * DAY_MS;
    let reachable = after(Pending, Happening::Reachable, long, NOW);
    assert_eq!(reachable, Ok((Active, None)));
    assert_eq!(after(Pending, Happening::Reachable, NOW + 5 * HOUR_MS, NOW), Ok((Expiring, None)));
    let failed = after(Pending, Happening::ProvisionFailed(ProvisionFailure::NotReachable), long, NOW);
    assert_eq!(failed, Ok((Destroyed, Some(EndReason::NotReachable))));
    assert!(failed.unwrap().1.unwrap().refunds_in_full());
    assert_eq!(after(Expired, Happening::Extended, NOW + 3 * HOUR_MS, NOW), Ok((Expiring, None)));
    assert_eq!(after(Expiring, Happening::Extended, long, NOW), Ok((Active, None)));
    assert_eq!(after(Active, Happening::RanOut, NOW, NOW), Ok((Expired, None)));
    assert_eq!(after(Expired, Happening::GraceOver, NOW, NOW), Ok((Destroyed, Some(EndReason::Expired))));
    for state in [Pending, Active, Expiring, Expired] {
        let destroyed = after(state, Happening::DestroyedByUser, long, NOW);
        assert_eq!(destroyed, Ok((Destroyed, Some(EndReason::DestroyedByUser))), "{state:?}");
    }
    // What cannot happen is refused by name.
    let refused = [
        (Pending, Happening::Extended),
        (Pending, Happening::RanOut),
        (Active, Happening::Reachable),
        (Active, Happening::GraceOver),
        (Expired, Happening::RanOut),
        (Active, Happening::ProvisionFailed(ProvisionFailure::Rejected)),
        (Destroyed, Happening::DestroyedByUser),
        (Destroyed, Happening::Extended),
    ];
    for (state, happening) in refused {
        assert_eq!(after(state, happening, long, NOW), Err(NotNow { state, happening }));
    }
    let message = after(Destroyed, Happening::Extended, long, NOW).unwrap_err().to_string();
    assert_eq!(message, "a destroyed machine cannot be extended");
}

fn stay(state: MachineState, active_at: i64, expires_at: i64) -> Stay {
    Stay { state, active_at: Some(active_at), expires_at: Some(expires_at) }
}

#[test]
fn a_three_day_rental_is_warned_a_day_and_an_hour_before_then_stopped_then_destroyed() {
    let start = NOW;
    let end = start + 72 * HOUR_MS;
    let active = stay(MachineState::Active, start, end);
    assert_eq!(due(active, start + HOUR_MS, GRACE), []);
    assert_eq!(due(active, end - DAY_MS, GRACE), [Duty::MarkExpiring, Duty::Warn(Warning::Day)]);
    let expiring = stay(MachineState::Expiring, start, end);
    assert_eq!(due(expiring, end - 2 * HOUR_MS, GRACE), [Duty::Warn(Warning::Day)]);
    assert_eq!(due(expiring, end - HOUR_MS, GRACE), [Duty::Warn(Warning::Day), Duty::Warn(Warning::Hour)]);
    assert_eq!(due(expiring, end, GRACE), [Duty::Stop]);
    let expired = stay(MachineState::Expired, start, end);
    assert_eq!(due(expired, end + GRACE - 1, GRACE), []);
    assert_eq!(due(expired, end + GRACE, GRACE), [Duty::Destroy]);
}

#[test]
fn a_short_rental_gets_only_the_warnings_after_it_started() {
    let five_hours = stay(MachineState::Expiring, NOW, NOW + 5 * HOUR_MS);
    assert_eq!(due(five_hours, NOW + 4 * HOUR_MS, GRACE), [Duty::Warn(Warning::Hour)]);
    let pending = Stay { state: MachineState::Pending, active_at: None, expires_at: None };
    assert_eq!(due(pending, NOW, GRACE), []);
    let gone = stay(MachineState::Destroyed, NOW, NOW);
    assert_eq!(due(gone, NOW + 10 * DAY_MS, GRACE), []);
}
