//! Sealing prompts to a node and replies to a caller: the seed's v1, v2 and v2-stream formats,
//! byte for byte (sgl-protocol.md §2.4–§2.8).
//!
//! Every blob is `base58(nonce24 || XChaCha20-Poly1305(key, nonce, aad, plaintext) || tag16)`.
//! v2 derives keys with HKDF-SHA256 and binds the public context into the AAD; v1 hashes the
//! shared secret with SHA-256 and has no AAD (accepted for old callers, never chosen by ours).
//!
//! The flow, and who calls what:
//! - caller: [`seal_request`] gives the `enc` object and a [`ReplyOpener`];
//! - node: [`open_request`] gives the plaintext and a [`ReplySealer`];
//! - node: [`ReplySealer::seal`] or [`ReplySealer::stream`] → [`StreamSealer`];
//! - caller: [`ReplyOpener::open`] or [`ReplyOpener::stream`] → [`StreamOpener`].

mod cipher;
mod reply;
mod request;
mod stream;

pub use reply::{ReplyOpener, ReplySealer};
pub use request::{OpenedRequest, open_request, seal_request};
pub use stream::{SealedChunk, StreamError, StreamOpener, StreamSealer};

use crate::encoding::DecodeError;

/// Algorithm tag of v1 requests and replies (no HKDF, no AAD).
pub const ALGORITHM_V1: &str = "x25519-xchacha20poly1305";
/// Algorithm tag of v2 requests and non-stream replies.
pub const ALGORITHM_V2: &str = "x25519-xchacha20poly1305-hkdf-v2";
/// Algorithm tag of v2 stream chunks.
pub const ALGORITHM_V2_STREAM: &str = "x25519-xchacha20poly1305-hkdf-v2-stream";
/// HKDF salt of every v2 key.
pub const HKDF_SALT: &[u8] = b"sgl-e2e-v2-salt";
/// HKDF info of the v2 request key.
pub const HKDF_INFO_INPUT: &[u8] = b"sgl-e2e-v2-input";
/// HKDF info of the v2 reply and stream keys.
pub const HKDF_INFO_OUTPUT: &[u8] = b"sgl-e2e-v2-output";
/// Largest sealed blob accepted, in base58 characters: 1 MiB, enough for a full
/// 131,072-token context. The seed allows 8 MiB, but base58 decoding costs the square of the
/// length, and at 8 MiB one request would occupy a node for minutes (`docs/protocol.md` §8).
pub const MAX_CIPHERTEXT_B58_CHARS: usize = 1024 * 1024;
/// XChaCha20 nonce length, prepended to every blob.
pub const NONCE_LEN: usize = 24;

/// The sealing version of a request, which the reply mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealVersion {
    /// `x25519-xchacha20poly1305`: legacy, no AAD, response key not bound.
    V1,
    /// `x25519-xchacha20poly1305-hkdf-v2`.
    V2,
}

impl SealVersion {
    /// Negotiates from a request's `algorithm` field: the v2 tag is v2, the v1 tag or no tag is
    /// v1, and anything else fails closed rather than downgrading.
    pub fn from_tag(tag: Option<&str>) -> Result<Self, OpenError> {
        match tag {
            None | Some(ALGORITHM_V1) => Ok(Self::V1),
            Some(ALGORITHM_V2) => Ok(Self::V2),
            Some(other) => Err(OpenError::UnknownAlgorithm(other.to_owned())),
        }
    }

    /// The tag sent on the wire.
    pub const fn tag(self) -> &'static str {
        match self {
            Self::V1 => ALGORITHM_V1,
            Self::V2 => ALGORITHM_V2,
        }
    }
}

/// Sealing failed. Sealing needs no secret input from the wire, so the only failure is a peer
/// key that would make the exchange non-contributory, or a misuse of a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The peer's public key is a low-order point: the shared secret would be all zeros.
    #[error("peer key gives a non-contributory shared secret")]
    NonContributory,
    /// Streaming needs a v2 request; v1 has no stream format.
    #[error("streaming requires a v2 request")]
    StreamNeedsV2,
    /// A chunk was sealed after the final chunk.
    #[error("stream already finished")]
    StreamFinished,
}

/// Opening a sealed request or reply failed. The variants say why, but none says anything
/// about the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The `algorithm` tag is not one we speak; we never guess or downgrade.
    #[error("unknown sealing algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// A key or the ciphertext is not valid base58 of the right length.
    #[error("malformed {field}: {source}")]
    Malformed {
        /// Which field was malformed.
        field: &'static str,
        /// What was wrong with it.
        #[source]
        source: DecodeError,
    },
    /// The ciphertext is longer than [`MAX_CIPHERTEXT_B58_CHARS`].
    #[error("ciphertext exceeds {MAX_CIPHERTEXT_B58_CHARS} base58 characters")]
    TooLarge,
    /// The blob is shorter than a nonce and a tag.
    #[error("ciphertext too short")]
    TooShort,
    /// The peer's key is a low-order point.
    #[error("non-contributory shared secret")]
    NonContributory,
    /// Authentication failed: wrong key, tampered bytes, or AAD that does not match.
    #[error("decryption failed")]
    Decrypt,
}

#[cfg(test)]
mod tests;
