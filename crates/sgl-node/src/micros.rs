//! Amounts in millionths, as the grid counts them (micro-SGL for stake, micro-dollars for
//! money): parsed exactly from the decimal an operator types (`1500`, `0.25`), never through
//! a float, and printed back without losing a digit.

/// Millionths in one unit (1 SGL, 1 USD).
pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// An amount an operator typed that is not a positive decimal with at most six decimals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Not digits with at most one `.`.
    #[error("{0:?} is not a number like 1500 or 0.25")]
    NotANumber(String),
    /// More than six decimals: smaller than the grid counts.
    #[error("{0:?} has more than 6 decimals")]
    TooPrecise(String),
    /// Zero.
    #[error("the amount must be more than 0")]
    Zero,
    /// Larger than the grid can count.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Parses a positive decimal amount (`1500`, `1500.5`, `.25`) into millionths.
pub fn parse_micros(text: &str) -> Result<i64, AmountError> {
    let trimmed = text.trim();
    let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(AmountError::NotANumber(text.to_owned()));
    }
    if fraction.len() > 6 {
        return Err(AmountError::TooPrecise(text.to_owned()));
    }
    let too_large = || AmountError::TooLarge(text.to_owned());
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
    let fraction: i64 = format!("{fraction:0<6}").parse().unwrap_or(0);
    let micros = whole.checked_mul(MICROS_PER_UNIT).and_then(|w| w.checked_add(fraction)).ok_or_else(too_large)?;
    if micros == 0 {
        return Err(AmountError::Zero);
    }
    Ok(micros)
}

/// `micros` as a decimal without trailing zeros: `1500`, `0.25`, `-3.000001`.
pub fn format_micros(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let magnitude = micros.unsigned_abs();
    let unit = MICROS_PER_UNIT.unsigned_abs();
    let (whole, fraction) = (magnitude / unit, magnitude % unit);
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let fraction = format!("{fraction:06}");
    format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
}

/// `micros` of a dollar as `$1.50`, or with all six decimals when cents would hide some.
pub fn format_usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let magnitude = micros.unsigned_abs();
    let unit = MICROS_PER_UNIT.unsigned_abs();
    let (whole, fraction) = (magnitude / unit, magnitude % unit);
    if fraction % 10_000 == 0 {
        format!("{sign}${whole}.{:02}", fraction / 10_000)
    } else {
        format!("{sign}${whole}.{fraction:06}")
    }
}

#[cfg(test)]
mod tests {
    //! Exact round trips and clear refusals.

    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        for (text, micros) in [
            ("1500", 1_500_000_000),
            ("1500.5", 1_500_500_000),
            (" 0.25 ", 250_000),
            (".000001", 1),
            ("7.", 7_000_000),
            ("0.1", 100_000),
        ] {
            assert_eq!(parse_micros(text), Ok(micros), "{text}");
        }
        for bad in ["", ".", "-1", "1e3", "1,5", "abc", "1.2.3", "+2"] {
            assert!(matches!(parse_micros(bad), Err(AmountError::NotANumber(_))), "{bad}");
        }
        assert!(matches!(parse_micros("0.0000001"), Err(AmountError::TooPrecise(_))));
        assert_eq!(parse_micros("0.000"), Err(AmountError::Zero));
        assert!(matches!(parse_micros("99999999999999999999"), Err(AmountError::TooLarge(_))));
        assert!(matches!(parse_micros("9223372036855"), Err(AmountError::TooLarge(_))));
    }

    #[test]
    fn amounts_print_without_losing_digits() {
        assert_eq!(format_micros(50_000_000_000), "50000");
        assert_eq!(format_micros(1_500_500_000), "1500.5");
        assert_eq!(format_micros(1), "0.000001");
        assert_eq!(format_micros(-3_000_001), "-3.000001");
        assert_eq!(format_micros(0), "0");
        assert_eq!(format_usd(1_500_000), "$1.50");
        assert_eq!(format_usd(0), "$0.00");
        assert_eq!(format_usd(1_234_567), "$1.234567");
        assert_eq!(format_usd(-20_000), "-$0.02");
        for micros in [1, 250_000, 1_500_500_000, i64::MAX] {
            assert_eq!(parse_micros(&format_micros(micros)), Ok(micros));
        }
    }
}
