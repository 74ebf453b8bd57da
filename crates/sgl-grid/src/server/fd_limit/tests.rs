//! Raising and respecting the open-file limit, as arithmetic.

use super::*;

#[test]
fn the_soft_limit_is_raised_only_as_far_as_needed_and_the_hard_limit_allows() {
    let limit = |soft, hard| Limit { soft: Some(soft), hard };
    assert_eq!(raise_target(8_320, limit(1_024, Some(1_048_576))), Some(8_320));
    assert_eq!(raise_target(8_320, limit(1_024, Some(4_096))), Some(4_096));
    assert_eq!(raise_target(8_320, limit(1_024, None)), Some(8_320));
    assert_eq!(raise_target(8_320, limit(65_536, Some(65_536))), None);
    assert_eq!(raise_target(8_320, limit(4_096, Some(4_096))), None);
    assert_eq!(raise_target(8_320, Limit { soft: None, hard: None }), None);
}

#[test]
fn the_cap_leaves_the_reserve_free() {
    assert_eq!(ceiling(8_192, Some(1_024)), 1_024 - 128);
    assert_eq!(ceiling(8_192, Some(100_000)), 8_192);
    assert_eq!(ceiling(8_192, None), 8_192);
    assert_eq!(ceiling(8_192, Some(100)), 1);
}

#[test]
fn this_process_gets_a_ceiling_within_its_limit() {
    // This process's limit is whatever the test runner has; the ceiling is never above what
    // was asked for, and never zero.
    let ceiling = connection_ceiling(64);
    assert!((1..=64).contains(&ceiling), "{ceiling}");
}
