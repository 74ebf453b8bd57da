//! Everything the caller checks instead of trusting the coordinator: the keybind of a reserved
//! node (seed weakness S1), the node's v2 signature over a sealed reply's ciphertext, usage and
//! model hash (S2, S3), and every chunk of a sealed stream, in order and complete.
//!
//! These functions do no I/O, so they are tested directly against fixtures made with the
//! protocol crate's real cryptography.

use serde::Serialize;
use sgl_protocol::api::caller::{ReserveResponse, SealedChatResponse, SealedStreamEvent};
use sgl_protocol::api::inference::{JobResult, Usage};
use sgl_protocol::encoding::is_sha256_hex;
use sgl_protocol::envelope::{ENVELOPE_V2, EnvelopeError, EnvelopeVersion, ResultClaims, ResultKind};
use sgl_protocol::identity::{EncryptionPublicKey, NodePublicKey, VerifyError as SignatureError};
use sgl_protocol::ids::{JobId, NodeId, ReservationToken};
use sgl_protocol::keybind::KeyBinding;
use sgl_protocol::seal::{ReplyOpener, StreamOpener};

use crate::error::VerifyError;

/// A reserved node whose keybind verified: its X25519 key is really its own, so a request
/// sealed to it can be read by that node only, and its ed25519 key checks every reply.
#[derive(Debug, Clone)]
pub struct VerifiedNode {
    reservation_token: ReservationToken,
    node_id: NodeId,
    identity_key: NodePublicKey,
    encryption_key: EncryptionPublicKey,
    key_version: u32,
    model: String,
    model_sha256: Option<String>,
    tee_type: Option<String>,
    attestation_verified: Option<bool>,
    expires_in_ms: u64,
}

impl VerifiedNode {
    /// Checks a `/v1/reserve` answer for `model`: the node must publish an ed25519 key, an
    /// X25519 key, a keybind signature and its version, and the signature must bind all four
    /// to the node id. A node without a binding is refused, never used unverified.
    pub fn from_reservation(model: &str, reservation: &ReserveResponse) -> Result<Self, VerifyError> {
        let identity_b58 =
            reservation.node_ed25519_pubkey.as_deref().ok_or(VerifyError::MissingKeybind("node_ed25519_pubkey"))?;
        let encryption_b58 =
            reservation.node_x25519_pubkey.as_deref().ok_or(VerifyError::MissingKeybind("node_x25519_pubkey"))?;
        let signature = reservation
            .encryption_public_key_signature
            .as_deref()
            .ok_or(VerifyError::MissingKeybind("encryption_public_key_signature"))?;
        let key_version = reservation.key_version.ok_or(VerifyError::MissingKeybind("key_version"))?;
        let identity_key = NodePublicKey::from_b58(identity_b58).map_err(|_| VerifyError::BadKeybind)?;
        let encryption_key = EncryptionPublicKey::from_b58(encryption_b58).map_err(|_| VerifyError::BadKeybind)?;
        let binding = KeyBinding {
            node_id: &reservation.node_id,
            identity_key: &identity_key,
            encryption_key: &encryption_key,
            key_version,
        };
        binding.verify(signature).map_err(|_| VerifyError::BadKeybind)?;
        let model_sha256 = match reservation.model_sha256.as_deref() {
            Some(hash) if !is_sha256_hex(hash) => {
                return Err(VerifyError::UnexpectedShape("the reservation's model_sha256 is not sha256 hex".into()));
            }
            hash => hash.map(str::to_owned),
        };
        Ok(Self {
            reservation_token: reservation.reservation_token.clone(),
            node_id: reservation.node_id,
            identity_key,
            encryption_key,
            key_version,
            model: model.to_owned(),
            model_sha256,
            tee_type: reservation.tee_type.clone(),
            attestation_verified: reservation.attestation_verified,
            expires_in_ms: reservation.expires_in_ms,
        })
    }

    /// The single-use reservation.
    pub fn reservation_token(&self) -> &ReservationToken {
        &self.reservation_token
    }

    /// The node.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Its ed25519 identity key, which signs every reply.
    pub fn identity_key(&self) -> &NodePublicKey {
        &self.identity_key
    }

    /// Its X25519 key, which requests are sealed to.
    pub fn encryption_key(&self) -> &EncryptionPublicKey {
        &self.encryption_key
    }

    /// The keybind's key version.
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// The model reserved.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// sha256 hex of the GGUF the node advertised, when it did.
    pub fn model_sha256(&self) -> Option<&str> {
        self.model_sha256.as_deref()
    }

    /// The node's tier, as the coordinator reports it (not verified).
    pub fn tee_type(&self) -> Option<&str> {
        self.tee_type.as_deref()
    }

    /// Whether the coordinator says the node's attestation passed (not verified here).
    pub fn attestation_verified(&self) -> Option<bool> {
        self.attestation_verified
    }

    /// How long the reservation stays valid, in milliseconds.
    pub fn expires_in_ms(&self) -> u64 {
        self.expires_in_ms
    }

    /// Refuses a reply naming another node.
    fn check_node(&self, answered: Option<&NodeId>) -> Result<(), VerifyError> {
        match answered {
            Some(answered) if *answered != self.node_id => {
                Err(VerifyError::NodeMismatch { reserved: self.node_id, answered: *answered })
            }
            _ => Ok(()),
        }
    }

    /// Refuses a claimed model hash that differs from the advertised one (when both exist).
    fn check_model(&self, claimed: Option<&str>) -> Result<(), VerifyError> {
        match (self.model_sha256.as_deref(), claimed) {
            (Some(reserved), Some(claimed)) if reserved != claimed => {
                Err(VerifyError::ModelHashMismatch { reserved: reserved.to_owned(), claimed: claimed.to_owned() })
            }
            _ => Ok(()),
        }
    }

    /// Verifies one v2 envelope signature with this node's key.
    fn check_signature(
        &self,
        claims: &ResultClaims<'_>,
        version: Option<&str>,
        signature: Option<&str>,
        proof: Option<&str>,
    ) -> Result<(), VerifyError> {
        let signature = signature.ok_or(VerifyError::Unsigned)?;
        match version {
            Some(ENVELOPE_V2) => {}
            Some(other) => return Err(VerifyError::UsageNotSigned(format!("envelope version {other:?} is not v2"))),
            None => return Err(VerifyError::UsageNotSigned("no envelope version".into())),
        }
        claims.verify(&self.identity_key, EnvelopeVersion::V2, signature, proof).map_err(|error| match error {
            EnvelopeError::UsagePlacement => VerifyError::UsageNotSigned("usage absent or misplaced".into()),
            EnvelopeError::ProofMismatch => VerifyError::ProofMismatch,
            EnvelopeError::BadModelHash => VerifyError::UnexpectedShape("model_sha256 is not sha256 hex".into()),
            EnvelopeError::Signature(SignatureError::BadSignature) => VerifyError::BadSignature,
            other => VerifyError::UnexpectedShape(other.to_string()),
        })
    }
}

/// What was verified about an answer, reported next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The node that signed the answer (the reserved one).
    pub node_id: NodeId,
    /// sha256 hex of the GGUF the node signed for, when it claimed one.
    pub model_sha256: Option<String>,
    /// The job, as signed.
    pub job_id: JobId,
    /// The envelope version verified (`v2`).
    pub envelope_version: String,
    /// Always true: an answer that fails any check is an error, never returned.
    pub verified: bool,
}

/// A sealed non-stream reply, verified and opened.
#[derive(Debug, Clone)]
pub struct OpenedReply {
    /// The decrypted result: text, the node's model name and usage.
    pub result: JobResult,
    /// The signed usage.
    pub usage: Usage,
    /// What was verified.
    pub verification: Verification,
}

/// Verifies a sealed non-stream reply against the reserved node, then opens it. The signature
/// is checked before decryption, so a tampered ciphertext is reported as a bad signature.
pub fn verify_sealed_reply(
    node: &VerifiedNode,
    opener: &ReplyOpener,
    response: &SealedChatResponse,
) -> Result<OpenedReply, VerifyError> {
    let (plaintext, usage, verification) = verify_and_open(node, opener, response)?;
    let result: JobResult = serde_json::from_slice(&plaintext)
        .map_err(|e| VerifyError::UnexpectedShape(format!("the opened reply is not a result: {e}")))?;
    if result.usage != usage {
        return Err(VerifyError::UnexpectedShape("the sealed usage differs from the signed usage".into()));
    }
    Ok(OpenedReply { result, usage, verification })
}

/// Checks a sealed reply's node, model hash and v2 signature (over the ciphertext, the usage
/// and the model), then opens it: its plaintext, the signed usage and what was verified.
pub fn verify_and_open(
    node: &VerifiedNode,
    opener: &ReplyOpener,
    response: &SealedChatResponse,
) -> Result<(zeroize::Zeroizing<Vec<u8>>, Usage, Verification), VerifyError> {
    node.check_node(response.node_id.as_ref())?;
    let usage = response.usage.ok_or_else(|| VerifyError::UsageNotSigned("the reply carries no usage".into()))?;
    let model_sha256 = response.model_sha256.as_deref();
    node.check_model(model_sha256)?;
    let claims = ResultClaims {
        job_id: &response.id,
        node_id: &node.node_id,
        kind: ResultKind::Sealed,
        payload: response.sealed_result.ciphertext.as_bytes(),
        usage: Some(&usage),
        model_sha256,
    };
    node.check_signature(
        &claims,
        response.result_envelope_version.as_deref(),
        response.result_envelope_signature.as_deref(),
        response.proof_of_execution.as_deref(),
    )?;
    let plaintext = opener.open(&response.sealed_result).map_err(|_| VerifyError::Decrypt)?;
    let verification = Verification {
        node_id: node.node_id,
        model_sha256: model_sha256.map(str::to_owned),
        job_id: response.id.clone(),
        envelope_version: ENVELOPE_V2.to_owned(),
        verified: true,
    };
    Ok((plaintext, usage, verification))
}

/// One opened stream chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedChunk {
    /// The chunk's text (empty on the final chunk).
    pub text: String,
    /// On the final chunk: the signed usage and what was verified.
    pub end: Option<(Usage, Verification)>,
}

/// Checks a sealed stream chunk by chunk: order (no gap, replay or chunk after the final one),
/// the node, the model hash, the job, the v2 signature, then decryption. After any failure it
/// refuses everything that follows.
#[derive(Debug)]
pub struct StreamVerifier {
    node: VerifiedNode,
    opener: StreamOpener,
    next_seq: u64,
    eph: Option<String>,
    job_id: Option<JobId>,
    model_sha256: Option<String>,
    finished: bool,
    failed: bool,
}

impl StreamVerifier {
    /// A verifier for a stream sealed to `node`, opened with `opener`.
    pub fn new(node: VerifiedNode, opener: StreamOpener) -> Self {
        Self { node, opener, next_seq: 0, eph: None, job_id: None, model_sha256: None, finished: false, failed: false }
    }

    /// Verifies and opens the next event.
    pub fn open(&mut self, event: &SealedStreamEvent) -> Result<OpenedChunk, VerifyError> {
        if self.failed {
            return Err(VerifyError::UnexpectedShape("the stream already failed verification".into()));
        }
        let opened = self.open_inner(event);
        if opened.is_err() {
            self.failed = true;
        }
        opened
    }

    /// Call when the transport ends: an error unless the final chunk was verified.
    pub fn finish(&self) -> Result<(), VerifyError> {
        if self.finished { Ok(()) } else { Err(VerifyError::StreamTruncated) }
    }

    /// Whether the final chunk was verified.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn open_inner(&mut self, event: &SealedStreamEvent) -> Result<OpenedChunk, VerifyError> {
        if self.finished {
            return Err(VerifyError::StreamAfterFinal);
        }
        if event.seq > self.next_seq {
            return Err(VerifyError::StreamGap { expected: self.next_seq, got: event.seq });
        }
        if event.seq < self.next_seq {
            return Err(VerifyError::StreamDuplicate { expected: self.next_seq, got: event.seq });
        }
        match (&self.eph, event.eph.as_deref()) {
            (None, None) => return Err(VerifyError::StreamKeyChanged),
            (Some(known), Some(announced)) if known != announced => return Err(VerifyError::StreamKeyChanged),
            _ => {}
        }
        let job_id =
            event.job_id.as_ref().ok_or_else(|| VerifyError::UnexpectedShape("chunk without job_id".into()))?;
        if self.job_id.as_ref().is_some_and(|known| known != job_id) {
            return Err(VerifyError::StreamSpliced);
        }
        self.node.check_node(event.node_id.as_ref())?;
        let model_sha256 = event.model_sha256.as_deref();
        self.node.check_model(model_sha256)?;
        if let (Some(known), Some(claimed)) = (self.model_sha256.as_deref(), model_sha256)
            && known != claimed
        {
            return Err(VerifyError::ModelHashMismatch { reserved: known.to_owned(), claimed: claimed.to_owned() });
        }
        let claims = ResultClaims {
            job_id,
            node_id: &self.node.node_id,
            kind: ResultKind::Stream { seq: event.seq, is_final: event.is_final },
            payload: event.ct.as_bytes(),
            usage: event.usage.as_ref(),
            model_sha256,
        };
        self.node.check_signature(
            &claims,
            event.sig_version.as_deref(),
            event.sig.as_deref(),
            event.proof_of_execution.as_deref(),
        )?;
        // Order and the ephemeral key were checked above, so the opener can only fail to decrypt.
        let text = self
            .opener
            .open_chunk(event.seq, &event.ct, event.eph.as_deref(), event.is_final)
            .map_err(|_| VerifyError::Decrypt)?;
        let text = String::from_utf8(text.to_vec())
            .map_err(|_| VerifyError::UnexpectedShape("a chunk is not UTF-8 text".into()))?;
        self.next_seq += 1;
        if self.eph.is_none() {
            self.eph.clone_from(&event.eph);
        }
        if self.job_id.is_none() {
            self.job_id = Some(job_id.clone());
        }
        if self.model_sha256.is_none() {
            self.model_sha256 = model_sha256.map(str::to_owned);
        }
        if !event.is_final {
            return Ok(OpenedChunk { text, end: None });
        }
        self.finished = true;
        let usage =
            event.usage.ok_or_else(|| VerifyError::UsageNotSigned("the final chunk carries no usage".into()))?;
        let verification = Verification {
            node_id: self.node.node_id,
            model_sha256: self.model_sha256.clone(),
            job_id: job_id.clone(),
            envelope_version: ENVELOPE_V2.to_owned(),
            verified: true,
        };
        Ok(OpenedChunk { text, end: Some((usage, verification)) })
    }
}

#[cfg(test)]
mod tests;
