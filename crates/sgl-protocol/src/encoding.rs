//! Base58 (Bitcoin/Solana alphabet) and lowercase hex, the two text encodings of the protocol.
//!
//! Keys, signatures and ciphertexts travel as base58 strings; SHA-256 digests as 64 lowercase
//! hex characters. Nothing on the wire uses base64.

use sha2::{Digest, Sha256};

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

/// Encodes bytes as base58.
pub fn b58_encode(bytes: impl AsRef<[u8]>) -> String {
    bs58::encode(bytes).into_string()
}

/// Decodes base58 of any length.
pub fn b58_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    bs58::decode(text).into_vec().map_err(|_| DecodeError::Base58)
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
