//! Reputation, 0 to 1 with 0.5 neutral: a verified completion moves it 2 % of the way toward
//! 1, a failure or timeout takes 10 % off, tampering halves it, and between events it decays
//! toward neutral with a half-life of [`HALF_LIFE_MS`], so old failures (and old glory) fade and
//! a node that has been away is judged on what it does now. Stored as the value and the moment
//! it was set; read through [`decayed`].

/// Where every node starts and everything decays to.
pub const NEUTRAL: f64 = 0.5;
/// The distance to neutral halves every seven days.
pub const HALF_LIFE_MS: i64 = 7 * 24 * 3600 * 1000;

/// What happened to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A job completed and verified.
    Completed,
    /// A job failed, timed out or was abandoned, by the node's fault.
    Failed,
    /// A forged or unreadable result.
    Tampered,
}

/// `value` set at `at_ms`, seen at `now_ms`: decayed toward [`NEUTRAL`].
pub fn decayed(value: f64, at_ms: i64, now_ms: i64) -> f64 {
    let elapsed = now_ms.saturating_sub(at_ms).max(0) as f64;
    NEUTRAL + (value - NEUTRAL) * 0.5f64.powf(elapsed / HALF_LIFE_MS as f64)
}

/// The reputation after `outcome`, from the current (decayed) value.
pub fn after(current: f64, outcome: Outcome) -> f64 {
    let next = match outcome {
        Outcome::Completed => current + (1.0 - current) * 0.02,
        Outcome::Failed => current * 0.9,
        Outcome::Tampered => current * 0.5,
    };
    next.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    //! Decay and steps.

    use super::*;

    #[test]
    fn decay_halves_the_distance_to_neutral_each_half_life() {
        assert_eq!(decayed(0.9, 0, 0), 0.9);
        assert!((decayed(0.9, 0, HALF_LIFE_MS) - 0.7).abs() < 1e-12);
        assert!((decayed(0.1, 0, 2 * HALF_LIFE_MS) - 0.4).abs() < 1e-12);
        assert!((decayed(0.0, 0, 50 * HALF_LIFE_MS) - NEUTRAL).abs() < 1e-12);
        assert_eq!(decayed(0.8, 100, 50), 0.8, "a clock that went back does not decay");
    }

    #[test]
    fn completions_raise_failures_lower_tampering_halves() {
        assert!((after(0.5, Outcome::Completed) - 0.51).abs() < 1e-12);
        assert!((after(0.5, Outcome::Failed) - 0.45).abs() < 1e-12);
        assert_eq!(after(0.5, Outcome::Tampered), 0.25);
        let mut value = 0.5;
        for _ in 0..10_000 {
            value = after(value, Outcome::Completed);
        }
        assert!(value <= 1.0 && value > 0.99);
    }
}
