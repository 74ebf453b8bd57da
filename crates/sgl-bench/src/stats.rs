//! Distributions of measured samples: percentiles, mean and spread.

use serde::Serialize;

/// A summary of samples (milliseconds, tokens/s, whatever was measured).
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) mean: f64,
    pub(crate) stddev: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Summary {
    /// Summarises `samples`; all zero when there are none.
    pub(crate) fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self { n: 0, mean: 0.0, stddev: 0.0, p50: 0.0, p99: 0.0, min: 0.0, max: 0.0 };
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let variance = sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n.max(2) - 1) as f64;
        Self {
            n,
            mean,
            stddev: variance.sqrt(),
            p50: percentile(&sorted, 0.50),
            p99: percentile(&sorted, 0.99),
            min: sorted[0],
            max: sorted[n - 1],
        }
    }
}

/// The `q` quantile of sorted samples, by linear interpolation between closest ranks.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&sorted, 0.5), 3.0);
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 1.0), 5.0);
        assert!((percentile(&sorted, 0.99) - 4.96).abs() < 1e-9);
        let summary = Summary::of(&[5.0, 1.0, 3.0]);
        assert_eq!((summary.n, summary.p50, summary.min, summary.max), (3, 3.0, 1.0, 5.0));
        assert!((summary.stddev - 2.0).abs() < 1e-9);
    }
}
