//! The client's credential (`Authorization: Payment <base64url JSON>`): parsing, and its
//! verification against the challenge it echoes and the EIP-3009 authorization it carries.

use alloy_primitives::{Address, B256, U256, keccak256};
use hmac::Mac as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::challenge::{Challenge, ChallengeSlots, ChargeRequest, MppConfig};
use super::{
    AUTHORIZATION, CREDENTIAL_TYPE_AUTHORIZATION, INTENT_CHARGE, MAX_AUTHORIZATION_BYTES, METHOD_EVM, MppError, SCHEME,
    base64url,
};
use crate::exact_evm::{ExpectedTransfer, verify_authorization};
use crate::header::{decode_base64_lenient, decode_header};
use crate::ledger::{LedgerTransfer, NonceKey};
use crate::wire::{DecimalU256, ExactEvmAuthorization, ExactEvmPayload};
use sgl_protocol::rfc3339::parse as parse_rfc3339;

/// The challenge as the client echoes it in its credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeEcho {
    /// The challenge id.
    pub id: String,
    /// The realm.
    pub realm: String,
    /// The payment method, `evm` here.
    pub method: String,
    /// The intent, `charge` here.
    pub intent: String,
    /// The `request` auth-param, verbatim (base64url).
    pub request: String,
    /// The `expires` auth-param, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The `digest` auth-param (request body digest), verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The `opaque` auth-param, verbatim (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opaque: Option<String>,
    /// A credential header other than `Authorization` that the challenge advertised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The description (not bound by the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A decoded `Authorization: Payment` credential.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// The challenge being answered.
    pub challenge: ChallengeEcho,
    /// Method-specific proof; for `evm` an [`AuthorizationPayload`].
    pub payload: Value,
    /// The payer's DID, e.g. `did:pkh:eip155:84532:0x…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Credential {
    /// A credential answering `challenge` with `payload`, echoing it as the clients do.
    pub fn for_challenge(challenge: &Challenge, payload: Value, source: Option<String>) -> Self {
        let challenge = ChallengeEcho {
            id: challenge.id().to_owned(),
            realm: challenge.realm().to_owned(),
            method: METHOD_EVM.to_owned(),
            intent: INTENT_CHARGE.to_owned(),
            request: challenge.request().to_owned(),
            expires: Some(challenge.expires().to_owned()),
            digest: None,
            opaque: None,
            header: None,
            description: challenge.description().map(str::to_owned),
        };
        Self { challenge, payload, source }
    }

    /// The `Authorization` value: `Payment <base64url JSON, no padding>`.
    pub fn authorization_header_value(&self) -> String {
        let json = serde_json::to_vec(self).expect("a credential is plain JSON");
        format!("{SCHEME} {}", base64url(&json))
    }
}

/// The `evm` method's `authorization` payload: an EIP-3009 `TransferWithAuthorization` and
/// its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPayload {
    /// The credential type, `authorization`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Payer.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// Amount in atomic units.
    pub value: DecimalU256,
    /// Unix time after which the authorization is valid (`"0"` from the SDKs).
    pub valid_after: DecimalU256,
    /// Unix time before which it is valid (the challenge's expiry from the SDKs).
    pub valid_before: DecimalU256,
    /// The challenge hash, see [`NonceDerivation`].
    pub nonce: B256,
    /// 0x-prefixed 65-byte signature.
    pub signature: String,
}

/// How a client derived the EIP-3009 nonce from the challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceDerivation {
    /// keccak256 of the compact JSON array `["<id>","<realm>"]` (`pympp` 0.16, later `mppx`).
    JsonArray,
    /// keccak256 of the UTF-8 concatenation id‖realm (`mppx` 0.11).
    Concatenation,
}

impl NonceDerivation {
    /// Both derivations, in the order they are tried.
    pub const ALL: [Self; 2] = [Self::JsonArray, Self::Concatenation];

    /// The nonce this derivation gives for a challenge.
    pub fn nonce(self, id: &str, realm: &str) -> B256 {
        match self {
            Self::JsonArray => {
                let array = serde_json::to_string(&[id, realm]).expect("strings are plain JSON");
                keccak256(array.as_bytes())
            }
            Self::Concatenation => keccak256(format!("{id}{realm}").as_bytes()),
        }
    }
}

/// A credential that passed every check, ready to settle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedMppPayment {
    /// The payer (recovered signer, equal to `from`).
    pub payer: Address,
    /// The recipient.
    pub to: Address,
    /// The amount, in atomic units.
    pub value: U256,
    /// The EIP-3009 nonce.
    pub nonce: B256,
    /// The EIP-712 digest that was signed; the settlement's reference.
    pub digest: B256,
    /// Which derivation the nonce matched.
    pub nonce_derivation: NonceDerivation,
    /// The id of the challenge it pays.
    pub challenge_id: String,
    /// CAIP-2 id of the network.
    pub network: String,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Token contract.
    pub asset: Address,
}

impl VerifiedMppPayment {
    /// The ledger settlement of this payment; its `tx_hash` is the EIP-712 digest.
    pub fn ledger_transfer(&self) -> LedgerTransfer {
        LedgerTransfer {
            nonce: NonceKey { chain_id: self.chain_id, asset: self.asset, from: self.payer, nonce: self.nonce },
            network: self.network.clone(),
            from: self.payer,
            to: self.to,
            value: self.value,
            tx_hash: self.digest,
        }
    }
}

/// Parses an `Authorization` value `Payment <base64url JSON>` (scheme name in any case;
/// either base64 alphabet, padding optional).
pub fn parse_authorization(header_value: &str) -> Result<Credential, MppError> {
    if header_value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(MppError::TooLarge);
    }
    let header_value = header_value.trim();
    let (scheme, encoded) = header_value.split_once(' ').ok_or(MppError::NotPaymentScheme)?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(MppError::NotPaymentScheme);
    }
    decode_header(encoded).map_err(MppError::Encoding)
}

/// Verifies `credential` at `now` (Unix seconds) for a resource costing `expected_amount`:
/// the echoed challenge is ours (HMAC id, constant-time), for this realm, `evm/charge`, not
/// expired; its request is for `expected_amount` of our token to our recipient on our chain;
/// the payload is an `authorization` signed by `from`, paying that, with a nonce bound to the
/// challenge, valid now and for at least 6 more seconds.
pub fn verify_credential(
    config: &MppConfig,
    credential: &Credential,
    expected_amount: U256,
    now: u64,
) -> Result<VerifiedMppPayment, MppError> {
    let echo = &credential.challenge;
    let charge = verify_challenge(config, echo, now)?;
    if charge.amount.0 != expected_amount {
        return Err(MppError::AmountMismatch { challenged: charge.amount.0, expected: expected_amount });
    }
    let payload = parse_payload(&credential.payload)?;
    let signed = ExactEvmPayload {
        signature: payload.signature,
        authorization: ExactEvmAuthorization {
            from: payload.from,
            to: payload.to,
            value: payload.value,
            valid_after: payload.valid_after,
            valid_before: payload.valid_before,
            nonce: payload.nonce,
        },
    };
    let network = config.network();
    let expected = ExpectedTransfer { network, pay_to: config.recipient(), amount: expected_amount, x402_version: 2 };
    let verified = verify_authorization(&signed, &expected, now)?;
    let nonce_derivation = NonceDerivation::ALL
        .into_iter()
        .find(|derivation| derivation.nonce(&echo.id, &echo.realm) == verified.nonce)
        .ok_or(MppError::NonceMismatch(verified.nonce))?;
    if let Some(source) = &credential.source {
        check_source(source, network.chain_id, verified.payer)?;
    }
    Ok(VerifiedMppPayment {
        payer: verified.payer,
        to: verified.to,
        value: verified.value,
        nonce: verified.nonce,
        digest: verified.digest,
        nonce_derivation,
        challenge_id: echo.id.clone(),
        network: network.caip2.to_string(),
        chain_id: network.chain_id,
        asset: network.asset,
    })
}

/// The checks on the echoed challenge; returns its request.
fn verify_challenge(config: &MppConfig, echo: &ChallengeEcho, now: u64) -> Result<ChargeRequest, MppError> {
    if echo.method != METHOD_EVM || echo.intent != INTENT_CHARGE {
        return Err(MppError::UnsupportedMethod { method: echo.method.clone(), intent: echo.intent.clone() });
    }
    if echo.realm != config.realm() {
        return Err(MppError::RealmMismatch(echo.realm.clone()));
    }
    // We never advertise another credential header; pympp would bind one into the id.
    if echo.header.as_deref().is_some_and(|header| !header.eq_ignore_ascii_case(AUTHORIZATION)) {
        return Err(MppError::NotIssued);
    }
    let slots = ChallengeSlots {
        realm: &echo.realm,
        method: &echo.method,
        intent: &echo.intent,
        request: &echo.request,
        expires: echo.expires.as_deref(),
        digest: echo.digest.as_deref(),
        opaque: echo.opaque.as_deref(),
    };
    let id = decode_base64_lenient(&echo.id).map_err(|_| MppError::NotIssued)?;
    config.challenge_mac(&slots).verify_slice(&id).map_err(|_| MppError::NotIssued)?;
    let expires = echo.expires.as_deref().ok_or(MppError::MissingExpiry)?;
    let expires_at = parse_rfc3339(expires).ok_or(MppError::MissingExpiry)?;
    if now >= expires_at {
        return Err(MppError::ChallengeExpired { expires: expires.to_owned() });
    }
    let charge: ChargeRequest = decode_header(&echo.request).map_err(MppError::Request)?;
    let network = config.network();
    if charge.currency != network.asset {
        return Err(MppError::RequestMismatch("currency"));
    }
    if charge.recipient != config.recipient() {
        return Err(MppError::RequestMismatch("recipient"));
    }
    if charge.method_details.chain_id != network.chain_id {
        return Err(MppError::RequestMismatch("chainId"));
    }
    if !charge.method_details.credential_types.iter().any(|kind| kind == CREDENTIAL_TYPE_AUTHORIZATION) {
        return Err(MppError::RequestMismatch("credentialTypes"));
    }
    Ok(charge)
}

/// The payload as an `authorization`.
fn parse_payload(payload: &Value) -> Result<AuthorizationPayload, MppError> {
    let kind = payload.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind != CREDENTIAL_TYPE_AUTHORIZATION {
        return Err(MppError::UnsupportedCredentialType(kind.to_owned()));
    }
    AuthorizationPayload::deserialize(payload).map_err(MppError::Payload)
}

/// `source`, when given, must be `did:pkh:eip155:<chain_id>:<payer>`.
fn check_source(source: &str, chain_id: u64, payer: Address) -> Result<(), MppError> {
    let matches =
        source.strip_prefix("did:pkh:eip155:").and_then(|rest| rest.split_once(':')).is_some_and(|(chain, address)| {
            chain.parse::<u64>().ok() == Some(chain_id) && address.parse::<Address>().ok() == Some(payer)
        });
    if matches { Ok(()) } else { Err(MppError::SourceMismatch(source.to_owned())) }
}
