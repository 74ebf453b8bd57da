//! Seeded Gaussian noise, the same on every machine: ChaCha20 keyed by the job's seed (its 8
//! little-endian bytes, then 24 zero bytes), on stream `index` (the image's number), turned into
//! N(0, 1) samples by the Box–Muller transform with `libm`'s pure-Rust `log`, `cos` and `sin`
//! (not the platform's C maths library). Each pair of 64-bit words `w1, w2` gives
//! `u1 = ((w1 >> 11) + 1) / 2^53` (in (0, 1]), `u2 = (w2 >> 11) / 2^53`, then
//! `sqrt(-2 ln u1) * cos(2π u2)` and `sqrt(-2 ln u1) * sin(2π u2)`, computed in `f64` and rounded
//! to `f32`. An image's noise depends only on the seed and its index, never on how many images
//! the run makes.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// 2^-53: one unit in the last place of a 53-bit fraction.
const EPSILON_53: f64 = 1.0 / (1u64 << 53) as f64;

/// `n_values` N(0, 1) samples for image `index` of a run seeded with `seed`.
pub fn gaussian(seed: u64, index: u64, n_values: usize) -> Vec<f32> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = ChaCha20Rng::from_seed(key);
    rng.set_stream(index);
    let mut values = Vec::with_capacity(n_values + 1);
    while values.len() < n_values {
        let u1 = ((rng.next_u64() >> 11) + 1) as f64 * EPSILON_53;
        let u2 = (rng.next_u64() >> 11) as f64 * EPSILON_53;
        let radius = libm::sqrt(-2.0 * libm::log(u1));
        let angle = 2.0 * std::f64::consts::PI * u2;
        values.push((radius * libm::cos(angle)) as f32);
        values.push((radius * libm::sin(angle)) as f32);
    }
    values.truncate(n_values);
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_pinned() {
        // Any change here changes every image the grid has verified: do not update casually.
        let bits: Vec<u32> = gaussian(42, 0, 4).iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, PINNED);
    }

    /// -0.35500953, -1.273099, 0.49511394, 0.68150145: also what an independent Python
    /// ChaCha20 + Box–Muller (glibc `log`/`cos`/`sin`) gives for seed 42, stream 0.
    const PINNED: [u32; 4] = [3199583183, 3215127784, 1056800659, 1060009697];

    #[test]
    fn images_and_seeds_get_their_own_noise_and_count_does_not_matter() {
        let first = gaussian(7, 0, 1000);
        assert_eq!(first, gaussian(7, 0, 1000));
        assert_ne!(first, gaussian(7, 1, 1000));
        assert_ne!(first, gaussian(8, 0, 1000));
        assert_eq!(&gaussian(7, 0, 1001)[..1000], &first[..]);
        assert_eq!(gaussian(7, 0, 3).len(), 3);
    }

    #[test]
    fn samples_are_standard_normal() {
        let values = gaussian(1, 0, 200_000);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let variance = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.02, "variance {variance}");
        let beyond_two = values.iter().filter(|v| v.abs() > 2.0).count() as f64 / n;
        assert!((beyond_two - 0.0455).abs() < 0.003, "P(|z| > 2) = {beyond_two}");
    }
}
