//! The log throttle; the server itself is tested over real sockets in `tests/api/server.rs`.

use super::*;

#[test]
fn a_repeated_event_is_logged_at_most_once_a_second_with_the_count_held_back() {
    let mut log = LogThrottle::default();
    let t0 = Instant::now();
    assert_eq!(log.ready(t0), Some(0));
    for n in 1..=500 {
        assert_eq!(log.ready(t0 + Duration::from_micros(n)), None);
    }
    assert_eq!(log.ready(t0 + Duration::from_millis(999)), None);
    assert_eq!(log.ready(t0 + Duration::from_secs(1)), Some(501));
    assert_eq!(log.ready(t0 + Duration::from_secs(3)), Some(0));
}
