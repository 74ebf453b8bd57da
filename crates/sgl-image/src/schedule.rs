//! The sigma schedule of a `text-to-image` pipeline: `steps` sigmas falling geometrically from
//! `sigma_max` to `sigma_min`, then 0:
//! `sigma_i = sigma_max * (sigma_min / sigma_max)^(i / (steps - 1))` for `i` in `0..steps` (one
//! step: just `sigma_max`), computed in `f64` with `libm::pow` and rounded to `f32`. The sampler
//! takes one Euler step from each sigma to the next.

/// The `steps + 1` sigmas, the last one 0.
pub fn sigmas(steps: u32, sigma_max: f32, sigma_min: f32) -> Vec<f32> {
    let (max, min) = (f64::from(sigma_max), f64::from(sigma_min));
    let mut sigmas: Vec<f32> = (0..steps)
        .map(|i| {
            if i == 0 || steps == 1 {
                return sigma_max;
            }
            let t = f64::from(i) / f64::from(steps - 1);
            (max * libm::pow(min / max, t)) as f32
        })
        .collect();
    sigmas.push(0.0);
    sigmas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_geometrically_from_max_to_min_then_zero() {
        assert_eq!(sigmas(1, 10.0, 0.1), vec![10.0, 0.0]);
        let four = sigmas(4, 8.0, 1.0);
        assert_eq!(four.len(), 5);
        assert_eq!(four[0], 8.0);
        assert!((four[1] - 4.0).abs() < 1e-5 && (four[2] - 2.0).abs() < 1e-5, "{four:?}");
        assert_eq!(four[3], 1.0);
        assert_eq!(four[4], 0.0);
    }
}
