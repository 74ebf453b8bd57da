//! Job secrets through the grid, which only ever holds ciphertext: while a node waits for an
//! attempt's secrets, the requester's view of the attempt names the node's keys
//! ([`targets`]); the requester seals every declared secret to them and posts them once
//! ([`give`]); the node fetches them ([`fetch`]). They are cleared when the attempt ends.

use std::collections::HashMap;

use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_grid_store::compute::AttemptRecord;
use sgl_protocol::api::compute::{AttemptSecrets, SecretsTarget};
use sgl_protocol::compute::bundle::BundleManifest;
use sgl_protocol::ids::NodeId;

use super::WorkError;
use crate::state::AppState;

/// The attempts (by id) waiting for secrets, with the keys of their nodes. Empty for a job
/// without secrets.
pub fn targets(state: &AppState, manifest: &BundleManifest, attempts: &[AttemptRecord]) -> HashMap<i64, SecretsTarget> {
    if manifest.secrets.is_empty() {
        return HashMap::new();
    }
    attempts
        .iter()
        .filter(|a| a.state.is_live() && !a.has_secrets)
        .filter_map(|a| {
            let node = state.registry().get(&a.node_id.parse::<NodeId>().ok()?)?;
            let keybind = node.keybind?;
            let target = SecretsTarget {
                node_public_key: node.public_key,
                encryption_public_key: node.encryption_key,
                encryption_public_key_signature: keybind.encryption_public_key_signature,
                key_version: keybind.key_version,
            };
            Some((a.id, target))
        })
        .collect()
}

/// The requester gives an attempt's secrets: exactly the names the manifest declares.
pub async fn give(
    state: &AppState,
    caller: &ApiKeyRecord,
    job_id: &str,
    attempt_id: i64,
    secrets: AttemptSecrets,
) -> Result<(), WorkError> {
    let job = state.store().compute_job(job_id).await?;
    let job = job.filter(|job| job.account_id == Some(caller.account())).ok_or(WorkError::NotFound)?;
    let manifest = BundleManifest::parse(job.manifest.as_bytes())?;
    let mut given: Vec<&str> = secrets.secrets.iter().map(|s| s.name.as_str()).collect();
    let mut declared: Vec<&str> = manifest.secrets.iter().map(String::as_str).collect();
    given.sort_unstable();
    declared.sort_unstable();
    if given != declared {
        return Err(WorkError::Refused(format!("the job declares the secrets {declared:?}; {given:?} were given")));
    }
    let sealed = serde_json::to_string(&secrets).map_err(|e| WorkError::Refused(e.to_string()))?;
    state.store().put_attempt_secrets(job_id, caller.account(), attempt_id, &sealed).await?;
    tracing::info!(target: "sgl::events::compute", job = %job_id, attempt_id, count = given.len(), "sealed secrets given");
    Ok(())
}

/// The node fetches its attempt's secrets; none yet while the requester has not given them.
pub async fn fetch(state: &AppState, node_id: &str, attempt_id: i64) -> Result<AttemptSecrets, WorkError> {
    match state.store().attempt_secrets(attempt_id, node_id).await? {
        Some(sealed) => {
            serde_json::from_str(&sealed).map_err(|_| WorkError::Refused("stored secrets are corrupt".into()))
        }
        None => Ok(AttemptSecrets { secrets: Vec::new() }),
    }
}
