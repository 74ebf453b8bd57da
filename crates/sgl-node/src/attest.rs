//! `sgl attest`: answer the grid's challenge with the node's identity key and report the
//! hardware, with the running binary's sha256 for the grid's allowlist.
//!
//! Unlike the seed, no raw hardware or serial identifiers are sent (S5): the report carries
//! what the grid needs to decide, not what would track the operator.

use std::path::Path;

use sgl_protocol::api::node::{HardwareReport, VerifyAttestationRequest, VerifyAttestationResponse};
use sgl_protocol::attestation::{report_hash, sign_challenge};
use sgl_protocol::keyfile::{KeyFileError, load_keypair, load_node_file};

use crate::client::{ClientError, GridClient, GridUrlError};
use crate::detect::{Hardware, binary_sha256, detect};
use crate::init::{KEYPAIR_FILE, NODE_FILE};

/// Attestation could not be attempted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The node is not registered in this config directory, or its files are unreadable.
    #[error("{0} (run sgl init first)")]
    Keys(#[from] KeyFileError),
    /// The stored grid URL may not be used.
    #[error(transparent)]
    Url(#[from] GridUrlError),
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
    let (node, _) = load_node_file(&config_dir.join(NODE_FILE))?;
    let keypair_path =
        if node.keypair_path.is_absolute() { node.keypair_path.clone() } else { config_dir.join(KEYPAIR_FILE) };
    let (identity, _) = load_keypair(&keypair_path)?;
    let client = GridClient::new(grid_url.unwrap_or(&node.orchestrator_url))?;
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
