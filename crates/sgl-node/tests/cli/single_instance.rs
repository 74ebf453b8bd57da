//! One `sgl start` per node identity: a second start on the same config directory exits at
//! once, naming the directory and the running node's pid, and leaves the running node alone;
//! once that node is SIGKILLed (its lock file left behind), a new start runs.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sgl_test_support::{NodeProcess, test_model};

use crate::grid;

/// `sgl start` on `dir` serving `model`, as [`NodeProcess::start`] runs it, stderr to `log`.
fn start_command(grid: &sgl_test_support::Grid, dir: &Path, model: &Path, log: &Path) -> Command {
    let sgl = Path::new(env!("CARGO_BIN_EXE_sgl"));
    let flags = ["start", "--model-name", "gemma", "--heartbeat-interval", "1", "--context-size", "1024"];
    let mut command = NodeProcess::command(sgl, grid, dir, &flags);
    command
        .arg("--model-path")
        .arg(model)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("a log file"));
    command
}

/// Waits for `child` to exit within `limit`; kills it and returns `None` if it does not.
fn wait_exit(mut child: Child, limit: Duration) -> Option<Output> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().expect("waitable").is_some() {
            return Some(child.wait_with_output().expect("the output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn lock_file_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("sgl.lock")).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_of_one_node_is_refused_and_a_killed_node_can_restart() {
    let Some(model) = test_model() else { return };
    let grid = grid().await;
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("node");
    let mut first = NodeProcess::start(&grid, Path::new(env!("CARGO_BIN_EXE_sgl")), &model, &dir, &[]).await;
    let first_pid = first.child.id();

    // A second start of the same node: refused at once, before it loads the model.
    let second_log = base.path().join("second.log");
    let second = start_command(&grid, &dir, &model, &second_log).spawn().unwrap();
    let started = Instant::now();
    let second = tokio::task::spawn_blocking(move || wait_exit(second, Duration::from_secs(20))).await.unwrap();
    let log = std::fs::read_to_string(&second_log).unwrap_or_default();
    let Some(second) = second else { panic!("a second sgl start on the same node kept running:\n{log}") };
    assert_eq!(second.status.code(), Some(2), "{log}");
    let message = format!("already running for the node in {}:", dir.display());
    assert!(log.contains(&message) && log.contains(&format!("(pid {first_pid})")), "{log}");
    assert!(!log.contains("loading model"), "refused before loading the model:\n{log}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused at once, not after {:?}", started.elapsed());

    // The first node never noticed: still running, still serving.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(first.child.try_wait().unwrap().is_none(), "the first node exited:\n{}", first.read_log());
    assert!(grid.model_ids().await.contains(&"gemma".to_owned()));
    assert_eq!(lock_file_pid(&dir), Some(first_pid));

    // SIGKILL: no clean-up runs, the lock file stays with the dead pid, and still a new start
    // takes the node over.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert_eq!(lock_file_pid(&dir), Some(first_pid), "the dead node's lock file is left behind");
    let third_log = base.path().join("third.log");
    let third = start_command(&grid, &dir, &model, &third_log).env("RUST_LOG", "info").spawn().unwrap();
    let mut third = NodeProcess { child: third, log: third_log };
    let deadline = Instant::now() + Duration::from_secs(90);
    while !third.read_log().contains("node starting") {
        assert!(third.child.try_wait().unwrap().is_none(), "the restarted node exited:\n{}", third.read_log());
        assert!(Instant::now() < deadline, "the restarted node never started:\n{}", third.read_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(lock_file_pid(&dir), Some(third.child.id()));
    assert_eq!(third.terminate().code(), Some(0), "{}", third.read_log());
}
