//! Chat completions end to end inside one process: a caller (sealed, or plain OpenAI JSON), the
//! grid, and scripted nodes that open the sealed job, answer, sign, and post back.

use axum::http::StatusCode;
use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_grid_store::ledger::Account;
use sgl_protocol::api::caller::{ReserveResponse, SealedChatResponse, SealedStreamEvent};
use sgl_protocol::api::inference::{InferenceRequest, JobResult, Usage};
use sgl_protocol::api::openai::ChatMessage;
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::{EncryptionPublicKey, NodeIdentity, NodePublicKey};
use sgl_protocol::seal::{SealVersion, seal_request};

use crate::harness::{Grid, MODEL_SHA256, assert_error, assert_signed_by_reserved_node, sse_events};

fn plain_request(stream: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16, "temperature": 0.0,
           "stream": stream, "stream_options": {"include_usage": true}})
}

#[tokio::test]
async fn sealed_completion_is_relayed_unread_and_verifiable_by_the_caller() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 1).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let (_, reservation) =
        grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "m"}))).await;
    let reservation: ReserveResponse = serde_json::from_value(reservation).unwrap();
    let node_key = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let secret_prompt = InferenceRequest {
        messages: Some(vec![ChatMessage::text("user", "the canary is 7f3a")]),
        max_tokens: Some(8),
        ..InferenceRequest::default()
    };
    let (enc, opener) =
        seal_request(&node_key, SealVersion::V2, &serde_json::to_vec(&secret_prompt).unwrap(), &mut OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "max_tokens": 8, "enc": enc});
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, body);

    let pending = node.wait_job(&grid, "m").await;
    // The escrow covers the caller's 8 tokens, and the node is told not to generate more.
    assert_eq!(pending.input_payload.as_ref().unwrap()["max_tokens"], 8);
    let held = 1_000_000 - grid.credits(key_id).await;
    assert!(held > 0 && held < 20, "a hold for 8 completion tokens, not 8192: {held}");
    let job = node.open(&pending);
    assert_eq!(job.request, secret_prompt);
    let usage = Usage::new(12, 8);
    assert_eq!(node.complete(&grid, &job, "a sealed answer", usage).await.0, StatusCode::OK);

    let (status, response) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{response}");
    let response: SealedChatResponse = serde_json::from_value(response).unwrap();
    let answer: JobResult = serde_json::from_slice(&opener.open(&response.sealed_result).unwrap()).unwrap();
    assert_eq!((answer.content.as_str(), response.usage), ("a sealed answer", Some(usage)));
    // What sgl-client will do: check the node's own signature over result, usage and model.
    assert_signed_by_reserved_node(&reservation, &response);
    assert_eq!(response.model_sha256.as_deref(), Some(MODEL_SHA256));

    // 12 prompt tokens at $0.10/M and 8 completion tokens at $0.40/M: 1.2 + 3.2 = 4.4 → 5 micro-dollars.
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 5);
    assert_eq!(grid.store.balance(&Account::Earnings { wallet: "0xop".into() }).await.unwrap(), 4);
    grid.assert_ledger_balanced().await;
    // The reservation was single-use.
    let again = json!({"reservation_token": reservation.reservation_token, "enc": enc});
    assert_error(
        grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(again)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}

#[tokio::test]
async fn sealed_stream_relays_signed_chunks_in_order_then_final() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 2).await;
    node.beat(&grid, &["m"]).await;
    let (_, api_key) = grid.api_key(1.0).await;
    let (_, reservation) =
        grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "m"}))).await;
    let reservation: ReserveResponse = serde_json::from_value(reservation).unwrap();
    let node_key = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let prompt = InferenceRequest {
        messages: Some(vec![ChatMessage::text("user", "stream please")]),
        stream: Some(true),
        nonce: Some("caller-nonce".into()),
        ..InferenceRequest::default()
    };
    let (enc, opener) =
        seal_request(&node_key, SealVersion::V2, &serde_json::to_vec(&prompt).unwrap(), &mut OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "stream": true, "max_tokens": 8, "enc": enc});
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, body);
    let job = node.open(&node.wait_job(&grid, "m").await);
    assert!(job.stream, "the relay marks the job as streamed");
    let replies = node.stream(&grid, &job, &["Hel", "lo"], Usage::new(3, 2)).await;
    assert!(replies.iter().all(|(status, _)| *status == StatusCode::OK), "{replies:?}");

    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let events = sse_events(body.as_str().unwrap());
    assert_eq!(events.len(), 3, "{events:?}");
    let mut stream = opener.stream("caller-nonce").unwrap();
    let key = NodePublicKey::from_b58(reservation.node_ed25519_pubkey.as_deref().unwrap()).unwrap();
    let mut text = Vec::new();
    for (_, data) in &events {
        let event: SealedStreamEvent = serde_json::from_str(data).unwrap();
        let claims = ResultClaims {
            job_id: event.job_id.as_ref().unwrap(),
            node_id: event.node_id.as_ref().unwrap(),
            kind: ResultKind::Stream { seq: event.seq, is_final: event.is_final },
            payload: event.ct.as_bytes(),
            usage: event.usage.as_ref(),
            model_sha256: event.model_sha256.as_deref(),
        };
        claims.verify(&key, EnvelopeVersion::V2, event.sig.as_deref().unwrap(), None).unwrap();
        text.extend_from_slice(&stream.open_chunk(event.seq, &event.ct, event.eph.as_deref(), event.is_final).unwrap());
    }
    stream.finish().unwrap();
    assert_eq!(text, b"Hello");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn plain_openai_request_is_sealed_by_the_grid_and_answered_in_openai_shape() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 3).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain_request(false));
    let job = node.open(&node.wait_job(&grid, "m").await);
    assert_eq!(job.request.messages.as_ref().unwrap()[0], ChatMessage::text("user", "hello there"));
    assert_eq!((job.request.max_tokens, job.request.temperature), (Some(16), Some(0.0)));
    node.complete(&grid, &job, "General Kenobi", Usage::new(5, 3)).await;
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "m");
    assert_eq!(body["choices"][0]["message"], json!({"role": "assistant", "content": "General Kenobi"}));
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"], json!({"completion_tokens": 3, "prompt_tokens": 5, "total_tokens": 8}));
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(grid.credits(key_id).await < 1_000_000);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn plain_stream_gives_openai_chunks_usage_and_done() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 4).await;
    node.beat(&grid, &["m"]).await;
    let (_, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain_request(true));
    let job = node.open(&node.wait_job(&grid, "m").await);
    assert_eq!(job.request.stream, Some(true));
    node.stream(&grid, &job, &["Gen", "eral"], Usage::new(5, 16)).await;
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let events = sse_events(body.as_str().unwrap());
    let data: Vec<&str> = events.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": "Gen"}));
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "eral"}));
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "length", "16 of 16 tokens");
    assert_eq!(chunks[3]["usage"]["total_tokens"], 21);
    assert_eq!(chunks[3]["choices"], json!([]));
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
}

#[tokio::test]
async fn a_node_failing_before_output_is_replaced_and_the_caller_billed_once() {
    let grid = Grid::new().await;
    let first = grid.node("0xa", 5).await;
    let second = grid.node("0xb", 6).await;
    first.beat(&grid, &["m"]).await;
    second.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain_request(false));
    // Whichever node got it first fails it; the other answers.
    let (failing, answering) = loop {
        let (_, beat) = first.heartbeat(&grid, first.heartbeat_with(&["m"], &[])).await;
        if beat["pending_jobs"].as_array().is_some_and(|j| !j.is_empty()) {
            break ((&first, beat), &second);
        }
        let (_, beat) = second.heartbeat(&grid, second.heartbeat_with(&["m"], &[])).await;
        if beat["pending_jobs"].as_array().is_some_and(|j| !j.is_empty()) {
            break ((&second, beat), &first);
        }
        tokio::task::yield_now().await;
    };
    let (failing_node, beat) = failing;
    let job_id = beat["pending_jobs"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = failing_node
        .call(&grid, "POST", &format!("/grid/jobs/{job_id}/fail"), Some(json!({"reason": "engine crashed"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let job = answering.open(&answering.wait_job(&grid, "m").await);
    answering.complete(&grid, &job, "second time lucky", Usage::new(5, 3)).await;
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "second time lucky");
    // Billed once: the failed attempt released everything.
    let expected = sgl_grid::service::pricing::cost_micros(
        sgl_grid::config::ReferencePrice { input_per_m: 0.1, output_per_m: 0.4 },
        5,
        3,
    );
    assert_eq!(grid.credits(key_id).await, 1_000_000 - expected);
    let failed = grid.store.job(&job_id).await.unwrap().unwrap();
    assert_eq!((failed.billed_micros, failed.error.is_some()), (None, true));
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_forged_result_signature_is_refused_recorded_and_not_billed() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 7).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let mut request = plain_request(false);
    request["model"] = json!("m");
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, request);
    let job = node.open(&node.wait_job(&grid, "m").await);
    let forger = NodeIdentity::from_seed(&[99; 32]);
    let refused = node.complete_as(&grid, &job, "forged", Usage::new(1, 1), &forger).await;
    assert_error(refused, StatusCode::BAD_REQUEST, "invalid_signature");
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "upstream_failed");
    assert_eq!(grid.store.tamper_count(&node.node_id.to_string()).await.unwrap(), 1);
    assert_eq!(grid.credits(key_id).await, 1_000_000);
    // The operator is slashed 5 % of its 50,000 SGL, with the evidence kept.
    let (_, stake) = grid.call("GET", "/grid/operators/0xop/stake", &[], None).await;
    assert_eq!(stake["staked_micros"], 47_500_000_000i64, "{stake}");
    assert_eq!(stake["slashes"][0]["reason"], "bad_result_signature", "{stake}");
    assert_eq!(stake["slashes"][0]["amount_micros"], 2_500_000_000i64, "{stake}");
    assert_eq!(stake["slashes"][0]["job_id"], job.id.to_string(), "{stake}");
    assert_eq!(stake["state"], "below_minimum", "below the minimum, its nodes get no work: {stake}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn callers_need_a_key_credits_and_a_valid_request() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 8).await;
    node.beat(&grid, &["m"]).await;
    // Without a key the request is priced for x402: the reference price (0.10 / 0.40 USD per
    // 1M tokens) of a 95-byte prompt bound and 16 tokens is 15.9 micro-dollars, rounded up.
    let (status, unpaid) = grid.call("POST", "/v1/chat/completions", &[], Some(plain_request(false))).await;
    assert_eq!((status, unpaid["x402Version"].as_u64()), (StatusCode::PAYMENT_REQUIRED, Some(1)), "{unpaid}");
    assert_eq!(unpaid["accepts"][0]["maxAmountRequired"], "16", "{unpaid}");
    let keyed_only = Grid::with_config("[x402]\nenabled = false\n").await;
    let node_two = keyed_only.node("0xop", 8).await;
    node_two.beat(&keyed_only, &["m"]).await;
    assert_error(
        keyed_only.call("POST", "/v1/chat/completions", &[], Some(plain_request(false))).await,
        StatusCode::PAYMENT_REQUIRED,
        "payment_required",
    );
    let bearer = [("Authorization", "Bearer x402c_unknown")];
    assert_error(
        grid.call("POST", "/v1/chat/completions", &bearer, Some(plain_request(false))).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    );
    let (key_id, api_key) = grid.api_key(0.000001).await;
    let headers = [("X-API-Key", api_key.as_str())];
    let poor = grid.call("POST", "/v1/chat/completions", &headers, Some(plain_request(false))).await;
    assert_error(poor, StatusCode::PAYMENT_REQUIRED, "insufficient_credits");
    assert_eq!(grid.credits(key_id).await, 1, "nothing was held");
    let (_, rich) = grid.api_key(10.0).await;
    let headers = [("Authorization", &*format!("Bearer {rich}"))];
    let mut tools = plain_request(false);
    tools["tools"] = json!([{"type": "function"}]);
    let refused = grid.call("POST", "/v1/chat/completions", &headers, Some(tools)).await;
    assert_eq!((refused.0, refused.1["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("tools")));
    for (field, value) in
        [("messages", json!([])), ("n", json!(2)), ("temperature", json!(3.0)), ("max_tokens", json!(0))]
    {
        let mut bad = plain_request(false);
        bad[field] = value;
        let (status, body) = grid.call("POST", "/v1/chat/completions", &headers, Some(bad)).await;
        assert_eq!((status, body["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{field}");
    }
    let mut unknown_model = plain_request(false);
    unknown_model["model"] = json!("ghost");
    assert_error(
        grid.call("POST", "/v1/chat/completions", &headers, Some(unknown_model)).await,
        StatusCode::NOT_FOUND,
        "model_not_found",
    );
    assert_error(
        grid.call("POST", "/v1/chat/completions", &headers, Some(json!("[1,2]"))).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let unknown_reservation = json!({"reservation_token": "rsv_nope", "enc": {"ciphertext": "x", "client_ephemeral_pubkey": "e", "client_response_pubkey": "r"}});
    assert_error(
        grid.call("POST", "/v1/chat/completions", &headers, Some(unknown_reservation)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn ghost_jobs_and_stuck_jobs_are_failed_and_released() {
    let grid = Grid::with_config("job_timeout_secs = 30").await;
    let node = grid.node("0xop", 9).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain_request(false));
    let job = node.wait_job(&grid, "m").await;
    // The node says it runs the job, then stops listing it: a ghost.
    node.heartbeat(&grid, node.heartbeat_with(&["m"], &[job.id.as_str()])).await;
    grid.advance_ms(11_000);
    let (_, beat) = node.heartbeat(&grid, node.heartbeat_with(&["m"], &[])).await;
    assert_eq!(beat["pending_jobs"], json!([]), "a ghost is not re-delivered");
    let (status, body) = caller.await.unwrap();
    // The only node failed it, so there is no one to retry on.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no longer reports"), "{body}");
    assert_eq!(grid.credits(key_id).await, 1_000_000);

    // A job nobody finishes is reaped after the job timeout.
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain_request(false));
    node.wait_job(&grid, "m").await;
    assert!(grid.credits(key_id).await < 1_000_000, "held while running");
    // Past the job timeout the node is silent too, so the caller's retry finds no node.
    grid.advance_ms(31_000);
    assert_eq!(grid.reap().await, 1);
    let (status, _) = caller.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(grid.credits(key_id).await, 1_000_000);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn jobs_on_a_node_that_goes_silent_move_to_another_node() {
    let grid = Grid::new().await;
    let silent = grid.node("0xa", 20).await;
    let alive = grid.node("0xb", 21).await;
    let (_, api_key) = grid.api_key(1.0).await;
    // Only the soon-silent node serves when the request arrives.
    silent.beat(&grid, &["m"]).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain_request(false));
    while grid.reap().await == 0 && !caller.is_finished() {
        // The silent node never heartbeats again; the live one does, and time passes.
        grid.advance_ms(4_000);
        alive.beat(&grid, &["m"]).await;
        tokio::task::yield_now().await;
    }
    let job = alive.open(&alive.wait_job(&grid, "m").await);
    alive.complete(&grid, &job, "from the live node", Usage::new(2, 2)).await;
    let (status, body) = caller.await.unwrap();
    assert_eq!(
        (status, body["choices"][0]["message"]["content"].as_str()),
        (StatusCode::OK, Some("from the live node")),
        "{body}"
    );
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn seed_nodes_signing_v1_envelopes_are_accepted() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 22).await;
    node.beat(&grid, &["m"]).await;
    let (_, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain_request(false));
    let job = node.open(&node.wait_job(&grid, "m").await);
    let usage = Usage::new(4, 4);
    let result = JobResult { content: "from a seed node".into(), model: "m".into(), usage };
    let sealed = job.reply.seal(result.to_compact_json().as_bytes(), &mut OsRng).unwrap();
    let claims = ResultClaims {
        job_id: &job.id,
        node_id: &node.node_id,
        kind: ResultKind::Sealed,
        payload: sealed.ciphertext.as_bytes(),
        usage: None,
        model_sha256: None,
    };
    let body = json!({
        "sealed_result": sealed, "usage": usage,
        "result_envelope_signature": claims.sign(&node.identity, EnvelopeVersion::V1).unwrap(),
        "result_envelope_version": "v1",
    });
    let (status, reply) = node.call(&grid, "POST", &format!("/grid/jobs/{}/complete", job.id), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, answer) = caller.await.unwrap();
    assert_eq!(
        (status, answer["choices"][0]["message"]["content"].as_str()),
        (StatusCode::OK, Some("from a seed node"))
    );
    let unknown_version =
        json!({"sealed_result": sealed, "result_envelope_signature": "x", "result_envelope_version": "v9"});
    let (status, _) = node.call(&grid, "POST", &format!("/grid/jobs/{}/complete", job.id), Some(unknown_version)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the job already finished");
}

#[tokio::test]
async fn prompts_longer_than_every_context_are_refused_before_dispatch() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 10).await;
    let mut beat = node.heartbeat_with(&["m"], &[]);
    beat["capabilities"]["context_size"] = json!(512);
    node.heartbeat(&grid, beat).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let mut long = plain_request(false);
    long["messages"][0]["content"] = json!("word ".repeat(1000));
    let (status, body) = grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(long)).await;
    assert_eq!((status, body["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("messages")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("largest: 512"), "{body}");
    assert_eq!(grid.credits(key_id).await, 1_000_000);
}

#[tokio::test]
async fn content_parts_reach_the_node_as_one_string_and_other_parts_are_refused_by_name() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 41).await;
    node.beat(&grid, &["m"]).await;
    let (_, api_key) = grid.api_key(1.0).await;
    let parts = json!([{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": parts}], "max_tokens": 4});
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, body);
    let job = node.open(&node.wait_job(&grid, "m").await);
    // A seed node reads `content` as a string only: it gets the text parts joined.
    let messages = job.request.messages.clone().unwrap();
    assert_eq!(serde_json::to_value(&messages).unwrap(), json!([{"role": "user", "content": "hello\nthere"}]));
    assert_eq!(node.complete(&grid, &job, "hi", Usage::new(3, 1)).await.0, StatusCode::OK);
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);

    for (part, kind) in [
        (json!({"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}), "image_url"),
        (json!({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}), "non-text"),
    ] {
        let content = json!([{"type": "text", "text": "look"}, part]);
        let body = json!({"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": content}]});
        let (status, error) = grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["error"]["param"], "messages[1].content[1]", "{error}");
        assert!(error["error"]["message"].as_str().unwrap().starts_with(kind), "{error}");
    }
    // Nothing was dispatched for the refused requests, and the node was never blamed.
    let (_, status) = node.call(&grid, "GET", &format!("/grid/nodes/{}", node.node_id), None).await;
    assert_eq!(status["jobs_failed"].as_u64(), Some(0), "{status}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn max_tokens_above_the_limit_and_too_many_stops_are_refused_not_clamped() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 42).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let message = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"model": "m", "messages": message, "max_tokens": 8193}), "max_tokens"),
        (json!({"model": "m", "messages": message, "max_completion_tokens": 100_000}), "max_tokens"),
        (json!({"model": "m", "messages": message, "stop": ["a", "b", "c", "d", "e"]}), "stop"),
    ];
    for (body, param) in cases {
        let (status, error) = grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["error"]["param"], param, "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    }
    // The sealed path holds the caller to the same cap on its cleartext max_tokens.
    let (_, reservation) =
        grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "m"}))).await;
    let node_key = EncryptionPublicKey::from_b58(reservation["node_x25519_pubkey"].as_str().unwrap()).unwrap();
    let (enc, _) = seal_request(&node_key, SealVersion::V2, b"{}", &mut OsRng).unwrap();
    let sealed = json!({"reservation_token": reservation["reservation_token"], "max_tokens": 9000, "enc": enc});
    let (status, error) = grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(sealed)).await;
    assert_eq!((status, &error["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("max_tokens")), "{error}");
    assert_eq!(grid.credits(key_id).await, 1_000_000, "nothing is held for a refused request");
}
