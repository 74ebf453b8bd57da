//! What prepaid time costs and how long it lasts, in integer micro-dollars and milliseconds.
//!
//! A machine is paid for in whole hours at its plan's hourly rate. Its time counts from the
//! moment it answers SSH. An extension adds hours at the current rate. A resize moves no money:
//! the prepaid value left, `old rate × time left`, buys time at the new rate, rounded down to the
//! millisecond, so the grid never gives more than was paid and keeps less than a millisecond of it.

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// The longest prepaid time one payment buys: a year of hours.
pub const MAX_HOURS: u32 = 8_760;
/// Hours in a day, and in a month as the request counts them (30 days).
pub const HOURS_PER_DAY: u32 = 24;
/// See [`HOURS_PER_DAY`].
pub const HOURS_PER_MONTH: u32 = 720;
/// The dearest hourly rate a plan may have: a million dollars an hour, so that a year of it
/// still fits an `i64` of micro-dollars with room to spare.
pub const MAX_RATE_MICROS: i64 = 1_000_000_000_000;
/// A resize that would leave less time than this is refused: the machine would expire before
/// its renter could use the new size.
pub const MIN_LEFT_AFTER_RESIZE_MS: i64 = 5 * 60_000;
/// Hours in the month providers derive an hourly price from (28 days: Vultr and DigitalOcean
/// bill at most this many hours in a month).
pub const PROVIDER_MONTH_HOURS: i64 = 672;

/// Why a price or a duration is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// A rate of zero or less.
    #[error("an hourly rate must be more than zero micro-dollars")]
    NotPositive,
    /// A rate above [`MAX_RATE_MICROS`].
    #[error("an hourly rate may be at most {MAX_RATE_MICROS} micro-dollars")]
    TooDear,
    /// No duration given.
    #[error("give one of prepaid_hours, prepaid_days or prepaid_months")]
    NoDuration,
    /// More than one duration given.
    #[error("give only one of prepaid_hours, prepaid_days and prepaid_months")]
    TwoDurations,
    /// Zero hours.
    #[error("the prepaid time must be at least one hour")]
    ZeroDuration,
    /// More than [`MAX_HOURS`].
    #[error("{0} hours is more than the {MAX_HOURS} one payment may buy")]
    TooLong(u64),
    /// A resize would leave less than [`MIN_LEFT_AFTER_RESIZE_MS`].
    #[error("at the new rate {left_ms} ms of prepaid time would be left, less than five minutes; extend first")]
    TooLittleLeft {
        /// What would be left.
        left_ms: i64,
    },
}

/// A plan's price per hour, in micro-dollars, positive and at most [`MAX_RATE_MICROS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(i64);

impl Rate {
    /// `micros` per hour.
    pub fn per_hour(micros: i64) -> Result<Self, PriceError> {
        match micros {
            m if m <= 0 => Err(PriceError::NotPositive),
            m if m > MAX_RATE_MICROS => Err(PriceError::TooDear),
            m => Ok(Self(m)),
        }
    }

    /// The hourly rate of a provider's monthly price with the grid's markup in basis points:
    /// `ceil(monthly × (10,000 + markup) / (672 × 10,000))`, rounded up so the grid never sells
    /// below its cost.
    pub fn from_monthly(monthly_micros: i64, markup_bps: u32) -> Result<Self, PriceError> {
        if monthly_micros <= 0 {
            return Err(PriceError::NotPositive);
        }
        let scaled = i128::from(monthly_micros) * (10_000 + i128::from(markup_bps));
        let hourly = scaled.div_euclid(i128::from(PROVIDER_MONTH_HOURS) * 10_000)
            + i128::from(scaled.rem_euclid(i128::from(PROVIDER_MONTH_HOURS) * 10_000) != 0);
        Self::per_hour(i64::try_from(hourly).map_err(|_| PriceError::TooDear)?)
    }

    /// Micro-dollars per hour.
    pub const fn micros_per_hour(self) -> i64 {
        self.0
    }

    /// What `hours` cost at this rate (never overflows: both are bounded).
    pub const fn price(self, hours: Hours) -> i64 {
        self.0 * hours.0 as i64
    }
}

/// A whole number of prepaid hours, 1 to [`MAX_HOURS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hours(u32);

impl Hours {
    /// `hours`, if it is a duration one payment may buy.
    pub fn new(hours: u64) -> Result<Self, PriceError> {
        match hours {
            0 => Err(PriceError::ZeroDuration),
            h if h > u64::from(MAX_HOURS) => Err(PriceError::TooLong(h)),
            h => Ok(Self(h as u32)),
        }
    }

    /// The duration a provision request names: exactly one of hours, days (24 h) or months
    /// (720 h).
    pub fn from_request(hours: Option<u32>, days: Option<u32>, months: Option<u32>) -> Result<Self, PriceError> {
        let given = [
            hours.map(u64::from),
            days.map(|d| u64::from(d) * u64::from(HOURS_PER_DAY)),
            months.map(|m| u64::from(m) * u64::from(HOURS_PER_MONTH)),
        ];
        let mut named = given.into_iter().flatten();
        match (named.next(), named.next()) {
            (None, _) => Err(PriceError::NoDuration),
            (Some(_), Some(_)) => Err(PriceError::TwoDurations),
            (Some(hours), None) => Self::new(hours),
        }
    }

    /// The number of hours.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The duration in milliseconds.
    pub const fn ms(self) -> i64 {
        self.0 as i64 * HOUR_MS
    }
}

/// When a machine whose time runs until `expires_at` expires after `hours` more: later by that
/// much, or, for a machine already expired (stopped, in its grace period), that long from `now`,
/// when it is started again.
pub fn extended(expires_at: i64, now: i64, hours: Hours) -> i64 {
    expires_at.max(now) + hours.ms()
}

/// When a machine expires after a resize at `now` from rate `old` to rate `new`, keeping the
/// prepaid value left: `now + floor((expires_at − now) × old / new)`, so that
/// `new × (result − now) ≤ old × (expires_at − now) < new × (result − now + 1)`.
pub fn resized(expires_at: i64, now: i64, old: Rate, new: Rate) -> Result<i64, PriceError> {
    let left = i128::from(expires_at.saturating_sub(now).max(0));
    let bought = left * i128::from(old.0) / i128::from(new.0);
    let left_ms = i64::try_from(bought).unwrap_or(i64::MAX);
    if left_ms < MIN_LEFT_AFTER_RESIZE_MS {
        return Err(PriceError::TooLittleLeft { left_ms });
    }
    Ok(now.saturating_add(left_ms))
}

/// A provider's price as the text of its JSON number (`5`, `2.50`, `0.00744`), in micro-dollars,
/// exactly: never through `f64`. More than six decimal places round up, so the grid never sells
/// below its cost. `None` for anything else (a sign, an exponent, an empty part, an overflow).
pub fn micros_from_decimal(text: &str) -> Option<i64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((_, "")) => return None,
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return None;
    }
    let (micros, rest) = fraction.split_at(fraction.len().min(6));
    let value =
        whole.parse::<i64>().ok()?.checked_mul(1_000_000)?.checked_add(format!("{micros:0<6}").parse().ok()?)?;
    if rest.bytes().any(|b| b != b'0') { value.checked_add(1) } else { Some(value) }
}

#[cfg(test)]
mod tests;
