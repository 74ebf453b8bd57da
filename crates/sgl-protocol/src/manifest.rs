//! The signed capability manifest (seed 002): what a node claims to be, signed by its identity
//! key over explicitly built canonical bytes, never over "whatever JSON printed".
//!
//! Canonical bytes (`docs/protocol.md` §3): the domain `sgl-capability-manifest-v1\0`, then each
//! field in declaration order; a string is its UTF-8 length as u32 big-endian followed by the
//! bytes, an integer is u64 big-endian, a list is its length as u32 big-endian followed by its
//! items, and an absent optional is encoded as the empty string.

use serde::{Deserialize, Serialize};

use crate::canonical::Canonical;
use crate::identity::{NodeIdentity, NodePublicKey, VerifyError};
use crate::ids::NodeId;

/// Domain tag prefixed to the canonical bytes.
pub const MANIFEST_DOMAIN: &[u8] = b"sgl-capability-manifest-v1\0";

/// The CPU a node offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CpuInfo {
    /// Model name.
    pub model: String,
    /// Logical cores.
    pub cores: u32,
    /// RAM in MiB (an integer, so the canonical bytes are exact).
    pub ram_mb: u64,
}

/// A GPU a node offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GpuInfo {
    /// Model name.
    pub name: String,
    /// `cuda`, `metal`, `rocm`, `vulkan`.
    pub backend: String,
    /// Video memory in MiB.
    pub vram_mb: u64,
}

/// A node's signed statement of what it is and can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapabilityManifest {
    /// The node id; absent when signed before registration issued one (the coordinator then
    /// binds the manifest to the id it issues for `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    /// The operator's payout or staking wallet.
    pub wallet: String,
    /// Base58 ed25519 identity key that signs the manifest.
    pub public_key: String,
    /// `apple_se`, `linux_se`, `tdx_cc`, `none`.
    pub hardware_tier: String,
    /// The CPU.
    pub cpu: CpuInfo,
    /// The GPUs, possibly none.
    pub gpus: Vec<GpuInfo>,
    /// A region hint, e.g. `eu-west`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// What the node runs, e.g. `llm-inference`.
    pub workload_classes: Vec<String>,
    /// How many jobs or subtasks it runs at once.
    pub max_parallel_subtasks: u32,
    /// The node agent's version.
    pub client_version: String,
    /// Base58 signature over [`CapabilityManifest::canonical_bytes`].
    pub signature: String,
}

/// A manifest did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The signature or the embedded key is invalid.
    #[error(transparent)]
    Signature(#[from] VerifyError),
}

impl CapabilityManifest {
    /// The canonical bytes that are signed (everything but `signature`).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Canonical::new(MANIFEST_DOMAIN);
        out.string(&self.node_id.map(|id| id.to_string()).unwrap_or_default());
        out.string(&self.wallet);
        out.string(&self.public_key);
        out.string(&self.hardware_tier);
        out.string(&self.cpu.model);
        out.integer(self.cpu.cores.into());
        out.integer(self.cpu.ram_mb);
        out.count(self.gpus.len());
        for gpu in &self.gpus {
            out.string(&gpu.name);
            out.string(&gpu.backend);
            out.integer(gpu.vram_mb);
        }
        out.string(self.region.as_deref().unwrap_or_default());
        out.count(self.workload_classes.len());
        for class in &self.workload_classes {
            out.string(class);
        }
        out.integer(self.max_parallel_subtasks.into());
        out.string(&self.client_version);
        out.finish()
    }

    /// Sets `public_key` to the identity's key and signs.
    pub fn sign(&mut self, identity: &NodeIdentity) {
        self.public_key = identity.public_key().to_b58();
        self.signature = identity.sign_b58(&self.canonical_bytes());
    }

    /// Verifies the signature against the embedded `public_key` and returns that key, which the
    /// coordinator must compare with the node's registered identity.
    pub fn verify(&self) -> Result<NodePublicKey, ManifestError> {
        let key = NodePublicKey::from_b58(&self.public_key)?;
        key.verify_b58(&self.canonical_bytes(), &self.signature)?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests;
