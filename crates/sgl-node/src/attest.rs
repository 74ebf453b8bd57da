//! `sgl attest`: answer the grid's challenge with the node's identity key and report the
//! hardware, with the running binary's sha256 for the grid's allowlist.
//!
//! Unlike the seed, no raw hardware or serial identifiers are sent (S5): the report carries
//! what the grid needs to decide, not what would track the operator.

use std::path::Path;

use sgl_protocol::api::node::{HardwareReport, VerifyAttestationRequest, VerifyAttestationResponse};
use sgl_protocol::attestation::{report_hash, sign_challenge};

use crate::client::ClientError;
use crate::detect::{Hardware, binary_sha256, detect};
use crate::node::{LocalNode, NodeError};

/// Attestation could not be attempted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The node is not registered in this config directory, its files are unreadable, or its
    /// grid URL may not be used.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Reading the running binary failed.
    #[error("hashing the running binary: {0}")]
    Binary(#[from] std::io::Error),
    /// The grid refused or could not be reached.
    #[error(transparent)]
    Grid(#[from] ClientError),
}

/// The hardware report for this machine.
pub fn hardware_report(hardware: &Hardware, tee_type: &str, binary_hash: String) -> HardwareReport {
    let locked = hardware.lockdown.as_deref().is_some_and(|mode| mode != "none" && mode != "sip disabled");
    let mut report = HardwareReport {
        tee_type: tee_type.to_owned(),
        chip_model: hardware.cpu_model.clone(),
        cpu_cores: hardware.cpu_cores,
        memory_gb: hardware.memory_gb,
        secure_enclave: hardware.tee.secure_enclave,
        sip_enabled: locked,
        os_version: hardware.os.clone(),
        kernel_version: hardware.kernel.clone(),
        binary_hash,
        ..HardwareReport::default()
    };
    report.report_hash = report_hash(&report);
    report
}

/// Runs the challenge-response with the grid the node registered with (or `grid_url`).
pub async fn attest(config_dir: &Path, grid_url: Option<&str>) -> Result<VerifyAttestationResponse, AttestError> {
    let LocalNode { file: node, identity, client, .. } = LocalNode::load(config_dir, grid_url)?;
    let challenge = client.challenge(&node.node_id, &node.auth_token).await?;
    let hardware = tokio::task::spawn_blocking(detect).await.unwrap_or_else(|_| detect());
    let report = hardware_report(&hardware, &node.tee_type, binary_sha256()?);
    let request = VerifyAttestationRequest {
        signature: sign_challenge(&identity, &challenge.challenge),
        encryption_public_key: identity.encryption_secret().public_key().to_b58(),
        hardware_report: report,
    };
    Ok(client.verify_attestation(&node.node_id, &node.auth_token, &request).await?)
}
