//! Base58, the encoding of every key, signature and ciphertext on the wire.
//!
//! Invariants: decoding inverts encoding for any bytes; base58 is canonical, so any text that
//! decodes encodes back to itself, and text fails to decode exactly when it has a character
//! outside the alphabet; the fixed-length decoders (keys, signatures) agree with the general
//! one; a parsed key prints as the text it came from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sgl_protocol::encoding::{DecodeError, b58_decode, b58_decode_array, b58_encode, hex_decode_array};
use sgl_protocol::identity::{EncryptionPublicKey, NodePublicKey};

/// The Bitcoin alphabet, written out here as an independent oracle.
const ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fuzz_target!(|data: &[u8]| {
    let encoded = b58_encode(data);
    assert!(encoded.chars().all(|c| ALPHABET.contains(c)), "{encoded:?}");
    let n_zeros = data.iter().take_while(|&&b| b == 0).count();
    let n_ones = encoded.chars().take_while(|&c| c == '1').count();
    assert_eq!(n_zeros, n_ones, "one '1' per leading zero byte");
    assert_eq!(b58_decode(&encoded).as_deref(), Ok(data));

    let Some(text) = sgl_fuzz::text(data) else { return };
    match b58_decode(text) {
        Ok(bytes) => {
            assert!(text.chars().all(|c| ALPHABET.contains(c)), "{text:?} decoded");
            assert_eq!(b58_encode(&bytes), text, "base58 is canonical");
            check_fixed_length::<32>(text, &bytes);
            check_fixed_length::<64>(text, &bytes);
            // It may fail for the wrong length, or for bytes that are not a curve point.
            if let Ok(key) = NodePublicKey::from_b58(text) {
                assert_eq!(key.to_b58(), text);
            }
            match EncryptionPublicKey::from_b58(text) {
                Ok(key) => assert_eq!((bytes.len(), key.to_b58().as_str()), (32, text)),
                Err(error) => assert_eq!(error, DecodeError::Length { expected: 32, actual: bytes.len() }),
            }
        }
        Err(error) => {
            assert_eq!(error, DecodeError::Base58);
            assert!(text.chars().any(|c| !ALPHABET.contains(c)), "{text:?} refused");
        }
    }
    if let Ok(digest) = hex_decode_array::<32>(text) {
        let lower: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert!(lower.eq_ignore_ascii_case(text), "{text:?} decoded to {lower}");
    }
});

fn check_fixed_length<const N: usize>(text: &str, bytes: &[u8]) {
    match b58_decode_array::<N>(text) {
        Ok(array) => assert_eq!(array.as_slice(), bytes),
        Err(error) => {
            assert_ne!(bytes.len(), N);
            assert_eq!(error, DecodeError::Length { expected: N, actual: bytes.len() });
        }
    }
}
