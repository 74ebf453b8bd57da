//! The connection clock's deadlines, moved by hand.

use super::*;

const TIMEOUTS: Timeouts = Timeouts { header_read: Duration::from_secs(10), idle: Duration::from_secs(60) };

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_new_connection_must_finish_its_head_within_the_header_timeout() {
    let t0 = Instant::now();
    let phase = Phase::opened(t0);
    assert_eq!(phase.deadline(TIMEOUTS), Some((t0 + secs(10), ConnectionTimeout::HeaderRead)));
    // Bytes of the head do not extend it: half a header is still due at the same time.
    let phase = phase.bytes_read(t0 + secs(9));
    assert_eq!(expired(phase, TIMEOUTS, t0 + secs(9)), None);
    assert_eq!(expired(phase, TIMEOUTS, t0 + secs(10)), Some(ConnectionTimeout::HeaderRead));
}

#[test]
fn a_request_in_flight_has_no_deadline_however_long_it_takes() {
    let t0 = Instant::now();
    let phase = Phase::opened(t0).request_started();
    assert_eq!(phase.deadline(TIMEOUTS), None);
    assert_eq!(expired(phase, TIMEOUTS, t0 + secs(3600)), None);
    // Request body bytes change nothing.
    assert_eq!(phase.bytes_read(t0 + secs(5)), phase);
}

#[test]
fn after_a_response_the_connection_may_idle_for_the_idle_timeout() {
    let t0 = Instant::now();
    let idle = Phase::opened(t0).request_started().response_finished(t0 + secs(1));
    assert_eq!(idle, Phase::Idle { since: t0 + secs(1) });
    assert_eq!(expired(idle, TIMEOUTS, t0 + secs(60)), None);
    assert_eq!(expired(idle, TIMEOUTS, t0 + secs(61)), Some(ConnectionTimeout::Idle));
}

#[test]
fn the_next_requests_head_is_due_within_the_header_timeout_of_its_first_byte() {
    let t0 = Instant::now();
    let idle = Phase::opened(t0).request_started().response_finished(t0);
    let reading = idle.bytes_read(t0 + secs(30));
    assert_eq!(reading.deadline(TIMEOUTS), Some((t0 + secs(40), ConnectionTimeout::HeaderRead)));
    // More bytes of the same head do not move it.
    assert_eq!(reading.bytes_read(t0 + secs(35)), reading);
    assert_eq!(reading.request_started().deadline(TIMEOUTS), None);
}

#[test]
fn the_connection_is_busy_until_every_response_in_flight_has_finished() {
    let t0 = Instant::now();
    let two = Phase::opened(t0).request_started().request_started();
    let one = two.response_finished(t0 + secs(1));
    assert_eq!(one, Phase::Busy { in_flight: 1 });
    assert_eq!(one.response_finished(t0 + secs(2)), Phase::Idle { since: t0 + secs(2) });
}

#[test]
fn the_watchdog_never_sleeps_past_a_deadline_set_after_it_looked() {
    let t0 = Instant::now();
    // Busy: it looks again after the shorter timeout.
    let busy = Phase::opened(t0).request_started();
    assert_eq!(next_check(busy, TIMEOUTS, t0), t0 + secs(10));
    // The response ends at once and bytes of a next head arrive at t0 + 1: that head is due
    // at t0 + 11, after the watchdog's next look at t0 + 10, which then sees it.
    let reading = busy.response_finished(t0).bytes_read(t0 + secs(1));
    assert_eq!(next_check(reading, TIMEOUTS, t0 + secs(10)), t0 + secs(11));
    // Idle for 60 s: it looks every 10 s, and at the deadline itself.
    let idle = Phase::Idle { since: t0 };
    assert_eq!(next_check(idle, TIMEOUTS, t0 + secs(55)), t0 + secs(60));
}
