//! Non-stream replies, node to caller (§2.5 for v2, §2.7 for v1).

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::cipher::{decrypt, derive, derive_v2, encrypt};
use super::stream::{StreamOpener, StreamSealer};
use super::{HKDF_INFO_OUTPUT, OpenError, SealError, SealVersion};
use crate::api::sealed::SealedResult;
use crate::identity::{EncryptionPublicKey, EncryptionSecret};

/// The v2 output AAD: the response key and the node's reply ephemeral key, as base58.
fn output_aad(version: SealVersion, resp_b58: &str, eph_b58: &str) -> Vec<u8> {
    match version {
        SealVersion::V1 => Vec::new(),
        SealVersion::V2 => format!("sgl-aad/v2/output|resp={resp_b58}|eph={eph_b58}").into_bytes(),
    }
}

/// The node's handle for answering one request: the caller's response key and the version.
#[derive(Debug, Clone)]
pub struct ReplySealer {
    version: SealVersion,
    response_key: EncryptionPublicKey,
}

impl ReplySealer {
    pub(super) fn new(version: SealVersion, response_key: EncryptionPublicKey) -> Self {
        Self { version, response_key }
    }

    /// The version the request came in, which the reply mirrors.
    pub fn version(&self) -> SealVersion {
        self.version
    }

    /// Seals a whole reply (the compact `{"content","model","usage"}` JSON) under a fresh
    /// ephemeral key.
    pub fn seal(&self, plaintext: &[u8], rng: &mut impl CryptoRngCore) -> Result<SealedResult, SealError> {
        let ephemeral = EncryptionSecret::generate(rng);
        let shared = ephemeral.agree(&self.response_key).ok_or(SealError::NonContributory)?;
        let key = derive(self.version, &shared, HKDF_INFO_OUTPUT);
        let eph_b58 = ephemeral.public_key().to_b58();
        // The seed recomputes the response key's base58 from its bytes; for canonical base58
        // that is the caller's own string.
        let aad = output_aad(self.version, &self.response_key.to_b58(), &eph_b58);
        Ok(SealedResult {
            ciphertext: encrypt(&key, &aad, plaintext, rng),
            ephemeral_public_key: eph_b58,
            algorithm: self.version.tag().to_owned(),
        })
    }

    /// Starts a sealed stream (v2 only). `request_nonce` is the `nonce` string from inside the
    /// sealed request, copied as is (`""` when absent, as the seed node does).
    pub fn stream(&self, request_nonce: &str, rng: &mut impl CryptoRngCore) -> Result<StreamSealer, SealError> {
        if self.version != SealVersion::V2 {
            return Err(SealError::StreamNeedsV2);
        }
        let ephemeral = EncryptionSecret::generate(rng);
        let shared = ephemeral.agree(&self.response_key).ok_or(SealError::NonContributory)?;
        let key = derive_v2(&shared, HKDF_INFO_OUTPUT);
        Ok(StreamSealer::new(key, self.response_key.to_b58(), ephemeral.public_key().to_b58(), request_nonce))
    }
}

/// The caller's handle for reading the reply to one request: the response secret.
#[derive(Debug, Clone)]
pub struct ReplyOpener {
    version: SealVersion,
    response_secret: EncryptionSecret,
}

impl ReplyOpener {
    pub(super) fn new(version: SealVersion, response_secret: EncryptionSecret) -> Self {
        Self { version, response_secret }
    }

    /// The version the request was sealed in.
    pub fn version(&self) -> SealVersion {
        self.version
    }

    /// The response public key that went into the request (`client_response_pubkey`).
    pub fn response_key(&self) -> EncryptionPublicKey {
        self.response_secret.public_key()
    }

    /// Opens a non-stream reply. The reply's `algorithm` must be the request's version.
    pub fn open(&self, sealed: &SealedResult) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if sealed.algorithm != self.version.tag() {
            return Err(OpenError::UnknownAlgorithm(sealed.algorithm.clone()));
        }
        let eph = EncryptionPublicKey::from_b58(&sealed.ephemeral_public_key)
            .map_err(|source| OpenError::Malformed { field: "ephemeral_public_key", source })?;
        let shared = self.response_secret.agree(&eph).ok_or(OpenError::NonContributory)?;
        let key = derive(self.version, &shared, HKDF_INFO_OUTPUT);
        let aad = output_aad(self.version, &self.response_key().to_b58(), &sealed.ephemeral_public_key);
        decrypt(&key, &aad, &sealed.ciphertext)
    }

    /// An opener for the stream of this request (v2 only), bound to the `nonce` the caller
    /// sealed inside the request.
    pub fn stream(&self, request_nonce: &str) -> Result<StreamOpener, SealError> {
        if self.version != SealVersion::V2 {
            return Err(SealError::StreamNeedsV2);
        }
        Ok(StreamOpener::new(self.response_secret.clone(), request_nonce))
    }
}
