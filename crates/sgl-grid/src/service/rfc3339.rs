//! Unix milliseconds as RFC 3339 UTC (`2026-11-21T23:49:50Z`), through
//! [`sgl_protocol::rfc3339`].

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format(ms: i64) -> String {
    sgl_protocol::rfc3339::format_signed(ms.div_euclid(1000))
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
