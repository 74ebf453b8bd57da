//! `POST /v1/embeddings` inside one process: callers (plain OpenAI JSON, or sealed to a reserved
//! node), the grid, and a scripted node that announces an embedding model, opens the sealed
//! `embedding` job, and answers with sealed, signed vectors.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_protocol::api::caller::{ReserveResponse, SealedChatResponse};
use sgl_protocol::api::embeddings::{EmbeddingJobRequest, EmbeddingJobResult, encode_vector};
use sgl_protocol::api::inference::{JobPayload, Usage};
use sgl_protocol::api::node::{CompleteJobRequest, CompletedResult, HeartbeatResponse, PendingJob, ResultSignature};
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::EncryptionPublicKey;
use sgl_protocol::seal::{ReplySealer, SealVersion, open_request, seal_request};

use crate::harness::{Grid, Node, assert_error, assert_signed_by_reserved_node};

/// The embedding model's hash the scripted node claims.
const EMBED_SHA256: &str = "2ea4e58d0000000000000000000000000000000000000000000000000000000e";

fn announcing(node: &Node, chat: &[&str]) -> Value {
    let mut body = node.heartbeat_body(chat);
    body["embedding_models"] =
        json!([{"name": "minilm", "dimensions": 4, "max_input_tokens": 64, "model_sha256": EMBED_SHA256}]);
    body
}

/// Heartbeats (announcing the embedding model) until the grid hands over a job.
async fn wait_job(node: &Node, grid: &Grid) -> PendingJob {
    for _ in 0..2000 {
        let (status, body) = node.heartbeat(grid, announcing(node, &[])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let response: HeartbeatResponse = serde_json::from_value(body).unwrap();
        if let Some(job) = response.pending_jobs.jobs.into_iter().next() {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("no job was dispatched to the node");
}

/// The job's texts and the key its answer is sealed to.
fn open(node: &Node, job: &PendingJob) -> (Vec<String>, ReplySealer) {
    assert_eq!(job.job_type, "embedding");
    let Some(JobPayload::Sealed { enc, .. }) = job.payload().unwrap() else { panic!("embedding jobs are sealed") };
    let opened = open_request(&node.identity.encryption_secret(), &enc).unwrap();
    let request: EmbeddingJobRequest = serde_json::from_slice(&opened.plaintext).unwrap();
    (request.input, opened.reply)
}

/// Seals, signs and posts the node's answer.
async fn answer(
    node: &Node,
    grid: &Grid,
    job: &PendingJob,
    reply: &ReplySealer,
    vectors: &[Vec<f32>],
    tokens: u64,
) -> (StatusCode, Value) {
    let usage = Usage::new(tokens, 0);
    let result =
        EmbeddingJobResult { data: vectors.iter().map(|v| encode_vector(v)).collect(), model: "minilm".into(), usage };
    let sealed = reply.seal(result.to_compact_json().as_bytes(), &mut OsRng).unwrap();
    let claims = ResultClaims {
        job_id: &job.id,
        node_id: &node.node_id,
        kind: ResultKind::Sealed,
        payload: sealed.ciphertext.as_bytes(),
        usage: Some(&usage),
        model_sha256: Some(EMBED_SHA256),
    };
    let signature = ResultSignature {
        result_envelope_signature: claims.sign(&node.identity, EnvelopeVersion::V2).unwrap(),
        result_envelope_version: "v2".into(),
        model_sha256: Some(EMBED_SHA256.into()),
        proof_of_execution: Some(claims.proof_of_execution()),
    };
    let body =
        CompleteJobRequest { result: CompletedResult::Sealed { sealed_result: sealed }, usage: Some(usage), signature };
    let path = format!("/grid/jobs/{}/complete", job.id);
    node.call(grid, "POST", &path, Some(serde_json::to_value(body).unwrap())).await
}

async fn grid_with_node() -> (Grid, Node) {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 1).await;
    let (status, body) = node.heartbeat(&grid, announcing(&node, &["m"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (grid, node)
}

#[tokio::test]
async fn plain_embeddings_are_sealed_to_the_node_checked_and_billed_per_input_token() {
    let (grid, node) = grid_with_node().await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let (_, models) = grid.call("GET", "/v1/models", &[], None).await;
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["m", "minilm"], "chat and embedding models are both listed");

    let body = json!({"model": "minilm", "input": ["the cat sat", "stocks fell"]});
    let caller = grid.spawn_call("/v1/embeddings", &api_key, body);
    let job = wait_job(&node, &grid).await;
    let (texts, reply) = open(&node, &job);
    assert_eq!(texts, ["the cat sat", "stocks fell"]);
    // Held: the texts' bytes plus two tokens each (11 + 11 + 4 = 26) at $0.10/M, rounded up.
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 3);
    let vectors = [vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.6, 0.8, 0.0]];
    assert_eq!(answer(&node, &grid, &job, &reply, &vectors, 9).await.0, StatusCode::OK);

    let (status, list) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["object"], "list");
    assert_eq!(list["model"], "minilm");
    assert_eq!(list["usage"], json!({"prompt_tokens": 9, "total_tokens": 9}));
    assert_eq!(list["data"][0], json!({"object": "embedding", "index": 0, "embedding": [1.0, 0.0, 0.0, 0.0]}));
    let second: Vec<f32> = serde_json::from_value(list["data"][1]["embedding"].clone()).unwrap();
    assert_eq!(second, vectors[1]);
    // 9 input tokens at $0.10/M: 0.9 → 1 micro-dollar, no output price.
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 1);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn base64_vectors_are_the_little_endian_floats_the_node_signed() {
    let (grid, node) = grid_with_node().await;
    let (_, api_key) = grid.api_key(1.0).await;
    let body = json!({"model": "minilm", "input": "one text", "encoding_format": "base64", "dimensions": 4});
    let caller = grid.spawn_call("/v1/embeddings", &api_key, body);
    let job = wait_job(&node, &grid).await;
    let (_, reply) = open(&node, &job);
    let vector = vec![0.5, -0.5, 0.5, -0.5];
    answer(&node, &grid, &job, &reply, std::slice::from_ref(&vector), 4).await;
    let (status, list) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"][0]["embedding"], encode_vector(&vector));
    assert_eq!(list["data"][0]["embedding"], "AAAAPwAAAL8AAAA/AAAAvw==");
}

#[tokio::test]
async fn requests_the_grid_cannot_serve_are_refused_clearly_and_cost_nothing() {
    let (grid, _node) = grid_with_node().await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let key = [("X-API-Key", api_key.as_str())];
    let refused = |body: Value| grid.call("POST", "/v1/embeddings", &key, Some(body));
    let (status, body) = refused(json!({"model": "minilm", "input": "x", "dimensions": 2})).await;
    assert_error((status, body.clone()), StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(body["error"]["param"], "dimensions");
    assert!(body["error"]["message"].as_str().unwrap().contains("4-dimensional"), "{body}");
    let (status, body) = refused(json!({"model": "minilm", "input": [[1, 2], [3]]})).await;
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("input")), "{body}");
    let (status, body) = refused(json!({"model": "minilm", "input": ["a", ""]})).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("input[1] is empty"), "{status} {body}");
    let (status, body) = refused(json!({"model": "minilm", "input": "word ".repeat(80)})).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("at most 64 tokens"), "{status} {body}");
    let (status, body) = refused(json!({"model": "m", "input": "x"})).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("m is a chat model"), "{status} {body}");
    assert_error(refused(json!({"model": "nope", "input": "x"})).await, StatusCode::NOT_FOUND, "model_not_found");
    let (status, body) = refused(json!({"model": "minilm", "input": "x", "encoding_format": "int8"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(grid.credits(key_id).await, 1_000_000, "nothing was held or billed");
}

#[tokio::test]
async fn an_answer_with_the_wrong_vectors_is_refused_and_not_billed() {
    let (grid, node) = grid_with_node().await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    // One vector for two inputs: unreadable, recorded as tampering, not billed.
    let caller = grid.spawn_call("/v1/embeddings", &api_key, json!({"model": "minilm", "input": ["a", "b"]}));
    let job = wait_job(&node, &grid).await;
    let (_, reply) = open(&node, &job);
    let (status, body) = answer(&node, &grid, &job, &reply, &[vec![1.0, 0.0, 0.0, 0.0]], 4).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("1 vectors for 2 inputs"), "{body}");
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(grid.credits(key_id).await, 1_000_000);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn an_input_the_nodes_model_rejects_is_the_callers_400_and_not_the_nodes_fault() {
    let (grid, node) = grid_with_node().await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/embeddings", &api_key, json!({"model": "minilm", "input": "long"}));
    let job = wait_job(&node, &grid).await;
    let reason = "input 0 is 70 tokens, more than the model's limit of 64";
    let body = json!({"reason": reason, "code": "input_rejected"});
    let (status, _) = node.call(&grid, "POST", &format!("/grid/jobs/{}/fail", job.id), Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = caller.await.unwrap();
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("input")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(reason), "{body}");
    assert_eq!(grid.credits(key_id).await, 1_000_000);
    let record = grid.store.node(&node.node_id.to_string()).await.unwrap().unwrap();
    assert_eq!(record.jobs_failed, 0, "an input the model rejects is not counted against the node");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn sealed_embeddings_are_relayed_unread_and_verifiable_by_the_caller() {
    let (grid, node) = grid_with_node().await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let key = [("X-API-Key", api_key.as_str())];
    let chat_reservation = json!({"model": "minilm"});
    let (status, _) = grid.call("POST", "/v1/reserve", &key, Some(chat_reservation)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "minilm is no chat model");
    let (status, reservation) =
        grid.call("POST", "/v1/reserve", &key, Some(json!({"model": "minilm", "job_type": "embedding"}))).await;
    assert_eq!(status, StatusCode::OK, "{reservation}");
    let reservation: ReserveResponse = serde_json::from_value(reservation).unwrap();
    assert_eq!(reservation.model_sha256.as_deref(), Some(EMBED_SHA256), "the hash the node signs with");
    let node_key = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let texts = EmbeddingJobRequest { input: vec!["the secret is 7f3a".into()] };
    let (enc, opener) =
        seal_request(&node_key, SealVersion::V2, &serde_json::to_vec(&texts).unwrap(), &mut OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "enc": enc});
    let caller = grid.spawn_call("/v1/embeddings", &api_key, body);

    let job = wait_job(&node, &grid).await;
    let (opened, reply) = open(&node, &job);
    assert_eq!(opened, texts.input);
    let vector = vec![0.0, 0.0, 1.0, 0.0];
    assert_eq!(answer(&node, &grid, &job, &reply, std::slice::from_ref(&vector), 8).await.0, StatusCode::OK);
    let (status, response) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{response}");
    let response: SealedChatResponse = serde_json::from_value(response).unwrap();
    let result: EmbeddingJobResult = serde_json::from_slice(&opener.open(&response.sealed_result).unwrap()).unwrap();
    assert_eq!(result.vectors(4).unwrap(), [vector]);
    assert_signed_by_reserved_node(&reservation, &response);
    assert_eq!(response.model_sha256.as_deref(), Some(EMBED_SHA256));
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 1, "8 input tokens at $0.10/M, rounded up");

    // An embedding reservation is no chat reservation.
    let (_, reservation) =
        grid.call("POST", "/v1/reserve", &key, Some(json!({"model": "minilm", "job_type": "embedding"}))).await;
    let body = json!({"reservation_token": reservation["reservation_token"], "enc": enc});
    let (status, body) = grid.call("POST", "/v1/chat/completions", &key, Some(body)).await;
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("reservation_token")), "{body}");
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 1);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_keyless_request_is_quoted_its_price() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 1).await;
    node.heartbeat(&grid, announcing(&node, &[])).await;
    let body = json!({"model": "minilm", "input": "x".repeat(200)});
    let (status, headers, quote) = grid.call_full("POST", "/v1/embeddings", &[], Some(body)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{quote}");
    let required = headers.get("payment-required").unwrap().to_str().unwrap();
    let required: Value = serde_json::from_slice(&STANDARD.decode(required).unwrap()).unwrap();
    // 202 tokens at most, at $0.10/M: 20.2 → 21 micro-dollars (USDC has 6 decimals).
    assert_eq!(required["accepts"][0]["amount"], "21", "{required}");
}
