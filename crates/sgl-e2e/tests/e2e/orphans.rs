//! `sgl-grid up` killed with SIGKILL, which it cannot catch, so none of its own clean-up runs:
//! its node processes die with it (the kernel's parent-death signal) instead of heartbeating a
//! dead grid forever with the model loaded.

use std::time::{Duration, Instant};

use crate::support::grid::{GridOptions, LocalGrid, signal};
use crate::support::{exclusive, test_env};

/// The parent pid in `/proc/PID/stat` (the field after the state, after the command's `)`).
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_killed_with_sigkill_takes_its_nodes_with_it() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let grid = LocalGrid::start(&env, GridOptions::nodes(2)).await.expect("a local grid");
    let grid_pid = grid.pid();
    let nodes = [grid.node_pid(0), grid.node_pid(1)];
    for pid in nodes {
        assert_eq!(parent_pid(pid), Some(grid_pid), "node {pid} is a child of sgl-grid up");
    }

    signal(grid_pid, "KILL");
    // The signal is delivered as the parent exits; a few seconds allow for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !nodes.iter().all(|pid| grid.node_gone(*pid)) {
        let alive: Vec<u32> = nodes.into_iter().filter(|pid| !grid.node_gone(*pid)).collect();
        assert!(Instant::now() < deadline, "nodes {alive:?} outlived the SIGKILLed grid by 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
