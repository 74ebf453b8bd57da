//! Base58 (Bitcoin/Solana alphabet) and lowercase hex, the two text encodings of the protocol.
//!
//! Keys, signatures and ciphertexts travel as base58 strings; SHA-256 digests as 64 lowercase
//! hex characters. Nothing on the wire uses base64.
//!
//! Base58 is a base conversion of the whole blob, so its cost grows with the square of the
//! length. The common byte-at-a-time codec (the `bs58` crate) takes 1.3 ms to encode a 1 KiB
//! ciphertext and 330 ms for 16 KiB; converting through `num-bigint`'s word-sized limbs gives
//! the same strings 30–100 times faster (BENCHMARKS.md), which matters because every prompt
//! and reply is a base58 ciphertext.

use num_bigint::BigUint;
use sha2::{Digest, Sha256};

/// The Bitcoin/Solana base58 alphabet.
const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Digit value of each ASCII byte, or 0xff for bytes outside the alphabet.
const DIGIT_OF: [u8; 128] = {
    let mut table = [0xff; 128];
    let mut idx = 0;
    while idx < ALPHABET.len() {
        table[ALPHABET[idx] as usize] = idx as u8;
        idx += 1;
    }
    table
};

/// A base58 or hex string that could not be decoded into the expected bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text is not valid base58.
    #[error("invalid base58")]
    Base58,
    /// The text is not valid hex.
    #[error("invalid hex")]
    Hex,
    /// The decoded bytes have the wrong length.
    #[error("expected {expected} bytes, got {actual}")]
    Length {
        /// The length the field must have.
        expected: usize,
        /// The length that was decoded.
        actual: usize,
    },
}

/// Encodes bytes as base58: one `1` per leading zero byte, then the rest as a big-endian
/// number in base 58.
pub fn b58_encode(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let n_zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let mut text = vec![ALPHABET[0]; n_zeros];
    if n_zeros < bytes.len() {
        let number = BigUint::from_bytes_be(&bytes[n_zeros..]);
        text.extend(number.to_radix_be(58).into_iter().map(|digit| ALPHABET[usize::from(digit)]));
    }
    String::from_utf8(text).expect("the base58 alphabet is ASCII")
}

/// Decodes base58 of any length.
pub fn b58_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let n_ones = text.bytes().take_while(|&c| c == ALPHABET[0]).count();
    let digits = text.as_bytes()[n_ones..]
        .iter()
        .map(|&c| DIGIT_OF.get(usize::from(c)).copied().filter(|&d| d != 0xff).ok_or(DecodeError::Base58))
        .collect::<Result<Vec<u8>, _>>()?;
    let mut bytes = vec![0u8; n_ones];
    if !digits.is_empty() {
        let number = BigUint::from_radix_be(&digits, 58).ok_or(DecodeError::Base58)?;
        bytes.extend(number.to_bytes_be());
    }
    Ok(bytes)
}

/// Decodes base58 that must hold exactly `N` bytes (a key or a signature).
pub fn b58_decode_array<const N: usize>(text: &str) -> Result<[u8; N], DecodeError> {
    let bytes = b58_decode(text)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| DecodeError::Length { expected: N, actual: bytes.len() })
}

/// Decodes hex that must hold exactly `N` bytes; upper and lower case are both accepted.
pub fn hex_decode_array<const N: usize>(text: &str) -> Result<[u8; N], DecodeError> {
    let bytes = hex::decode(text).map_err(|_| DecodeError::Hex)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| DecodeError::Length { expected: N, actual: bytes.len() })
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: impl AsRef<[u8]>) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of `bytes` as 64 lowercase hex characters, the protocol's digest encoding.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(sha256(bytes))
}

/// True when `text` is a SHA-256 digest in the protocol's encoding: 64 lowercase hex characters.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests;
