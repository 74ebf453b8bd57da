//! The node's local state (seed 002): READY, EXECUTING, IDLE or UNSTAKING, derived from what the
//! agent knows at each moment. Every change is logged as a `state.transition` event and written
//! to `state.json` in the config directory, which `sgl status` reads.
//!
//! The file is replaced atomically (a temporary file renamed into place, one writer at a time)
//! but never fsynced: it changes twice per job and is only a status display, so losing the
//! last write in a power cut costs nothing, while an fsync on the job path stalled jobs by up
//! to a second on a busy disk (BENCHMARKS.md, overhead).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The state file's name in the config directory.
pub const STATE_FILE: &str = "state.json";

/// What the node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LocalState {
    /// The model is served and slots are free.
    Ready,
    /// At least one job is running.
    Executing,
    /// Not taking work: no engine, an unhealthy engine, off-grid, or the grid unreachable.
    Idle,
    /// The operator's stake is in its cooldown: the grid sends no work.
    Unstaking,
}

impl LocalState {
    /// The name shown to operators.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Executing => "EXECUTING",
            Self::Idle => "IDLE",
            Self::Unstaking => "UNSTAKING",
        }
    }
}

/// The facts a state is derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// Jobs running now.
    pub active_jobs: u32,
    /// The engine is loaded and healthy, so the model is advertised.
    pub serving: bool,
    /// The node runs general compute (`--workloads wasm`), which needs no engine.
    pub computing: bool,
    /// The last heartbeat reached the grid.
    pub grid_reachable: bool,
    /// The grid says this node is off-grid.
    pub off_grid: bool,
    /// The grid says this node's stake is unstaking.
    pub unstaking: bool,
}

impl Facts {
    /// The state these facts mean. Running jobs win: a job in flight is finished whatever else
    /// changed.
    pub fn state(&self) -> (LocalState, &'static str) {
        if self.active_jobs > 0 {
            (LocalState::Executing, "running jobs")
        } else if self.unstaking {
            (LocalState::Unstaking, "the stake is unstaking")
        } else if !self.serving && !self.computing {
            (LocalState::Idle, "no healthy engine")
        } else if self.off_grid {
            (LocalState::Idle, "off-grid")
        } else if !self.grid_reachable {
            (LocalState::Idle, "the grid is unreachable")
        } else {
            (LocalState::Ready, "serving")
        }
    }
}

/// What `state.json` holds: no secrets, nothing about prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// The current state.
    pub state: LocalState,
    /// Why.
    pub reason: String,
    /// Since when, RFC 3339 seconds as Unix time.
    pub since_unix: u64,
    /// The agent's process id.
    pub pid: u32,
    /// The served model, if any.
    pub model: Option<String>,
    /// Jobs running.
    pub active_jobs: u32,
    /// Parallel slots.
    pub slots: u32,
    /// The last heartbeat the grid accepted, Unix seconds.
    pub last_heartbeat_unix: Option<u64>,
    /// Jobs finished since start.
    pub jobs_finished: u64,
    /// General-compute attempts running now.
    #[serde(default)]
    pub compute_running: u32,
    /// General-compute attempts run and reported with a receipt.
    #[serde(default)]
    pub compute_reported: u64,
    /// General-compute attempts that failed before a receipt.
    #[serde(default)]
    pub compute_failed: u64,
}

/// Tracks the state and logs transitions.
#[derive(Debug)]
pub struct StateTracker {
    path: PathBuf,
    snapshot: Mutex<StateSnapshot>,
    /// Held while the file is written, so two writers never share the temporary file.
    writing: Mutex<()>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl StateTracker {
    /// Starts IDLE, writing to `config_dir/state.json`.
    pub fn new(config_dir: &Path, model: Option<String>, slots: u32) -> Self {
        let snapshot = StateSnapshot {
            state: LocalState::Idle,
            reason: "starting".into(),
            since_unix: unix_now(),
            pid: std::process::id(),
            model,
            active_jobs: 0,
            slots,
            last_heartbeat_unix: None,
            jobs_finished: 0,
            compute_running: 0,
            compute_reported: 0,
            compute_failed: 0,
        };
        let tracker =
            Self { path: config_dir.join(STATE_FILE), snapshot: Mutex::new(snapshot), writing: Mutex::new(()) };
        tracker.write();
        tracker
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> StateSnapshot {
        self.snapshot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Re-derives the state from `facts`, logs a transition if it changed, and saves.
    pub fn update(&self, facts: Facts, heartbeat_ok: bool, jobs_finished: u64) -> LocalState {
        let (state, reason) = facts.state();
        let changed = {
            let mut snapshot = self.snapshot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let from = snapshot.state;
            snapshot.active_jobs = facts.active_jobs;
            snapshot.jobs_finished = jobs_finished;
            if heartbeat_ok {
                snapshot.last_heartbeat_unix = Some(unix_now());
            }
            if from != state {
                tracing::info!(
                    target: "sgl::events::state",
                    event = "state.transition",
                    from = from.as_str(),
                    to = state.as_str(),
                    reason,
                    "state {} -> {}",
                    from.as_str(),
                    state.as_str()
                );
                snapshot.state = state;
                snapshot.since_unix = unix_now();
            }
            snapshot.reason = reason.to_owned();
            from != state
        };
        if changed || heartbeat_ok {
            self.write();
        }
        state
    }

    /// Records general compute's counts and writes them.
    pub fn record_compute(&self, running: u32, reported: u64, failed: u64) {
        {
            let mut snapshot = self.snapshot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            snapshot.compute_running = running;
            snapshot.compute_reported = reported;
            snapshot.compute_failed = failed;
        }
        self.write();
    }

    fn write(&self) {
        let _writing = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot = self.snapshot();
        let Ok(json) = serde_json::to_vec_pretty(&snapshot) else { return };
        if let Err(error) = replace_file(&self.path, &json) {
            tracing::warn!(path = %self.path.display(), %error, "could not write the state file");
        }
    }
}

/// Replaces `path` with `bytes` through `path.tmp` and a rename, without fsync; owner-only
/// permissions on Unix.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&tmp)?.write_all(bytes)?;
    std::fs::rename(&tmp, path)
}

/// Reads `state.json`, if an agent ever wrote one.
pub fn read_state(config_dir: &Path) -> Option<StateSnapshot> {
    let bytes = std::fs::read(config_dir.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    //! State derivation and the state file.

    use super::*;

    #[test]
    fn running_jobs_win_then_unstaking_then_idle_reasons() {
        let serving = Facts { serving: true, grid_reachable: true, ..Facts::default() };
        assert_eq!(serving.state().0, LocalState::Ready);
        assert_eq!(Facts { active_jobs: 1, unstaking: true, ..serving }.state().0, LocalState::Executing);
        assert_eq!(Facts { unstaking: true, ..serving }.state().0, LocalState::Unstaking);
        assert_eq!(Facts { off_grid: true, ..serving }.state(), (LocalState::Idle, "off-grid"));
        assert_eq!(Facts { grid_reachable: false, ..serving }.state().1, "the grid is unreachable");
        let computing = Facts { serving: false, computing: true, ..serving };
        assert_eq!(computing.state().0, LocalState::Ready, "a compute-only node needs no engine");
        assert_eq!(Facts { computing: false, ..computing }.state(), (LocalState::Idle, "no healthy engine"));
        assert_eq!(Facts::default().state(), (LocalState::Idle, "no healthy engine"));
    }

    #[test]
    fn transitions_are_saved_for_status() {
        let dir = tempfile::tempdir().unwrap();
        let tracker = StateTracker::new(dir.path(), Some("gemma".into()), 2);
        assert_eq!(read_state(dir.path()).unwrap().state, LocalState::Idle);
        let facts = Facts { serving: true, grid_reachable: true, active_jobs: 1, ..Facts::default() };
        assert_eq!(tracker.update(facts, true, 0), LocalState::Executing);
        let saved = read_state(dir.path()).unwrap();
        assert_eq!((saved.state, saved.active_jobs, saved.slots), (LocalState::Executing, 1, 2));
        assert!(saved.last_heartbeat_unix.is_some());
        assert_eq!(saved.pid, std::process::id());
    }
}
