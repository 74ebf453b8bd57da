//! General compute on the node (`sgl start --workloads wasm`): a worker that leases slices
//! from the grid while it has free compute slots, and runs each attempt
//! (`attempt::run`): verify the signed bundle, fetch its files and inputs by hash, run it in
//! the Wasm sandbox, upload the outputs, sign the receipt and report it.
//!
//! The classes the worker runs are announced in every heartbeat (`workloads`); the grid leases
//! nothing else. Compute slots are separate from chat slots.

mod attempt;
pub mod engines;
mod files;
mod native;
mod render_args;
mod run;
mod secrets;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use sgl_protocol::api::compute::LeaseRequest;
use sgl_protocol::compute::JobClass;
use sgl_sandbox::Sandbox;

use super::Shared;

/// How often an idle worker asks for work.
pub const LEASE_EVERY: Duration = Duration::from_secs(1);

/// A fault a test turns on to make this node lie. Test-only (`SGL_TEST_FAULT`): it exists so
/// the grid's verification can be tested against a real dishonest node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFault {
    /// Every output file gets one byte appended after the run, before it is hashed and signed.
    WrongOutput,
}

impl TestFault {
    /// Reads `SGL_TEST_FAULT` (`wrong-output`); anything else is no fault.
    pub fn from_env() -> Option<Self> {
        match std::env::var("SGL_TEST_FAULT").ok().as_deref() {
            Some("wrong-output") => Some(Self::WrongOutput),
            _ => None,
        }
    }
}

/// How the node runs general compute.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    /// The classes it runs.
    pub classes: Vec<JobClass>,
    /// Attempts run at once.
    pub slots: u32,
    /// Where attempts get their working directories.
    pub work_dir: PathBuf,
    /// A test-only fault.
    pub test_fault: Option<TestFault>,
    /// The native classes' engines found at start.
    pub engines: engines::Engines,
}

/// The running worker.
pub(crate) struct Worker {
    pub(crate) config: ComputeConfig,
    sandbox: Arc<Sandbox>,
    running: AtomicU32,
    pub(crate) reported: AtomicU64,
    pub(crate) failed: AtomicU64,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("classes", &self.config.classes).finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker with its own Wasm engine.
    pub(crate) fn new(config: ComputeConfig) -> Result<Self, sgl_sandbox::SandboxError> {
        if config.test_fault.is_some() {
            tracing::warn!(fault = ?config.test_fault, "TEST FAULT ON: this node will report wrong results");
        }
        Ok(Self {
            config,
            sandbox: Arc::new(Sandbox::new()?),
            running: AtomicU32::new(0),
            reported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    /// Attempts running now.
    pub(crate) fn running(&self) -> u32 {
        self.running.load(Ordering::SeqCst)
    }
}

/// Leases and runs slices until the task is aborted.
pub(crate) async fn run(shared: Arc<Shared>, worker: Arc<Worker>) {
    let mut tick = tokio::time::interval(LEASE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let free = worker.config.slots.saturating_sub(worker.running());
        if free == 0 || shared.shutting_down.load(Ordering::SeqCst) {
            continue;
        }
        let request = LeaseRequest { classes: worker.config.classes.clone(), slots: free };
        let leases = match shared.client.lease(&shared.token(), &request).await {
            Ok(answer) => answer.leases,
            Err(error) => {
                tracing::debug!(%error, "no compute lease");
                continue;
            }
        };
        for lease in leases {
            worker.running.fetch_add(1, Ordering::SeqCst);
            shared.update_state(false);
            let (shared, worker) = (Arc::clone(&shared), Arc::clone(&worker));
            tokio::spawn(async move {
                attempt::run(&shared, &worker, lease).await;
                worker.running.fetch_sub(1, Ordering::SeqCst);
                shared.compute_done();
            });
        }
    }
}
