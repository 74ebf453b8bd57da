//! Faults with real processes: the coordinator killed with SIGKILL under concurrent load and
//! restarted on its database; a node that accepts a job and then never answers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::grid::{GridOptions, LocalGrid, signal};
use crate::support::sse::SseReader;
use crate::support::{DEADLINE, exclusive, test_env};

fn counting(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Count from one to two hundred, one number per line."}],
        "max_tokens": 300,
        "temperature": 0,
        "stream": stream,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_under_load_restarts_sound_with_delivered_tokens_billed_once() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(2)).await.expect("a local grid");
    let before = grid.balance_micros().await;

    // One stream delivering, and whole answers in flight beside it.
    let response = grid.post_chat(&counting(&grid.model, true)).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let mut reader = SseReader::new(response);
    let mut delivered = String::new();
    tokio::time::timeout(DEADLINE, async {
        while delivered.len() < 16 {
            let event = reader.next().await.expect("the stream goes on").expect("an event");
            let chunk: Value = serde_json::from_str(&event.data).expect("a JSON chunk");
            delivered.push_str(chunk["choices"][0]["delta"]["content"].as_str().unwrap_or_default());
        }
    })
    .await
    .expect("the stream delivers within the deadline");
    // Short answers delivered under that load: a caller is answered only after its job's
    // group commit, so each of these must be found billed after the crash.
    let short = json!({"model": grid.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});
    let mut answered = Vec::new();
    for _ in 0..2 {
        let (status, body) = grid.send_plain(&short).await.expect("the caller task");
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        let id = body["id"].as_str().and_then(|id| id.strip_prefix("chatcmpl-")).expect("a chatcmpl id");
        answered.push(id.to_owned());
    }
    // (These callers' tasks panic with "the grid answers" when the grid dies under them; they
    // are aborted below and their outcome is read from the jobs table instead.)
    let plains: Vec<_> = (0..3).map(|_| grid.send_plain(&counting(&grid.model, false))).collect();
    // Let the delivered count reach the database (written at most once a second).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let in_flight = grid.jobs().await.iter().filter(|job| job.status == "dispatched").count();
    assert!(in_flight >= 2, "the stream and a whole answer were running when the grid died ({in_flight})");

    grid.kill_and_restart().await.expect("the grid restarts on its database");
    for plain in plains {
        plain.abort();
    }
    // The stream went on while the short calls ran: what reached this caller's socket before
    // the crash is still in its buffer, and is what it was delivered.
    while let Ok(Ok(Some(event))) = tokio::time::timeout(Duration::from_secs(5), reader.next()).await {
        let chunk: Value = serde_json::from_str(&event.data).unwrap_or_default();
        delivered.push_str(chunk["choices"][0]["delta"]["content"].as_str().unwrap_or_default());
    }
    drop(reader);

    // Nothing is left running, the stream's delivered tokens were billed, and the credits moved
    // by exactly the jobs' bills: nothing billed twice, nothing lost.
    let jobs = grid.jobs().await;
    assert!(jobs.iter().all(|job| job.status != "dispatched"), "{jobs:?}");
    let stream = &jobs[0];
    let tokens = stream.completion_tokens.unwrap_or(0);
    assert!(stream.billed_micros.unwrap_or(0) >= 1, "the delivered stream was billed: {stream:?}");
    assert!(
        tokens >= 1 && tokens as usize <= delivered.len(),
        "{tokens} tokens for {} bytes delivered",
        delivered.len()
    );
    for id in &answered {
        let job = jobs.iter().find(|job| &job.id == id).expect("an answered job has its row");
        assert!(job.status == "completed" && job.billed_micros.unwrap_or(0) >= 1, "answered, so billed: {job:?}");
    }
    let billed: i64 = jobs.iter().filter_map(|job| job.billed_micros).sum();
    assert_eq!(before - grid.balance_micros().await, billed, "{jobs:?}");
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");

    // And the restarted grid serves again.
    let (status, body) = grid.send_plain(&short).await.expect("the caller task");
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    grid.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_accepts_a_job_and_never_answers_is_failed_unbilled_without_hanging_the_caller() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(1)).await.expect("a local grid");
    let before = grid.balance_micros().await;
    let caller = grid.send_plain(&counting(&grid.model, false));
    let job = grid.job_row(0).await;
    let pid = grid.node_pid(0);
    signal(pid, "STOP");
    let answered = tokio::time::timeout(DEADLINE, caller).await;
    signal(pid, "CONT");
    let (status, body) = answered.expect("the caller is answered within the deadline").expect("the caller task");
    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "upstream_failed", "{body}");
    let jobs = grid.wait_jobs_finished().await;
    assert_eq!(
        (jobs[0].id.as_str(), jobs[0].status.as_str(), jobs[0].billed_micros),
        (job.id.as_str(), "failed", None)
    );
    assert_eq!(grid.balance_micros().await, before, "nothing billed");
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");
    grid.stop().await;
}
