//! Scenario 3b: the sealed counterpart of [`crate::failover`]. A sealed request is sealed to
//! one node's key, so the grid cannot re-dispatch it: it answers 503 `upstream_failed` and
//! `sgl-client` reserves again and resends. Node B is kept busy with a plain request (one job
//! per node), node A is frozen, and the sealed chat is reserved on A; A is killed. The caller
//! still gets a verified answer, from B, and only that answer is billed.

use std::time::Duration;

use serde_json::json;
use sgl_client::{ApiKey, ChatRequest, Client, RetryPolicy};
use sgl_protocol::api::openai::ChatMessage;

use crate::support::grid::{GridOptions, JobRow, LocalGrid, signal};
use crate::support::{exclusive, test_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_request_whose_node_dies_is_resent_by_the_client_and_billed_once() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(2)).await.expect("a local grid");
    // Patient retries (about 40 s in all): after the failure, the surviving node may still be
    // busy with the plain request for a while, longer on a loaded machine (CI once saw 8
    // retries, about 24 s, run out).
    let retry =
        RetryPolicy { max_retries: 12, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(4) };
    let client = Client::builder(&grid.base_url)
        .api_key(ApiKey::new(grid.api_key.clone()))
        .retry(retry)
        .build()
        .expect("a client");
    let before = grid.balance_micros().await;
    let busy_body = json!({
        "model": grid.model,
        "messages": [{"role": "user", "content": "Count from one to fifty."}],
        "max_tokens": 48,
        "temperature": 0,
    });
    let mut request = ChatRequest::new(&grid.model, vec![ChatMessage::text("user", "Name three colours.")]);
    request.max_tokens = Some(8);

    let mut plain = Vec::new();
    let mut rows_seen = 0;
    let mut victim = None;
    for _attempt in 0..5 {
        // Occupy one node, freeze the other, and let the sealed chat reserve the frozen one.
        plain.push(grid.send_plain(&busy_body));
        let busy_row = grid.job_row(rows_seen).await;
        rows_seen += 1;
        let frozen = 1 - grid.node_ids.iter().position(|id| *id == busy_row.node_id).expect("a known node");
        let pid = grid.node_pid(frozen);
        signal(pid, "STOP");
        let sealed = {
            let (client, request) = (client.clone(), request.clone());
            tokio::spawn(async move { client.chat(&request).await })
        };
        let sealed_row = grid.job_row(rows_seen).await;
        rows_seen += 1;
        if sealed_row.node_id == grid.node_ids[frozen] {
            victim = Some((pid, frozen, sealed_row, sealed));
            break;
        }
        // The busy node finished first and took the sealed chat too: thaw and try again.
        signal(pid, "CONT");
        sealed.await.expect("the sealed task").expect("a verified answer");
        grid.wait_jobs_finished().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let (pid, frozen, failed_row, sealed) = victim.expect("a sealed chat reserved on the frozen node within 5 tries");
    eprintln!("sealed failover: reserved on frozen node-{frozen}, killing it");
    signal(pid, "KILL");

    let chat = sealed.await.expect("the sealed task");
    let chat =
        chat.unwrap_or_else(|e| panic!("the client resends and verifies the answer: {e:?}\n{}", grid.grid_log()));
    let survivor = &grid.node_ids[1 - frozen];
    assert_eq!(chat.verification.node_id.to_string(), *survivor, "answered by the surviving node");
    assert!(chat.usage().is_some_and(|u| u.completion_tokens > 0));
    for handle in plain {
        let (status, answer) = handle.await.expect("the plain task");
        assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    }

    let jobs = grid.wait_jobs_finished().await;
    assert!(grid.node_gone(pid), "the frozen node is dead");
    let failed = jobs.iter().find(|row| row.id == failed_row.id).expect("the failed attempt");
    assert_eq!(failed.status, "failed", "{failed:?}");
    assert!(failed.billed_micros.unwrap_or(0) == 0, "the failed attempt bills nothing: {failed:?}");
    let served = jobs.iter().find(|row| row.id == chat.verification.job_id.as_str()).expect("the serving job");
    assert_eq!((served.status.as_str(), &served.node_id), ("completed", survivor));
    let sealed_completed =
        jobs.iter().filter(|row| row.status == "completed" && row.id == chat.verification.job_id.as_str()).count();
    assert_eq!(sealed_completed, 1);
    let completed: Vec<&JobRow> = jobs.iter().filter(|row| row.status == "completed").collect();
    let billed: i64 = completed.iter().map(|row| row.billed_micros.expect("a bill")).sum();
    assert_eq!(before - grid.balance_micros().await, billed, "credits moved by exactly the completed jobs' bills");
    assert_eq!(jobs.iter().filter(|row| row.status == "failed").count(), 1, "one failed attempt: {jobs:?}");
    grid.stop().await;
}
