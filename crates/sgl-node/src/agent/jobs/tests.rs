//! Opening jobs and building results, without a grid: every failure the grid is told about,
//! and signatures that verify under the version the grid asked for.

use rand_core::OsRng;
use serde_json::json;
use sgl_protocol::api::inference::{JobResult, Usage};
use sgl_protocol::api::node::{CompletedResult, PendingJob};
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::seal::{SealVersion, seal_request};

use super::*;

fn job(payload: serde_json::Value) -> PendingJob {
    PendingJob { id: "job-1".parse().unwrap(), job_type: "inference".into(), model: None, input_payload: Some(payload) }
}

fn sealed_job(
    identity: &NodeIdentity,
    request: &serde_json::Value,
    version: SealVersion,
    stream: bool,
) -> (PendingJob, sgl_protocol::seal::ReplyOpener) {
    let key = identity.encryption_secret().public_key();
    let (enc, opener) = seal_request(&key, version, &serde_json::to_vec(request).unwrap(), &mut OsRng).unwrap();
    (job(json!({"enc": enc, "stream": stream})), opener)
}

#[test]
fn bad_jobs_fail_with_the_seed_reasons() {
    let identity = NodeIdentity::from_seed(&[1; 32]);
    let secret = identity.encryption_secret();
    let mut other = job(json!({"prompt": "hi"}));
    other.job_type = "training".into();
    assert_eq!(prepare(&secret, &other).unwrap_err().to_string(), "Unsupported job type: training");
    let mut empty = job(json!(null));
    empty.input_payload = None;
    assert!(matches!(prepare(&secret, &empty).unwrap_err(), JobError::NoPayload));
    // A sealed payload whose enc is broken is never run as plain text.
    assert!(matches!(prepare(&secret, &job(json!({"enc": {"ciphertext": 1}}))).unwrap_err(), JobError::BadPayload(_)));
    // Sealed to another node: it does not open.
    let stranger = NodeIdentity::from_seed(&[2; 32]);
    let (to_stranger, _) = sealed_job(&stranger, &json!({"prompt": "x"}), SealVersion::V2, false);
    assert!(prepare(&secret, &to_stranger).unwrap_err().to_string().starts_with("decrypt failed"));
    // An unknown algorithm is refused, never downgraded.
    let (mut odd, _) = sealed_job(&identity, &json!({"prompt": "x"}), SealVersion::V2, false);
    odd.input_payload.as_mut().unwrap()["enc"]["algorithm"] = json!("rot13");
    assert!(prepare(&secret, &odd).unwrap_err().to_string().starts_with("decrypt failed"));
}

#[test]
fn a_sealed_request_that_is_not_json_is_failed_without_quoting_it() {
    let identity = NodeIdentity::from_seed(&[3; 32]);
    let key = identity.encryption_secret().public_key();
    let (enc, _) =
        seal_request(&key, SealVersion::V2, b"{\"messages\": \"the secret canary 51f0\"}", &mut OsRng).unwrap();
    let error = prepare(&identity.encryption_secret(), &job(json!({"enc": enc}))).unwrap_err();
    let reason = error.to_string();
    assert!(reason.starts_with("Invalid messages format"), "{reason}");
    assert!(!reason.contains("canary"), "the reason must not quote the sealed request: {reason}");
}

#[test]
fn a_sealed_request_never_generates_more_than_the_grid_escrowed() {
    let identity = NodeIdentity::from_seed(&[6; 32]);
    let secret = identity.encryption_secret();
    let key = identity.encryption_secret().public_key();
    let sealed = |request: serde_json::Value, cap: Option<u64>| {
        let (enc, _) = seal_request(&key, SealVersion::V2, &serde_json::to_vec(&request).unwrap(), &mut OsRng).unwrap();
        let mut payload = json!({"enc": enc});
        if let Some(cap) = cap {
            payload["max_tokens"] = json!(cap);
        }
        prepare(&secret, &job(payload)).unwrap().0.max_tokens
    };
    assert_eq!(sealed(json!({"prompt": "x", "max_tokens": 5000}), Some(16)), Some(16), "the larger sealed value loses");
    assert_eq!(sealed(json!({"prompt": "x", "max_tokens": 8}), Some(16)), Some(8), "the smaller sealed value wins");
    assert_eq!(sealed(json!({"prompt": "x"}), Some(16)), Some(16), "the node default is capped too");
    assert_eq!(sealed(json!({"prompt": "x", "max_tokens": 5000}), None), Some(5000), "a seed grid sends no cap");
}

#[test]
fn streaming_needs_the_relay_marker_the_sealed_flag_and_v2() {
    let identity = NodeIdentity::from_seed(&[4; 32]);
    let secret = identity.encryption_secret();
    let asks = json!({"messages": [{"role": "user", "content": "hi"}], "stream": true, "nonce": "n0"});
    let (both, _) = sealed_job(&identity, &asks, SealVersion::V2, true);
    assert!(matches!(prepare(&secret, &both).unwrap().1, Reply::Stream { ref nonce, .. } if nonce == "n0"));
    let (relay_only, _) = sealed_job(&identity, &json!({"prompt": "hi"}), SealVersion::V2, true);
    assert!(matches!(prepare(&secret, &relay_only).unwrap().1, Reply::Sealed(_)));
    let (caller_only, _) = sealed_job(&identity, &asks, SealVersion::V2, false);
    assert!(matches!(prepare(&secret, &caller_only).unwrap().1, Reply::Sealed(_)));
    let (v1, _) = sealed_job(&identity, &asks, SealVersion::V1, true);
    assert!(matches!(prepare(&secret, &v1).unwrap().1, Reply::Sealed(_)));
    // Content parts are accepted (text parts joined).
    let parts = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]});
    let (request, _) = prepare(&secret, &job(parts)).unwrap();
    let request = sgl_engine::GenerateRequest::from_inference(&request).unwrap();
    assert_eq!(request.messages, vec![("user".to_owned(), "a\nb".to_owned())]);
}

#[test]
fn results_are_sealed_when_asked_and_signed_in_the_grids_version() {
    let identity = NodeIdentity::from_seed(&[5; 32]);
    let node_id = NodeId::random();
    let job_id: JobId = "job-9".parse().unwrap();
    let result = JobResult { content: "Paris".into(), model: "gemma".into(), usage: Usage::new(14, 3) };
    let hash = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
    // A seed grid: v1, plain, the compact sorted-key JSON.
    let v1 = Signer { identity: &identity, node_id: &node_id, version: EnvelopeVersion::V1, model_sha256: Some(hash) };
    let plain = complete_body(&job_id, &result, None, &v1).unwrap();
    let CompletedResult::Plain { encrypted_result } = &plain.result else { panic!("expected plain") };
    assert_eq!(
        encrypted_result,
        r#"{"content":"Paris","model":"gemma","usage":{"completion_tokens":3,"prompt_tokens":14,"total_tokens":17}}"#
    );
    assert_eq!(
        (plain.signature.result_envelope_version.as_str(), plain.signature.model_sha256.as_deref()),
        ("v1", None)
    );
    let claims = ResultClaims {
        job_id: &job_id,
        node_id: &node_id,
        kind: ResultKind::Plain,
        payload: encrypted_result.as_bytes(),
        usage: None,
        model_sha256: None,
    };
    claims
        .verify(&identity.public_key(), EnvelopeVersion::V1, &plain.signature.result_envelope_signature, None)
        .unwrap();
    // Our grid: v2, sealed to the caller, usage and model hash signed.
    let (sealed_job, opener) = sealed_job(&identity, &json!({"prompt": "x"}), SealVersion::V2, false);
    let (_, reply) = prepare(&identity.encryption_secret(), &sealed_job).unwrap();
    let Reply::Sealed(sealer) = reply else { panic!("expected a sealed reply") };
    let v2 = Signer { version: EnvelopeVersion::V2, ..v1 };
    let sealed = complete_body(&job_id, &result, Some(&sealer), &v2).unwrap();
    let CompletedResult::Sealed { sealed_result } = &sealed.result else { panic!("expected sealed") };
    let opened: JobResult = serde_json::from_slice(&opener.open(sealed_result).unwrap()).unwrap();
    assert_eq!(opened, result);
    let claims = ResultClaims {
        job_id: &job_id,
        node_id: &node_id,
        kind: ResultKind::Sealed,
        payload: sealed_result.ciphertext.as_bytes(),
        usage: sealed.usage.as_ref(),
        model_sha256: sealed.signature.model_sha256.as_deref(),
    };
    let proof = sealed.signature.proof_of_execution.as_deref();
    claims
        .verify(&identity.public_key(), EnvelopeVersion::V2, &sealed.signature.result_envelope_signature, proof)
        .unwrap();
    // Claiming other usage breaks the signature.
    let inflated = Usage::new(14, 300);
    let forged = ResultClaims { usage: Some(&inflated), ..claims };
    assert!(
        forged
            .verify(&identity.public_key(), EnvelopeVersion::V2, &sealed.signature.result_envelope_signature, None)
            .is_err()
    );
}

#[test]
fn only_an_input_the_embedding_model_cannot_take_is_reported_as_the_callers() {
    use sgl_engine::embed::EmbedError;
    use sgl_protocol::api::node::FailCode;
    let too_long = JobError::Embed(EmbedError::InputTooLong { index: 2, tokens: 600, limit: 512 });
    assert_eq!(too_long.code(), Some(FailCode::InputRejected));
    assert_eq!(too_long.to_string(), "input 2 is 600 tokens, more than the model's limit of 512");
    assert_eq!(JobError::Embed(EmbedError::EmptyInput { index: 0 }).code(), Some(FailCode::InputRejected));
    assert_eq!(JobError::Embed(EmbedError::Inference("decode failed".into())).code(), None);
    assert_eq!(JobError::NoEmbedder.code(), None);
    assert_eq!(JobError::UnsealedEmbedding.code(), None);
    assert_eq!(JobError::BadEmbeddingRequest { line: 1, column: 2 }.code(), None);
}
