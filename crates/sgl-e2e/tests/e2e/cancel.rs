//! A caller who leaves a whole (non-streamed) answer: the grid tells the node to stop (over
//! its WebSocket and in the next heartbeat), the real node drops the generation and frees its
//! slot at once instead of computing for minutes, and the caller pays nothing.

use std::time::Duration;

use serde_json::json;

use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::{exclusive, test_env, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_leaves_a_whole_answer_stops_the_node_and_pays_nothing() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(1)).await.expect("a local grid");
    let before = grid.balance_micros().await;
    let long = json!({
        "model": grid.model,
        "messages": [{"role": "user", "content": "Count from one to two thousand, one number per line."}],
        "max_tokens": 4000,
        "temperature": 0,
    });
    let caller = grid.send_plain(&long);
    let job = grid.job_row(0).await;
    // Let the node start generating, then leave.
    tokio::time::sleep(Duration::from_millis(500)).await;
    caller.abort();
    let _ = caller.await;

    let logs = [grid.node_dir(0).join("sgl.log"), grid.node_dir(0).join("stderr.log")];
    wait_for("the node to log the cancellation", || async {
        let logged = logs
            .iter()
            .any(|path| std::fs::read_to_string(path).unwrap_or_default().contains("job cancelled by the grid"));
        logged.then_some(())
    })
    .await;
    let finished = grid.wait_jobs_finished().await;
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!((finished[0].id.as_str(), finished[0].status.as_str()), (job.id.as_str(), "failed"));
    assert_eq!(finished[0].billed_micros, None, "nothing billed for an answer nobody received");
    assert_eq!(grid.balance_micros().await, before, "the hold went back");

    // The node's only slot is free again: a short request is served long before 4000 tokens
    // could have been generated.
    let short = json!({"model": grid.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});
    let started = std::time::Instant::now();
    let (status, body) = grid.send_plain(&short).await.expect("the caller task");
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    eprintln!("cancel: the next request was answered {:?} after the cancellation", started.elapsed());
    let status = grid.admin(&["ledger", "check"]).await;
    assert_eq!(status["sound"], true, "{status}");
    grid.stop().await;
}
