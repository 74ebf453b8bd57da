//! Scenario 3: a node that dies before its first token. Node 0 is frozen (SIGSTOP: its
//! WebSocket stays open, so the grid still dispatches to it) and plain requests are sent until
//! the grid's `jobs` table shows one dispatched to it; node 0 is then killed. The caller still
//! gets a 200 answer, served by node 1 once the grid notices node 0's silence, and the ledger
//! bills that request exactly once: the failed attempt bills nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::grid::{GridOptions, JobRow, LocalGrid, signal};
use crate::support::{exclusive, test_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_dead_before_its_first_token_is_replaced_and_the_request_billed_once() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(2)).await.expect("a local grid");
    let before = grid.balance_micros().await;
    let body = json!({
        "model": grid.model,
        "messages": [{"role": "user", "content": "Count from one to ten."}],
        "max_tokens": 8,
        "temperature": 0,
    });

    // Freeze node 0, then send requests one at a time until one is dispatched to it: either
    // the first, or the second while node 1 (one job at a time) is still busy with the first.
    let victim_id = grid.node_ids[0].clone();
    let mut sent = Vec::new();
    let mut rows_seen = 0;
    let mut victim = None;
    for _attempt in 0..5 {
        let pid = grid.node_pid(0);
        signal(pid, "STOP");
        for _ in 0..2 {
            sent.push(grid.send_plain(&body));
            let row = grid.job_row(rows_seen).await;
            rows_seen += 1;
            if row.node_id == victim_id {
                victim = Some((pid, sent.len() - 1, row));
                break;
            }
        }
        if victim.is_some() {
            break;
        }
        // Node 1 finished the first before the second came: thaw node 0, let it heartbeat.
        signal(pid, "CONT");
        grid.wait_jobs_finished().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let (pid, failover_index, failed_row) = victim.expect("a request dispatched to the frozen node within 5 tries");
    eprintln!("plain failover: request {failover_index} was dispatched to frozen node-0, killing it");
    signal(pid, "KILL");

    let mut answers = Vec::new();
    for handle in sent {
        answers.push(handle.await.expect("the request task"));
    }
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "every caller is answered: {answer}");
        assert!(answer["choices"][0]["message"]["content"].is_string(), "{answer}");
    }
    let (_, failover_answer) = &answers[failover_index];
    let served_by = failover_answer["id"].as_str().and_then(|id| id.strip_prefix("chatcmpl-")).expect("an id");

    let jobs = grid.wait_jobs_finished().await;
    assert!(grid.node_gone(pid), "node 0 is dead");
    assert_eq!(jobs.len(), answers.len() + 1, "one extra job: the failed attempt. {jobs:?}");
    let failed = jobs.iter().find(|row| row.id == failed_row.id).expect("the failed attempt");
    assert_eq!(failed.status, "failed", "{failed:?}");
    assert!(failed.billed_micros.unwrap_or(0) == 0, "the failed attempt bills nothing: {failed:?}");
    let served = jobs.iter().find(|row| row.id == served_by).expect("the job that served the request");
    assert_eq!(served.status, "completed");
    assert_eq!(served.node_id, grid.node_ids[1], "served by the other node");
    assert!(served.billed_micros.is_some_and(|billed| billed > 0));

    // Each answer maps to exactly one completed job, and only completed jobs moved credits.
    let completed: Vec<&JobRow> = jobs.iter().filter(|row| row.status == "completed").collect();
    assert_eq!(completed.len(), answers.len(), "one bill per request: {jobs:?}");
    for (_, answer) in &answers {
        let id = answer["id"].as_str().and_then(|id| id.strip_prefix("chatcmpl-")).expect("an id");
        assert_eq!(completed.iter().filter(|row| row.id == id).count(), 1, "{id} billed once");
    }
    let billed: i64 = completed.iter().map(|row| row.billed_micros.expect("a bill")).sum();
    assert_eq!(before - grid.balance_micros().await, billed, "credits moved by exactly the completed jobs' bills");
    let grid_log = grid.grid_log();
    if grid_log.contains("job dispatched") {
        assert!(grid_log.contains("retrying on another node"), "the grid says it re-dispatched");
    }
    grid.stop().await;
}
