//! Scenario 1: a sealed chat and a sealed stream through `sgl-client`, which verifies the
//! node's keybind at reservation and the node's v2 signature on the reply and on every chunk;
//! both are billed once, as the signed usage says.

use sgl_client::ChatRequest;
use sgl_protocol::api::openai::ChatMessage;

use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::{exclusive, test_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_chat_and_sealed_stream_are_verified_and_billed_once() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(2)).await.expect("a local grid");
    let client = grid.client();
    let before = grid.balance_micros().await;

    let mut request = ChatRequest::new(&grid.model, vec![ChatMessage::text("user", "Count from one to ten.")]);
    request.max_tokens = Some(8);
    request.temperature = Some(0.0);
    let chat = client.chat(&request).await.expect("a verified sealed answer");
    let verified = &chat.verification;
    assert!(verified.verified);
    assert_eq!(verified.envelope_version, "v2");
    assert!(grid.node_ids.contains(&verified.node_id.to_string()), "answered by a node of this grid");
    let model_sha256 = verified.model_sha256.as_deref().expect("the reply names the model's hash");
    assert!(model_sha256.len() == 64 && model_sha256.bytes().all(|b| b.is_ascii_hexdigit()));
    let usage = chat.usage().expect("signed usage");
    assert!(usage.prompt_tokens > 0);
    assert!((1..=8).contains(&usage.completion_tokens), "max_tokens travels sealed and is honoured: {usage:?}");
    assert_eq!(chat.completion.id, format!("chatcmpl-{}", verified.job_id));

    request.max_tokens = Some(24);
    let mut stream = client.chat_stream(&request).await.expect("a sealed stream");
    let mut text = String::new();
    let mut deltas = 0;
    while let Some(delta) = stream.next_delta().await.expect("every chunk verifies") {
        text.push_str(&delta);
        deltas += 1;
    }
    let end = stream.end().expect("the final chunk's signed end").clone();
    assert!(end.verification.verified);
    assert!(grid.node_ids.contains(&end.verification.node_id.to_string()));
    assert_eq!(end.verification.model_sha256.as_deref(), Some(model_sha256), "the same model everywhere");
    assert!((1..=24).contains(&end.usage.completion_tokens), "{:?}", end.usage);
    assert!(deltas >= 1 && !text.is_empty(), "the stream carried text");

    // The ledger: exactly these two jobs, completed, and the credits moved by their bills.
    let jobs = grid.wait_jobs_finished().await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for (job_id, node_id) in
        [(&verified.job_id, verified.node_id), (&end.verification.job_id, end.verification.node_id)]
    {
        let row = jobs.iter().find(|row| row.id == job_id.as_str()).expect("the job is recorded");
        assert_eq!(row.status, "completed");
        assert_eq!(row.node_id, node_id.to_string());
    }
    let chat_row = jobs.iter().find(|row| row.id == verified.job_id.as_str()).expect("the chat's job");
    assert_eq!(chat_row.completion_tokens, Some(i64::try_from(usage.completion_tokens).expect("small")));
    let billed: i64 = jobs.iter().map(|row| row.billed_micros.expect("a completed job has a bill")).sum();
    assert_eq!(before - grid.balance_micros().await, billed, "credits moved by exactly the two bills");
    grid.stop().await;
}
