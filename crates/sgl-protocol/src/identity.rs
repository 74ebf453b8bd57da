//! The node's identity: an ed25519 key pair, the X25519 encryption key derived from its seed,
//! and signatures, all in the protocol's base58 encoding.
//!
//! The X25519 scalar is `SHA-256("sgl-x25519-derive:" || seed)`: one plain hash, not HKDF and not
//! the Edwards-to-Montgomery map, so the encryption key cannot be computed from the public
//! identity and must be published with a keybind signature ([`crate::keybind`]).

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::encoding::{DecodeError, b58_decode_array, b58_encode};

/// The prefix hashed with the ed25519 seed to derive the X25519 secret.
pub const X25519_DERIVE_PREFIX: &[u8] = b"sgl-x25519-derive:";

/// A signature did not verify, or could not even be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature or key text is not valid base58 of the right length.
    #[error("malformed signature or key: {0}")]
    Malformed(#[from] DecodeError),
    /// The public key bytes are not a valid ed25519 point.
    #[error("public key is not a valid ed25519 key")]
    InvalidKey,
    /// The signature does not match the message under this key.
    #[error("signature does not verify")]
    BadSignature,
}

/// A node's ed25519 signing identity. The 32-byte seed is the secret; it is zeroised on drop and
/// never printed.
#[derive(Clone)]
pub struct NodeIdentity {
    signing_key: SigningKey,
}

impl NodeIdentity {
    /// A new identity from a cryptographically secure random source.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self { signing_key: SigningKey::generate(rng) }
    }

    /// The identity whose secret seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self { signing_key: SigningKey::from_bytes(seed) }
    }

    /// The 32-byte secret seed, as stored in bytes 0–31 of `keypair.json`.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing_key.to_bytes())
    }

    /// The public identity key.
    pub fn public_key(&self) -> NodePublicKey {
        NodePublicKey(self.signing_key.verifying_key())
    }

    /// Signs `message` and returns the base58 signature the protocol sends.
    pub fn sign_b58(&self, message: &[u8]) -> String {
        b58_encode(self.signing_key.sign(message).to_bytes())
    }

    /// The X25519 encryption secret derived from this identity's seed.
    pub fn encryption_secret(&self) -> EncryptionSecret {
        let mut hasher = Sha256::new();
        hasher.update(X25519_DERIVE_PREFIX);
        hasher.update(self.seed().as_slice());
        let scalar = Zeroizing::new(<[u8; 32]>::from(hasher.finalize()));
        EncryptionSecret(x25519_dalek::StaticSecret::from(*scalar))
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity").field("public_key", &self.public_key()).field("seed", &"<redacted>").finish()
    }
}

/// A node's public ed25519 identity key (`public_key` at registration, `node_ed25519_pubkey` in
/// a reservation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodePublicKey(VerifyingKey);

impl NodePublicKey {
    /// Parses the base58 form.
    pub fn from_b58(text: &str) -> Result<Self, VerifyError> {
        Self::from_bytes(&b58_decode_array::<32>(text)?)
    }

    /// Parses the 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, VerifyError> {
        VerifyingKey::from_bytes(bytes).map(Self).map_err(|_| VerifyError::InvalidKey)
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The base58 form.
    pub fn to_b58(&self) -> String {
        b58_encode(self.0.as_bytes())
    }

    /// Verifies a base58 signature over `message`. Uses strict verification, which also refuses
    /// small-order keys and non-canonical signatures.
    pub fn verify_b58(&self, message: &[u8], signature_b58: &str) -> Result<(), VerifyError> {
        let signature = ed25519_dalek::Signature::from_bytes(&b58_decode_array::<64>(signature_b58)?);
        self.0.verify_strict(message, &signature).map_err(|_| VerifyError::BadSignature)
    }
}

impl fmt::Debug for NodePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodePublicKey({})", self.to_b58())
    }
}

impl fmt::Display for NodePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

/// An X25519 secret: the node's static encryption key, or a caller's per-request response key.
/// Zeroised on drop, never printed.
#[derive(Clone)]
pub struct EncryptionSecret(x25519_dalek::StaticSecret);

impl EncryptionSecret {
    /// A fresh random secret (a caller's response key, or an ephemeral key).
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(x25519_dalek::StaticSecret::random_from_rng(rng))
    }

    /// The secret from raw scalar bytes (clamping happens at multiplication, per RFC 7748).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The matching public key.
    pub fn public_key(&self) -> EncryptionPublicKey {
        EncryptionPublicKey(x25519_dalek::PublicKey::from(&self.0))
    }

    /// The raw Diffie-Hellman output with `their_public`, or `None` when it is all zeros
    /// (a non-contributory exchange with a low-order point), which every caller must refuse.
    pub(crate) fn agree(&self, their_public: &EncryptionPublicKey) -> Option<Zeroizing<[u8; 32]>> {
        let shared = self.0.diffie_hellman(&their_public.0);
        shared.was_contributory().then(|| Zeroizing::new(shared.to_bytes()))
    }
}

impl fmt::Debug for EncryptionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionSecret(public: {}, secret: <redacted>)", self.public_key())
    }
}

/// An X25519 public key in the protocol's base58 form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncryptionPublicKey(x25519_dalek::PublicKey);

impl EncryptionPublicKey {
    /// Parses the base58 form (exactly 32 bytes).
    pub fn from_b58(text: &str) -> Result<Self, DecodeError> {
        Ok(Self::from_bytes(b58_decode_array::<32>(text)?))
    }

    /// Wraps 32 raw bytes. Any bytes are a syntactically valid X25519 key; low-order keys are
    /// caught when an exchange with them turns out non-contributory.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::PublicKey::from(bytes))
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The base58 form.
    pub fn to_b58(&self) -> String {
        b58_encode(self.0.as_bytes())
    }
}

impl fmt::Debug for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionPublicKey({})", self.to_b58())
    }
}

impl fmt::Display for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b58())
    }
}

#[cfg(test)]
mod tests;
