//! Regression tests for the money and protocol edge cases found in review: what a caller pays
//! when modes disagree, when prices move, when a caller leaves early, and when a node
//! misbehaves in ways a signature alone does not catch.

use axum::http::StatusCode;
use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_protocol::api::caller::ReserveResponse;
use sgl_protocol::api::inference::{InferenceRequest, Usage};
use sgl_protocol::api::openai::ChatMessage;
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::EncryptionPublicKey;
use sgl_protocol::seal::{SealVersion, seal_request};

use crate::harness::{Grid, assert_error, post_chunk, sse_events};

async fn reserve(grid: &Grid, api_key: &str) -> ReserveResponse {
    let (status, body) = grid.call("POST", "/v1/reserve", &[("X-API-Key", api_key)], Some(json!({"model": "m"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

fn sealed_body(
    reservation: &ReserveResponse,
    stream: bool,
    max_tokens: u64,
) -> (Value, sgl_protocol::seal::ReplyOpener) {
    let node_key = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let prompt = InferenceRequest {
        messages: Some(vec![ChatMessage::text("user", "hi")]),
        stream: stream.then_some(true),
        nonce: stream.then(|| "n".to_owned()),
        max_tokens: Some(8192),
        ..InferenceRequest::default()
    };
    let (enc, opener) =
        seal_request(&node_key, SealVersion::V2, &serde_json::to_vec(&prompt).unwrap(), &mut OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "max_tokens": max_tokens, "stream": stream, "enc": enc});
    (body, opener)
}

fn plain(stream: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "stream": stream})
}

#[tokio::test]
async fn reservations_belong_to_the_key_that_made_them() {
    let grid = Grid::new().await;
    grid.node("0xop", 70).await.beat(&grid, &["m"]).await;
    let (_, mine) = grid.api_key(1.0).await;
    let (_, theirs) = grid.api_key(1.0).await;
    let reservation = reserve(&grid, &mine).await;
    let (body, _) = sealed_body(&reservation, false, 8);
    let stolen = grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &theirs)], Some(body)).await;
    assert_eq!((stolen.0, stolen.1["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("reservation_token")));
}

#[tokio::test]
async fn sealed_holds_cover_the_cleartext_max_tokens_which_binds_the_node() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 71).await;
    node.beat(&grid, &["m"]).await;
    // Without a cleartext max_tokens the hold covers the largest completion: 8192 output tokens
    // at $0.40/M is 3277 micro-dollars, more than a key with 1000 holds.
    let (key_id, poor) = grid.api_key(0.001).await;
    let reservation = reserve(&grid, &poor).await;
    let (mut body, _) = sealed_body(&reservation, false, 1);
    body.as_object_mut().unwrap().remove("max_tokens");
    let refused = grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &poor)], Some(body)).await;
    assert_error(refused, StatusCode::PAYMENT_REQUIRED, "insufficient_credits");
    assert_eq!(grid.credits(key_id).await, 1000);
    // With max_tokens 1 the hold is one token's worth, and the node is told the cap, which it
    // applies over the sealed request's own 8192 (seed S3: the quote cannot be undercut).
    let reservation = reserve(&grid, &poor).await;
    let (body, _) = sealed_body(&reservation, false, 1);
    let caller = grid.spawn_call("/v1/chat/completions", &poor, body);
    let pending = node.wait_job(&grid, "m").await;
    assert_eq!(pending.input_payload.as_ref().unwrap()["max_tokens"], 1);
    let job = node.open(&pending);
    assert_eq!(job.request.max_tokens, Some(8192), "the sealed request is what the caller sealed");
    node.complete(&grid, &job, "a", Usage::new(2, 1)).await;
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);
    assert_eq!(grid.credits(key_id).await, 1000 - 1);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn the_reserved_price_holds_even_if_the_operator_raises_it() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 72).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let reservation = reserve(&grid, &api_key).await;
    let prices = format!("/grid/nodes/{}/prices", node.node_id);
    node.call(&grid, "POST", &prices, Some(json!({"model": "m", "input_per_m": 0.5, "output_per_m": 2.0}))).await;
    let (body, _) = sealed_body(&reservation, false, 1_000);
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, body);
    let job = node.open(&node.wait_job(&grid, "m").await);
    node.complete(&grid, &job, "ok", Usage::new(10, 1_000)).await;
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);
    // At the reserved $0.10/$0.40 per M: 1 + 400 micro-dollars, not 5 + 2000.
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 401);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_sealed_stream_answered_whole_reaches_the_caller_as_json_and_is_billed_once() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 73).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let reservation = reserve(&grid, &api_key).await;
    let (body, opener) = sealed_body(&reservation, true, 8);
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, body);
    let job = node.open(&node.wait_job(&grid, "m").await);
    node.complete(&grid, &job, "whole", Usage::new(10, 10)).await;
    let (status, response) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{response}");
    let sealed: sgl_protocol::api::sealed::SealedResult =
        serde_json::from_value(response["sealed_result"].clone()).unwrap();
    assert!(String::from_utf8(opener.open(&sealed).unwrap().to_vec()).unwrap().contains("whole"));
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 5);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_plain_stream_answered_whole_is_still_a_stream() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 74).await;
    node.beat(&grid, &["m"]).await;
    let (_, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(true));
    let job = node.open(&node.wait_job(&grid, "m").await);
    node.complete(&grid, &job, "all at once", Usage::new(2, 3)).await;
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let events = sse_events(body.as_str().unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let first: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], "all at once");
}

#[tokio::test]
async fn chunks_for_a_non_stream_job_and_conflicting_chunks_are_refused_while_retries_are_idempotent() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 75).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(false));
    let job = node.open(&node.wait_job(&grid, "m").await);
    let nonce = "x";
    let mut sealer = job.reply.stream(nonce, &mut OsRng).unwrap();
    let chunk = sealer.seal_chunk(b"", true, &mut OsRng).unwrap();
    let (status, _) = post_chunk(&grid, &node, &job, &chunk, Some(Usage::new(1, 1)), EnvelopeVersion::V2).await;
    assert_eq!(status, StatusCode::CONFLICT);
    node.complete(&grid, &job, "fine", Usage::new(1, 1)).await;
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 1, "billed once, for the complete");

    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(true));
    let job = node.open(&node.wait_job(&grid, "m").await);
    let mut sealer = job.reply.stream(job.request.nonce.as_deref().unwrap(), &mut OsRng).unwrap();
    let chunk = sealer.seal_chunk(b"a", false, &mut OsRng).unwrap();
    assert_eq!(post_chunk(&grid, &node, &job, &chunk, None, EnvelopeVersion::V2).await.0, StatusCode::OK);
    // The node retrying the chunk it just sent (its answer lost) is told it was taken...
    assert_eq!(post_chunk(&grid, &node, &job, &chunk, None, EnvelopeVersion::V2).await.0, StatusCode::OK);
    // ...but a different chunk claiming that position is refused.
    let mut rival = job.reply.stream(job.request.nonce.as_deref().unwrap(), &mut OsRng).unwrap();
    let other = rival.seal_chunk(b"b", false, &mut OsRng).unwrap();
    assert_eq!(post_chunk(&grid, &node, &job, &other, None, EnvelopeVersion::V2).await.0, StatusCode::CONFLICT);
    // Having signed v2, the node may not downgrade to v1 (which would leave usage unsigned).
    let last = sealer.seal_chunk(b"", true, &mut OsRng).unwrap();
    let (status, _) = post_chunk(&grid, &node, &job, &last, Some(Usage::new(1, 1)), EnvelopeVersion::V1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.as_str().unwrap().contains("upstream_failed"), "the stream ends in an error, not a fake final");
    assert_eq!(body.as_str().unwrap().matches(r#""content":"a""#).count(), 1, "the retried chunk was relayed once");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_signed_but_unreadable_reply_is_refused_and_not_billed() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 76).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(false));
    let job = node.open(&node.wait_job(&grid, "m").await);
    // Sealed to some other key: the signature is the node's own, but the grid cannot open it.
    let stranger = sgl_protocol::identity::EncryptionSecret::generate(&mut OsRng).public_key();
    let (junk, _) = seal_request(&stranger, SealVersion::V2, b"{}", &mut OsRng).unwrap();
    let sealed = sgl_protocol::api::sealed::SealedResult {
        ciphertext: junk.ciphertext,
        ephemeral_public_key: junk.client_ephemeral_pubkey,
        algorithm: sgl_protocol::seal::ALGORITHM_V2.into(),
    };
    let usage = Usage::new(100, 8);
    let claims = ResultClaims {
        job_id: &job.id,
        node_id: &node.node_id,
        kind: ResultKind::Sealed,
        payload: sealed.ciphertext.as_bytes(),
        usage: Some(&usage),
        model_sha256: None,
    };
    let body = json!({"sealed_result": sealed, "usage": usage, "result_envelope_version": "v2",
        "result_envelope_signature": claims.sign(&node.identity, EnvelopeVersion::V2).unwrap()});
    let (status, _) = node.call(&grid, "POST", &format!("/grid/jobs/{}/complete", job.id), Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(caller.await.unwrap().0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(grid.credits(key_id).await, 1_000_000);
    assert_eq!(grid.store.tamper_count(&node.node_id.to_string()).await.unwrap(), 1);
}

#[tokio::test]
async fn a_caller_who_leaves_before_any_output_pays_nothing() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 77).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(true));
    let job = node.open(&node.wait_job(&grid, "m").await);
    caller.abort();
    let _ = caller.await;
    // The job is cancelled: the node is told to stop, and a chunk it sends anyway is refused.
    assert_eq!(cancellation(&grid, &node, &job).await, json!([job.id.as_str()]), "the node hears of the cancellation");
    let replies = node.stream(&grid, &job, &["never", "seen"], Usage::new(5, 2)).await;
    assert_eq!(replies[0].0, StatusCode::NOT_FOUND, "{replies:?}");
    assert_eq!(grid.credits(key_id).await, 1_000_000);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_job_is_a_ghost_only_after_it_stops_being_listed() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 78).await;
    node.beat(&grid, &["m"]).await;
    let (_, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(false));
    let job = node.open(&node.wait_job(&grid, "m").await);
    let listed = [job.id.as_str()];
    for _ in 0..3 {
        grid.advance_ms(9_000);
        node.heartbeat(&grid, node.heartbeat_with(&["m"], &listed)).await;
    }
    // 27 s after delivery and still listed: alive. Dropped from one heartbeat: still within grace.
    grid.advance_ms(5_000);
    node.heartbeat(&grid, node.heartbeat_with(&["m"], &[])).await;
    assert!(!caller.is_finished());
    node.complete(&grid, &job, "slow but sure", Usage::new(1, 1)).await;
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);
}

/// The `cancelled_job_ids` of the first heartbeat answer that carries any, while the node
/// still lists `job` as running (`null` if none does within a second).
async fn cancellation(grid: &Grid, node: &crate::harness::Node, job: &crate::harness::OpenedJob) -> Value {
    for _ in 0..100 {
        let (_, answer) = node.heartbeat(grid, node.heartbeat_with(&["m"], &[job.id.as_str()])).await;
        if answer.get("cancelled_job_ids").is_some() {
            return answer["cancelled_job_ids"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Value::Null
}

/// A seed node's partial-settlement `final` (completion-only usage, v1 signature) at `seq`.
fn seed_settlement(job: &crate::harness::OpenedJob, seq: u64) -> sgl_protocol::seal::SealedChunk {
    let mut sealer = job.reply.stream(job.request.nonce.as_deref().unwrap(), &mut OsRng).unwrap();
    let mut chunk = sealer.seal_chunk(b"", true, &mut OsRng).unwrap();
    chunk.seq = seq;
    chunk.ephemeral_public_key = None;
    chunk
}

#[tokio::test]
async fn a_seed_nodes_partial_settlement_bills_what_reached_the_caller_and_keeps_its_reputation() {
    let grid = Grid::with_config("[prices.m]\ninput_per_m = 1000.0\noutput_per_m = 1000.0\n").await;
    let node = grid.node("0xop", 79).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let status_path = format!("/grid/nodes/{}", node.node_id);

    // After `closed: true` the seed reuses the last sequence number for its settling final.
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(true));
    let job = node.open(&node.wait_job(&grid, "m").await);
    let mut sealer = job.reply.stream(job.request.nonce.as_deref().unwrap(), &mut OsRng).unwrap();
    let first = sealer.seal_chunk(b"Hel", false, &mut OsRng).unwrap();
    assert_eq!(post_chunk(&grid, &node, &job, &first, None, EnvelopeVersion::V1).await.1["closed"], false);
    caller.abort();
    let _ = caller.await;
    let second = sealer.seal_chunk(b"lo", false, &mut OsRng).unwrap();
    assert_eq!(post_chunk(&grid, &node, &job, &second, None, EnvelopeVersion::V1).await.1["closed"], true);
    let settle = seed_settlement(&job, 1);
    let (status, reply) = post_chunk(&grid, &node, &job, &settle, Some(Usage::new(0, 4)), EnvelopeVersion::V1).await;
    assert_eq!((status, &reply["closed"]), (StatusCode::OK, &json!(true)), "{reply}");
    // 4 tokens claimed over 2 chunks, 1 of which reached the caller: 2 tokens at $1000/M.
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 2_000);
    let job_record = grid.store.job(job.id.as_str()).await.unwrap().unwrap();
    assert_eq!(job_record.billed_micros, Some(2_000));
    let (_, status) = node.call(&grid, "GET", &status_path, None).await;
    assert_eq!(status["jobs_failed"], 0, "the node is not blamed: {status}");

    // After a chunk POST that never arrived, the seed's final takes the failed chunk's number:
    // the caller's stream ends in an error, not in a genuine end, and pays for what it got.
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(true));
    let job = node.open(&node.wait_job(&grid, "m").await);
    let mut sealer = job.reply.stream(job.request.nonce.as_deref().unwrap(), &mut OsRng).unwrap();
    let first = sealer.seal_chunk(b"Hel", false, &mut OsRng).unwrap();
    assert_eq!(post_chunk(&grid, &node, &job, &first, None, EnvelopeVersion::V1).await.0, StatusCode::OK);
    let settle = seed_settlement(&job, 1);
    let (status, _) = post_chunk(&grid, &node, &job, &settle, Some(Usage::new(0, 4)), EnvelopeVersion::V1).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let body = body.as_str().unwrap();
    assert!(body.contains("Hel") && body.contains("upstream_failed"), "{body}");
    assert!(!body.contains("\"finish_reason\":\"stop\""), "not presented as a complete answer: {body}");
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 4_000);
    let (_, status) = node.call(&grid, "GET", &status_path, None).await;
    assert_eq!(status["jobs_failed"], 0, "{status}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_caller_leaving_a_stream_pays_only_for_the_tokens_that_reached_it_not_the_nodes_final_usage() {
    let grid = Grid::with_config("[prices.m]\ninput_per_m = 1000.0\noutput_per_m = 1000.0\n").await;
    let node = grid.node("0xop", 80).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(true));
    let job = node.open(&node.wait_job(&grid, "m").await);
    let mut sealer = job.reply.stream(job.request.nonce.as_deref().unwrap(), &mut OsRng).unwrap();
    let first = sealer.seal_chunk(b"a", false, &mut OsRng).unwrap();
    let running = |n| Some(Usage::new(0, n));
    assert_eq!(post_chunk(&grid, &node, &job, &first, running(1), EnvelopeVersion::V2).await.1["closed"], false);
    caller.abort();
    let _ = caller.await;
    let second = sealer.seal_chunk(b"b", false, &mut OsRng).unwrap();
    assert_eq!(post_chunk(&grid, &node, &job, &second, running(2), EnvelopeVersion::V2).await.1["closed"], true);
    // Our node's final after `closed` carries the usage it actually spent, prompt included.
    let last = sealer.seal_chunk(b"", true, &mut OsRng).unwrap();
    let (status, _) = post_chunk(&grid, &node, &job, &last, Some(Usage::new(5, 3)), EnvelopeVersion::V2).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 1_000, "one delivered token at $1000/M, not 8");
    let (_, status) = node.call(&grid, "GET", &format!("/grid/nodes/{}", node.node_id), None).await;
    assert_eq!(status["jobs_failed"], 0, "{status}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_caller_leaving_a_whole_answer_cancels_the_job_on_the_node_and_pays_nothing() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 81).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(false));
    let job = node.open(&node.wait_job(&grid, "m").await);
    assert!(grid.credits(key_id).await < 1_000_000, "the quote is held while the node works");
    caller.abort();
    let _ = caller.await;
    // The next heartbeat tells the node to stop; the hold is back with the caller.
    assert_eq!(cancellation(&grid, &node, &job).await, json!([job.id.as_str()]));
    let (_, again) = node.heartbeat(&grid, node.heartbeat_with(&["m"], &[])).await;
    assert!(again.get("cancelled_job_ids").is_none(), "told once: {again}");
    assert_eq!(grid.credits(key_id).await, 1_000_000);
    // A late answer finds the job finished, and the node is not blamed.
    assert_eq!(node.complete(&grid, &job, "too late", Usage::new(1, 1)).await.0, StatusCode::NOT_FOUND);
    let (_, status) = node.call(&grid, "GET", &format!("/grid/nodes/{}", node.node_id), None).await;
    assert_eq!(status["jobs_failed"], 0, "{status}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_coordinator_crash_mid_stream_still_bills_the_delivered_tokens_at_restart() {
    let grid = Grid::with_config("[prices.m]\ninput_per_m = 1000.0\noutput_per_m = 1000.0\n").await;
    let node = grid.node("0xop", 82).await;
    node.beat(&grid, &["m"]).await;
    let (key_id, api_key) = grid.api_key(1.0).await;
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, plain(true));
    let job = node.open(&node.wait_job(&grid, "m").await);
    let mut sealer = job.reply.stream(job.request.nonce.as_deref().unwrap(), &mut OsRng).unwrap();
    let first = sealer.seal_chunk(b"one two three", false, &mut OsRng).unwrap();
    let (status, _) = post_chunk(&grid, &node, &job, &first, Some(Usage::new(0, 3)), EnvelopeVersion::V2).await;
    assert_eq!(status, StatusCode::OK);
    // The delivered count reaches the job's row off the answer path.
    let mut recorded = 0;
    for _ in 0..200 {
        recorded = grid.store.job(job.id.as_str()).await.unwrap().unwrap().delivered_tokens;
        if recorded == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(recorded, 3);
    // The coordinator dies (its memory with it) and a new process starts on the database.
    caller.abort();
    let restarted = grid.restarted_state();
    assert_eq!(sgl_grid::jobs::release_orphans(&restarted).await.unwrap(), 1);
    let row = grid.store.job(job.id.as_str()).await.unwrap().unwrap();
    assert_eq!((row.billed_micros, row.completion_tokens), (Some(3_000), Some(3)), "{row:?}");
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 3_000, "the three delivered tokens, once");
    assert_eq!(sgl_grid::jobs::release_orphans(&restarted).await.unwrap(), 0, "nothing is left running");
    grid.assert_ledger_balanced().await;
}
