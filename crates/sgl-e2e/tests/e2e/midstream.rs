//! Scenario 4: the only node is killed (SIGKILL) after the first content chunk of a long plain
//! stream. The caller gets an explicit error event, never `[DONE]` or a finish reason, and is
//! billed for what was delivered and no more: the completion tokens the last delivered chunk
//! signed for, at the model's output price.

use serde_json::{Value, json};

use crate::support::grid::{GridOptions, LocalGrid, signal};
use crate::support::sse::SseReader;
use crate::support::{DEADLINE, exclusive, test_env};

/// What the caller saw of the stream.
#[derive(Debug, Default)]
struct Seen {
    content: String,
    chunks: usize,
    done: bool,
    finish_reasons: Vec<String>,
    error: Option<Value>,
}

impl Seen {
    fn take(&mut self, data: &str) {
        if data.trim() == "[DONE]" {
            self.done = true;
            return;
        }
        let event: Value =
            serde_json::from_str(data).unwrap_or_else(|e| panic!("an SSE data line is JSON ({e}): {data}"));
        if event.get("error").is_some() {
            self.error = Some(event);
            return;
        }
        self.chunks += 1;
        for choice in event["choices"].as_array().into_iter().flatten() {
            self.content.push_str(choice["delta"]["content"].as_str().unwrap_or_default());
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish_reasons.push(reason.to_owned());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_ends_it_with_an_error_and_bills_at_most_what_was_delivered() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(1)).await.expect("a local grid");
    let before = grid.balance_micros().await;
    let (input, output) = grid.prices_per_token().await;
    let prompt = "Count from one to two hundred, one number per line.";
    let body = json!({
        "model": grid.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 300,
        "temperature": 0,
        "stream": true,
    });
    let response = grid.post_chat(&body).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("text/event-stream"), "a stream: {content_type}");
    let pid = grid.node_pid(0);
    let mut reader = SseReader::new(response);
    let mut seen = Seen::default();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut killed = false;
        while let Some(event) = reader.next().await.expect("the grid keeps the connection until it ends the stream") {
            seen.take(&event.data);
            if !killed && !seen.content.is_empty() {
                assert!(!seen.done && seen.finish_reasons.is_empty(), "300 tokens take longer than one chunk");
                signal(pid, "KILL");
                killed = true;
            }
        }
        killed
    })
    .await;
    let killed = read.unwrap_or_else(|_| panic!("the stream did not end within {DEADLINE:?}: {seen:?}"));
    assert!(killed, "the stream ended before its first content: {seen:?}");
    assert!(grid.node_gone(pid), "the node is dead");

    let error = seen.error.as_ref().unwrap_or_else(|| panic!("an explicit error event ends the stream: {seen:?}"));
    eprintln!("mid-stream: {} chunks ({} bytes) delivered, then {error}", seen.chunks, seen.content.len());
    assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    assert!(!seen.done, "no [DONE] after a failure");
    assert!(seen.finish_reasons.is_empty(), "no normal finish after a failure: {:?}", seen.finish_reasons);

    // Billed ≤ delivered: the prompt (bounded as the grid bounds it: characters + template)
    // plus at most one token per delivered byte, at the model's prices.
    let jobs = grid.wait_jobs_finished().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let billed = before - grid.balance_micros().await;
    assert_eq!(billed, jobs[0].billed_micros.unwrap_or(0), "the credits moved by the job's bill only");
    let prompt_bound = ("user".len() + prompt.len() + 16 + 64) as f64;
    let delivered_bound = (input * prompt_bound + output * seen.content.len() as f64).ceil() as i64 + 1;
    assert!(
        (1..=delivered_bound).contains(&billed),
        "billed {billed} micro-dollars for {} delivered bytes (bound {delivered_bound})",
        seen.content.len()
    );
    let tokens = jobs[0].completion_tokens.unwrap_or(0);
    assert!(
        tokens >= 1 && tokens as usize <= seen.content.len(),
        "the job records the {tokens} delivered tokens of {} delivered bytes",
        seen.content.len()
    );
    grid.stop().await;
}
