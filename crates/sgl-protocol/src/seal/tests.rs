//! Sealing tests: the cross-language vector of §2.13, negotiation, and property tests that
//! every mode round-trips and that any tampering, key swap, reordering, replay or truncation
//! fails.

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::api::sealed::SealedInput;
use crate::encoding::{b58_decode, b58_encode};
use crate::identity::{EncryptionSecret, NodeIdentity};

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn node_secret(seed: u8) -> EncryptionSecret {
    NodeIdentity::from_seed(&[seed; 32]).encryption_secret()
}

/// Flips one bit of a base58 blob's decoded bytes.
fn flip_bit(blob_b58: &str, bit: usize) -> String {
    let mut bytes = b58_decode(blob_b58).unwrap();
    let idx = bit % (bytes.len() * 8);
    bytes[idx / 8] ^= 1 << (idx % 8);
    b58_encode(bytes)
}

#[test]
fn seed_vector_2_13_cross_language_v2_ciphertext_decrypts() {
    let enc = SealedInput {
        ciphertext: "gbEA6dFFVPxdar6e8QsjPKWj7xHcBo32nAqweQC5arnt4M5LmHhjREKoUTdVZsU6mmkxKu1XmvEo4oG8EUySndq2ytTyzDgyfMjyBSmPE2fqjdPDzKYtdrC2kZbAfCXv227GczHgmtQBqchA5qMB5ydxgxYnk9V8jb8sifTjHM61iEQkisdwYCqna".into(),
        client_ephemeral_pubkey: "DQFdwcBsqukJEBn9UNfQruaTHKHxHFMVRA2B5qZuFdfB".into(),
        client_response_pubkey: "2L54SXdEHm5mraF2X2GPid3m4PSkwVehEvhk487mWTx8".into(),
        algorithm: Some(ALGORITHM_V2.into()),
    };
    assert_eq!(b58_decode(&enc.ciphertext).unwrap().len(), 136);
    let opened = open_request(&node_secret(0x42), &enc).unwrap();
    assert_eq!(
        std::str::from_utf8(&opened.plaintext).unwrap(),
        r#"{"messages":[{"role":"user","content":"cross-lang v2 test"}],"temperature":0.7,"max_tokens":512}"#
    );
    assert_eq!(opened.reply.version(), SealVersion::V2);

    // The same bytes with the response key swapped, or under v1, must not open.
    let swapped =
        SealedInput { client_response_pubkey: "DQFdwcBsqukJEBn9UNfQruaTHKHxHFMVRA2B5qZuFdfB".into(), ..enc.clone() };
    assert_eq!(open_request(&node_secret(0x42), &swapped).unwrap_err(), OpenError::Decrypt);
    let as_v1 = SealedInput { algorithm: None, ..enc };
    assert_eq!(open_request(&node_secret(0x42), &as_v1).unwrap_err(), OpenError::Decrypt);
}

#[test]
fn negotiation_fails_closed_on_unknown_tags() {
    assert_eq!(SealVersion::from_tag(None), Ok(SealVersion::V1));
    assert_eq!(SealVersion::from_tag(Some(ALGORITHM_V1)), Ok(SealVersion::V1));
    assert_eq!(SealVersion::from_tag(Some(ALGORITHM_V2)), Ok(SealVersion::V2));
    for tag in [ALGORITHM_V2_STREAM, "x25519-xchacha20poly1305-hkdf-v3", "", "none"] {
        assert_eq!(SealVersion::from_tag(Some(tag)), Err(OpenError::UnknownAlgorithm(tag.into())));
    }
    let node = node_secret(1);
    let (mut enc, _) = seal_request(&node.public_key(), SealVersion::V2, b"{}", &mut rng(1)).unwrap();
    enc.algorithm = Some("aes-256-gcm".into());
    assert!(matches!(open_request(&node, &enc), Err(OpenError::UnknownAlgorithm(_))));
}

#[test]
fn low_order_keys_are_refused_both_ways() {
    let zero_key = b58_encode([0u8; 32]);
    let node = node_secret(2);
    let (mut enc, _) = seal_request(&node.public_key(), SealVersion::V2, b"{}", &mut rng(2)).unwrap();
    enc.client_ephemeral_pubkey = zero_key.clone();
    assert_eq!(open_request(&node, &enc).unwrap_err(), OpenError::NonContributory);
    let low_order_node = crate::identity::EncryptionPublicKey::from_bytes([0; 32]);
    assert_eq!(
        seal_request(&low_order_node, SealVersion::V2, b"{}", &mut rng(3)).unwrap_err(),
        SealError::NonContributory
    );
    let (mut enc, _) = seal_request(&node.public_key(), SealVersion::V2, b"{}", &mut rng(4)).unwrap();
    enc.client_response_pubkey = zero_key;
    // The AAD no longer matches, so the request does not even open; a v1 request would open
    // and then fail to seal the reply.
    assert_eq!(open_request(&node, &enc).unwrap_err(), OpenError::Decrypt);
}

#[test]
fn oversized_short_and_malformed_ciphertexts_are_refused() {
    let node = node_secret(3);
    let (enc, _) = seal_request(&node.public_key(), SealVersion::V2, b"{}", &mut rng(5)).unwrap();
    let huge = SealedInput { ciphertext: "2".repeat(MAX_CIPHERTEXT_B58_CHARS + 1), ..enc.clone() };
    assert_eq!(open_request(&node, &huge).unwrap_err(), OpenError::TooLarge);
    let short = SealedInput { ciphertext: b58_encode([1u8; 39]), ..enc.clone() };
    assert_eq!(open_request(&node, &short).unwrap_err(), OpenError::TooShort);
    let not_b58 = SealedInput { ciphertext: "0OIl".into(), ..enc };
    assert!(matches!(open_request(&node, &not_b58), Err(OpenError::Malformed { field: "ciphertext", .. })));
}

#[test]
fn v1_reply_is_readable_by_whoever_holds_the_swapped_response_key() {
    // Documents the seed weakness that makes us prefer v2: v1 does not bind the response key,
    // so a relay that swaps it gets a reply it can read, and the real caller cannot.
    let node = node_secret(4);
    let (mut enc, caller) = seal_request(&node.public_key(), SealVersion::V1, b"{}", &mut rng(6)).unwrap();
    let attacker = EncryptionSecret::generate(&mut rng(7));
    enc.client_response_pubkey = attacker.public_key().to_b58();
    let opened = open_request(&node, &enc).unwrap();
    let reply = opened.reply.seal(b"secret answer", &mut rng(8)).unwrap();
    assert_eq!(caller.open(&reply).unwrap_err(), OpenError::Decrypt);
    let attacker_view = ReplyOpener::new(SealVersion::V1, attacker);
    assert_eq!(attacker_view.open(&reply).unwrap().as_slice(), b"secret answer");
}

#[test]
fn streams_need_v2() {
    let node = node_secret(5);
    let (enc, caller) = seal_request(&node.public_key(), SealVersion::V1, b"{}", &mut rng(9)).unwrap();
    let opened = open_request(&node, &enc).unwrap();
    assert_eq!(opened.reply.stream("n", &mut rng(10)).unwrap_err(), SealError::StreamNeedsV2);
    assert_eq!(caller.stream("n").unwrap_err(), SealError::StreamNeedsV2);
}

#[test]
fn stream_sealer_refuses_chunks_after_final() {
    let node = node_secret(6);
    let (enc, _) = seal_request(&node.public_key(), SealVersion::V2, b"{}", &mut rng(11)).unwrap();
    let opened = open_request(&node, &enc).unwrap();
    let mut sealer = opened.reply.stream("nonce", &mut rng(12)).unwrap();
    sealer.seal_chunk(b"", true, &mut rng(13)).unwrap();
    assert_eq!(sealer.seal_chunk(b"more", false, &mut rng(14)).unwrap_err(), SealError::StreamFinished);
}

fn version_strategy() -> impl Strategy<Value = SealVersion> {
    prop_oneof![Just(SealVersion::V1), Just(SealVersion::V2)]
}

/// A sealed stream of `texts` followed by an empty final chunk, and the caller's opener.
fn sealed_stream(texts: &[Vec<u8>], seed: u64, nonce: &str) -> (Vec<SealedChunk>, StreamOpener) {
    let mut rng = rng(seed);
    let node = node_secret(9);
    let (enc, caller) = seal_request(&node.public_key(), SealVersion::V2, b"{}", &mut rng).unwrap();
    let opened = open_request(&node, &enc).unwrap();
    let mut sealer = opened.reply.stream(nonce, &mut rng).unwrap();
    let mut chunks: Vec<SealedChunk> =
        texts.iter().map(|text| sealer.seal_chunk(text, false, &mut rng).unwrap()).collect();
    chunks.push(sealer.seal_chunk(b"", true, &mut rng).unwrap());
    (chunks, caller.stream(nonce).unwrap())
}

fn open_all(opener: &mut StreamOpener, chunks: &[SealedChunk]) -> Result<Vec<u8>, StreamError> {
    let mut text = Vec::new();
    for chunk in chunks {
        let eph = chunk.ephemeral_public_key.as_deref();
        text.extend_from_slice(&opener.open_chunk(chunk.seq, &chunk.ciphertext, eph, chunk.is_final)?);
    }
    opener.finish()?;
    Ok(text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn request_and_reply_round_trip(version in version_strategy(), node_seed: u8, seed: u64,
                                    request in proptest::collection::vec(any::<u8>(), 0..1024),
                                    reply in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let mut rng = rng(seed);
        let node = node_secret(node_seed);
        let (enc, caller) = seal_request(&node.public_key(), version, &request, &mut rng).unwrap();
        prop_assert_eq!(enc.algorithm.as_deref(), Some(version.tag()));
        let opened = open_request(&node, &enc).unwrap();
        prop_assert_eq!(opened.plaintext.as_slice(), request.as_slice());
        let sealed = opened.reply.seal(&reply, &mut rng).unwrap();
        prop_assert_eq!(sealed.algorithm.as_str(), version.tag());
        let answer = caller.open(&sealed).unwrap();
        prop_assert_eq!(answer.as_slice(), reply.as_slice());
    }

    #[test]
    fn any_flipped_bit_in_a_request_fails(version in version_strategy(), seed: u64, bit: usize,
                                          request in proptest::collection::vec(any::<u8>(), 0..256)) {
        let node = node_secret(7);
        let (mut enc, _) = seal_request(&node.public_key(), version, &request, &mut rng(seed)).unwrap();
        enc.ciphertext = flip_bit(&enc.ciphertext, bit);
        prop_assert_eq!(open_request(&node, &enc).unwrap_err(), OpenError::Decrypt);
    }

    #[test]
    fn any_flipped_bit_in_a_reply_fails(version in version_strategy(), seed: u64, bit: usize,
                                        reply in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut rng = rng(seed);
        let node = node_secret(8);
        let (enc, caller) = seal_request(&node.public_key(), version, b"{}", &mut rng).unwrap();
        let mut sealed = open_request(&node, &enc).unwrap().reply.seal(&reply, &mut rng).unwrap();
        sealed.ciphertext = flip_bit(&sealed.ciphertext, bit);
        prop_assert_eq!(caller.open(&sealed).unwrap_err(), OpenError::Decrypt);
    }

    #[test]
    fn swapped_keys_fail(version in version_strategy(), seed: u64) {
        let mut rng = rng(seed);
        let node = node_secret(10);
        let other_node = node_secret(11);
        let stranger = EncryptionSecret::generate(&mut rng).public_key().to_b58();
        let (enc, caller) = seal_request(&node.public_key(), version, b"{\"m\":1}", &mut rng).unwrap();
        // Sealed to one node, opened by another.
        prop_assert_eq!(open_request(&other_node, &enc).unwrap_err(), OpenError::Decrypt);
        // A swapped ephemeral key.
        let eph_swapped = SealedInput { client_ephemeral_pubkey: stranger.clone(), ..enc.clone() };
        prop_assert_eq!(open_request(&node, &eph_swapped).unwrap_err(), OpenError::Decrypt);
        // A swapped response key (v2 binds it; v1 is the documented exception above).
        if version == SealVersion::V2 {
            let resp_swapped = SealedInput { client_response_pubkey: stranger.clone(), ..enc.clone() };
            prop_assert_eq!(open_request(&node, &resp_swapped).unwrap_err(), OpenError::Decrypt);
        }
        // A reply whose ephemeral key was swapped, or read by another request's opener.
        let mut sealed = open_request(&node, &enc).unwrap().reply.seal(b"answer", &mut rng).unwrap();
        let (_, other_caller) = seal_request(&node.public_key(), version, b"{}", &mut rng).unwrap();
        prop_assert_eq!(other_caller.open(&sealed).unwrap_err(), OpenError::Decrypt);
        sealed.ephemeral_public_key = stranger;
        prop_assert_eq!(caller.open(&sealed).unwrap_err(), OpenError::Decrypt);
    }

    #[test]
    fn streams_round_trip(texts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
                          seed: u64) {
        let (chunks, mut opener) = sealed_stream(&texts, seed, "req-nonce");
        prop_assert!(chunks[0].ephemeral_public_key.is_some());
        prop_assert!(chunks[1..].iter().all(|c| c.ephemeral_public_key.is_none()));
        prop_assert_eq!(open_all(&mut opener, &chunks).unwrap(), texts.concat());
        prop_assert_eq!(opener.chunks_opened(), texts.len() as u64 + 1);
    }

    #[test]
    fn reordered_replayed_or_dropped_chunks_fail(n_texts in 2usize..8, seed: u64, pick: usize) {
        let texts: Vec<Vec<u8>> = (0..n_texts).map(|i| vec![b'a' + i as u8; 3]).collect();
        let (chunks, _) = sealed_stream(&texts, seed, "nonce");
        let i = pick % (chunks.len() - 1);
        let opener = || sealed_stream(&texts, seed, "nonce").1;

        let mut swapped = chunks.clone();
        swapped.swap(i, i + 1);
        prop_assert!(open_all(&mut opener(), &swapped).is_err());

        let mut replayed = chunks.clone();
        replayed.insert(i + 1, chunks[i].clone());
        prop_assert!(open_all(&mut opener(), &replayed).is_err());

        let mut dropped = chunks.clone();
        dropped.remove(i);
        prop_assert!(open_all(&mut opener(), &dropped).is_err());

        // A relay that renumbers a chunk to close a gap is caught by the AAD.
        let mut renumbered = chunks.clone();
        renumbered.remove(i + 1);
        for (idx, chunk) in renumbered.iter_mut().enumerate() { chunk.seq = idx as u64; }
        prop_assert!(open_all(&mut opener(), &renumbered).is_err());
    }

    #[test]
    fn truncated_or_fake_final_streams_fail(n_texts in 1usize..8, seed: u64, keep: usize) {
        let texts: Vec<Vec<u8>> = (0..n_texts).map(|i| vec![b'x'; i + 1]).collect();
        let (chunks, mut opener) = sealed_stream(&texts, seed, "nonce");
        let kept = &chunks[..keep % chunks.len()];
        prop_assert_eq!(open_all(&mut opener, kept).unwrap_err(), StreamError::Truncated);

        // Marking a middle chunk final (to end the answer early) breaks its AAD.
        let (mut chunks, mut opener) = sealed_stream(&texts, seed, "nonce");
        let cut = keep % n_texts;
        chunks[cut].is_final = true;
        let result = open_all(&mut opener, &chunks[..=cut]);
        prop_assert!(matches!(result, Err(StreamError::Open(OpenError::Decrypt))));
        // And the opener stays failed afterwards.
        let next = &chunks[cut];
        let again = opener.open_chunk(next.seq, &next.ciphertext, None, false);
        prop_assert_eq!(again.unwrap_err(), StreamError::Poisoned);
    }

    #[test]
    fn chunks_do_not_splice_across_requests_or_flip(seed: u64, bit: usize) {
        let texts = vec![b"hello".to_vec(), b"world".to_vec()];
        let (chunks, mut opener) = sealed_stream(&texts, seed, "nonce-a");
        // The same stream keys but another request nonce: every chunk's AAD differs.
        let mut other = sealed_stream(&texts, seed, "nonce-b").1;
        prop_assert!(open_all(&mut other, &chunks).is_err());
        let mut flipped = chunks.clone();
        flipped[1].ciphertext = flip_bit(&flipped[1].ciphertext, bit);
        prop_assert!(open_all(&mut opener, &flipped).is_err());
    }
}
