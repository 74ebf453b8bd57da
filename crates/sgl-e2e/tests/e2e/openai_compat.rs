//! Scenario 2: the plain OpenAI API through the official `openai` Python package
//! (`python/openai_compat.py`): models, a chat completion and a stream with usage, each
//! asserted in Python; here, its summary is checked against the grid's own job records.

use sgl_client::ChatRequest;
use sgl_protocol::api::openai::ChatMessage;

use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::{exclusive, openai_compat_script, python_openai, test_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_chats_and_streams() {
    let Some(env) = test_env() else { return };
    if !python_openai() {
        return;
    }
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(1)).await.expect("a local grid");
    let summary = openai_compat_script(&grid.base_url, &grid.api_key, &grid.model).await;
    assert!(summary["models"].as_array().is_some_and(|m| m.iter().any(|id| id == grid.model.as_str())), "{summary}");
    assert!(summary["completion_tokens"].as_u64().is_some_and(|n| n > 0), "{summary}");
    assert!(summary["stream_chunks"].as_u64().is_some_and(|n| n >= 3), "{summary}");
    assert!(summary["stream_text_chars"].as_u64().is_some_and(|n| n > 0), "{summary}");

    // The grid billed exactly the two requests, each as one completed job.
    let jobs = grid.wait_jobs_finished().await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for key in ["completion_id", "stream_id"] {
        let id = summary[key].as_str().and_then(|id| id.strip_prefix("chatcmpl-")).expect("a chatcmpl- id");
        let row = jobs.iter().find(|row| row.id == id).unwrap_or_else(|| panic!("job {id} recorded: {jobs:?}"));
        assert_eq!(row.status, "completed");
        assert!(row.billed_micros.is_some_and(|b| b > 0), "{row:?}");
    }
    let stream_id = summary["stream_id"].as_str().and_then(|id| id.strip_prefix("chatcmpl-")).expect("an id");
    let stream_row = jobs.iter().find(|row| row.id == stream_id).expect("the stream's job");
    assert_eq!(stream_row.completion_tokens, summary["stream_completion_tokens"].as_i64(), "usage as billed");

    // Back to back on a one-slot node: the grid pushes each job as soon as it has the previous
    // result, a moment before the node's job task frees its slot. The node must wait for that
    // slot, not drop the push and leave the job to the next heartbeat (seconds per request).
    let client = grid.client();
    let mut request = ChatRequest::new(grid.model.clone(), vec![ChatMessage::text("user", "One, two,")]);
    request.max_tokens = Some(1);
    for _ in 0..40 {
        client.chat_plain(&request.to_openai(false)).await.expect("a back-to-back completion");
    }
    let log = std::fs::read_to_string(grid.node_dir(0).join("sgl.log")).expect("the node's log");
    assert!(log.matches("job accepted").count() >= 42, "{log}");
    assert!(!log.contains("all slots busy"), "a back-to-back job was deferred to a heartbeat:\n{log}");
    grid.stop().await;
}
