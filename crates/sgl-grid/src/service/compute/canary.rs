//! Canaries: known-answer slices the grid slips into a node's work. A canary is an ordinary
//! job (signed by a fresh requester key, leased like any other, paid from `external:canary`)
//! that only its node may lease; its answer is known because the grid computes the example
//! prime sieve's output itself. A node that returns anything else is provably wrong.
//!
//! A canary is planted, at the configured rate, when a node leases real work, and never while
//! one already waits for it; so an idle grid spends nothing on them. Weak spot: every canary
//! runs the example module (`examples/wasm/primes`), so a node that recognises the module's
//! hash could answer canaries honestly and cheat elsewhere; canaries built from other modules
//! (or replays of verified slices) would close that.

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sgl_grid_store::compute::{Funding, NewComputeJob, attempt_cost};
use sgl_protocol::compute::bundle::BundleSignature;
use sgl_protocol::compute::receipt::{OutputFile, Receipt};
use sgl_protocol::compute::{Digest, JobClass};
use sgl_protocol::identity::NodeIdentity;

use super::WorkError;
use crate::registry::LiveNode;
use crate::state::AppState;

/// The example prime sieve (`examples/wasm/primes/primes.wasm`), the canaries' module.
pub const PRIMES_WASM: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wasm/primes/primes.wasm"));

/// The fuel a canary may use: far above what its range needs.
const CANARY_FUEL: u64 = 20_000_000_000;

/// What a canary's receipt must say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The guest's exit code.
    pub exit_code: i32,
    /// Its outputs, sorted by path.
    pub outputs: Vec<OutputFile>,
}

impl Expected {
    /// Reads a stored answer.
    pub fn parse(text: &str) -> Result<Self, WorkError> {
        serde_json::from_str(text).map_err(|_| WorkError::Refused("a canary's stored answer is corrupt".into()))
    }

    /// Whether `receipt` carries this answer.
    pub fn matches(&self, receipt: &Receipt) -> bool {
        receipt.exit_code == self.exit_code && receipt.outputs == self.outputs
    }
}

/// Whether to plant a canary now, at `rate` (0 to 1).
pub fn due(rate: f64) -> bool {
    rate > 0.0 && (OsRng.next_u64() as f64 / u64::MAX as f64) < rate
}

/// `/out/primes.txt` of `primes lo hi`: every prime in `[lo, hi)`, one per line.
pub fn primes_text(lo: u32, hi: u32) -> String {
    let is_prime = |n: u32| {
        n >= 2
            && (2..).take_while(|d: &u32| u64::from(*d) * u64::from(*d) <= u64::from(n)).all(|d| !n.is_multiple_of(d))
    };
    (lo..hi).filter(|n| is_prime(*n)).map(|n| format!("{n}\n")).collect()
}

/// Plants a canary for `node` unless one already waits for it.
pub async fn plant(state: &AppState, node: &LiveNode) -> Result<(), WorkError> {
    let node_id = node.node_id.to_string();
    if !node.workloads.contains(&JobClass::Wasm) || state.store().open_canaries(&node_id).await? > 0 {
        return Ok(());
    }
    let module = Digest::of(PRIMES_WASM);
    let blobs = state.blobs().clone();
    tokio::task::spawn_blocking(move || blobs.put(&module, PRIMES_WASM))
        .await
        .map_err(|_| WorkError::Refused("storing the canary module was interrupted".into()))??;
    let lo = u32::try_from(OsRng.next_u64() % 5_000_000).unwrap_or(0);
    let hi = lo + 2_000 + u32::try_from(OsRng.next_u64() % 8_000).unwrap_or(0);
    let text = primes_text(lo, hi);
    let expected = Expected {
        exit_code: 0,
        outputs: vec![OutputFile {
            path: "primes.txt".into(),
            sha256: Digest::of(&text),
            size: text.len() as u64,
            pixels: None,
        }],
    };
    let config = &state.config().compute;
    let manifest = serde_json::json!({
        "format": "sgl-bundle-v1",
        "class": "wasm",
        "entry": "primes.wasm",
        "files": {"primes.wasm": module},
        "limits": {"fuel": CANARY_FUEL, "memory_mb": 64, "wall_secs": 60, "output_mb": 16, "output_files": 4},
        "slices": [{"args": [lo.to_string(), hi.to_string()]}],
        "redundancy": 1,
        "max_price_micros_per_gfuel": config.price_for(JobClass::Wasm),
        "seed": OsRng.next_u64(),
    })
    .to_string();
    let requester = NodeIdentity::generate(&mut OsRng);
    let signature = BundleSignature::sign(&requester, manifest.as_bytes());
    let price = i64::try_from(config.price_for(JobClass::Wasm)).unwrap_or(i64::MAX);
    let id = super::new_job_id();
    let job = NewComputeJob {
        id: &id,
        funding: Funding::Canary,
        requester: &signature.requester,
        class: JobClass::Wasm.as_str(),
        bundle_hash: &Digest::of(&manifest).to_hex(),
        manifest: &manifest,
        signature: &serde_json::to_string(&signature).map_err(|e| WorkError::Refused(e.to_string()))?,
        redundancy: 1,
        slice_count: 1,
        price_micros_per_gfuel: price,
        attempt_hold_micros: attempt_cost(CANARY_FUEL as i64, price, i64::MAX),
        lease_ms: (60 + i64::try_from(config.lease_grace_secs).unwrap_or(60)) * 1000,
        target_node: Some(&node_id),
        expected: Some(&serde_json::to_string(&expected).map_err(|e| WorkError::Refused(e.to_string()))?),
        model_sha256: None,
        engine: None,
    };
    state.store().submit_compute_job(&job, state.now_ms()).await?;
    tracing::debug!(target: "sgl::events::compute", job = %id, node = %node_id, "canary planted");
    Ok(())
}

#[cfg(test)]
mod tests;
