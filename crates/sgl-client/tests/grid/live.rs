//! The SDK end to end with a real node and the real model: a reservation whose keybind
//! verifies (and one refused once a field is changed), a sealed chat verified, a sealed stream
//! verified chunk by chunk, and plain chat.

use serde_json::json;
use sgl_client::verify::VerifiedNode;
use sgl_client::{ChatRequest, VerifyError};
use sgl_protocol::api::caller::ReserveResponse;
use sgl_protocol::api::openai::{ChatMessage, StreamOptions};
use sgl_protocol::identity::NodeIdentity;

use crate::{api_key, client, grid, model_path, node_binary, start_node};

const MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_and_plain_chat_with_a_real_node_verify_end_to_end() {
    let (Some(model), Some(binary)) = (model_path(), node_binary()) else { return };
    let grid = grid().await;
    let base = tempfile::tempdir().unwrap();
    let node = start_node(&grid, &binary, &model, &base.path().join("node")).await;
    let key = api_key(&grid, 5.0).await;
    let client = client(&grid, Some(&key));

    // The reservation's keybind verifies; the node advertises the model's hash.
    let reserved = client.reserve("gemma").await.unwrap();
    assert_eq!(reserved.model_sha256(), Some(MODEL_SHA256));
    assert_eq!(reserved.key_version(), 1);

    // A real reserve response with one field changed is refused (seed weakness S1).
    let raw: ReserveResponse = reqwest::Client::new()
        .post(format!("{}/v1/reserve", grid.url))
        .header("X-API-Key", &key)
        .json(&json!({"model": "gemma"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    VerifiedNode::from_reservation("gemma", &raw).unwrap();
    let coordinator_key = NodeIdentity::from_seed(&[9; 32]).encryption_secret().public_key().to_b58();
    let swapped = ReserveResponse { node_x25519_pubkey: Some(coordinator_key), ..raw.clone() };
    assert_eq!(VerifiedNode::from_reservation("gemma", &swapped).unwrap_err(), VerifyError::BadKeybind);
    let unbound = ReserveResponse { encryption_public_key_signature: None, ..raw };
    assert!(matches!(VerifiedNode::from_reservation("gemma", &unbound), Err(VerifyError::MissingKeybind(_))));

    // Sealed chat on the reserved node: verified signature over usage and model hash.
    let request = ChatRequest {
        max_tokens: Some(6),
        temperature: Some(0.0),
        ..ChatRequest::new("gemma", vec![ChatMessage::text("user", "The capital of France is")])
    };
    let node_id = reserved.node_id();
    let answer = client.chat_with_node(reserved, &request).await.unwrap();
    assert!(answer.verification.verified);
    assert_eq!(answer.verification.node_id, node_id);
    assert_eq!(answer.verification.model_sha256.as_deref(), Some(MODEL_SHA256));
    assert_eq!(answer.verification.envelope_version, "v2");
    let usage = answer.usage().unwrap();
    assert!(usage.prompt_tokens > 5 && (1..=6).contains(&usage.completion_tokens), "{usage:?}");
    assert!(!answer.content().is_empty());
    assert_eq!(answer.completion.id, format!("chatcmpl-{}", answer.verification.job_id));

    // The same through `chat`, which reserves by itself.
    let again = client.chat(&request).await.unwrap();
    assert_eq!(again.content(), answer.content(), "greedy decoding is deterministic");

    // A sealed stream: several verified deltas, then the signed usage.
    let request = ChatRequest {
        max_tokens: Some(24),
        temperature: Some(0.0),
        ..ChatRequest::new("gemma", vec![ChatMessage::text("user", "Count: one, two, three,")])
    };
    let mut stream = client.chat_stream(&request).await.unwrap();
    let mut deltas = Vec::new();
    while let Some(delta) = stream.next_delta().await.unwrap() {
        deltas.push(delta);
    }
    assert!(deltas.len() >= 2, "expected several deltas: {deltas:?}");
    let end = stream.end().unwrap();
    assert!(end.verification.verified && end.verification.node_id == node_id);
    assert_eq!(end.verification.model_sha256.as_deref(), Some(MODEL_SHA256));
    assert!(end.usage.completion_tokens > 0 && end.usage.completion_tokens <= 24, "{:?}", end.usage);
    assert!(stream.next_delta().await.unwrap().is_none(), "nothing after the final chunk");

    // Plain chat, whole and streamed.
    let plain = ChatRequest {
        max_tokens: Some(5),
        temperature: Some(0.0),
        ..ChatRequest::new("gemma", vec![ChatMessage::text("user", "The capital of France is")])
    };
    let completion = client.chat_plain(&plain.to_openai(false)).await.unwrap();
    let text = completion.choices[0].message.content.clone().unwrap();
    assert!(!text.is_empty());
    assert_eq!(completion.usage.unwrap().prompt_tokens, 14);
    let openai = sgl_protocol::api::openai::ChatCompletionRequest {
        stream_options: Some(StreamOptions { include_usage: true }),
        ..plain.to_openai(true)
    };
    let mut stream = client.chat_plain_stream(&openai).await.unwrap();
    let mut streamed = String::new();
    while let Some(delta) = stream.next_delta().await.unwrap() {
        streamed.push_str(&delta);
    }
    assert_eq!(streamed, text, "the stream carries the same greedy answer");
    assert_eq!(stream.usage().unwrap().prompt_tokens, 14);

    // Every sealed answer was billed from the signed usage only: the credits went down.
    let left = client.credits_balance().await.unwrap().balance_micros;
    assert!(left < 5_000_000, "{left}");
    drop(node);
}
