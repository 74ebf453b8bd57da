//! Scenario 5: a random canary in a sealed prompt (and, if the model echoes it, in the sealed
//! answer) appears nowhere the grid or its nodes write: not in `grid.db`, its WAL, the grid's
//! stderr, nor any node's `sgl.log` or `stderr.log`, all at `RUST_LOG=debug`.

use std::path::PathBuf;

use sgl_client::ChatRequest;
use sgl_protocol::api::openai::ChatMessage;

use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::{canary, exclusive, test_env};

/// The files under the grid's directory that contain `needle`, and every file scanned.
fn files_containing(grid: &LocalGrid, needle: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let files = grid.all_files();
    let found = files
        .iter()
        .filter(|path| {
            std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .cloned()
        .collect();
    (found, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_prompt_leaves_no_trace_in_the_database_or_any_log() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let options = GridOptions { rust_log: "debug", ..GridOptions::nodes(1) };
    let mut grid = LocalGrid::start(&env, options).await.expect("a local grid");
    let client = grid.client();
    let canary = canary();
    let prompt = format!("Repeat after me: {canary} {canary} {canary}");
    let mut request = ChatRequest::new(&grid.model, vec![ChatMessage::text("user", prompt)]);
    request.max_tokens = Some(16);
    request.temperature = Some(0.0);
    let chat = client.chat(&request).await.expect("a verified sealed answer");
    assert!(chat.usage().is_some_and(|u| u.prompt_tokens > 10), "the prompt reached the node");
    let (streamed, end) =
        client.chat_stream(&request).await.expect("a sealed stream").collect().await.expect("verified");
    assert!(end.usage.completion_tokens > 0);
    grid.wait_jobs_finished().await;

    // Controls: the scanned logs are at debug level and cover these very jobs.
    let node_log = std::fs::read_to_string(grid.node_dir(0).join("sgl.log")).expect("the node's log");
    assert!(node_log.contains("DEBUG"), "the node logs at debug level");
    let grid_log = grid.grid_log();
    let grid_traces = grid_log.contains("job dispatched");
    if !grid_traces {
        eprintln!("note: the grid's stderr holds no tracing events (`sgl-grid up` installs no subscriber)");
    }
    for job_id in [&chat.verification.job_id, &end.verification.job_id] {
        assert!(node_log.contains(job_id.as_str()), "the node's log covers job {job_id}");
        assert!(!grid_traces || grid_log.contains(job_id.as_str()), "the grid's log covers job {job_id}");
    }
    let echoed = chat.content().contains(&canary) || streamed.contains(&canary);

    let (found, scanned) = files_containing(&grid, &canary);
    let node_dir = grid.node_dir(0);
    let required = [
        grid.data_dir().join("grid.db"),
        grid.data_dir().join("grid.db-wal"),
        grid.root().join("grid.stderr.log"),
        node_dir.join("sgl.log"),
        node_dir.join("stderr.log"),
    ];
    for path in &required {
        assert!(scanned.contains(path), "{} was scanned: {scanned:?}", path.display());
    }
    assert!(found.is_empty(), "the canary leaked into {found:?} (echoed by the model: {echoed})");
    // After a clean stop the WAL is checkpointed into grid.db and the logs are complete.
    grid.stop().await;
    let (found, _) = files_containing(&grid, &canary);
    assert!(found.is_empty(), "after stopping, the canary is in {found:?}");
}
