//! Group commit: every job write (a dispatch's row and hold, an end's row, money and node
//! record) goes through one task, which writes all the writes waiting at that moment in one
//! database transaction ([`Store::write_jobs`]) and then answers each. Under load, one commit
//! carries many jobs; alone, a write is committed at once (nothing waits for a timer).
//!
//! A write handed over is done even if whoever asked stops waiting (a caller hanging up
//! cannot cancel half a settlement), and whoever asked learns of it only after its commit: a
//! caller is answered after its job's money is written, so a coordinator that dies between
//! the two leaves a job that restart finds dispatched and releases, never one billed twice.

use std::sync::{Arc, OnceLock};

use sgl_grid_store::Store;
use sgl_grid_store::group::{Commit, JobWrite, MAX_GROUP, WriteOutcome};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::CommitStats;
use crate::state::SharedClock;

type Request = (JobWrite, oneshot::Sender<WriteOutcome>);

/// The group-commit task's mailbox, started on first use.
#[derive(Debug)]
pub struct Committer {
    store: Store,
    clock: SharedClock,
    stats: Arc<CommitStats>,
    mailbox: OnceLock<mpsc::UnboundedSender<Request>>,
}

/// The commit task ended before answering (the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the job writer stopped before committing")]
pub struct CommitterGone;

impl Committer {
    /// A committer writing to `store`, stamping writes with `clock`, counting in `stats`.
    pub fn new(store: Store, clock: SharedClock, stats: Arc<CommitStats>) -> Self {
        Self { store, clock, stats, mailbox: OnceLock::new() }
    }

    /// Hands `write` to the commit task and waits for its commit.
    pub async fn write(&self, write: JobWrite) -> Result<WriteOutcome, CommitterGone> {
        let (answer, answered) = oneshot::channel();
        self.mailbox().send((write, answer)).map_err(|_| CommitterGone)?;
        answered.await.map_err(|_| CommitterGone)
    }

    fn mailbox(&self) -> &mpsc::UnboundedSender<Request> {
        self.mailbox.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(run(self.store.clone(), self.clock.clone(), self.stats.clone(), receiver));
            sender
        })
    }
}

/// Takes whatever waits (up to [`MAX_GROUP`]), commits it as one group, answers, repeats;
/// ends when every sender is gone.
async fn run(store: Store, clock: SharedClock, stats: Arc<CommitStats>, mut mailbox: mpsc::UnboundedReceiver<Request>) {
    let mut waiting = Vec::with_capacity(MAX_GROUP);
    while mailbox.recv_many(&mut waiting, MAX_GROUP).await > 0 {
        let (writes, answers): (Vec<JobWrite>, Vec<_>) = waiting.drain(..).unzip();
        let started = std::time::Instant::now();
        let (outcomes, commit) = store.write_jobs(&writes, clock.now_ms()).await;
        if let Commit::Fallback(error) = &commit {
            tracing::warn!(%error, writes = writes.len(), "a group of job writes was written one by one");
        }
        stats.record(writes.len(), started.elapsed(), matches!(commit, Commit::Fallback(_)));
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            let _ = answer.send(outcome);
        }
    }
}
