//! Prices, durations, extensions and resizes to the micro-dollar and the millisecond.

use super::*;

const NOW: i64 = 1_800_000_000_000;

fn rate(micros: i64) -> Rate {
    Rate::per_hour(micros).unwrap()
}

#[test]
fn a_duration_is_exactly_one_of_hours_days_or_months() {
    assert_eq!(Hours::from_request(Some(5), None, None).unwrap().get(), 5);
    assert_eq!(Hours::from_request(None, Some(2), None).unwrap().get(), 48);
    assert_eq!(Hours::from_request(None, None, Some(3)).unwrap().get(), 2_160);
    assert_eq!(Hours::from_request(None, None, None), Err(PriceError::NoDuration));
    assert_eq!(Hours::from_request(Some(1), Some(1), None), Err(PriceError::TwoDurations));
    assert_eq!(Hours::from_request(Some(0), None, None), Err(PriceError::ZeroDuration));
    assert_eq!(Hours::from_request(None, None, Some(13)), Err(PriceError::TooLong(9_360)));
    assert_eq!(Hours::from_request(None, Some(u32::MAX), None), Err(PriceError::TooLong(u64::from(u32::MAX) * 24)));
    assert_eq!(Hours::new(u64::from(MAX_HOURS)).unwrap().ms(), 8_760 * 3_600_000);
}

#[test]
fn rates_are_positive_bounded_and_price_whole_hours() {
    assert_eq!(Rate::per_hour(0), Err(PriceError::NotPositive));
    assert_eq!(Rate::per_hour(-5), Err(PriceError::NotPositive));
    assert_eq!(Rate::per_hour(MAX_RATE_MICROS + 1), Err(PriceError::TooDear));
    assert_eq!(rate(7_440).price(Hours::new(24).unwrap()), 178_560);
    let dearest = rate(MAX_RATE_MICROS).price(Hours::new(u64::from(MAX_HOURS)).unwrap());
    assert_eq!(dearest, 8_760_000_000_000_000, "a year at the dearest rate fits an i64");
}

#[test]
fn a_providers_monthly_price_becomes_an_hourly_rate_rounded_up() {
    // $5.00 a month over 672 hours: 7,440.476… micro-dollars an hour, rounded up.
    assert_eq!(Rate::from_monthly(5_000_000, 0).unwrap().micros_per_hour(), 7_441);
    // $6.72 a month is exactly $0.01 an hour; a 10 % markup makes it exactly 11,000.
    assert_eq!(Rate::from_monthly(6_720_000, 0).unwrap().micros_per_hour(), 10_000);
    assert_eq!(Rate::from_monthly(6_720_000, 1_000).unwrap().micros_per_hour(), 11_000);
    assert_eq!(Rate::from_monthly(0, 0), Err(PriceError::NotPositive));
    assert_eq!(Rate::from_monthly(1, 0).unwrap().micros_per_hour(), 1, "never free");
}

#[test]
fn an_extension_adds_hours_to_the_end_or_from_now_once_expired() {
    let hours = Hours::new(3).unwrap();
    assert_eq!(extended(NOW + 60_000, NOW, hours), NOW + 60_000 + 3 * HOUR_MS);
    assert_eq!(extended(NOW - 60_000, NOW, hours), NOW + 3 * HOUR_MS, "an expired machine restarts now");
}

#[test]
fn a_resize_keeps_the_prepaid_value_left_to_the_millisecond() {
    // Ten hours left at $0.01/h is $0.10; at $0.04/h that buys two and a half hours.
    let expires = resized(NOW + 10 * HOUR_MS, NOW, rate(10_000), rate(40_000)).unwrap();
    assert_eq!(expires, NOW + 9_000_000);
    // Down to a cheaper plan the same value lasts longer.
    assert_eq!(resized(NOW + 10 * HOUR_MS, NOW, rate(40_000), rate(10_000)).unwrap(), NOW + 40 * HOUR_MS);
    // Uneven rates round down, and the value kept is within one millisecond at the new rate.
    let (old, new, left) = (rate(7_441), rate(22_323), 123_456_789);
    let expires = resized(NOW + left, NOW, old, new).unwrap();
    let bought = i128::from(expires - NOW);
    let value_left = i128::from(left) * i128::from(old.micros_per_hour());
    assert!(bought * i128::from(new.micros_per_hour()) <= value_left);
    assert!((bought + 1) * i128::from(new.micros_per_hour()) > value_left);
    assert_eq!(expires - NOW, 41_152_263);
}

#[test]
fn a_resize_that_would_leave_almost_nothing_is_refused() {
    let refused = resized(NOW + 10 * 60_000, NOW, rate(10_000), rate(40_000));
    assert_eq!(refused, Err(PriceError::TooLittleLeft { left_ms: 150_000 }));
    assert_eq!(
        resized(NOW - 1, NOW, rate(10_000), rate(10_000)),
        Err(PriceError::TooLittleLeft { left_ms: 0 }),
        "an expired machine has nothing to carry over"
    );
    assert!(resized(NOW + MIN_LEFT_AFTER_RESIZE_MS, NOW, rate(5), rate(5)).is_ok());
}

#[test]
fn a_provider_price_is_read_from_its_decimal_text() {
    assert_eq!(micros_from_decimal("5"), Some(5_000_000));
    assert_eq!(micros_from_decimal("5.0"), Some(5_000_000));
    assert_eq!(micros_from_decimal("2.50"), Some(2_500_000));
    assert_eq!(micros_from_decimal("2522.16"), Some(2_522_160_000));
    // 0.1 + 0.2 is no trouble for text: no float ever holds the price.
    assert_eq!(micros_from_decimal("0.3"), Some(300_000));
    // Past a millionth the price rounds up, never down.
    assert_eq!(micros_from_decimal("0.00743999984115362"), Some(7_440));
    assert_eq!(micros_from_decimal("0.0074400000"), Some(7_440));
    for bad in ["", ".5", "5.", "-5", "+5", "1e3", "5,0", " 5", "99999999999999999999"] {
        assert_eq!(micros_from_decimal(bad), None, "{bad:?}");
    }
}
