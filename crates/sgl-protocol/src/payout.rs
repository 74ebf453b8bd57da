//! The operator's payout key: secp256k1, with its EIP-55 checksummed EVM address.
//!
//! Kept apart from the ed25519 node identity so that payouts go to an address any EVM wallet
//! understands, and so that leaking one key does not leak the other.

use std::fmt;
use std::str::FromStr;

use k256::ecdsa::{SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

/// A payout key or an EVM address that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayoutKeyError {
    /// The secret is not 32 bytes of hex, or not a valid secp256k1 scalar.
    #[error("payout key is not a valid secp256k1 secret")]
    InvalidSecret,
    /// The address is not `0x` followed by 40 hex digits.
    #[error("not an EVM address: {0:?}")]
    InvalidAddress(String),
    /// The address mixes case but the EIP-55 checksum does not match.
    #[error("EVM address has a wrong EIP-55 checksum: {0:?}")]
    BadChecksum(String),
}

/// A secp256k1 secret key. Zeroised on drop, never printed.
#[derive(Clone)]
pub struct PayoutKey(SigningKey);

impl PayoutKey {
    /// A new key from a cryptographically secure random source.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(SigningKey::random(rng))
    }

    /// The key whose secret scalar is `bytes` (big-endian).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PayoutKeyError> {
        SigningKey::from_bytes(bytes.into()).map(Self).map_err(|_| PayoutKeyError::InvalidSecret)
    }

    /// Parses 64 hex digits, with or without `0x`.
    pub fn from_hex(text: &str) -> Result<Self, PayoutKeyError> {
        let digits = text.trim().trim_start_matches("0x");
        let bytes =
            Zeroizing::new(crate::encoding::hex_decode_array::<32>(digits).map_err(|_| PayoutKeyError::InvalidSecret)?);
        Self::from_bytes(&bytes)
    }

    /// The secret scalar as 64 lowercase hex digits, for the key file only.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.to_bytes()))
    }

    /// The secp256k1 signing key, for wallet signatures (see [`crate::wallet`]).
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }

    /// The EVM address this key controls.
    pub fn address(&self) -> EvmAddress {
        EvmAddress::from_verifying_key(self.0.verifying_key())
    }
}

impl fmt::Debug for PayoutKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PayoutKey(address: {}, secret: <redacted>)", self.address())
    }
}

/// A 20-byte EVM address. Displays in EIP-55 mixed-case checksum form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvmAddress([u8; 20]);

impl EvmAddress {
    /// The address of a secp256k1 public key: the last 20 bytes of the Keccak-256 of the
    /// uncompressed point without its `0x04` prefix.
    pub fn from_verifying_key(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let digest = Keccak256::digest(&point.as_bytes()[1..]);
        let mut address = [0u8; 20];
        address.copy_from_slice(&digest[12..]);
        Self(address)
    }

    /// The 20 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The EIP-55 checksummed form, `0x` and 40 mixed-case hex digits.
    pub fn to_checksummed(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (idx, ch) in lower.chars().enumerate() {
            let nibble = (hash[idx / 2] >> (if idx % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if nibble >= 8 { ch.to_ascii_uppercase() } else { ch });
        }
        out
    }
}

impl FromStr for EvmAddress {
    type Err = PayoutKeyError;

    /// Accepts all-lowercase or all-uppercase digits without a checksum, and mixed case only
    /// when the EIP-55 checksum matches.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text
            .strip_prefix("0x")
            .filter(|d| d.len() == 40)
            .ok_or_else(|| PayoutKeyError::InvalidAddress(text.to_owned()))?;
        let bytes = crate::encoding::hex_decode_array::<20>(digits)
            .map_err(|_| PayoutKeyError::InvalidAddress(text.to_owned()))?;
        let address = Self(bytes);
        let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper && address.to_checksummed() != text {
            return Err(PayoutKeyError::BadChecksum(text.to_owned()));
        }
        Ok(address)
    }
}

impl fmt::Display for EvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksummed())
    }
}

impl fmt::Debug for EvmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EvmAddress({})", self.to_checksummed())
    }
}

impl Serialize for EvmAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EvmAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
