//! Admission under concurrency: the node's slot is claimed with the choice of the node, so
//! callers racing for one free slot put one job on the node, never more than its slots.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use sgl_protocol::api::inference::Usage;

use crate::harness::Grid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_never_put_more_jobs_on_a_node_than_its_slots() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 1).await;
    let mut beat = node.heartbeat_with(&["m"], &[]);
    beat["max_concurrent_jobs"] = json!(1);
    assert_eq!(node.heartbeat(&grid, beat).await.0, StatusCode::OK);
    let (key_id, api_key) = grid.api_key(5.0).await;
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8});
    let callers: Vec<_> = (0..64).map(|_| grid.spawn_call("/v1/chat/completions", &api_key, request.clone())).collect();

    // Every caller but the one holding the slot is answered at once: the node is busy.
    let deadline = Instant::now() + Duration::from_secs(10);
    while callers.iter().filter(|caller| caller.is_finished()).count() < 63 {
        assert!(Instant::now() < deadline, "63 callers should be refused while the slot is taken");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let live = grid.state().registry().get(&node.node_id).expect("the node is live");
    assert_eq!(live.jobs_in_flight, 1, "one job on a one-slot node");
    let job = node.wait_job(&grid, "m").await;
    assert_eq!(grid.state().jobs().lock().len(), 1, "one job dispatched in all");
    assert_eq!(node.complete(&grid, &node.open(&job), "hello", Usage::new(3, 2)).await.0, StatusCode::OK);

    let mut statuses = Vec::new();
    for caller in callers {
        let (status, body) = caller.await.expect("the caller's task");
        assert!(status == StatusCode::OK || body["error"]["code"] == "no_capacity", "{status} {body}");
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(grid.state().registry().get(&node.node_id).map(|n| n.jobs_in_flight), Some(0), "the slot is free");
    assert!(grid.credits(key_id).await < 5_000_000, "the one answer was billed");
    grid.assert_ledger_balanced().await;
}
