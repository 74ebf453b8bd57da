//! Prices: a model's reference price, a node's effective price, the band custom prices must
//! stay in, and the conversion to the micro-dollar amounts the ledger holds.

use crate::config::ReferencePrice;

/// Lowest custom price as a multiple of the reference price.
pub const BAND_MIN: f64 = 0.5;
/// Highest custom price as a multiple of the reference price.
pub const BAND_MAX: f64 = 5.0;

/// A custom price is outside the band.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{side} price {value} is outside the allowed band {min}..={max} USD per 1M tokens")]
pub struct OutOfBand {
    /// `input` or `output`.
    pub side: &'static str,
    /// The price asked for.
    pub value: f64,
    /// The band's lower end.
    pub min: f64,
    /// The band's upper end.
    pub max: f64,
}

/// Checks a custom price against the band around `reference`.
pub fn check_band(reference: ReferencePrice, input_per_m: f64, output_per_m: f64) -> Result<(), OutOfBand> {
    for (side, value, reference) in
        [("input", input_per_m, reference.input_per_m), ("output", output_per_m, reference.output_per_m)]
    {
        let (min, max) = (reference * BAND_MIN, reference * BAND_MAX);
        if !value.is_finite() || value < min || value > max {
            return Err(OutOfBand { side, value, min, max });
        }
    }
    Ok(())
}

/// Blended USD per 1M tokens, the sort key for providers (input and output weighted equally).
pub fn blended_per_m(price: ReferencePrice) -> f64 {
    (price.input_per_m + price.output_per_m) / 2.0
}

/// What `prompt_tokens` and `completion_tokens` cost at `price`, in micro-dollars, rounded up
/// so a non-zero job never costs nothing. In integers: USD per 1M tokens is micro-USD per
/// token, taken to the pico-dollar, so 2 prompt and 7 completion tokens at $0.10/$0.40 per M
/// cost exactly 3 micro-dollars (the float sum, 3.0000000000000004, once billed 4).
pub fn cost_micros(price: ReferencePrice, prompt_tokens: u64, completion_tokens: u64) -> i64 {
    let pico = pico_per_token(price.input_per_m)
        .saturating_mul(u128::from(prompt_tokens))
        .saturating_add(pico_per_token(price.output_per_m).saturating_mul(u128::from(completion_tokens)));
    i64::try_from(pico.div_ceil(1_000_000)).unwrap_or(i64::MAX)
}

/// A price in USD per 1M tokens as pico-dollars per token (0 for what is not a positive price).
fn pico_per_token(usd_per_m: f64) -> u128 {
    if usd_per_m.is_finite() && usd_per_m > 0.0 { (usd_per_m * 1e6).round().min(u64::MAX as f64) as u128 } else { 0 }
}

/// Dollars to micro-dollars, refusing what is not a positive, finite, sane amount.
pub fn usd_to_micros(usd: f64) -> Option<i64> {
    (usd.is_finite() && usd > 0.0 && usd <= 1e9).then(|| (usd * 1e6).round() as i64).filter(|&micros| micros > 0)
}

#[cfg(test)]
mod tests {
    //! Band edges, rounding and conversions.

    use super::*;

    const REFERENCE: ReferencePrice = ReferencePrice { input_per_m: 0.1, output_per_m: 0.4 };

    #[test]
    fn band_is_half_to_five_times_the_reference() {
        assert!(check_band(REFERENCE, 0.05, 2.0).is_ok());
        assert!(check_band(REFERENCE, 0.5, 0.2).is_ok());
        assert_eq!(check_band(REFERENCE, 0.04, 0.4).unwrap_err().side, "input");
        assert_eq!(check_band(REFERENCE, 0.1, 2.1).unwrap_err().side, "output");
        assert!(check_band(REFERENCE, f64::NAN, 0.4).is_err());
    }

    #[test]
    fn costs_round_up_to_a_micro_dollar() {
        assert_eq!(cost_micros(REFERENCE, 10, 0), 1);
        assert_eq!(cost_micros(REFERENCE, 1_000_000, 1_000_000), 500_000);
        assert_eq!(cost_micros(ReferencePrice { input_per_m: 0.0, output_per_m: 0.0 }, 5, 5), 0);
        // Exact where a float sum lands just above a whole number (0.1 × 2 + 0.4 × 7 is
        // 3.0000000000000004 and 1.1 × 50 is 55.00000000000001 in f64: about 2 % of requests under
        // 300 tokens each way at the default prices were billed one micro-dollar more).
        assert_eq!(cost_micros(REFERENCE, 2, 7), 3);
        assert_eq!(cost_micros(ReferencePrice { input_per_m: 1.1, output_per_m: 1.1 }, 50, 0), 55);
        assert_eq!(cost_micros(REFERENCE, 30, 0), 3);
        assert_eq!(cost_micros(REFERENCE, 31, 0), 4, "3.1 rounds up");
        assert_eq!(cost_micros(REFERENCE, 0, 5), 2);
        assert_eq!(cost_micros(ReferencePrice { input_per_m: 1e6, output_per_m: 1e6 }, u64::MAX, u64::MAX), i64::MAX);
        assert_eq!(cost_micros(ReferencePrice { input_per_m: f64::NAN, output_per_m: -1.0 }, 5, 5), 0);
        assert_eq!(usd_to_micros(1.5), Some(1_500_000));
        assert_eq!(usd_to_micros(0.000001), Some(1));
        // A positive amount that rounds to no micro-dollar is no amount (found by schemathesis).
        for bad in [0.0, -1.0, 1e-7, f64::INFINITY, f64::NAN, 2e9] {
            assert_eq!(usd_to_micros(bad), None);
        }
        assert!((blended_per_m(REFERENCE) - 0.25).abs() < 1e-12);
    }
}
