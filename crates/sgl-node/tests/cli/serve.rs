//! `sgl start` with the real Gemma 3 270M model against an in-process grid: a sealed job, a
//! sealed stream, a plain job, a job failed for bad input, off-grid and on-grid, prices within
//! the band, status, and a clean stop. The caller's side is done by hand here (the SDK comes
//! with issue 5): reserve, seal, open, and verify the node's signature on every reply.

use std::path::Path;
use std::time::{Duration, Instant};

use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_grid::admin::{AdminCommand, run};
use sgl_protocol::api::caller::{ReserveResponse, SealedChatResponse, SealedStreamEvent};
use sgl_protocol::api::inference::{InferenceRequest, JobResult};
use sgl_protocol::api::openai::ChatMessage;
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::{EncryptionPublicKey, NodePublicKey};
use sgl_protocol::seal::{ReplyOpener, SealVersion, seal_request};

use sgl_test_support::{Grid, MODEL_SHA256, NodeProcess, llama_server, test_model};

use crate::{args, grid, sgl};

async fn http(method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = if method == "GET" { client.get(url) } else { client.post(url) };
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn reserve(grid: &Grid, key: &str) -> ReserveResponse {
    let (status, body) =
        http("POST", &format!("{}/v1/reserve", grid.url), Some(key), Some(json!({"model": "gemma"}))).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Reserves a node, seals a greedy chat to it, posts it, opens the reply and verifies the
/// node's v2 signature over it, its usage, model hash and proof of execution.
async fn sealed_chat(
    grid: &Grid,
    key: &str,
    node: &NodeProcess,
    prompt: &str,
    max_tokens: u64,
) -> (SealedChatResponse, JobResult) {
    let reservation = reserve(grid, key).await;
    let node_x25519 = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let node_ed25519 = NodePublicKey::from_b58(reservation.node_ed25519_pubkey.as_deref().unwrap()).unwrap();
    let request = InferenceRequest {
        messages: Some(vec![ChatMessage::text("user", prompt)]),
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..InferenceRequest::default()
    };
    let (enc, opener) =
        seal_request(&node_x25519, SealVersion::V2, &serde_json::to_vec(&request).unwrap(), &mut OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "max_tokens": max_tokens, "enc": enc});
    let (status, text) = http("POST", &format!("{}/v1/chat/completions", grid.url), Some(key), Some(body)).await;
    assert_eq!(status, 200, "{text}\n{}", node.read_log());
    let response: SealedChatResponse = serde_json::from_str(&text).unwrap();
    let result: JobResult = serde_json::from_slice(&opener.open(&response.sealed_result).unwrap()).unwrap();
    let claims = ResultClaims {
        job_id: &response.id,
        node_id: response.node_id.as_ref().unwrap(),
        kind: ResultKind::Sealed,
        payload: response.sealed_result.ciphertext.as_bytes(),
        usage: response.usage.as_ref(),
        model_sha256: response.model_sha256.as_deref(),
    };
    let signature = response.result_envelope_signature.as_deref().unwrap();
    claims.verify(&node_ed25519, EnvelopeVersion::V2, signature, response.proof_of_execution.as_deref()).unwrap();
    (response, result)
}

/// A reserved, sealed, greedy stream request for `prompt`: the body to post and its opener.
async fn sealed_stream(grid: &Grid, key: &str, prompt: &str, max_tokens: u64, nonce: &str) -> (Value, ReplyOpener) {
    let reservation = reserve(grid, key).await;
    let node_x25519 = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let request = InferenceRequest {
        messages: Some(vec![ChatMessage::text("user", prompt)]),
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        stream: Some(true),
        nonce: Some(nonce.into()),
        ..InferenceRequest::default()
    };
    let (enc, opener) =
        seal_request(&node_x25519, SealVersion::V2, &serde_json::to_vec(&request).unwrap(), &mut OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "max_tokens": max_tokens, "stream": true, "enc": enc});
    (body, opener)
}

fn sse_data(body: &str) -> Vec<String> {
    body.lines().filter_map(|line| line.strip_prefix("data:")).map(|d| d.trim().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_sealed_streamed_and_plain_jobs_with_the_real_model() {
    let Some(model) = test_model() else { return };
    let grid = grid().await;
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("node");
    let mut node = NodeProcess::start(&grid, Path::new(env!("CARGO_BIN_EXE_sgl")), &model, &dir, &[]).await;
    let key = run(&grid.store, AdminCommand::ApiKeyCreate { credits_usd: 5.0, label: "t".into(), wallet: None }, 0)
        .await
        .unwrap()
        .json["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let canary = format!("canary-{:x}", rand_core::RngCore::next_u64(&mut OsRng));

    // A sealed job: opened only by the caller, signed v2 over usage and the model's hash.
    let (response, result) = sealed_chat(&grid, &key, &node, &format!("The capital of France is {canary}"), 6).await;
    assert_eq!(result.model, "gemma");
    assert_eq!(response.usage, Some(result.usage));
    assert!(result.usage.prompt_tokens > 10 && (1..=6).contains(&result.usage.completion_tokens), "{result:?}");
    assert_eq!(response.model_sha256.as_deref(), Some(MODEL_SHA256));
    let reservation = reserve(&grid, &key).await;
    let node_x25519 = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let node_ed25519 = NodePublicKey::from_b58(reservation.node_ed25519_pubkey.as_deref().unwrap()).unwrap();

    // A sealed stream: several chunks, every one signed, in order, then the final with usage.
    let (body, opener) = sealed_stream(&grid, &key, "Count: one, two, three,", 24, "nonce-1").await;
    let (status, text) = http("POST", &format!("{}/v1/chat/completions", grid.url), Some(&key), Some(body)).await;
    assert_eq!(status, 200, "{text}");
    let events: Vec<SealedStreamEvent> = sse_data(&text).iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
    assert!(events.len() >= 3, "expected several chunks: {text}");
    // The first token goes out alone and at once (time to first token); later chunks group
    // tokens. Each chunk's usage is the running completion count.
    assert_eq!(events[0].usage.map(|u| u.completion_tokens), Some(1), "{text}");
    assert!(!events[0].is_final);
    let mut stream = opener.stream("nonce-1").unwrap();
    let mut streamed = Vec::new();
    for event in &events {
        let claims = ResultClaims {
            job_id: event.job_id.as_ref().unwrap(),
            node_id: event.node_id.as_ref().unwrap(),
            kind: ResultKind::Stream { seq: event.seq, is_final: event.is_final },
            payload: event.ct.as_bytes(),
            usage: event.usage.as_ref(),
            model_sha256: event.model_sha256.as_deref(),
        };
        claims.verify(&node_ed25519, EnvelopeVersion::V2, event.sig.as_deref().unwrap(), None).unwrap();
        streamed
            .extend_from_slice(&stream.open_chunk(event.seq, &event.ct, event.eph.as_deref(), event.is_final).unwrap());
    }
    stream.finish().unwrap();
    let last = events.last().unwrap();
    assert!(last.is_final && last.usage.unwrap().completion_tokens > 0);
    assert!(!streamed.is_empty());

    // A plain OpenAI request (sealed to the node by the grid), greedy: the same answer twice.
    let plain = json!({"model": "gemma", "messages": [{"role": "user", "content": "The capital of France is"}], "max_tokens": 5, "temperature": 0});
    let url = format!("{}/v1/chat/completions", grid.url);
    let (status, first) = http("POST", &url, Some(&key), Some(plain.clone())).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = http("POST", &url, Some(&key), Some(plain)).await;
    let first: Value = serde_json::from_str(&first).unwrap();
    let second: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(first["choices"][0]["message"]["content"], second["choices"][0]["message"]["content"]);
    assert_eq!(first["usage"]["prompt_tokens"], 14, "{first}");

    // Two jobs at once on two slots.
    let two = |word: &str| json!({"model": "gemma", "messages": [{"role": "user", "content": word}], "max_tokens": 8});
    let (a, b) = tokio::join!(
        http("POST", &url, Some(&key), Some(two("Alpha"))),
        http("POST", &url, Some(&key), Some(two("Beta")))
    );
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");

    // The caller hangs up mid-stream: the node stops generating and reports what it spent.
    let (body, _) = sealed_stream(&grid, &key, "Write a long story about the sea.", 400, "nonce-2").await;
    let mut response = reqwest::Client::new().post(&url).header("X-API-Key", &key).json(&body).send().await.unwrap();
    let first_chunk = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first_chunk).contains("data:"));
    drop(response);
    let deadline = Instant::now() + Duration::from_secs(60);
    let spent = loop {
        let log = node.read_log();
        if let Some(line) = log.lines().find(|l| l.contains("job done") && l.contains("caller_left=true")) {
            let field = line.split("completion_tokens=").nth(1).unwrap();
            break field.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse::<u64>().unwrap();
        }
        assert!(Instant::now() < deadline, "the node never noticed the caller leaving:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(spent < 400, "generation stopped early, after {spent} tokens");

    // A sealed request that is not a chat request: failed back with a reason, nothing crashes.
    let reservation = reserve(&grid, &key).await;
    let (enc, _) = seal_request(&node_x25519, SealVersion::V2, br#"{"messages": "not a list"}"#, &mut OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "max_tokens": 6, "enc": enc});
    let (status, text) = http("POST", &url, Some(&key), Some(body)).await;
    assert!((400..600).contains(&status) && text.contains("error"), "{status} {text}");
    assert!(node.child.try_wait().unwrap().is_none(), "the node survives bad input");

    // Status: the local state (READY once the last job has released its slot) and the grid's view.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let output = sgl(args(&grid, &dir, &["status", "--json"])).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let status: Value = serde_json::from_slice(&output.stdout).unwrap();
        if status["local"]["state"] == "READY" || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(status["running"], true);
    assert_eq!(status["local"]["state"], "READY", "{status}");
    assert_eq!(status["grid"]["status"], "active");
    assert!(status["grid"]["jobs_completed"].as_u64().unwrap() >= 4, "{status}");
    assert!(status["payout_address"].as_str().unwrap().starts_with("0x"));

    // Earnings moved with the jobs: 80 % of what callers paid, into the operator's wallet.
    let earned = sgl(args(&grid, &dir, &["earnings", "--json"])).await;
    assert!(earned.status.success(), "{}", String::from_utf8_lossy(&earned.stderr));
    let earned: Value = serde_json::from_slice(&earned.stdout).unwrap();
    assert_eq!(earned["wallet"], "0xop");
    assert!(earned["earnings_micros"].as_i64().unwrap() > 0, "{earned}");
    assert!(earned["payout_address"].as_str().unwrap().starts_with("0x"), "{earned}");
    let ledger =
        grid.store.balance(&sgl_grid_store::ledger::Account::Earnings { wallet: "0xop".into() }).await.unwrap();
    assert_eq!(earned["earnings_micros"].as_i64(), Some(ledger));

    // Prices: outside the band is refused with the grid's reason; inside is applied.
    let refused =
        sgl(args(&grid, &dir, &["price", "set", "--model", "gemma", "--input-per-m", "9", "--output-per-m", "0.4"]))
            .await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("band"), "{refused:?}");
    let set = sgl(args(
        &grid,
        &dir,
        &["price", "set", "--model", "gemma", "--input-per-m", "0.2", "--output-per-m", "0.8", "--json"],
    ))
    .await;
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let prices: Value = serde_json::from_slice(&set.stdout).unwrap();
    assert_eq!(prices["prices"][0]["custom"]["inputPerM"], 0.2, "{prices}");

    // Off-grid: no work and the model is withdrawn; on-grid brings it back.
    assert!(sgl(args(&grid, &dir, &["off-grid"])).await.status.success());
    node.wait_for_model(&grid, false).await;
    assert!(sgl(args(&grid, &dir, &["on-grid"])).await.status.success());
    node.wait_for_model(&grid, true).await;

    // A clean stop on SIGTERM; the prompt's canary never reached the node's logs.
    let exit = node.terminate();
    assert!(exit.success(), "{exit:?}\n{}", node.read_log());
    // Its farewell heartbeat withdrew the model at once, not after the grid's offline timeout.
    let (_, models) = http("GET", &format!("{}/v1/models", grid.url), None, None).await;
    assert!(!models.contains("\"gemma\""), "{models}");
    let log = node.read_log();
    assert!(log.contains("state.transition"), "{log}");
    assert!(log.contains("websocket connected") && log.contains("via=\"websocket\""), "jobs arrive by push: {log}");
    assert!(!log.contains(&canary), "the sealed prompt leaked into the node's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_through_a_llama_server_child_and_logs_to_a_rotating_file() {
    let (Some(model), Some(server)) = (test_model(), llama_server()) else { return };
    let grid = grid().await;
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("node");
    let log_file = base.path().join("logs/sgl.log");
    let extra = [
        "--engine",
        "llama-server",
        "--llama-server",
        server.to_str().unwrap(),
        "--chat-template",
        "gemma",
        "--inference-port",
        "0",
        "--log-file",
        log_file.to_str().unwrap(),
    ];
    let mut node = NodeProcess::start(&grid, Path::new(env!("CARGO_BIN_EXE_sgl")), &model, &dir, &extra).await;
    let key = run(&grid.store, AdminCommand::ApiKeyCreate { credits_usd: 1.0, label: "t".into(), wallet: None }, 0)
        .await
        .unwrap()
        .json["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reserve(&grid, &key).await.model_sha256.as_deref(), Some(MODEL_SHA256));
    let (_, result) = sealed_chat(&grid, &key, &node, "The capital of France is", 4).await;
    // The same prompt costs the same tokens as with the in-process engine: billing parity.
    assert_eq!(result.usage.prompt_tokens, 14, "{result:?}");
    assert!((1..=4).contains(&result.usage.completion_tokens));
    let exit = node.terminate();
    assert!(exit.success(), "{exit:?}\n{}", node.read_log());
    // The log file got the same events as stderr, privately.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&log_file).unwrap().permissions().mode() & 0o777, 0o600);
    let logged = std::fs::read_to_string(&log_file).unwrap();
    assert!(logged.contains("job done") && !logged.contains('\u{1b}'), "{logged}");
    assert!(dir.join("llama-server.log").exists(), "llama-server's stderr is drained to a file");
}
