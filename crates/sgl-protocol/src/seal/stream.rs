//! v2 streams (§2.6): one ephemeral key per response, one chunk per batch of tokens, each bound
//! to the response key, the ephemeral key, the secret request nonce, its sequence number and
//! whether it is the final chunk. The opener enforces order and completeness, so a relay cannot
//! reorder, replay, splice or truncate a stream without the caller noticing.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::cipher::{Key, decrypt, derive_v2, encrypt};
use super::{HKDF_INFO_OUTPUT, OpenError, SealError};
use crate::identity::{EncryptionPublicKey, EncryptionSecret};

fn stream_aad(resp_b58: &str, eph_b58: &str, nonce: &str, seq: u64, is_final: bool) -> Vec<u8> {
    let final_flag = u8::from(is_final);
    format!("sgl-aad/v2/stream|resp={resp_b58}|eph={eph_b58}|nonce={nonce}|seq={seq}|final={final_flag}").into_bytes()
}

/// One sealed chunk as the node posts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    /// Position in the stream, from 0.
    pub seq: u64,
    /// Whether this is the last chunk (its plaintext is empty in the seed protocol).
    pub is_final: bool,
    /// `b58(nonce24 || ct || tag)`.
    pub ciphertext: String,
    /// The stream's ephemeral X25519 key, on chunk 0 only.
    pub ephemeral_public_key: Option<String>,
}

/// The node's side of one stream. Sequence numbers are assigned here and a chunk after the
/// final one is refused, so the node cannot repeat a `seq` (seed weakness R2).
#[derive(Debug)]
pub struct StreamSealer {
    key: Key,
    resp_b58: String,
    eph_b58: String,
    nonce: String,
    next_seq: u64,
    finished: bool,
}

impl StreamSealer {
    pub(super) fn new(key: Key, resp_b58: String, eph_b58: String, nonce: &str) -> Self {
        Self { key, resp_b58, eph_b58, nonce: nonce.to_owned(), next_seq: 0, finished: false }
    }

    /// The sequence number the next chunk will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Seals the next chunk of text. Pass `is_final = true` exactly once, at the end.
    pub fn seal_chunk(
        &mut self,
        text: &[u8],
        is_final: bool,
        rng: &mut impl CryptoRngCore,
    ) -> Result<SealedChunk, SealError> {
        if self.finished {
            return Err(SealError::StreamFinished);
        }
        let seq = self.next_seq;
        let aad = stream_aad(&self.resp_b58, &self.eph_b58, &self.nonce, seq, is_final);
        let chunk = SealedChunk {
            seq,
            is_final,
            ciphertext: encrypt(&self.key, &aad, text, rng),
            ephemeral_public_key: (seq == 0).then(|| self.eph_b58.clone()),
        };
        self.next_seq += 1;
        self.finished = is_final;
        Ok(chunk)
    }
}

/// A stream failed a check. After any error the opener refuses everything that follows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A chunk arrived out of order, was replayed, or one is missing.
    #[error("expected chunk {expected}, got {actual}")]
    OutOfOrder {
        /// The sequence number that was due.
        expected: u64,
        /// The one that came.
        actual: u64,
    },
    /// Chunk 0 did not carry the stream's ephemeral key.
    #[error("first chunk carries no ephemeral key")]
    MissingEphemeralKey,
    /// A later chunk named a different ephemeral key than chunk 0.
    #[error("ephemeral key changed mid-stream")]
    EphemeralKeyChanged,
    /// A chunk came after the final one.
    #[error("chunk after the final chunk")]
    AfterFinal,
    /// The stream ended without a final chunk: the answer is incomplete.
    #[error("stream ended before final chunk (truncated)")]
    Truncated,
    /// An earlier chunk failed; the stream is no longer trusted.
    #[error("stream already failed")]
    Poisoned,
    /// A chunk failed to open.
    #[error(transparent)]
    Open(#[from] OpenError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Open,
    Finished,
    Failed,
}

/// The caller's side of one stream: opens chunks strictly in order, starting at 0, until the
/// final one.
#[derive(Debug)]
pub struct StreamOpener {
    response_secret: EncryptionSecret,
    /// The response key's base58, computed once: it is in every chunk's AAD, and deriving it
    /// costs a scalar multiplication.
    resp_b58: String,
    nonce: String,
    next_seq: u64,
    key: Option<(String, Key)>,
    state: StreamState,
}

impl StreamOpener {
    pub(super) fn new(response_secret: EncryptionSecret, nonce: &str) -> Self {
        let resp_b58 = response_secret.public_key().to_b58();
        Self { response_secret, resp_b58, nonce: nonce.to_owned(), next_seq: 0, key: None, state: StreamState::Open }
    }

    /// Opens the next chunk and returns its text. `ephemeral_public_key` is required on chunk 0
    /// and, when present later, must not change.
    pub fn open_chunk(
        &mut self,
        seq: u64,
        ciphertext: &str,
        ephemeral_public_key: Option<&str>,
        is_final: bool,
    ) -> Result<Zeroizing<Vec<u8>>, StreamError> {
        match self.state {
            StreamState::Failed => return Err(StreamError::Poisoned),
            StreamState::Finished => return self.fail(StreamError::AfterFinal),
            StreamState::Open => {}
        }
        if seq != self.next_seq {
            return self.fail(StreamError::OutOfOrder { expected: self.next_seq, actual: seq });
        }
        if let Err(error) = self.ensure_key(ephemeral_public_key) {
            return self.fail(error);
        }
        let (eph_b58, key) = self.key.as_ref().expect("ensure_key set the key");
        let aad = stream_aad(&self.resp_b58, eph_b58, &self.nonce, seq, is_final);
        match decrypt(key, &aad, ciphertext) {
            Ok(text) => {
                self.next_seq += 1;
                if is_final {
                    self.state = StreamState::Finished;
                }
                Ok(text)
            }
            Err(error) => self.fail(error.into()),
        }
    }

    /// Call when the transport ends: it is an error unless the final chunk was opened.
    pub fn finish(&self) -> Result<(), StreamError> {
        match self.state {
            StreamState::Finished => Ok(()),
            StreamState::Open => Err(StreamError::Truncated),
            StreamState::Failed => Err(StreamError::Poisoned),
        }
    }

    /// How many chunks have been opened.
    pub fn chunks_opened(&self) -> u64 {
        self.next_seq
    }

    /// Derives the stream key from chunk 0's ephemeral key, and checks any later announcement
    /// against it.
    fn ensure_key(&mut self, announced: Option<&str>) -> Result<(), StreamError> {
        match (&self.key, announced) {
            (Some((eph_b58, _)), Some(announced)) if announced != eph_b58 => Err(StreamError::EphemeralKeyChanged),
            (Some(_), _) => Ok(()),
            (None, None) => Err(StreamError::MissingEphemeralKey),
            (None, Some(eph_b58)) => {
                let eph = EncryptionPublicKey::from_b58(eph_b58)
                    .map_err(|source| OpenError::Malformed { field: "ephemeral_public_key", source })?;
                let shared = self.response_secret.agree(&eph).ok_or(OpenError::NonContributory)?;
                self.key = Some((eph_b58.to_owned(), derive_v2(&shared, HKDF_INFO_OUTPUT)));
                Ok(())
            }
        }
    }

    fn fail<T>(&mut self, error: StreamError) -> Result<T, StreamError> {
        self.state = StreamState::Failed;
        Err(error)
    }
}
