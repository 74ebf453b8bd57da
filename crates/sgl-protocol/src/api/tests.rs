//! JSON round trips for every wire type against the examples in sgl-protocol.md, plus the
//! places where our types are deliberately stricter or more forgiving than the seed's.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::caller::*;
use super::error::*;
use super::inference::*;
use super::node::*;
use super::openai::*;

/// Parses `example`, serialises it back and checks that nothing was lost or invented.
fn round_trip<T: Serialize + DeserializeOwned>(example: Value) -> T {
    let reserialised = serde_json::to_value(serde_json::from_value::<T>(example.clone()).expect("example parses"));
    assert_eq!(reserialised.unwrap(), example);
    let parsed: T = serde_json::from_value(example).expect("example parses");
    parsed
}

#[test]
fn cluster_slugs_are_lowercase_words_joined_by_dashes() {
    for good in ["gpu-eu", "a", "x402", &"a".repeat(64)] {
        assert!(crate::api::node::is_cluster_slug(good), "{good}");
    }
    for bad in ["", "GPU", "-eu", "eu-", "eu west", "eu_west", &"a".repeat(65), "é"] {
        assert!(!crate::api::node::is_cluster_slug(bad), "{bad}");
    }
}

#[test]
fn heartbeat_request_keeps_seed_field_order() {
    let text = r#"{"current_load":0.5,"available_models":["llama-3.2-3b"],"encryption_public_key":"A2MEKT8hNfpfNCrf9QyQesHWxnfxgS3TuL5DcX6jBwxT","encryption_public_key_signature":"sig","key_version":1,"capabilities":{"streaming":true,"context_size":4096},"active_job_ids":["7c1f4c3e-0000-4000-8000-000000000001"],"binary_hash":"ab","max_concurrent_jobs":2}"#;
    let parsed: HeartbeatRequest = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string(&parsed).unwrap(), text);
    assert_eq!(parsed.capabilities.context_size, 4096);
    assert_eq!(parsed.keybind.as_ref().map(|k| k.key_version), Some(1));
    let minimal = HeartbeatRequest { keybind: None, binary_hash: String::new(), ..parsed };
    let value = serde_json::to_value(&minimal).unwrap();
    for absent in ["encryption_public_key_signature", "key_version", "binary_hash"] {
        assert!(value.get(absent).is_none(), "{absent} must be omitted");
    }
    let reparsed: HeartbeatRequest = serde_json::from_value(value.clone()).unwrap();
    assert!(reparsed.keybind.is_none() && reparsed.binary_hash.is_empty());
    assert_eq!(value["active_job_ids"], json!(["7c1f4c3e-0000-4000-8000-000000000001"]));
}

#[test]
fn heartbeat_response_skips_a_malformed_job_but_keeps_the_rest_and_the_rotation() {
    let example = json!({
        "status": "ok",
        "pending_jobs": [
            {"id": "job-1", "job_type": "inference", "model": null, "input_payload": {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.7, "max_tokens": 512}},
            {"id": "job-2"},
            {"id": "job-3", "job_type": "inference", "model": "m", "input_payload": null}
        ],
        "new_auth_token": "tok2",
        "token_expires_at": "2026-12-01T00:00:00Z"
    });
    let parsed: HeartbeatResponse = serde_json::from_value(example).unwrap();
    assert_eq!(parsed.pending_jobs.jobs.len(), 2);
    assert_eq!(parsed.pending_jobs.n_malformed, 1);
    assert!(matches!(parsed.pending_jobs.jobs[0].payload(), Ok(Some(JobPayload::Plain(_)))));
    assert!(matches!(parsed.pending_jobs.jobs[1].payload(), Ok(None)));
    assert_eq!(parsed.new_auth_token.unwrap().expose_secret(), "tok2");
    let bare: HeartbeatResponse = serde_json::from_value(json!({"status": "ok"})).unwrap();
    assert!(bare.pending_jobs.jobs.is_empty());
}

#[test]
fn a_job_with_a_bad_payload_still_arrives_with_its_id() {
    // The node must be able to call /fail for it instead of dropping it (the seed drops the
    // whole heartbeat; dropping just the job would leave the caller waiting for the reaper).
    let job: PendingJob = serde_json::from_value(json!({
        "id": "job-9", "job_type": "inference", "input_payload": {"enc": {"ciphertext": 5}}
    }))
    .unwrap();
    assert_eq!(job.id.as_str(), "job-9");
    assert!(job.payload().is_err());
    let numbers: PendingJob = serde_json::from_value(json!({
        "id": "job-10", "job_type": "inference", "input_payload": {"messages": [], "max_tokens": 512.5}
    }))
    .unwrap();
    assert!(numbers.payload().is_err());
}

#[test]
fn dispatch_payloads_sealed_stream_and_plain() {
    let sealed = round_trip::<JobPayload>(json!({
        "enc": {"ciphertext": "c", "client_ephemeral_pubkey": "e", "client_response_pubkey": "r", "algorithm": "x25519-xchacha20poly1305-hkdf-v2"},
        "stream": true
    }));
    assert!(matches!(sealed, JobPayload::Sealed { stream: true, max_tokens: None, .. }));
    let capped = round_trip::<JobPayload>(json!({
        "enc": {"ciphertext": "c", "client_ephemeral_pubkey": "e", "client_response_pubkey": "r"},
        "max_tokens": 64
    }));
    assert!(matches!(capped, JobPayload::Sealed { stream: false, max_tokens: Some(64), .. }));
    let not_stream = round_trip::<JobPayload>(json!({
        "enc": {"ciphertext": "c", "client_ephemeral_pubkey": "e", "client_response_pubkey": "r"}
    }));
    assert!(
        matches!(not_stream, JobPayload::Sealed { stream: false, ref enc, max_tokens: None } if enc.algorithm.is_none())
    );
    let plain = round_trip::<JobPayload>(
        json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.7, "max_tokens": 512}),
    );
    assert!(matches!(plain, JobPayload::Plain(ref r) if r.max_tokens == Some(512)));
    round_trip::<JobPayload>(json!({"prompt": "Once upon a time"}));
    // A broken sealed payload is an error, never silently a plain request.
    assert!(serde_json::from_value::<JobPayload>(json!({"enc": {"ciphertext": 5}})).is_err());
}

#[test]
fn sealed_plaintext_reserialises_byte_for_byte() {
    let text = r#"{"messages":[{"role":"user","content":"cross-lang v2 test"}],"temperature":0.7,"max_tokens":512}"#;
    let request: InferenceRequest = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string(&request).unwrap(), text);
    let stream = r#"{"messages":[{"role":"user","content":"x"}],"temperature":0.0,"max_tokens":8,"stream":true,"nonce":"n","top_k":40,"seed":7,"stop":["\n"]}"#;
    let request: InferenceRequest = serde_json::from_str(stream).unwrap();
    assert_eq!(serde_json::to_string(&request).unwrap(), stream);
}

#[test]
fn content_parts_are_accepted() {
    let message: ChatMessage = serde_json::from_value(json!({
        "role": "user",
        "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]
    }))
    .unwrap();
    assert_eq!(message.content.unwrap().joined_text(), "look");
    let null: ChatMessage = serde_json::from_value(json!({"role": "assistant", "content": null})).unwrap();
    assert!(null.content.is_none());
}

#[test]
fn job_result_is_compact_with_sorted_keys() {
    let result = JobResult { content: "hi".into(), model: "gemma".into(), usage: Usage::new(3, 2) };
    assert_eq!(
        result.to_compact_json(),
        r#"{"content":"hi","model":"gemma","usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5}}"#
    );
}

#[test]
fn completion_bodies_sealed_and_plain() {
    let sealed = round_trip::<CompleteJobRequest>(json!({
        "sealed_result": {"ciphertext": "ct", "ephemeral_public_key": "eph", "algorithm": "x25519-xchacha20poly1305-hkdf-v2"},
        "usage": {"completion_tokens": 42, "prompt_tokens": 17, "total_tokens": 59},
        "result_envelope_signature": "sig",
        "result_envelope_version": "v1"
    }));
    assert!(matches!(sealed.result, CompletedResult::Sealed { .. }));
    let plain = round_trip::<CompleteJobRequest>(json!({
        "encrypted_result": "{\"content\":\"hi\"}",
        "result_envelope_signature": "sig",
        "result_envelope_version": "v2",
        "usage": {"completion_tokens": 1, "prompt_tokens": 1, "total_tokens": 2},
        "model_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "proof_of_execution": "00"
    }));
    assert!(matches!(plain.result, CompletedResult::Plain { .. }));
    round_trip::<FailJobRequest>(json!({"reason": "decrypt failed: bad tag"}));
}

#[test]
fn chunk_bodies_and_responses() {
    let first = round_trip::<ChunkPost>(json!({
        "seq": 0, "final": false, "ciphertext": "ct", "algorithm": "x25519-xchacha20poly1305-hkdf-v2-stream",
        "ephemeral_public_key": "eph", "result_envelope_signature": "sig", "result_envelope_version": "v1"
    }));
    assert!(matches!(first, ChunkPost::Chunk(StreamChunkPost { seq: 0, is_final: false, .. })));
    round_trip::<ChunkPost>(json!({
        "seq": 7, "final": true, "ciphertext": "ct", "algorithm": "x25519-xchacha20poly1305-hkdf-v2-stream",
        "usage": {"completion_tokens": 6, "prompt_tokens": 0, "total_tokens": 6},
        "result_envelope_signature": "sig", "result_envelope_version": "v1"
    }));
    let error = round_trip::<ChunkPost>(json!({"error": true}));
    assert!(matches!(error, ChunkPost::Error(StreamErrorPost { error: true, reason: None })));
    let closed: ChunkResponse = serde_json::from_value(json!({"ok": true, "closed": true})).unwrap();
    assert!(closed.closed);
    let empty: ChunkResponse = serde_json::from_value(json!({})).unwrap();
    assert!(!empty.closed);
    // The seed leaves `ok`'s type open; an odd value must not hide `closed`.
    let odd: ChunkResponse = serde_json::from_value(json!({"ok": "accepted", "closed": true})).unwrap();
    assert!(odd.ok && odd.closed);
    let null: ChunkResponse = serde_json::from_value(json!({"ok": null, "closed": false})).unwrap();
    assert!(!null.ok);
}

#[test]
fn login_register_and_attestation_bodies() {
    let start: DeviceStartResponse =
        serde_json::from_value(json!({"device_code": "d", "user_code": "ABCD-1234", "verify_url": "https://g/verify"}))
            .unwrap();
    assert_eq!((start.interval, start.expires_in), (3, 0));
    round_trip::<DeviceStartResponse>(
        json!({"device_code": "d", "user_code": "u", "verify_url": "v", "interval": 5, "expires_in": 600}),
    );
    round_trip::<DevicePollRequest>(json!({"device_code": "d"}));
    let approved = round_trip::<DevicePollResponse>(
        json!({"status": "approved", "registration_code": "rc", "wallet_address": "w"}),
    );
    assert_eq!(approved.status, DevicePollStatus::Approved);
    let pending: DevicePollResponse = serde_json::from_value(json!({"status": "authorization_pending"})).unwrap();
    assert_eq!(pending.status, DevicePollStatus::Pending);
    round_trip::<RegisterNodeRequest>(json!({
        "wallet_address": "w", "registration_code": "rc", "tee_type": "apple_se", "available_models": [],
        "public_key": "3F5qRPtKg8GhGNnbd3qCj6nVJxWsGxq7pvH84okYLAqf", "cpu_cores": 8, "ram_gb": 16.0,
        "gpu_model": "apple_metal", "supported_runtimes": ["llama.cpp"]
    }));
    let registered = round_trip::<RegisterNodeResponse>(
        json!({"node_id": "f617ee39-17e3-4904-9474-112446c9326a", "auth_token": "t"}),
    );
    assert_eq!(registered.node_id.to_string(), "f617ee39-17e3-4904-9474-112446c9326a");
    assert!(serde_json::from_value::<RegisterNodeResponse>(json!({"node_id": "node-7", "auth_token": "t"})).is_err());
    round_trip::<ChallengeResponse>(
        json!({"challenge": "c", "expires_at": "2026-01-01T00:00:00Z", "expires_in_seconds": 300}),
    );
    round_trip::<VerifyAttestationRequest>(json!({
        "signature": "s", "encryption_public_key": "k",
        "hardware_report": {"tee_type": "none", "chip_model": "Apple Silicon", "cpu_cores": 2, "memory_gb": 16.0,
            "secure_enclave": false, "sip_enabled": false, "os_version": "", "kernel_version": "6.1.0",
            "boot_uuid": "", "hardware_uuid": "", "firmware_version": "", "serial_hash": "", "binary_hash": "ab", "report_hash": "cd"}
    }));
    round_trip::<VerifyAttestationResponse>(json!({"verified": true, "status": "attested"}));
}

#[test]
fn websocket_messages() {
    let job = round_trip::<ServerMessage>(
        json!({"type": "job", "job": {"id": "j", "job_type": "inference", "model": null, "input_payload": null}}),
    );
    assert!(matches!(job, ServerMessage::Job { .. }));
    assert_eq!(round_trip::<ServerMessage>(json!({"type": "ping"})), ServerMessage::Ping);
    round_trip::<ServerMessage>(json!({"type": "token_rotated", "new_auth_token": "t2", "token_expires_at": "x"}));
    let ack: ServerMessage = serde_json::from_value(json!({"type": "job_complete_ack", "job_id": "j"})).unwrap();
    assert_eq!(ack, ServerMessage::JobCompleteAck);
    let future: ServerMessage = serde_json::from_value(json!({"type": "drain", "deadline": 5})).unwrap();
    assert_eq!(future, ServerMessage::Unknown);
    assert_eq!(serde_json::to_string(&NodeMessage::Pong).unwrap(), r#"{"type":"pong"}"#);
}

#[test]
fn maintenance_prices_status_and_allowlist() {
    round_trip::<OffGridRequest>(json!({"off_grid": true}));
    round_trip::<NodePricesResponse>(json!({"prices": [{
        "model": "gemma", "effective": {"inputPerM": 0.1, "outputPerM": 0.2}, "custom": null,
        "reference": {"inputPerM": 0.1, "outputPerM": 0.2}
    }]}));
    let set = round_trip::<SetPriceRequest>(json!({"model": "gemma", "input_per_m": 0.05, "output_per_m": 0.1}));
    assert!(matches!(set, SetPriceRequest::Set { .. }));
    let reset = round_trip::<SetPriceRequest>(json!({"model": "gemma", "reset": true}));
    assert!(matches!(reset, SetPriceRequest::Reset { .. }));
    let not_reset: SetPriceRequest =
        serde_json::from_value(json!({"model": "g", "reset": false, "input_per_m": 1.0, "output_per_m": 2.0})).unwrap();
    assert!(matches!(not_reset, SetPriceRequest::Set { .. }));
    for bad in [json!({"model": "g", "reset": false}), json!({"model": "g", "input_per_m": 1.0}), json!({"model": "g"})]
    {
        assert!(serde_json::from_value::<SetPriceRequest>(bad.clone()).is_err(), "{bad}");
    }
    let status: NodeStatusResponse =
        serde_json::from_value(json!({"total_jobs_completed": 4, "total_jobs_failed": 1, "reputation_score": 0.9}))
            .unwrap();
    assert_eq!((status.status.as_str(), status.jobs_completed, status.jobs_failed), ("unknown", 4, 1));
    round_trip::<AllowedBinariesResponse>(json!({"hashes": ["ab"]}));
}

#[test]
fn discovery_bodies() {
    let seed = json!({
        "total_nodes": 3, "active_nodes": 2, "available_nodes": 1,
        "by_tee_type": [{"tee_type": "linux_se", "total_nodes": 3, "active_nodes": 2, "available_nodes": 1}],
        "updated_at": "2026-11-21T00:00:00Z"
    });
    // A seed grid's answer has no per-model capacity or queue: read as none.
    let parsed: CapacityResponse = serde_json::from_value(seed.clone()).expect("the seed's shape parses");
    assert_eq!((parsed.models.len(), parsed.at_capacity, parsed.queue_depth), (0, false, 0));
    let mut ours = seed;
    ours["models"] =
        json!([{"model": "m", "nodes": 2, "slots": 4, "busy_slots": 4, "waiting": 3, "at_capacity": true}]);
    ours["at_capacity"] = json!(true);
    ours["queue_depth"] = json!(3);
    round_trip::<CapacityResponse>(ours);
    round_trip::<GridModelsResponse>(json!({"models": [{
        "id": "gemma-3-270m", "owned_by": "sgl-grid", "sgl_node_count": 2, "sgl_tee_types": ["linux_se"],
        "sgl_pricing": {"price_per_1k_input_tokens_usd": 0.0001, "price_per_1k_output_tokens_usd": 0.0002}
    }]}));
    round_trip::<PricingResponse>(
        json!({"pricing": [{"model": "m", "price_per_1k_input_tokens_usd": 0.1, "price_per_1k_output_tokens_usd": 0.2}]}),
    );
    round_trip::<ProvidersResponse>(json!({
        "model": "m", "cluster": null, "count": 1,
        "providers": [{"node_id": "f617ee39-17e3-4904-9474-112446c9326a", "input_per_m": 0.1, "output_per_m": 0.2,
            "blended_per_1k": 0.00015, "is_custom": false, "reputation": 0.5, "load": 0.0, "max_concurrent_jobs": 2,
            "tee_type": "linux_se", "online": true}]
    }));
    round_trip::<ProvidersQuery>(json!({"model": "m", "max_price": 1.5}));
}

#[test]
fn reserve_and_sealed_chat_bodies() {
    round_trip::<ReserveRequest>(
        json!({"model": "m", "node": "f617ee39-17e3-4904-9474-112446c9326a", "max_price": 2.0, "pay_in_coin": true}),
    );
    let reserve = round_trip::<ReserveResponse>(json!({
        "reservation_token": "rt", "node_id": "f617ee39-17e3-4904-9474-112446c9326a",
        "node_x25519_pubkey": "A2MEKT8hNfpfNCrf9QyQesHWxnfxgS3TuL5DcX6jBwxT",
        "node_ed25519_pubkey": "3F5qRPtKg8GhGNnbd3qCj6nVJxWsGxq7pvH84okYLAqf",
        "tee_type": "linux_se", "attestation_verified": false, "expires_in_ms": 60000,
        "encryption_public_key_signature": "sig", "key_version": 1
    }));
    assert_eq!(reserve.key_version, Some(1));
    // A seed grid's reservation, without our fields, still parses.
    let seed: ReserveResponse = serde_json::from_value(json!({
        "reservation_token": "rt", "node_id": "f617ee39-17e3-4904-9474-112446c9326a",
        "node_x25519_pubkey": "k", "node_ed25519_pubkey": null, "expires_in_ms": 1
    }))
    .unwrap();
    assert!(seed.encryption_public_key_signature.is_none());
    let no_e2e: ReserveResponse = serde_json::from_value(json!({
        "reservation_token": "rt", "node_id": "f617ee39-17e3-4904-9474-112446c9326a", "node_ed25519_pubkey": null, "expires_in_ms": 1
    }))
    .unwrap();
    assert!(no_e2e.node_x25519_pubkey.is_none(), "a node without E2E is reported, not a parse error");
    round_trip::<SealedChatRequest>(json!({
        "reservation_token": "rt", "max_tokens": 512,
        "enc": {"ciphertext": "c", "client_ephemeral_pubkey": "e", "client_response_pubkey": "r", "algorithm": "x25519-xchacha20poly1305-hkdf-v2"}
    }));
    round_trip::<SealedChatResponse>(json!({
        "id": "job-1", "created": 1, "sealed_result": {"ciphertext": "c", "ephemeral_public_key": "e", "algorithm": "x25519-xchacha20poly1305-hkdf-v2"},
        "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3},
        "node_id": "f617ee39-17e3-4904-9474-112446c9326a", "result_envelope_signature": "s", "result_envelope_version": "v2"
    }));
    let event = round_trip::<SealedStreamEvent>(json!({"seq": 0, "ct": "c", "eph": "e", "final": false}));
    assert!(!event.is_final && event.sig.is_none());
    let no_final: SealedStreamEvent = serde_json::from_value(json!({"seq": 1, "ct": "c"})).unwrap();
    assert!(!no_final.is_final);
    assert!(serde_json::from_value::<SealedStreamEvent>(json!({"ct": "c", "final": true})).is_err());
    round_trip::<SealedStreamEvent>(
        json!({"seq": 3, "ct": "c", "final": true, "sig": "s", "sig_version": "v2", "job_id": "j",
        "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3}}),
    );
}

#[test]
fn legacy_jobs_and_embeddings() {
    round_trip::<CreateJobRequest>(json!({"model": "m", "input": {"prompt": "hi"}, "submitter_wallet": "w"}));
    round_trip::<CreateJobResponse>(
        json!({"job_id": "j", "status": "queued", "model": "m", "node_id": null, "tee_type": null,
        "estimated_cost_usd": 0.001, "created_at": "t"}),
    );
    round_trip::<JobStatusResponse>(
        json!({"id": "j", "status": "completed", "model": "m", "node_id": "f617ee39-17e3-4904-9474-112446c9326a",
        "tee_type": "linux_se", "result": {"content": "hi"}, "encrypted_result": null, "attestation_proof": "sig", "cost_usd": 0.001,
        "created_at": "t", "completed_at": "t2", "error": null}),
    );
    round_trip::<JobAttestationResponse>(
        json!({"node_id": "f617ee39-17e3-4904-9474-112446c9326a", "tee_type": null, "job_id": "j",
        "attestation_signature": "s", "attestation_report": null, "verified": true, "verified_at": "t"}),
    );
    round_trip::<EmbeddingsRequest>(
        json!({"model": "m", "input": ["a", "b"], "dimensions": 256, "input_type": "query", "tier": "confidential"}),
    );
    round_trip::<EmbeddingsRequest>(json!({"model": "m", "input": "a"}));
    round_trip::<EmbeddingsResponse>(
        json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}],
        "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
    );
}

#[test]
fn openai_request_as_the_official_sdk_sends_it() {
    let request = round_trip::<ChatCompletionRequest>(json!({
        "model": "gemma-3-270m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_completion_tokens": 16, "max_tokens": 99, "temperature": 0.0, "stream": true,
        "stream_options": {"include_usage": true}, "stop": "\n", "seed": 1, "logprobs": false
    }));
    assert_eq!(request.effective_max_tokens(), Some(16));
    assert_eq!(request.extra.get("logprobs"), Some(&json!(false)));
    assert_eq!(request.stop.unwrap().to_vec(), vec!["\n".to_owned()]);
    assert!(serde_json::from_value::<ChatCompletionRequest>(json!({"messages": []})).is_err());
}

#[test]
fn openai_responses_chunks_models_and_errors() {
    round_trip::<ChatCompletion>(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gemma",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3}
    }));
    round_trip::<ChatCompletionChunk>(json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gemma",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"}, "finish_reason": null, "logprobs": null}]
    }));
    round_trip::<ChatCompletionChunk>(json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gemma", "choices": [],
        "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3}
    }));
    round_trip::<ModelList>(
        json!({"object": "list", "data": [{"id": "gemma", "object": "model", "created": 0, "owned_by": "sgl-grid"}]}),
    );
    let body = ErrorBody::new(ErrorType::InvalidRequestError, ErrorCode::ModelNotFound, "no node serves model x")
        .with_param("model");
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"error": {"message": "no node serves model x", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}})
    );
    round_trip::<ErrorBody>(json!({"error": {"message": "m", "type": "server_error", "param": null, "code": null}}));
    // A seed grid's string form, and types or codes from a newer peer, still parse.
    let seed: ErrorBody = serde_json::from_value(json!({"error": "Invalid registration code"})).unwrap();
    assert_eq!((seed.error.message.as_str(), seed.error.error_type), ("Invalid registration code", ErrorType::Other));
    let newer: ErrorBody =
        serde_json::from_value(json!({"error": {"message": "m", "type": "quota_error", "code": "quota_exceeded"}}))
            .unwrap();
    assert_eq!((newer.error.error_type, newer.error.code), (ErrorType::Other, Some(ErrorCode::Other)));
}

#[test]
fn numbers_survive_a_round_trip_exactly() {
    // Found by the `mpp_credential` fuzz target: serde_json's default float
    // parser is not correctly rounded, so a body the grid re-encodes (a plain chat request it
    // seals for the node, an unknown field it keeps) came back one unit in the last place off.
    // The workspace enables serde_json's `float_roundtrip` feature for that reason.
    let text = r#"{"model":"m","messages":[],"temperature":5.500000000000001e45,"top_p":0.1,"logit_bias":{"7":5.500000000000001e45}}"#;
    let request: ChatCompletionRequest = serde_json::from_str(text).unwrap();
    assert_eq!(request.temperature, Some(5.500000000000001e45));
    assert_eq!(request.extra["logit_bias"]["7"].as_f64(), Some(5.500000000000001e45));
    let reread: ChatCompletionRequest = serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();
    assert_eq!(reread, request);
}

#[test]
fn a_node_status_reads_its_states_as_enums_and_keeps_what_it_does_not_know() {
    use super::operator::StakeState;
    let ours: NodeStatusResponse =
        serde_json::from_value(json!({"status": "off_grid", "stake_state": "unstaking"})).unwrap();
    assert_eq!((ours.status.clone(), ours.stake_state), (NodeLifecycle::OffGrid, Some(StakeState::Unstaking)));
    assert_eq!(serde_json::to_value(&ours).unwrap()["status"], "off_grid");
    assert_eq!(serde_json::to_value(&ours).unwrap()["stake_state"], "unstaking");
    let seed: NodeStatusResponse = serde_json::from_value(json!({"status": "suspended"})).unwrap();
    assert_eq!((seed.status.to_string(), seed.stake_state), ("suspended".to_owned(), None));
    let newer: NodeStatusResponse = serde_json::from_value(json!({"stake_state": "slashed"})).unwrap();
    assert_eq!((newer.status, newer.stake_state), (NodeLifecycle::Other("unknown".into()), None));
    for name in ["active", "offline", "off_grid", "unstaking"] {
        assert_eq!(NodeLifecycle::from(name).as_str(), name);
    }
}

#[test]
fn compute_states_name_themselves_as_serde_does() {
    use super::compute::{AttemptState, WorkState};
    for state in WorkState::ALL {
        assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        assert_eq!(WorkState::from_name(state.as_str()), Some(state));
    }
    for state in AttemptState::ALL {
        assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        assert_eq!(AttemptState::from_name(state.as_str()), Some(state));
    }
    assert_eq!(WorkState::from_name("Done"), None);
}

#[test]
fn job_types_and_fail_codes_are_their_wire_names() {
    assert_eq!(JobType::from_wire("inference"), Some(JobType::Inference));
    assert_eq!(JobType::from_wire("embedding"), Some(JobType::Embedding));
    assert_eq!(JobType::from_wire("training"), None);
    assert_eq!(JobType::Embedding.as_str(), "embedding");
    assert_eq!(serde_json::to_value(JobType::Embedding).unwrap(), json!("embedding"));
    // A seed node's failure report has no code, and ours keeps that shape when it has none.
    let seed: FailJobRequest = serde_json::from_value(json!({"reason": "x"})).unwrap();
    assert_eq!(seed.code, None);
    assert_eq!(serde_json::to_value(&seed).unwrap(), json!({"reason": "x"}));
    let rejected = FailJobRequest { reason: "too long".into(), code: Some(FailCode::InputRejected) };
    assert_eq!(serde_json::to_value(&rejected).unwrap(), json!({"reason": "too long", "code": "input_rejected"}));
}
