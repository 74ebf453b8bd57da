//! Attestation (§1.4, §2.11): the node signs the coordinator's challenge string with its
//! identity key, and reports its hardware with a `report_hash`.
//!
//! The seed's `report_hash` concatenates fields without separators, so it is ambiguous (S5);
//! we compute it exactly as the seed does for compatibility and never treat it as a
//! commitment. What binds a node's claims is its signed capability manifest
//! ([`crate::manifest`]).

use sha2::{Digest, Sha256};

use crate::api::node::HardwareReport;
use crate::identity::{NodeIdentity, NodePublicKey, VerifyError};

/// Signs a challenge: ed25519 over the challenge string's UTF-8 bytes exactly as received.
pub fn sign_challenge(identity: &NodeIdentity, challenge: &str) -> String {
    identity.sign_b58(challenge.as_bytes())
}

/// Verifies a challenge signature.
pub fn verify_challenge(key: &NodePublicKey, challenge: &str, signature_b58: &str) -> Result<(), VerifyError> {
    key.verify_b58(challenge.as_bytes(), signature_b58)
}

/// The seed's report hash: hex SHA-256 of `tee_type ‖ chip_model ‖ cpu_cores (u32 LE) ‖
/// hardware_uuid ‖ firmware_version ‖ boot_uuid ‖ kernel_version ‖ secure_enclave (1 byte) ‖
/// sip_enabled (1 byte) ‖ binary_hash`, strings as raw UTF-8. `memory_gb`, `os_version` and
/// `serial_hash` are not covered.
pub fn report_hash(report: &HardwareReport) -> String {
    let mut hasher = Sha256::new();
    hasher.update(report.tee_type.as_bytes());
    hasher.update(report.chip_model.as_bytes());
    hasher.update(report.cpu_cores.to_le_bytes());
    hasher.update(report.hardware_uuid.as_bytes());
    hasher.update(report.firmware_version.as_bytes());
    hasher.update(report.boot_uuid.as_bytes());
    hasher.update(report.kernel_version.as_bytes());
    hasher.update([u8::from(report.secure_enclave)]);
    hasher.update([u8::from(report.sip_enabled)]);
    hasher.update(report.binary_hash.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    //! Tests for challenge signatures and the report hash layout.

    use super::*;

    #[test]
    fn challenge_signature_covers_the_exact_string() {
        let identity = NodeIdentity::from_seed(&[5; 32]);
        let signature = sign_challenge(&identity, "chal-123");
        verify_challenge(&identity.public_key(), "chal-123", &signature).unwrap();
        assert!(verify_challenge(&identity.public_key(), "chal-123 ", &signature).is_err());
    }

    #[test]
    fn report_hash_matches_the_byte_layout_and_ignores_uncovered_fields() {
        let report = HardwareReport {
            tee_type: "linux_se".into(),
            chip_model: "EPYC".into(),
            cpu_cores: 2,
            kernel_version: "6.1".into(),
            secure_enclave: false,
            sip_enabled: true,
            binary_hash: "ab".into(),
            ..HardwareReport::default()
        };
        let mut bytes = b"linux_seEPYC".to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(b"6.1");
        bytes.extend_from_slice(&[0, 1]);
        bytes.extend_from_slice(b"ab");
        assert_eq!(report_hash(&report), crate::encoding::sha256_hex(&bytes));
        let more_memory = HardwareReport { memory_gb: 64.0, os_version: "x".into(), ..report.clone() };
        assert_eq!(report_hash(&more_memory), report_hash(&report));
        let other_kernel = HardwareReport { kernel_version: "6.2".into(), ..report.clone() };
        assert_ne!(report_hash(&other_kernel), report_hash(&report));
    }
}
