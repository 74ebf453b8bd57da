//! The primitives shared by every sealing mode: key derivation and the nonce-prefixed
//! XChaCha20-Poly1305 blob.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{HKDF_SALT, MAX_CIPHERTEXT_B58_CHARS, NONCE_LEN, OpenError, SealVersion};
use crate::encoding::{b58_decode, b58_encode};

/// Poly1305 tag length.
const TAG_LEN: usize = 16;

/// A symmetric key, zeroised on drop.
pub(crate) type Key = Zeroizing<[u8; 32]>;

/// The v2 key: `HKDF-SHA256(salt = "sgl-e2e-v2-salt", ikm = shared, info)`.
pub(crate) fn derive_v2(shared: &[u8; 32], info: &[u8]) -> Key {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(HKDF_SALT), shared)
        .expand(info, key.as_mut_slice())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

/// The key for `version`: HKDF with `info` for v2, plain `SHA-256(shared)` for v1.
pub(crate) fn derive(version: SealVersion, shared: &[u8; 32], info: &[u8]) -> Key {
    match version {
        SealVersion::V1 => Zeroizing::new(crate::encoding::sha256(shared)),
        SealVersion::V2 => derive_v2(shared, info),
    }
}

/// Encrypts under a fresh random nonce and returns `b58(nonce || ct || tag)`.
pub(crate) fn encrypt(key: &Key, aad: &[u8], plaintext: &[u8], rng: &mut impl CryptoRngCore) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.as_slice().into());
    let ciphertext = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ciphertext);
    b58_encode(blob)
}

/// Decrypts `b58(nonce || ct || tag)`, checking size limits before decoding.
pub(crate) fn decrypt(key: &Key, aad: &[u8], blob_b58: &str) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if blob_b58.len() > MAX_CIPHERTEXT_B58_CHARS {
        return Err(OpenError::TooLarge);
    }
    let blob = b58_decode(blob_b58).map_err(|source| OpenError::Malformed { field: "ciphertext", source })?;
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError::TooShort);
    }
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.as_slice().into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Decrypt)
}
