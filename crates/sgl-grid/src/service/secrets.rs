//! Bearer secrets the grid issues (node tokens, API keys, registration codes, challenges):
//! random, base58, and stored only as SHA-256 hashes.

use rand_core::{OsRng, RngCore};
use sgl_protocol::encoding::{b58_encode, sha256_hex};

/// Prefix of callers' API keys.
pub const API_KEY_PREFIX: &str = "x402c_";

/// `n_bytes` of randomness.
pub fn random_bytes(n_bytes: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n_bytes];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// `n_bytes` of randomness as base58.
pub fn random_b58(n_bytes: usize) -> String {
    b58_encode(random_bytes(n_bytes))
}

/// A new node token (32 random bytes).
pub fn node_token() -> String {
    random_b58(32)
}

/// A new API key: `x402c_` and 32 random bytes.
pub fn api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_b58(32))
}

/// A registration code: short enough to paste, 16 random bytes.
pub fn registration_code() -> String {
    random_b58(16)
}

/// The stored form of any issued secret.
pub fn hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    //! Issued secrets are distinct, well-formed and hashed.

    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hash_to_hex() {
        let (a, b) = (api_key(), api_key());
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() > 40);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
        assert_ne!(node_token(), node_token());
    }
}
