//! The browser's sealing must be byte-compatible with `sgl-protocol`: this builds, with the
//! protocol crate's real code and fixed randomness, a request sealed to a node, a keybind, and a
//! node's signed sealed stream, and holds `dashboard/test-vectors/seal-v2.json` to it. The
//! browser tests (`crates/sgl-e2e/python/dashboard.py`) seal the same request in the page with
//! `seal.js` and must get the same bytes, and verify and open the stream there.

use rand_core::{CryptoRng, RngCore};
use serde_json::{Value, json};
use sgl_protocol::api::caller::SealedStreamEvent;
use sgl_protocol::api::inference::Usage;
use sgl_protocol::encoding::b58_encode;
use sgl_protocol::envelope::{ENVELOPE_V2, EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::{EncryptionSecret, NodeIdentity};
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::keybind::sign_keybind;
use sgl_protocol::seal::{SealVersion, open_request, seal_request};

/// Randomness read from a script, in order: every secret and nonce of the vector is known.
struct Scripted(std::collections::VecDeque<u8>);

impl RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }
    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            *byte = self.0.pop_front().expect("the script holds enough bytes");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Scripted {}

fn script(parts: &[&[u8]]) -> Scripted {
    Scripted(parts.iter().flat_map(|p| p.iter().copied()).collect())
}

/// The vector, as the committed file holds it.
pub(super) fn vector() -> Value {
    let hex = |bytes: &[u8]| hex::encode(bytes);
    let node_secret = EncryptionSecret::from_bytes([0x11; 32]);
    let node_key = node_secret.public_key();
    let (response, ephemeral, nonce) = ([0x22u8; 32], [0x33u8; 32], [0x44u8; 24]);
    let request_nonce = "8ZkP3xJ4uAqY2vW7eR1nTt";
    let plaintext = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "stream": true, "nonce": request_nonce})
        .to_string();
    let (enc, _) =
        seal_request(&node_key, SealVersion::V2, plaintext.as_bytes(), &mut script(&[&response, &ephemeral, &nonce]))
            .expect("sealing to a valid key");

    // The node: its identity, its keybind, and its stream back to the response key.
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    let node_id: NodeId = "f617ee39-17e3-4904-9474-112446c9326a".parse().expect("a uuid");
    let job_id: JobId = "00000000-0000-0000-0000-000000000007".parse().expect("a job id");
    let model_sha256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
    let keybind = sign_keybind(&identity, &node_id, &node_key, 1);
    let opened = open_request(&node_secret, &enc).expect("the node opens it");
    assert_eq!(opened.plaintext.as_slice(), plaintext.as_bytes());
    let stream_eph = [0x55u8; 32];
    let chunk_nonces: Vec<[u8; 24]> = (0u8..3).map(|i| [0x60 + i; 24]).collect();
    let mut rng = script(&[&stream_eph, &chunk_nonces[0], &chunk_nonces[1], &chunk_nonces[2]]);
    let mut sealer = opened.reply.stream(request_nonce, &mut rng).expect("a v2 stream");
    let texts = ["Hello", ", world", ""];
    let mut events = Vec::new();
    for (seq, text) in texts.iter().enumerate() {
        let is_final = seq == texts.len() - 1;
        let chunk = sealer.seal_chunk(text.as_bytes(), is_final, &mut rng).expect("a chunk");
        let usage = if is_final {
            Usage::new(3, 2)
        } else {
            Usage { prompt_tokens: 0, completion_tokens: seq as u64 + 1, total_tokens: seq as u64 + 1 }
        };
        let claims = ResultClaims {
            job_id: &job_id,
            node_id: &node_id,
            kind: ResultKind::Stream { seq: chunk.seq, is_final },
            payload: chunk.ciphertext.as_bytes(),
            usage: Some(&usage),
            model_sha256: Some(model_sha256),
        };
        events.push(SealedStreamEvent {
            seq: chunk.seq,
            ct: chunk.ciphertext.clone(),
            eph: chunk.ephemeral_public_key.clone(),
            is_final,
            sig: Some(claims.sign(&identity, EnvelopeVersion::V2).expect("signable")),
            sig_version: Some(ENVELOPE_V2.to_owned()),
            job_id: Some(job_id.clone()),
            node_id: Some(node_id),
            usage: Some(usage),
            model_sha256: Some(model_sha256.to_owned()),
            proof_of_execution: Some(claims.proof_of_execution()),
        });
    }
    json!({
        "about": "Made by sgl-grid's routes::dashboard::tests (seal_vector_is_current) with sgl-protocol's code and fixed randomness; the dashboard's seal.js must reproduce `request.enc` and open `stream`.",
        "node": {"x25519_secret_hex": hex(&[0x11; 32]), "x25519_public_b58": node_key.to_b58()},
        "reservation": {
            "reservation_token": "rsv-vector", "node_id": node_id, "node_x25519_pubkey": node_key.to_b58(),
            "node_ed25519_pubkey": identity.public_key().to_b58(), "expires_in_ms": 60000,
            "encryption_public_key_signature": keybind, "key_version": 1, "model_sha256": model_sha256,
        },
        "request": {
            "plaintext": plaintext,
            "response": {"secret_hex": hex(&response), "public_b58": EncryptionSecret::from_bytes(response).public_key().to_b58()},
            "ephemeral": {"secret_hex": hex(&ephemeral), "public_b58": EncryptionSecret::from_bytes(ephemeral).public_key().to_b58()},
            "nonce_hex": hex(&nonce),
            "enc": enc,
        },
        "stream": {"request_nonce": request_nonce, "events": events, "texts": texts, "usage": Usage::new(3, 2)},
        "b58_of_zeros": b58_encode([0u8, 0, 1, 2]),
    })
}
