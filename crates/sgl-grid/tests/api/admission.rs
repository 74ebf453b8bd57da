//! Admission under concurrency, with real concurrent callers on a one-slot node: the slot is
//! claimed with the choice of the node (never two jobs on it), callers who find it busy wait in
//! line and are served in order of arrival, keys taking turns, and past the line's bounds they
//! get 503 with `Retry-After`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use sgl_protocol::api::inference::Usage;
use tokio::task::JoinHandle;

use crate::harness::{Grid, Node};

fn request(text: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": text}], "max_tokens": 8})
}

/// A registered node with one slot, serving `m`.
async fn one_slot_node(grid: &Grid) -> Node {
    let node = grid.node("0xop", 1).await;
    assert_eq!(node.heartbeat(grid, one_slot_beat(&node)).await.0, StatusCode::OK);
    node
}

fn one_slot_beat(node: &Node) -> Value {
    let mut beat = node.heartbeat_with(&["m"], &[]);
    beat["max_concurrent_jobs"] = json!(1);
    beat
}

/// Heartbeats (as a one-slot node) until the grid hands over a job.
async fn next_job(grid: &Grid, node: &Node) -> sgl_protocol::api::node::PendingJob {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = node.heartbeat(grid, one_slot_beat(node)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if let Some(job) = body["pending_jobs"].as_array().and_then(|jobs| jobs.first()) {
            return serde_json::from_value(job.clone()).expect("a pending job");
        }
        assert!(Instant::now() < deadline, "no job was dispatched to the node");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until `n` requests wait in line for `m`.
async fn until_waiting(grid: &Grid, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while grid.state().admission().waiting("m") != n {
        assert!(Instant::now() < deadline, "{n} requests should be waiting");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Serves the node's jobs one by one; returns each job's prompt in the order served, checking
/// that the node never holds more than its one job.
async fn serve_in_turn(grid: &Grid, node: &Node, jobs: usize) -> Vec<String> {
    let mut served = Vec::new();
    for _ in 0..jobs {
        let job = node.open(&next_job(grid, node).await);
        assert_eq!(grid.state().jobs().lock().len(), 1, "one job at a time on a one-slot node");
        let live = grid.state().registry().get(&node.node_id).expect("the node is live");
        assert_eq!(live.jobs_in_flight, 1);
        let messages = serde_json::to_value(job.request.messages.as_ref().expect("messages")).expect("JSON");
        let prompt = messages[0]["content"].as_str().expect("text").to_owned();
        assert_eq!(node.complete(grid, &job, "ok", Usage::new(3, 2)).await.0, StatusCode::OK);
        served.push(prompt);
    }
    served
}

async fn all_ok(callers: Vec<JoinHandle<(StatusCode, Value)>>) {
    for caller in callers {
        let (status, body) = caller.await.expect("the caller's task");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_on_a_one_slot_node_wait_and_are_all_served_one_job_at_a_time() {
    let grid = Grid::new().await;
    let node = one_slot_node(&grid).await;
    let (key_id, api_key) = grid.api_key(5.0).await;
    let callers: Vec<_> =
        (0..32).map(|i| grid.spawn_call("/v1/chat/completions", &api_key, request(&format!("caller {i}")))).collect();
    until_waiting(&grid, 31).await;
    let (_, capacity) = grid.call("GET", "/grid/capacity", &[], None).await;
    assert_eq!((&capacity["at_capacity"], &capacity["queue_depth"]), (&json!(true), &json!(31)), "{capacity}");
    let model = json!({"model": "m", "nodes": 1, "slots": 1, "busy_slots": 1, "waiting": 31, "at_capacity": true});
    assert_eq!(capacity["models"], json!([model]));
    assert_eq!(serve_in_turn(&grid, &node, 32).await.len(), 32);
    let (_, capacity) = grid.call("GET", "/grid/capacity", &[], None).await;
    assert_eq!((&capacity["at_capacity"], &capacity["queue_depth"]), (&json!(false), &json!(0)), "{capacity}");
    all_ok(callers).await;
    assert_eq!(grid.state().registry().get(&node.node_id).map(|n| n.jobs_in_flight), Some(0), "the slot is free");
    assert_eq!(grid.state().admission().waiting("m"), 0);
    assert!(grid.credits(key_id).await < 5_000_000, "the answers were billed");
    let (_, metrics) = grid.call("GET", "/metrics", &[], None).await;
    let metrics = metrics.as_str().expect("text");
    assert!(metrics.contains("sgl_admission_queued_total 31"), "{metrics}");
    assert!(metrics.contains("sgl_admission_wait_seconds_count 31"), "{metrics}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_callers_are_served_in_order_of_arrival_with_keys_taking_turns() {
    let grid = Grid::new().await;
    let node = one_slot_node(&grid).await;
    let (_, first) = grid.api_key(1.0).await;
    let (_, second) = grid.api_key(1.0).await;
    let mut callers = vec![grid.spawn_call("/v1/chat/completions", &first, request("running"))];
    let running = node.open(&next_job(&grid, &node).await);
    // The first key queues three requests, then the second key one: the second key's request
    // is served after the first key's first, not after all three.
    for (i, (key, text)) in [(&first, "a1"), (&first, "a2"), (&first, "a3"), (&second, "b1")].into_iter().enumerate() {
        callers.push(grid.spawn_call("/v1/chat/completions", key, request(text)));
        until_waiting(&grid, i + 1).await;
    }
    assert_eq!(node.complete(&grid, &running, "ok", Usage::new(3, 2)).await.0, StatusCode::OK);
    assert_eq!(serve_in_turn(&grid, &node, 4).await, ["a1", "b1", "a2", "a3"]);
    all_ok(callers).await;
    grid.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_lines_bounds_a_caller_gets_503_with_retry_after_and_a_caller_who_leaves_leaves_the_line() {
    let grid = Grid::with_config("[admission]\nwait_secs = 1\nmax_waiting_per_model = 2\n").await;
    let node = one_slot_node(&grid).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let running = grid.spawn_call("/v1/chat/completions", &api_key, request("running"));
    let _ = next_job(&grid, &node).await;
    let waiting: Vec<_> =
        (0..2).map(|i| grid.spawn_call("/v1/chat/completions", &api_key, request(&format!("w{i}")))).collect();
    until_waiting(&grid, 2).await;

    // The line is full: refused at once.
    let (status, headers, body) =
        grid.call_full("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(request("late"))).await;
    assert_eq!((status, &body["error"]["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("no_capacity")), "{body}");
    assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("2"));

    // The waiting ones give up after the configured second, with the same answer.
    for caller in waiting {
        let (status, body) = caller.await.expect("the caller's task");
        assert_eq!((status, &body["error"]["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("no_capacity")));
        assert!(body["error"]["message"].as_str().unwrap().contains("1 s"), "{body}");
    }
    assert_eq!(grid.state().admission().waiting("m"), 0, "a caller who gave up left the line");

    // A caller whose connection drops while waiting leaves the line at once.
    let leaving = grid.spawn_call("/v1/chat/completions", &api_key, request("leaving"));
    until_waiting(&grid, 1).await;
    leaving.abort();
    until_waiting(&grid, 0).await;
    drop(running);
    assert_eq!(grid.state().registry().get(&node.node_id).map(|n| n.jobs_in_flight), Some(1), "still running");
    assert!(grid.credits(key_id).await > 0);
    grid.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cheap_node_that_takes_jobs_and_never_acknowledges_them_loses_them_to_another() {
    let grid = Grid::with_config("[admission]\nack_timeout_secs = 1\n").await;
    let black_hole = grid.node("0xa", 4).await;
    let honest = grid.node("0xb", 5).await;
    black_hole.beat(&grid, &["m"]).await;
    honest.beat(&grid, &["m"]).await;
    let path = format!("/grid/nodes/{}/prices", black_hole.node_id);
    let cheaper = json!({"model": "m", "input_per_m": 0.05, "output_per_m": 0.2});
    assert_eq!(black_hole.call(&grid, "POST", &path, Some(cheaper)).await.0, StatusCode::OK);
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, request("hello"));

    // The cheapest node is handed the job and then only heartbeats, never listing it.
    let taken = black_hole.wait_job(&grid, "m").await;
    let job = node_job_on(&grid, &honest).await;
    assert_ne!(job.id, taken.id, "the request went to the honest node as a new job");
    assert_eq!(honest.complete(&grid, &honest.open(&job), "ok", Usage::new(3, 2)).await.0, StatusCode::OK);
    let (status, body) = caller.await.expect("the caller's task");
    assert_eq!(status, StatusCode::OK, "{body}");

    let record = grid.store.node(&black_hole.node_id.to_string()).await.unwrap().expect("the node's record");
    assert_eq!(record.jobs_failed, 1, "the black hole is blamed");
    assert!(record.reputation < 0.5, "its reputation dropped: {}", record.reputation);
    let paid = 1_000_000 - grid.credits(key_id).await;
    assert!(paid > 0 && paid < 100, "billed once, for the honest node's answer: {paid}");
    grid.assert_ledger_balanced().await;
}

/// Heartbeats as `node` (serving `m`, listing nothing) until it is handed a job.
async fn node_job_on(grid: &Grid, node: &Node) -> sgl_protocol::api::node::PendingJob {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = node.beat(grid, &["m"]).await;
        if let Some(job) = body["pending_jobs"].as_array().and_then(|jobs| jobs.first()) {
            return serde_json::from_value(job.clone()).expect("a pending job");
        }
        assert!(Instant::now() < deadline, "no job reached the honest node");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
