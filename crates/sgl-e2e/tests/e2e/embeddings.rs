//! Embeddings through the official `openai` Python package (`python/embeddings.py`) against a
//! real node serving the real all-MiniLM-L6-v2 GGUF beside the chat model: a paraphrase lands
//! closer than an unrelated sentence, base64 and float carry the same float32 values, and a
//! width the model does not make is the SDK's `BadRequestError`. Then texts sealed by
//! `sgl-client`, verified against the embedding model's hash. Here, the grid's records: one
//! completed job per served request, billed for input tokens only, from the caller's credits.

use crate::support::grid::{GridOptions, LocalGrid};

/// The sha256 of `.ci/install-embedding-model`'s GGUF.
const MINILM_SHA256: &str = "2ea4e58d174fb788a219e59f00a5a5051ddbfb825cd0f0a9d6d0a2db3405830b";
use crate::support::{exclusive, in_ci, openai_script, python_openai, test_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_sdk_embeds_through_a_real_node() {
    let Some(env) = test_env() else { return };
    if !python_openai() {
        return;
    }
    if std::env::var_os("SGL_TEST_EMBEDDING_MODEL").is_none() {
        assert!(!in_ci(), "CI=true but SGL_TEST_EMBEDDING_MODEL is not set; .ci/run installs it");
        eprintln!("skipping: SGL_TEST_EMBEDDING_MODEL is not set (.ci/install-embedding-model)");
        return;
    }
    let _turn = exclusive().await;
    let options = GridOptions { embeddings: true, ..GridOptions::nodes(1) };
    let mut grid = LocalGrid::start(&env, options).await.expect("a local grid");
    let models = grid.get("/v1/models").await.expect("the models");
    let embedding_model = models["data"]
        .as_array()
        .and_then(|models| models.iter().filter_map(|m| m["id"].as_str()).find(|id| *id != grid.model))
        .expect("the embedding model listed beside the chat model")
        .to_owned();
    let before = grid.balance_micros().await;
    let summary =
        openai_script("embeddings.py", &grid.base_url, &grid.api_key, &[("SGL_E2E_EMBEDDING_MODEL", &embedding_model)])
            .await;
    eprintln!("embeddings.py: {summary}");
    assert_eq!(summary["dimensions"], 384, "{summary}");
    assert_eq!(summary["refusal"]["status"], 400, "{summary}");
    assert_eq!(summary["refusal"]["param"], "dimensions", "{summary}");
    assert!(summary["refusal"]["message"].as_str().is_some_and(|m| m.contains("384-dimensional")), "{summary}");

    // Sealed by the caller with sgl-client: the grid relays what it cannot read, and the client
    // checks the node's signature with the embedding model's hash before opening it.
    let texts = ["the canary is 7f3a".to_owned(), "a second text".to_owned()];
    let sealed = grid.client().embeddings(&embedding_model, &texts).await.expect("sealed, verified embeddings");
    assert_eq!((sealed.vectors.len(), sealed.vectors[0].len()), (2, 384));
    assert!(sealed.verification.verified);
    assert_eq!(sealed.verification.model_sha256.as_deref(), Some(MINILM_SHA256), "signed with the embedding model");
    assert_eq!(sealed.model, embedding_model);

    // Three served requests, each one completed job billed for its input tokens only, at the
    // model's input price; the refused one left no job and cost nothing.
    let providers =
        grid.get(&format!("/v1/providers?model={embedding_model}&job_type=embedding")).await.expect("the providers");
    let input_per_m = providers["providers"][0]["input_per_m"].as_f64().expect("the node's input price");
    let jobs = grid.wait_jobs_finished().await;
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let usage = [&summary["prompt_tokens"], &summary["float_prompt_tokens"]].map(|tokens| tokens.as_i64().unwrap());
    let usage = usage.into_iter().chain([sealed.usage.prompt_tokens as i64]);
    for (job, tokens) in jobs.iter().zip(usage) {
        assert_eq!(
            (job.status.as_str(), job.prompt_tokens, job.completion_tokens),
            ("completed", Some(tokens), Some(0))
        );
        // USD per 1M tokens is micro-USD per token: the grid bills it in pico-dollars, rounded up.
        let pico = (input_per_m * 1e6).round() as i64 * tokens;
        assert_eq!(job.billed_micros, Some((pico + 999_999) / 1_000_000), "{job:?}");
    }
    let billed: i64 = jobs.iter().filter_map(|job| job.billed_micros).sum();
    assert!(billed > 0);
    assert_eq!(grid.balance_micros().await, before - billed, "the caller paid exactly what was billed");
    let log = std::fs::read_to_string(grid.node_dir(0).join("sgl.log")).expect("the node's log");
    assert!(!log.contains("guitar") && !log.contains("7f3a"), "the node logged a caller's text:\n{log}");
    let grid_log = grid.grid_log();
    assert!(!grid_log.contains("7f3a"), "the grid logged a sealed text:\n{grid_log}");
    grid.stop().await;
}
