//! Scenario 3: a node that dies before its first token. Both nodes are frozen (SIGSTOP: their
//! WebSockets stay open, so the grid still dispatches), one plain request is sent, and the
//! node the grid's `jobs` table shows it dispatched to is killed while the other is thawed.
//! The caller still gets a 200 answer, served by the other node once the grid notices the
//! victim's silence, and the ledger bills that request exactly once: the failed attempt bills
//! nothing. (Freezing both makes the victim whichever node the grid picks, so no timing race
//! decides whether the scenario happens.)

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

    // Freeze both nodes and send one request: whichever node the grid dispatches it to is the
    // victim; kill it and thaw the other.
    let pids = [grid.node_pid(0), grid.node_pid(1)];
    for pid in pids {
        signal(pid, "STOP");
    }
    let sent = vec![grid.send_plain(&body)];
    let failed_row = grid.job_row(0).await;
    let victim = grid.node_ids.iter().position(|id| *id == failed_row.node_id).expect("dispatched to one of ours");
    let (pid, survivor) = (pids[victim], 1 - victim);
    eprintln!("plain failover: the request was dispatched to frozen node-{victim}; killing it");
    signal(pid, "KILL");
    signal(pids[survivor], "CONT");
    let failover_index = 0;

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
    assert!(grid.node_gone(pid), "the victim is dead");
    assert_eq!(jobs.len(), answers.len() + 1, "one extra job: the failed attempt. {jobs:?}");
    let failed = jobs.iter().find(|row| row.id == failed_row.id).expect("the failed attempt");
    assert_eq!(failed.status, "failed", "{failed:?}");
    assert!(failed.billed_micros.unwrap_or(0) == 0, "the failed attempt bills nothing: {failed:?}");
    let served = jobs.iter().find(|row| row.id == served_by).expect("the job that served the request");
    assert_eq!(served.status, "completed");
    assert_eq!(served.node_id, grid.node_ids[survivor], "served by the other node");
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
