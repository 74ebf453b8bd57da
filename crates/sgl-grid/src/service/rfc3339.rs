//! Formatting Unix milliseconds as RFC 3339 UTC (`2026-11-21T23:49:50Z`), the timestamp form
//! the wire uses, without a calendar library.

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    //! Known instants.

    #[test]
    fn known_instants() {
        assert_eq!(super::format(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::format(1_795_304_990_999), "2026-11-21T23:49:50Z");
        assert_eq!(super::format(-1000), "1969-12-31T23:59:59Z");
    }
}
