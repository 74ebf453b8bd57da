//! Percentiles read from the latency histogram.

use super::*;

#[test]
fn percentiles_are_the_bucket_bounds_that_hold_them() {
    let metrics = Metrics::default();
    assert_eq!(metrics.latency().p50_seconds, None, "no request yet");
    // 90 fast requests (≤ 1 ms), 9 at 40 ms, 1 at 3 s.
    (0..90).for_each(|_| metrics.observe_response(200, 0.0005));
    (0..9).for_each(|_| metrics.observe_response(200, 0.04));
    metrics.observe_response(500, 3.0);
    let latency = metrics.latency();
    assert_eq!(latency.count, 100);
    assert_eq!(latency.p50_seconds, Some(0.001));
    assert_eq!(latency.p95_seconds, Some(0.05));
    assert_eq!(latency.p99_seconds, Some(0.05));
    assert!((latency.mean_seconds.unwrap() - (0.045 + 0.36 + 3.0) / 100.0).abs() < 1e-6);
    // Past the last finite bucket there is no bound to name.
    let slow = Metrics::default();
    slow.observe_response(200, 60.0);
    assert_eq!(slow.latency().p50_seconds, None);
    assert_eq!(slow.jobs_finished(), (0, 0));
}
