//! Result envelope signatures (`sgl-result-v1` and `sgl-result-v2`), as the grid and callers
//! check them on every result and stream chunk, with arbitrary claims and signature strings.
//!
//! The input is text, one field per line: envelope version tag, job id, node id, kind (`plain`,
//! `sealed` or `stream:SEQ:0|1`), payload, usage (`PROMPT,COMPLETION,TOTAL` or `-`), model
//! sha256 (or `-`), claimed proof of execution (or `-`), signature.
//!
//! Invariants: a version tag prints as it parses; v2 refuses claims without
//! usage where usage is due, and a model hash that is not 64 lowercase hex digits; a claimed
//! proof must be the computed one; otherwise a signature verifies exactly when it is the node's
//! own over these claims, whose v2 form covers the usage and the model while v1 covers neither.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sgl_fuzz::node_identity;
use sgl_protocol::api::inference::Usage;
use sgl_protocol::encoding::is_sha256_hex;
use sgl_protocol::envelope::{EnvelopeError, EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::VerifyError;
use sgl_protocol::ids::{JobId, NodeId};

fuzz_target!(|data: &[u8]| {
    let Some(text) = sgl_fuzz::text(data) else { return };
    let fields: Vec<&str> = text.split('\n').collect();
    let [tag, job_id, node_id, kind, payload, usage, model, proof, signature] = fields[..] else { return };
    let version = match EnvelopeVersion::from_tag(tag) {
        Ok(version) => {
            assert_eq!(version.tag(), tag);
            version
        }
        Err(error) => {
            assert_eq!(error, EnvelopeError::UnknownVersion(tag.to_owned()));
            return;
        }
    };
    let (Ok(job_id), Ok(node_id), Some(kind)) = (job_id.parse::<JobId>(), node_id.parse::<NodeId>(), parse_kind(kind))
    else {
        return;
    };
    let usage = parse_usage(usage);
    let claims = ResultClaims {
        job_id: &job_id,
        node_id: &node_id,
        kind,
        payload: payload.as_bytes(),
        usage: usage.as_ref(),
        model_sha256: (model != "-").then_some(model),
    };
    let proof = (proof != "-").then_some(proof);
    let key = node_identity().public_key();

    let message = claims.message(version);
    let usage_due = matches!(kind, ResultKind::Plain | ResultKind::Sealed | ResultKind::Stream { is_final: true, .. });
    let expected_error = match version {
        EnvelopeVersion::V1 => None,
        EnvelopeVersion::V2 if usage_due && usage.is_none() => Some(EnvelopeError::UsagePlacement),
        EnvelopeVersion::V2 if claims.model_sha256.is_some_and(|m| !is_sha256_hex(m)) => {
            Some(EnvelopeError::BadModelHash)
        }
        EnvelopeVersion::V2 => None,
    };
    assert_eq!(message.as_ref().err(), expected_error.as_ref());
    let result = claims.verify(&key, version, signature, proof);
    if proof.is_some_and(|proof| proof != claims.proof_of_execution()) {
        assert_eq!(result, Err(EnvelopeError::ProofMismatch));
        return;
    }
    if let Some(error) = expected_error {
        assert_eq!(result, Err(error));
        return;
    }

    let genuine = claims.sign(&node_identity(), version).expect("the message builds");
    assert_eq!(claims.verify(&key, version, &genuine, proof), Ok(()));
    match result {
        Ok(()) => assert_eq!(signature, genuine, "another signature verified"),
        Err(error) => assert_ne!(signature, genuine, "the genuine signature failed: {error}"),
    }

    // What each version covers beyond the payload.
    let bare = ResultClaims { usage: None, model_sha256: None, ..claims };
    let other_usage =
        Usage { completion_tokens: usage.map_or(1, |u| u.completion_tokens ^ 1), ..usage.unwrap_or_default() };
    let recounted = ResultClaims { usage: Some(&other_usage), ..claims };
    match version {
        EnvelopeVersion::V1 => {
            assert_eq!(bare.verify(&key, version, &genuine, None), Ok(()));
            assert_eq!(recounted.verify(&key, version, &genuine, None), Ok(()));
        }
        EnvelopeVersion::V2 => {
            let refused = Err(EnvelopeError::Signature(VerifyError::BadSignature));
            assert_eq!(recounted.verify(&key, version, &genuine, None), refused);
            if claims.model_sha256.is_some() && !usage_due {
                assert_eq!(bare.verify(&key, version, &genuine, None), refused);
            }
        }
    }
});

fn parse_kind(text: &str) -> Option<ResultKind> {
    Some(match text {
        "plain" => ResultKind::Plain,
        "sealed" => ResultKind::Sealed,
        _ => {
            let (seq, is_final) = text.strip_prefix("stream:")?.split_once(':')?;
            let is_final = match is_final {
                "0" => false,
                "1" => true,
                _ => return None,
            };
            ResultKind::Stream { seq: seq.parse().ok()?, is_final }
        }
    })
}

fn parse_usage(text: &str) -> Option<Usage> {
    let mut counts = text.split(',').map(|count| count.parse::<u64>().ok());
    match (counts.next()?, counts.next()?, counts.next()?, counts.next()) {
        (Some(prompt_tokens), Some(completion_tokens), Some(total_tokens), None) => {
            Some(Usage { completion_tokens, prompt_tokens, total_tokens })
        }
        _ => None,
    }
}
