//! Checking embeddings requests and shaping their answers.

use serde_json::json;
use sgl_protocol::api::embeddings::{EmbeddingJobResult, EmbeddingRequest, decode_vector, encode_vector};
use sgl_protocol::api::inference::Usage;

use super::*;

fn minilm() -> EmbeddingModel {
    EmbeddingModel { name: "minilm".into(), dimensions: 4, max_input_tokens: 16, model_sha256: "ab".repeat(32) }
}

fn request(body: serde_json::Value) -> EmbeddingRequest {
    serde_json::from_value(body).unwrap()
}

fn check(body: serde_json::Value) -> Result<EmbeddingJob, EmbeddingError> {
    EmbeddingJob::check(request(body), &[minilm()], |model| model == "gemma")
}

#[test]
fn a_string_or_an_array_of_strings_is_taken_and_bounded_by_its_bytes() {
    let one = check(json!({"model": "minilm", "input": "hello"})).unwrap();
    assert_eq!(one.inputs, ["hello"]);
    assert_eq!(one.format, EncodingFormat::Float);
    assert_eq!(one.token_bound, 5 + 2);
    let two = check(json!({"model": "minilm", "input": ["a", "bc"], "encoding_format": "base64"})).unwrap();
    assert_eq!(two.inputs, ["a", "bc"]);
    assert_eq!(two.format, EncodingFormat::Base64);
    assert_eq!(two.token_bound, 3 + 4);
    let native = check(json!({"model": "minilm", "input": "x", "dimensions": 4}));
    assert!(native.is_ok(), "the model's own width is accepted");
}

#[test]
fn bad_requests_are_refused_by_name() {
    let refused = |body| check(body).unwrap_err();
    assert_eq!(refused(json!({"model": " ", "input": "x"})), EmbeddingError::NoModel);
    assert_eq!(refused(json!({"model": "minilm", "input": [1, 2, 3]})), EmbeddingError::TokenInput);
    assert_eq!(refused(json!({"model": "minilm", "input": [[1], [2]]})), EmbeddingError::TokenInput);
    assert_eq!(refused(json!({"model": "minilm", "input": []})), EmbeddingError::NoInputs);
    assert_eq!(refused(json!({"model": "minilm", "input": ["a", ""]})), EmbeddingError::EmptyInput(1));
    let many: Vec<&str> = vec!["a"; MAX_INPUTS + 1];
    assert_eq!(refused(json!({"model": "minilm", "input": many})), EmbeddingError::TooManyInputs(MAX_INPUTS + 1));
    assert_eq!(
        refused(json!({"model": "minilm", "input": "x", "dimensions": 2})),
        EmbeddingError::Dimensions { model: "minilm".into(), native: 4 }
    );
    assert_eq!(refused(json!({"model": "gemma", "input": "x"})), EmbeddingError::ChatModel("gemma".into()));
    assert_eq!(refused(json!({"model": "nope", "input": "x"})), EmbeddingError::UnknownModel("nope".into()));
    let long = "word ".repeat(20);
    let too_long = refused(json!({"model": "minilm", "input": ["ok", long]}));
    assert_eq!(too_long, EmbeddingError::InputTooLong { index: 1, estimated: 25, model: "minilm".into(), limit: 16 });
    assert!(too_long.to_string().contains("input[1] is about 25 tokens; minilm takes at most 16"), "{too_long}");
}

#[test]
fn answers_keep_input_order_in_either_encoding() {
    let vectors = vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.5, -0.5, 0.25]];
    let result = EmbeddingJobResult {
        data: vectors.iter().map(|v| encode_vector(v)).collect(),
        model: "minilm".into(),
        usage: Usage::new(9, 0),
    };
    let floats = check(json!({"model": "minilm", "input": ["a", "b"]})).unwrap();
    let list = floats.answer(vectors.clone(), result.clone());
    let body = serde_json::to_value(&list).unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "minilm");
    assert_eq!(body["usage"], json!({"prompt_tokens": 9, "total_tokens": 9}));
    assert_eq!(body["data"][1], json!({"object": "embedding", "index": 1, "embedding": [0.0, 0.5, -0.5, 0.25]}));
    let base64 = check(json!({"model": "minilm", "input": ["a", "b"], "encoding_format": "base64"})).unwrap();
    let body = serde_json::to_value(base64.answer(vectors.clone(), result)).unwrap();
    let second = body["data"][1]["embedding"].as_str().unwrap();
    assert_eq!(decode_vector(second).unwrap(), vectors[1], "base64 of little-endian float32, as OpenAI's");
    assert_eq!(second, "AAAAAAAAAD8AAAC/AACAPg==");
}
