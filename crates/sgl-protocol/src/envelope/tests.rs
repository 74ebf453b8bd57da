//! Envelope tests: the seed vector of §2.9, and that v2 covers every claimed field.

use super::*;

fn job() -> JobId {
    "00000000-0000-0000-0000-000000000001".parse().unwrap()
}

fn node() -> NodeId {
    "f617ee39-17e3-4904-9474-112446c9326a".parse().unwrap()
}

#[test]
fn seed_vector_2_9_plain_envelope_message() {
    let (job, node) = (job(), node());
    let claims = ResultClaims {
        job_id: &job,
        node_id: &node,
        kind: ResultKind::Plain,
        payload: br#"{"content":"hi"}"#,
        usage: None,
        model_sha256: None,
    };
    assert_eq!(
        claims.message(EnvelopeVersion::V1).unwrap(),
        "sgl-result-v1\n00000000-0000-0000-0000-000000000001\nplain\n\
         d710af77f08a261f9db380eae9a0d4e56b91327d359e9c0c768c009cb849c6e6"
    );
}

#[test]
fn kinds_print_as_the_seed_spells_them() {
    assert_eq!(ResultKind::Plain.to_string(), "plain");
    assert_eq!(ResultKind::Sealed.to_string(), "sealed");
    assert_eq!(ResultKind::Stream { seq: 0, is_final: false }.to_string(), "stream:0:0");
    assert_eq!(ResultKind::Stream { seq: 7, is_final: true }.to_string(), "stream:7:1");
}

#[test]
fn v2_message_layout_is_exact() {
    let (job, node) = (job(), node());
    let usage = Usage::new(17, 42);
    let model = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
    let claims = ResultClaims {
        job_id: &job,
        node_id: &node,
        kind: ResultKind::Sealed,
        payload: b"CIPHERTEXT",
        usage: Some(&usage),
        model_sha256: Some(model),
    };
    let proof = proof_of_execution(&job, b"CIPHERTEXT", &node);
    let mut preimage = job.as_str().as_bytes().to_vec();
    preimage.extend_from_slice(b"CIPHERTEXT");
    preimage.extend_from_slice(node.to_string().as_bytes());
    assert_eq!(proof, crate::encoding::sha256_hex(&preimage));
    let expected = format!(
        "sgl-result-v2\n{job}\n{node}\nsealed\n{}\nprompt_tokens=17;completion_tokens=42;total_tokens=59\n{model}\n{proof}",
        crate::encoding::sha256_hex(b"CIPHERTEXT")
    );
    assert_eq!(claims.message(EnvelopeVersion::V2).unwrap(), expected);
    let middle_chunk = ResultClaims {
        kind: ResultKind::Stream { seq: 2, is_final: false },
        usage: None,
        model_sha256: None,
        ..claims
    };
    assert!(middle_chunk.message(EnvelopeVersion::V2).unwrap().contains("\nstream:2:0\n"));
    assert!(middle_chunk.message(EnvelopeVersion::V2).unwrap().contains("\n-\n-\n"));
    let bad_model = ResultClaims { model_sha256: Some("ABC"), ..claims };
    assert_eq!(bad_model.message(EnvelopeVersion::V2), Err(EnvelopeError::BadModelHash));
}

#[test]
fn v2_signature_covers_usage_model_node_kind_and_payload() {
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    let key = identity.public_key();
    let (job, node, other_node) = (job(), node(), NodeId::random());
    let usage = Usage::new(10, 5);
    let inflated = Usage::new(10, 500);
    let model = "a".repeat(64);
    let other_model = "b".repeat(64);
    let claims = ResultClaims {
        job_id: &job,
        node_id: &node,
        kind: ResultKind::Stream { seq: 3, is_final: true },
        payload: b"chunk",
        usage: Some(&usage),
        model_sha256: Some(&model),
    };
    let signature = claims.sign(&identity, EnvelopeVersion::V2).unwrap();
    let proof = claims.proof_of_execution();
    claims.verify(&key, EnvelopeVersion::V2, &signature, Some(&proof)).unwrap();
    let altered = [
        ResultClaims { usage: Some(&inflated), ..claims },
        ResultClaims { model_sha256: Some(&other_model), ..claims },
        ResultClaims { node_id: &other_node, ..claims },
        ResultClaims { kind: ResultKind::Stream { seq: 4, is_final: true }, ..claims },
        ResultClaims { kind: ResultKind::Stream { seq: 3, is_final: false }, usage: None, ..claims },
        ResultClaims { payload: b"chunK", ..claims },
    ];
    for tampered in altered {
        let result = tampered.verify(&key, EnvelopeVersion::V2, &signature, None);
        assert_eq!(result, Err(EnvelopeError::Signature(VerifyError::BadSignature)), "{tampered:?}");
    }
    assert_eq!(
        claims.verify(&key, EnvelopeVersion::V2, &signature, Some(&"0".repeat(64))),
        Err(EnvelopeError::ProofMismatch)
    );
    // A v2 signature is not a v1 signature, and v1 ignores usage (the seed weakness v2 fixes).
    assert!(claims.verify(&key, EnvelopeVersion::V1, &signature, None).is_err());
    let v1 = claims.sign(&identity, EnvelopeVersion::V1).unwrap();
    ResultClaims { usage: Some(&inflated), ..claims }.verify(&key, EnvelopeVersion::V1, &v1, None).unwrap();
}

#[test]
fn v2_usage_sits_on_completions_and_final_chunks_only() {
    let (job, node) = (job(), node());
    let usage = Usage::new(1, 1);
    let base = ResultClaims {
        job_id: &job,
        node_id: &node,
        kind: ResultKind::Sealed,
        payload: b"x",
        usage: None,
        model_sha256: None,
    };
    let cases = [
        (ResultKind::Plain, false, false),
        (ResultKind::Sealed, false, false),
        (ResultKind::Sealed, true, true),
        (ResultKind::Stream { seq: 4, is_final: true }, false, false),
        (ResultKind::Stream { seq: 4, is_final: true }, true, true),
        // A running count on a delta is signed like any usage.
        (ResultKind::Stream { seq: 4, is_final: false }, true, true),
        (ResultKind::Stream { seq: 4, is_final: false }, false, true),
    ];
    for (kind, with_usage, ok) in cases {
        let claims = ResultClaims { kind, usage: with_usage.then_some(&usage), ..base };
        let result = claims.message(EnvelopeVersion::V2);
        assert_eq!(result.is_ok(), ok, "{kind} with usage {with_usage}");
        if !ok {
            assert_eq!(result.unwrap_err(), EnvelopeError::UsagePlacement);
        }
        // v1 never looks at usage.
        claims.message(EnvelopeVersion::V1).unwrap();
    }
}

#[test]
fn nodes_sign_v2_only_for_grids_that_list_it() {
    assert_eq!(EnvelopeVersion::negotiate(&[]), EnvelopeVersion::V1);
    assert_eq!(EnvelopeVersion::negotiate(&["v1".into()]), EnvelopeVersion::V1);
    assert_eq!(EnvelopeVersion::negotiate(&["v1".into(), "v2".into()]), EnvelopeVersion::V2);
}

#[test]
fn versions_parse_and_unknown_ones_fail() {
    assert_eq!(EnvelopeVersion::from_tag("v1"), Ok(EnvelopeVersion::V1));
    assert_eq!(EnvelopeVersion::from_tag("v2"), Ok(EnvelopeVersion::V2));
    assert_eq!(EnvelopeVersion::from_tag("v3"), Err(EnvelopeError::UnknownVersion("v3".into())));
}

/// The vector of `docs/protocol.md` §1, reproduced independently with Python's `hashlib` and
/// `cryptography` when it was written.
#[test]
fn v2_golden_vector() {
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    let (job, node) = (job(), node());
    let usage = Usage::new(3, 2);
    let claims = ResultClaims {
        job_id: &job,
        node_id: &node,
        kind: ResultKind::Plain,
        payload: br#"{"content":"hi"}"#,
        usage: Some(&usage),
        model_sha256: Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    };
    let proof = "844513d782db70d3bbdf600e5b48aa89271047bea6176d1feaf99b5514ed0c81";
    assert_eq!(claims.proof_of_execution(), proof);
    let signature = claims.sign(&identity, EnvelopeVersion::V2).unwrap();
    assert_eq!(signature, "4m5Cwd7aNjtnGNTAKJrAiuVUAFpu2gcPZ51aXHRWQgrLhe6jkvSbhz4vvkcCKPPxQkMVn3RVqbThoU48axeUVsRc");
    claims.verify(&identity.public_key(), EnvelopeVersion::V2, &signature, Some(proof)).unwrap();
}
