//! The jobs-per-second rate between two samples of the finished-jobs counter.

use super::jobs_per_second;

#[test]
fn the_rate_is_jobs_over_the_time_between_samples() {
    assert_eq!(jobs_per_second(None, (1_000, 5)), 0.0);
    assert_eq!(jobs_per_second(Some((1_000, 5)), (1_000, 5)), 0.0, "one sample: no rate");
    assert_eq!(jobs_per_second(Some((0, 0)), (10_000, 25)), 2.5);
    assert_eq!(
        jobs_per_second(Some((0, 9)), (10_000, 5)),
        0.0,
        "a counter that went back (a restart) is no negative rate"
    );
}
