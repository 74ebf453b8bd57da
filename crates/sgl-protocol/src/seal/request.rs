//! Requests, caller to node (§2.4 for v2, §2.7 for v1).

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::cipher::{decrypt, derive, encrypt};
use super::reply::{ReplyOpener, ReplySealer};
use super::{HKDF_INFO_INPUT, OpenError, SealError, SealVersion};
use crate::api::sealed::SealedInput;
use crate::identity::{EncryptionPublicKey, EncryptionSecret};

/// A request the node has opened: the plaintext (zeroised on drop) and how to answer.
#[derive(Debug)]
pub struct OpenedRequest {
    /// The decrypted request, normally the JSON of an inference request.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Seals the reply to the caller, in the request's version.
    pub reply: ReplySealer,
}

/// The v2 input AAD, built from the base58 strings: the node's key, the ephemeral key and the
/// response key. Binding the response key stops a relay from redirecting the reply.
fn input_aad(version: SealVersion, node_b58: &str, eph_b58: &str, resp_b58: &str) -> Vec<u8> {
    match version {
        SealVersion::V1 => Vec::new(),
        SealVersion::V2 => format!("sgl-aad/v2/input|node={node_b58}|eph={eph_b58}|resp={resp_b58}").into_bytes(),
    }
}

/// Seals `plaintext` to the node's X25519 key. Returns the `enc` object to send and the opener
/// that will read the reply; a fresh response key and ephemeral key are drawn from `rng`.
pub fn seal_request(
    node_key: &EncryptionPublicKey,
    version: SealVersion,
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<(SealedInput, ReplyOpener), SealError> {
    let response_secret = EncryptionSecret::generate(rng);
    let ephemeral = EncryptionSecret::generate(rng);
    let shared = ephemeral.agree(node_key).ok_or(SealError::NonContributory)?;
    let key = derive(version, &shared, HKDF_INFO_INPUT);
    let eph_b58 = ephemeral.public_key().to_b58();
    let resp_b58 = response_secret.public_key().to_b58();
    let aad = input_aad(version, &node_key.to_b58(), &eph_b58, &resp_b58);
    let enc = SealedInput {
        ciphertext: encrypt(&key, &aad, plaintext, rng),
        client_ephemeral_pubkey: eph_b58,
        client_response_pubkey: resp_b58,
        algorithm: Some(version.tag().to_owned()),
    };
    Ok((enc, ReplyOpener::new(version, response_secret)))
}

/// Opens a sealed request with the node's static X25519 secret. The AAD is rebuilt from the
/// node's own key and the two key strings exactly as received.
pub fn open_request(node_secret: &EncryptionSecret, enc: &SealedInput) -> Result<OpenedRequest, OpenError> {
    let version = SealVersion::from_tag(enc.algorithm.as_deref())?;
    let eph = EncryptionPublicKey::from_b58(&enc.client_ephemeral_pubkey)
        .map_err(|source| OpenError::Malformed { field: "client_ephemeral_pubkey", source })?;
    let response_key = EncryptionPublicKey::from_b58(&enc.client_response_pubkey)
        .map_err(|source| OpenError::Malformed { field: "client_response_pubkey", source })?;
    let shared = node_secret.agree(&eph).ok_or(OpenError::NonContributory)?;
    let key = derive(version, &shared, HKDF_INFO_INPUT);
    let node_b58 = node_secret.public_key().to_b58();
    let aad = input_aad(version, &node_b58, &enc.client_ephemeral_pubkey, &enc.client_response_pubkey);
    let plaintext = decrypt(&key, &aad, &enc.ciphertext)?;
    Ok(OpenedRequest { plaintext, reply: ReplySealer::new(version, response_key) })
}
