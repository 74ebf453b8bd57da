//! `jobs submit --secret NAME=VALUE` (or `NAME=@FILE`): the job's secrets stay on this
//! machine until a node leases a slice; then each is sealed to that node's key (after checking
//! the key's binding to the node) for that attempt only, and given to the grid, which never
//! holds them in clear. The command serves every attempt until the job ends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context as _, bail};
use sgl_client::Client;
use sgl_protocol::api::compute::{AttemptSecrets, JobView};
use sgl_protocol::compute::secrets::{SecretFor, seal_secret};
use sgl_protocol::ids::JobId;
use zeroize::Zeroizing;

/// How often the job is looked at for attempts waiting for secrets.
const POLL: Duration = Duration::from_millis(500);

/// The secrets given on the command line, by name.
pub(crate) type Secrets = BTreeMap<String, Zeroizing<String>>;

/// Reads `NAME=VALUE` and `NAME=@FILE` arguments.
pub(crate) fn parse(args: &[String]) -> anyhow::Result<Secrets> {
    let mut secrets = Secrets::new();
    for arg in args {
        let (name, value) = arg.split_once('=').context("--secret takes NAME=VALUE or NAME=@FILE")?;
        let value = match value.strip_prefix('@') {
            Some(path) => {
                Zeroizing::new(std::fs::read_to_string(path).with_context(|| format!("--secret {name}: {path}"))?)
            }
            None => Zeroizing::new(value.to_owned()),
        };
        if secrets.insert(name.to_owned(), value).is_some() {
            bail!("--secret {name} is given twice");
        }
    }
    Ok(secrets)
}

/// Refuses a submission whose secrets are not exactly those the manifest declares.
pub(crate) fn check(declared: &[String], given: &Secrets) -> anyhow::Result<()> {
    let declared: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    let given: BTreeSet<&str> = given.keys().map(String::as_str).collect();
    if declared != given {
        bail!("the bundle declares the secrets {declared:?}; --secret gave {given:?}; nothing was uploaded");
    }
    Ok(())
}

/// Gives every attempt that waits for secrets its own sealed copy, until the job ends.
pub(crate) async fn serve(client: &Client, id: &JobId, secrets: &Secrets) -> anyhow::Result<JobView> {
    let mut served = BTreeSet::new();
    loop {
        let job = client.job(id).await?;
        for slice in &job.slices {
            for attempt in &slice.attempts {
                let Some(target) = &attempt.secrets_to else { continue };
                if !served.insert(attempt.attempt_id) {
                    continue;
                }
                let to = SecretFor { job_id: id, slice: slice.index, attempt: attempt.attempt };
                let mut sealed = Vec::new();
                for (name, value) in secrets {
                    let secret = seal_secret(target, &attempt.node_id, &to, name, value, &mut rand_core::OsRng)
                        .with_context(|| format!("sealing {name} to node {}", attempt.node_id))?;
                    sealed.push(secret);
                }
                client.give_secrets(id, attempt.attempt_id, &AttemptSecrets { secrets: sealed }).await?;
                eprintln!("sealed {} secret(s) to node {} for slice {}", secrets.len(), attempt.node_id, slice.index);
            }
        }
        if job.state.is_final() {
            return Ok(job);
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests;
