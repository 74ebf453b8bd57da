//! Seal, open, sign and verify rates of the protocol's cryptography. Run through
//! `cargo xtask bench crypto`, which writes the table into BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sgl_protocol::api::inference::Usage;
use sgl_protocol::encoding::{b58_decode, b58_encode};
use sgl_protocol::envelope::{EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::keybind::{KeyBinding, sign_keybind};
use sgl_protocol::seal::{SealVersion, open_request, seal_request};

fn sealing(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    let node_secret = identity.encryption_secret();
    let node_key = node_secret.public_key();
    let request = vec![b'x'; 1024];

    c.bench_function("derive_x25519", |b| b.iter(|| black_box(&identity).encryption_secret()));
    c.bench_function("seal_request_v2_1k", |b| {
        b.iter(|| seal_request(&node_key, SealVersion::V2, black_box(&request), &mut rng).unwrap())
    });
    let (enc, opener) = seal_request(&node_key, SealVersion::V2, &request, &mut rng).unwrap();
    c.bench_function("open_request_v2_1k", |b| b.iter(|| open_request(&node_secret, black_box(&enc)).unwrap()));
    let reply_sealer = open_request(&node_secret, &enc).unwrap().reply;
    c.bench_function("seal_reply_v2_1k", |b| b.iter(|| reply_sealer.seal(black_box(&request), &mut rng).unwrap()));
    let sealed = reply_sealer.seal(&request, &mut rng).unwrap();
    c.bench_function("open_reply_v2_1k", |b| b.iter(|| opener.open(black_box(&sealed)).unwrap()));

    let chunk_text = [b'y'; 64];
    let mut stream = reply_sealer.stream("nonce", &mut rng).unwrap();
    c.bench_function("seal_chunk_v2_64", |b| b.iter(|| stream.seal_chunk(black_box(&chunk_text), false, &mut rng)));
    // Opening is strictly sequential, so seal a long run of chunks first and open them in order.
    let mut stream = reply_sealer.stream("nonce", &mut rng).unwrap();
    let chunks: Vec<_> = (0..200_000).map(|_| stream.seal_chunk(&chunk_text, false, &mut rng).unwrap()).collect();
    let mut stream_opener = opener.stream("nonce").unwrap();
    let mut next = chunks.iter().cycle();
    c.bench_function("open_chunk_v2_64", |b| {
        b.iter(|| {
            let chunk = next.next().expect("cycle never ends");
            if chunk.seq == 0 {
                stream_opener = opener.stream("nonce").unwrap();
            }
            let eph = chunk.ephemeral_public_key.as_deref();
            stream_opener.open_chunk(chunk.seq, &chunk.ciphertext, eph, false).unwrap()
        })
    });
}

/// Our base58 codec beside the byte-at-a-time reference (`bs58`) on a 16 KiB blob, a long
/// prompt's ciphertext.
fn base58(c: &mut Criterion) {
    let blob: Vec<u8> = (0..16 * 1024).map(|i| (i * 7 + 3) as u8).collect();
    let text = b58_encode(&blob);
    c.bench_function("b58_encode_16k", |b| b.iter(|| b58_encode(black_box(&blob))));
    c.bench_function("bs58_encode_16k", |b| b.iter(|| bs58::encode(black_box(&blob)).into_string()));
    c.bench_function("b58_decode_16k", |b| b.iter(|| b58_decode(black_box(&text)).unwrap()));
    c.bench_function("bs58_decode_16k", |b| b.iter(|| bs58::decode(black_box(&text)).into_vec().unwrap()));
}

fn signing(c: &mut Criterion) {
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    let key = identity.public_key();
    let job_id = JobId::random();
    let node_id = NodeId::random();
    let usage = Usage::new(100, 200);
    let model = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
    let payload = vec![b'z'; 1024];
    let claims = ResultClaims {
        job_id: &job_id,
        node_id: &node_id,
        kind: ResultKind::Sealed,
        payload: &payload,
        usage: Some(&usage),
        model_sha256: Some(model),
    };
    c.bench_function("sign_envelope_v2", |b| b.iter(|| black_box(&claims).sign(&identity, EnvelopeVersion::V2)));
    let signature = claims.sign(&identity, EnvelopeVersion::V2).unwrap();
    c.bench_function("verify_envelope_v2", |b| {
        b.iter(|| black_box(&claims).verify(&key, EnvelopeVersion::V2, &signature, None).unwrap())
    });

    let encryption_key = identity.encryption_secret().public_key();
    c.bench_function("sign_keybind", |b| b.iter(|| sign_keybind(&identity, &node_id, black_box(&encryption_key), 1)));
    let keybind = sign_keybind(&identity, &node_id, &encryption_key, 1);
    let binding = KeyBinding { node_id: &node_id, identity_key: &key, encryption_key: &encryption_key, key_version: 1 };
    c.bench_function("verify_keybind", |b| b.iter(|| black_box(&binding).verify(&keybind).unwrap()));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = sealing, signing, base58
}
criterion_main!(benches);
