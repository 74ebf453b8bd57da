//! The `[compute]` section: what general compute costs, how its fee is split, the largest job
//! the grid accepts, and how often it tests nodes with canaries.

use std::collections::BTreeMap;

use serde::Deserialize;
use sgl_grid_store::compute::ComputeShares;
use sgl_protocol::compute::JobClass;
use sgl_protocol::compute::bundle::ResourceLimits;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ComputeFile {
    price_micros_per_gfuel: Option<u64>,
    prices: Option<BTreeMap<JobClass, u64>>,
    operator_bps: Option<u32>,
    max_blob_mb: Option<u64>,
    canary_rate: Option<f64>,
    lease_grace_secs: Option<u64>,
    max_limits: Option<ResourceLimits>,
}

/// General compute's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeConfig {
    /// What a job pays, micro-USD per 10^9 fuel (about a second of one core).
    pub price_micros_per_gfuel: u64,
    /// Prices of single classes, micro-USD per 10^9 of their work units (`[compute.prices]`),
    /// over `price_micros_per_gfuel`: an image is 10^9 units, a rendered pixel-sample one unit.
    pub class_prices: BTreeMap<JobClass, u64>,
    /// The operators' share of what a job pays, in basis points; the platform keeps the rest.
    pub shares: ComputeShares,
    /// The largest blob accepted, bytes.
    pub max_blob_bytes: u64,
    /// The chance that a node asking for work is first given a canary, 0 to 1.
    pub canary_rate: f64,
    /// How long past a slice's wall-clock limit a lease lasts without a receipt.
    pub lease_grace_secs: u64,
    /// The largest limits a job may ask for.
    pub max_limits: ResourceLimits,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self {
            price_micros_per_gfuel: 200,
            class_prices: BTreeMap::from([(JobClass::Image, 2_000), (JobClass::Render, 20_000)]),
            shares: ComputeShares::default(),
            max_blob_bytes: 256 << 20,
            canary_rate: 0.05,
            lease_grace_secs: 60,
            max_limits: ResourceLimits {
                fuel: 1_000_000_000_000,
                memory_mb: 1024,
                wall_secs: 3600,
                output_mb: 256,
                output_files: 1024,
            },
        }
    }
}

impl ComputeConfig {
    /// What a job of `class` pays, micro-USD per 10^9 of its work units.
    pub fn price_for(&self, class: JobClass) -> u64 {
        self.class_prices.get(&class).copied().unwrap_or(self.price_micros_per_gfuel)
    }

    /// The file's section over the defaults, `SGL_COMPUTE_CANARY_RATE` and
    /// `SGL_COMPUTE_PRICE_MICROS_PER_GFUEL` over both.
    pub(super) fn from_sources(
        file: Option<ComputeFile>,
        env: &BTreeMap<String, String>,
        problems: &mut Vec<String>,
    ) -> Self {
        let defaults = Self::default();
        let file = file.unwrap_or_default();
        let canary_rate = match env.get("SGL_COMPUTE_CANARY_RATE") {
            Some(text) => text
                .parse::<f64>()
                .map_err(|_| problems.push(format!("SGL_COMPUTE_CANARY_RATE: {text:?} is not a number")))
                .ok(),
            None => file.canary_rate,
        }
        .unwrap_or(defaults.canary_rate);
        if !(0.0..=1.0).contains(&canary_rate) {
            problems.push(format!("compute canary_rate: {canary_rate} is not between 0 and 1"));
        }
        let price = match env.get("SGL_COMPUTE_PRICE_MICROS_PER_GFUEL") {
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| {
                    problems.push(format!("SGL_COMPUTE_PRICE_MICROS_PER_GFUEL: {text:?} is not a whole number"))
                })
                .ok(),
            None => file.price_micros_per_gfuel,
        };
        let operator_bps = file.operator_bps.unwrap_or(9_900);
        let shares = ComputeShares::new(operator_bps).unwrap_or_else(|_| {
            problems.push(format!("compute operator_bps: {operator_bps} is more than 10000"));
            ComputeShares::default()
        });
        Self {
            price_micros_per_gfuel: price.unwrap_or(defaults.price_micros_per_gfuel),
            class_prices: defaults.class_prices.into_iter().chain(file.prices.unwrap_or_default()).collect(),
            shares,
            max_blob_bytes: file.max_blob_mb.map_or(defaults.max_blob_bytes, |mb| mb.saturating_mul(1 << 20)),
            canary_rate,
            lease_grace_secs: file.lease_grace_secs.unwrap_or(defaults.lease_grace_secs),
            max_limits: file.max_limits.unwrap_or(defaults.max_limits),
        }
    }
}
