//! Every check of [`super`] against fixtures made with the protocol crate's real cryptography:
//! a node identity signs a keybind, opens a sealed request, seals and signs the reply (or a
//! stream), and each test breaks one thing and expects its own error.

use rand_core::OsRng;
use sgl_protocol::api::caller::{ReserveResponse, SealedChatResponse, SealedStreamEvent};
use sgl_protocol::api::inference::{JobResult, Usage};
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::{JobId, NodeId, ReservationToken};
use sgl_protocol::keybind::sign_keybind;
use sgl_protocol::seal::{ReplyOpener, ReplySealer, SealVersion, open_request, seal_request};

use super::*;

const MODEL_HASH: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
const OTHER_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

struct Fixture {
    identity: NodeIdentity,
    node_id: NodeId,
    reservation: ReserveResponse,
}

impl Fixture {
    fn new() -> Self {
        let identity = NodeIdentity::from_seed(&[0x07; 32]);
        let node_id = NodeId::random();
        let x25519 = identity.encryption_secret().public_key();
        let reservation = ReserveResponse {
            reservation_token: ReservationToken::new("rsv_test"),
            node_id,
            node_x25519_pubkey: Some(x25519.to_b58()),
            node_ed25519_pubkey: Some(identity.public_key().to_b58()),
            tee_type: Some("linux_se".into()),
            attestation_verified: Some(true),
            expires_in_ms: 60_000,
            encryption_public_key_signature: Some(sign_keybind(&identity, &node_id, &x25519, 1)),
            key_version: Some(1),
            model_sha256: Some(MODEL_HASH.into()),
        };
        Self { identity, node_id, reservation }
    }

    fn node(&self) -> VerifiedNode {
        VerifiedNode::from_reservation("gemma", &self.reservation).unwrap()
    }

    /// The caller seals a request; the node opens it and returns how to answer.
    fn exchange(&self, node: &VerifiedNode) -> (ReplyOpener, ReplySealer) {
        let (enc, opener) = seal_request(node.encryption_key(), SealVersion::V2, b"{}", &mut OsRng).unwrap();
        let opened = open_request(&self.identity.encryption_secret(), &enc).unwrap();
        (opener, opened.reply)
    }

    /// A correctly signed v2 sealed reply.
    fn reply(&self, sealer: &ReplySealer, usage: Usage) -> SealedChatResponse {
        let result = JobResult { content: "Paris".into(), model: "gemma".into(), usage };
        let sealed_result = sealer.seal(result.to_compact_json().as_bytes(), &mut OsRng).unwrap();
        let mut response = SealedChatResponse {
            id: JobId::random(),
            created: Some(1),
            sealed_result,
            usage: Some(usage),
            node_id: Some(self.node_id),
            result_envelope_signature: None,
            result_envelope_version: Some("v2".into()),
            model_sha256: Some(MODEL_HASH.into()),
            proof_of_execution: None,
        };
        self.sign_reply(&mut response);
        response
    }

    fn sign_reply(&self, response: &mut SealedChatResponse) {
        let claims = ResultClaims {
            job_id: &response.id,
            node_id: &self.node_id,
            kind: ResultKind::Sealed,
            payload: response.sealed_result.ciphertext.as_bytes(),
            usage: response.usage.as_ref(),
            model_sha256: response.model_sha256.as_deref(),
        };
        response.proof_of_execution = Some(claims.proof_of_execution());
        response.result_envelope_signature = Some(claims.sign(&self.identity, EnvelopeVersion::V2).unwrap());
    }

    /// A correctly signed v2 stream: `texts` then an empty final chunk with usage.
    fn stream(&self, sealer: &ReplySealer, nonce: &str, texts: &[&str]) -> Vec<SealedStreamEvent> {
        let mut stream = sealer.stream(nonce, &mut OsRng).unwrap();
        let job_id = JobId::random();
        let mut events = Vec::new();
        let last = texts.len();
        for (idx, text) in texts.iter().copied().chain([""]).enumerate() {
            let is_final = idx == last;
            let chunk = stream.seal_chunk(text.as_bytes(), is_final, &mut OsRng).unwrap();
            let mut event = SealedStreamEvent {
                seq: chunk.seq,
                ct: chunk.ciphertext,
                eph: chunk.ephemeral_public_key,
                is_final,
                sig: None,
                sig_version: Some("v2".into()),
                job_id: Some(job_id.clone()),
                node_id: Some(self.node_id),
                usage: is_final.then(|| Usage::new(12, texts.len() as u64)),
                model_sha256: Some(MODEL_HASH.into()),
                proof_of_execution: None,
            };
            self.sign_event(&mut event);
            events.push(event);
        }
        events
    }

    fn sign_event(&self, event: &mut SealedStreamEvent) {
        let claims = ResultClaims {
            job_id: event.job_id.as_ref().unwrap(),
            node_id: &self.node_id,
            kind: ResultKind::Stream { seq: event.seq, is_final: event.is_final },
            payload: event.ct.as_bytes(),
            usage: event.usage.as_ref(),
            model_sha256: event.model_sha256.as_deref(),
        };
        event.proof_of_execution = Some(claims.proof_of_execution());
        event.sig = Some(claims.sign(&self.identity, EnvelopeVersion::V2).unwrap());
    }
}

/// Replaces one base58 character in the middle of `text` with another valid one.
fn flip_one_char(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn verify(fixture: &Fixture, response: &SealedChatResponse) -> Result<OpenedReply, VerifyError> {
    let node = fixture.node();
    let (opener, _) = fixture.exchange(&node);
    verify_sealed_reply(&node, &opener, response)
}

#[test]
fn a_genuine_keybind_and_reply_verify_and_open() {
    let fixture = Fixture::new();
    let node = fixture.node();
    assert_eq!((node.node_id(), node.key_version(), node.model_sha256()), (fixture.node_id, 1, Some(MODEL_HASH)));
    let (opener, sealer) = fixture.exchange(&node);
    let response = fixture.reply(&sealer, Usage::new(10, 2));
    let opened = verify_sealed_reply(&node, &opener, &response).unwrap();
    assert_eq!(opened.result.content, "Paris");
    assert_eq!(opened.usage, Usage::new(10, 2));
    assert_eq!(opened.verification.node_id, fixture.node_id);
    assert_eq!(opened.verification.job_id, response.id);
    assert_eq!(opened.verification.model_sha256.as_deref(), Some(MODEL_HASH));
    assert!(opened.verification.verified);
}

#[test]
fn a_reservation_without_a_keybind_is_refused() {
    let fixture = Fixture::new();
    for strip in 0..4 {
        let mut reservation = fixture.reservation.clone();
        match strip {
            0 => reservation.encryption_public_key_signature = None,
            1 => reservation.key_version = None,
            2 => reservation.node_ed25519_pubkey = None,
            _ => reservation.node_x25519_pubkey = None,
        }
        let error = VerifiedNode::from_reservation("gemma", &reservation).unwrap_err();
        assert!(matches!(error, VerifyError::MissingKeybind(_)), "{strip}: {error:?}");
    }
}

#[test]
fn a_forged_or_mismatched_keybind_is_refused() {
    let fixture = Fixture::new();
    let coordinator = NodeIdentity::from_seed(&[0x66; 32]);
    let substitute = coordinator.encryption_secret().public_key();
    type Corruption = Box<dyn Fn(&mut ReserveResponse)>;
    let cases: Vec<(&str, Corruption)> = vec![
        // The coordinator substitutes its own X25519 key (S1).
        ("x25519 swapped", Box::new(move |r| r.node_x25519_pubkey = Some(substitute.to_b58()))),
        // ... and signs the binding itself.
        (
            "forged signature",
            Box::new(move |r| {
                let forged = sign_keybind(&coordinator, &r.node_id, &substitute, 1);
                r.node_x25519_pubkey = Some(substitute.to_b58());
                r.encryption_public_key_signature = Some(forged);
            }),
        ),
        (
            "ed25519 swapped",
            Box::new(|r| r.node_ed25519_pubkey = Some(NodeIdentity::from_seed(&[1; 32]).public_key().to_b58())),
        ),
        ("other node id", Box::new(|r| r.node_id = NodeId::random())),
        ("key version", Box::new(|r| r.key_version = Some(2))),
        ("garbage signature", Box::new(|r| r.encryption_public_key_signature = Some("not base58 0OIl".into()))),
    ];
    for (name, corrupt) in cases {
        let mut reservation = fixture.reservation.clone();
        corrupt(&mut reservation);
        assert_eq!(
            VerifiedNode::from_reservation("gemma", &reservation).unwrap_err(),
            VerifyError::BadKeybind,
            "{name}"
        );
    }
}

#[test]
fn a_tampered_ciphertext_is_a_bad_signature() {
    let fixture = Fixture::new();
    let node = fixture.node();
    let (opener, sealer) = fixture.exchange(&node);
    let mut response = fixture.reply(&sealer, Usage::new(10, 2));
    response.sealed_result.ciphertext = flip_one_char(&response.sealed_result.ciphertext);
    response.proof_of_execution = None;
    assert_eq!(verify_sealed_reply(&node, &opener, &response).unwrap_err(), VerifyError::BadSignature);
}

#[test]
fn an_inflated_usage_is_a_bad_signature() {
    let fixture = Fixture::new();
    let node = fixture.node();
    let (opener, sealer) = fixture.exchange(&node);
    let mut response = fixture.reply(&sealer, Usage::new(10, 2));
    response.usage = Some(Usage::new(10, 2000));
    assert_eq!(verify_sealed_reply(&node, &opener, &response).unwrap_err(), VerifyError::BadSignature);
}

#[test]
fn a_reply_signed_by_another_key_is_a_bad_signature() {
    let fixture = Fixture::new();
    let node = fixture.node();
    let (opener, sealer) = fixture.exchange(&node);
    let mut response = fixture.reply(&sealer, Usage::new(10, 2));
    let impostor = Fixture { identity: NodeIdentity::from_seed(&[0x55; 32]), ..Fixture::new() };
    let impostor = Fixture { node_id: fixture.node_id, ..impostor };
    impostor.sign_reply(&mut response);
    assert_eq!(verify_sealed_reply(&node, &opener, &response).unwrap_err(), VerifyError::BadSignature);
}

#[test]
fn unsigned_usage_missing_signatures_and_bad_proofs_are_refused() {
    let fixture = Fixture::new();
    let node = fixture.node();
    let (opener, sealer) = fixture.exchange(&node);
    let good = fixture.reply(&sealer, Usage::new(10, 2));

    let v1 = SealedChatResponse { result_envelope_version: Some("v1".into()), ..good.clone() };
    assert!(matches!(verify_sealed_reply(&node, &opener, &v1), Err(VerifyError::UsageNotSigned(_))));
    let no_usage = SealedChatResponse { usage: None, ..good.clone() };
    assert!(matches!(verify_sealed_reply(&node, &opener, &no_usage), Err(VerifyError::UsageNotSigned(_))));
    let unsigned = SealedChatResponse { result_envelope_signature: None, ..good.clone() };
    assert_eq!(verify_sealed_reply(&node, &opener, &unsigned).unwrap_err(), VerifyError::Unsigned);
    let bad_proof = SealedChatResponse { proof_of_execution: Some(OTHER_HASH.into()), ..good };
    assert_eq!(verify_sealed_reply(&node, &opener, &bad_proof).unwrap_err(), VerifyError::ProofMismatch);
}

#[test]
fn a_model_hash_other_than_the_reserved_one_is_refused_even_when_signed() {
    let fixture = Fixture::new();
    let node = fixture.node();
    let (opener, sealer) = fixture.exchange(&node);
    let mut response = fixture.reply(&sealer, Usage::new(10, 2));
    response.model_sha256 = Some(OTHER_HASH.into());
    fixture.sign_reply(&mut response);
    assert_eq!(
        verify_sealed_reply(&node, &opener, &response).unwrap_err(),
        VerifyError::ModelHashMismatch { reserved: MODEL_HASH.into(), claimed: OTHER_HASH.into() }
    );
}

#[test]
fn a_reply_naming_another_node_is_refused() {
    let fixture = Fixture::new();
    let mut response = {
        let node = fixture.node();
        let (_, sealer) = fixture.exchange(&node);
        fixture.reply(&sealer, Usage::new(1, 1))
    };
    let other = NodeId::random();
    response.node_id = Some(other);
    assert_eq!(
        verify(&fixture, &response).unwrap_err(),
        VerifyError::NodeMismatch { reserved: fixture.node_id, answered: other }
    );
}

#[test]
fn a_genuine_reply_to_another_request_does_not_decrypt() {
    let fixture = Fixture::new();
    let node = fixture.node();
    let (opener, _) = fixture.exchange(&node);
    let (_, other_sealer) = fixture.exchange(&node);
    let response = fixture.reply(&other_sealer, Usage::new(3, 1));
    assert_eq!(verify_sealed_reply(&node, &opener, &response).unwrap_err(), VerifyError::Decrypt);
}

fn stream_setup(fixture: &Fixture, texts: &[&str]) -> (StreamVerifier, Vec<SealedStreamEvent>) {
    let node = fixture.node();
    let (opener, sealer) = fixture.exchange(&node);
    let events = fixture.stream(&sealer, "nonce-b58", texts);
    (StreamVerifier::new(node, opener.stream("nonce-b58").unwrap()), events)
}

fn open_all(verifier: &mut StreamVerifier, events: &[SealedStreamEvent]) -> Result<String, VerifyError> {
    let mut text = String::new();
    for event in events {
        text.push_str(&verifier.open(event)?.text);
    }
    verifier.finish()?;
    Ok(text)
}

#[test]
fn a_genuine_stream_verifies_every_chunk_and_ends_with_signed_usage() {
    let fixture = Fixture::new();
    let (mut verifier, events) = stream_setup(&fixture, &["one", " two", " three"]);
    let mut text = String::new();
    let mut end = None;
    for event in &events {
        let opened = verifier.open(event).unwrap();
        text.push_str(&opened.text);
        end = opened.end.or(end);
    }
    verifier.finish().unwrap();
    assert_eq!(text, "one two three");
    let (usage, verification) = end.unwrap();
    assert_eq!(usage, Usage::new(12, 3));
    assert_eq!((verification.node_id, verification.job_id), (fixture.node_id, events[0].job_id.clone().unwrap()));
}

#[test]
fn stream_gaps_reorders_duplicates_and_truncation_are_each_refused() {
    let fixture = Fixture::new();
    let (mut verifier, events) = stream_setup(&fixture, &["a", "b", "c"]);
    let missing = [events[0].clone(), events[2].clone(), events[3].clone()];
    assert_eq!(open_all(&mut verifier, &missing).unwrap_err(), VerifyError::StreamGap { expected: 1, got: 2 });

    let (mut verifier, events) = stream_setup(&fixture, &["a", "b", "c"]);
    let reordered = [events[0].clone(), events[2].clone(), events[1].clone(), events[3].clone()];
    assert_eq!(open_all(&mut verifier, &reordered).unwrap_err(), VerifyError::StreamGap { expected: 1, got: 2 });

    let (mut verifier, events) = stream_setup(&fixture, &["a", "b"]);
    let replayed = [events[0].clone(), events[1].clone(), events[1].clone()];
    assert_eq!(open_all(&mut verifier, &replayed).unwrap_err(), VerifyError::StreamDuplicate { expected: 2, got: 1 });

    let (mut verifier, events) = stream_setup(&fixture, &["a", "b"]);
    assert_eq!(open_all(&mut verifier, &events[..2]).unwrap_err(), VerifyError::StreamTruncated);

    let (mut verifier, events) = stream_setup(&fixture, &["a"]);
    let mut after_final = events.clone();
    after_final.push(events[1].clone());
    assert_eq!(open_all(&mut verifier, &after_final).unwrap_err(), VerifyError::StreamAfterFinal);
}

#[test]
fn a_tampered_chunk_or_final_usage_is_a_bad_signature_and_poisons_the_stream() {
    let fixture = Fixture::new();
    let (mut verifier, mut events) = stream_setup(&fixture, &["a", "b"]);
    events[1].ct = flip_one_char(&events[1].ct);
    events[1].proof_of_execution = None;
    verifier.open(&events[0]).unwrap();
    assert_eq!(verifier.open(&events[1]).unwrap_err(), VerifyError::BadSignature);
    // Nothing after a failure is accepted, not even the genuine final chunk.
    assert!(verifier.open(&events[2]).is_err());
    assert!(verifier.finish().is_err());

    let (mut verifier, mut events) = stream_setup(&fixture, &["a"]);
    events[1].usage = Some(Usage::new(12, 999));
    events[1].proof_of_execution = None;
    verifier.open(&events[0]).unwrap();
    assert_eq!(verifier.open(&events[1]).unwrap_err(), VerifyError::BadSignature);
}

#[test]
fn stream_key_changes_splices_and_unsigned_chunks_are_refused() {
    let fixture = Fixture::new();
    let (mut verifier, mut events) = stream_setup(&fixture, &["a"]);
    events[0].eph = None;
    assert_eq!(verifier.open(&events[0]).unwrap_err(), VerifyError::StreamKeyChanged);

    // A validly signed chunk of another stream of the same node, spliced in.
    let (mut verifier, events) = stream_setup(&fixture, &["a", "b"]);
    let (_, other) = stream_setup(&fixture, &["x", "y"]);
    verifier.open(&events[0]).unwrap();
    assert_eq!(verifier.open(&other[1]).unwrap_err(), VerifyError::StreamSpliced);

    let (mut verifier, mut events) = stream_setup(&fixture, &["a"]);
    events[0].sig = None;
    assert_eq!(verifier.open(&events[0]).unwrap_err(), VerifyError::Unsigned);

    let (mut verifier, mut events) = stream_setup(&fixture, &["a"]);
    events[0].sig_version = Some("v1".into());
    assert!(matches!(verifier.open(&events[0]), Err(VerifyError::UsageNotSigned(_))));
}

#[test]
fn a_chunk_sealed_under_another_nonce_does_not_decrypt() {
    let fixture = Fixture::new();
    let node = fixture.node();
    let (opener, sealer) = fixture.exchange(&node);
    let events = fixture.stream(&sealer, "the-real-nonce", &["a"]);
    let mut verifier = StreamVerifier::new(node, opener.stream("another-nonce").unwrap());
    assert_eq!(verifier.open(&events[0]).unwrap_err(), VerifyError::Decrypt);
}
