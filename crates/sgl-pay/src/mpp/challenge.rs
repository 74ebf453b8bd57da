//! The server's MPP configuration and the challenges it issues: the `evm/charge` request, the
//! HMAC-bound challenge id, and the `WWW-Authenticate` rendering.

use std::fmt::{self, Write as _};

use alloy_primitives::{Address, U256};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{CREDENTIAL_TYPE_AUTHORIZATION, DEFAULT_CHALLENGE_LIFETIME_SECONDS, INTENT_CHARGE, METHOD_EVM, SCHEME};
use super::{base64url, jcs};
use crate::exact_evm::VALID_BEFORE_BUFFER_SECONDS;
use crate::network::NetworkConfig;
use crate::wire::DecimalU256;
use sgl_protocol::rfc3339::format as format_rfc3339;

/// Why an [`MppConfig`] was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MppConfigError {
    /// Clients refuse a challenge without a realm.
    #[error("the realm is empty")]
    EmptyRealm,
    /// A realm cannot carry control characters in an HTTP header.
    #[error("the realm contains a control character")]
    RealmControlCharacter,
    /// The challenge expires before a client's authorization could settle.
    #[error("challenge lifetime {seconds} s is too short (at least {minimum} s)")]
    LifetimeTooShort {
        /// The refused lifetime.
        seconds: u64,
        /// The least accepted.
        minimum: u64,
    },
}

/// What an MPP `evm/charge` server needs: who it is, its HMAC secret, and where it is paid.
#[derive(Clone)]
pub struct MppConfig {
    realm: String,
    secret: Zeroizing<[u8; 32]>,
    network: NetworkConfig,
    recipient: Address,
    challenge_lifetime_seconds: u64,
}

impl fmt::Debug for MppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MppConfig")
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .field("network", &self.network.caip2)
            .field("recipient", &self.recipient)
            .field("challenge_lifetime_seconds", &self.challenge_lifetime_seconds)
            .finish()
    }
}

impl MppConfig {
    /// A configuration issuing challenges for `realm` (e.g. the server's host name), bound with
    /// `secret`, paid in `network`'s token to `recipient`, living
    /// [`DEFAULT_CHALLENGE_LIFETIME_SECONDS`].
    pub fn new(
        realm: &str,
        secret: [u8; 32],
        network: NetworkConfig,
        recipient: Address,
    ) -> Result<Self, MppConfigError> {
        if realm.is_empty() {
            return Err(MppConfigError::EmptyRealm);
        }
        if realm.chars().any(char::is_control) {
            return Err(MppConfigError::RealmControlCharacter);
        }
        Ok(Self {
            realm: realm.to_owned(),
            secret: Zeroizing::new(secret),
            network,
            recipient,
            challenge_lifetime_seconds: DEFAULT_CHALLENGE_LIFETIME_SECONDS,
        })
    }

    /// The same configuration with challenges living `seconds`. Clients sign authorizations
    /// valid until the challenge expires, so it must leave room for the settlement buffer.
    pub fn with_challenge_lifetime(mut self, seconds: u64) -> Result<Self, MppConfigError> {
        let minimum = 2 * VALID_BEFORE_BUFFER_SECONDS;
        if seconds < minimum {
            return Err(MppConfigError::LifetimeTooShort { seconds, minimum });
        }
        self.challenge_lifetime_seconds = seconds;
        Ok(self)
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The network and token payments are made in.
    pub fn network(&self) -> &NetworkConfig {
        &self.network
    }

    /// Who is paid.
    pub fn recipient(&self) -> Address {
        self.recipient
    }

    /// How long a challenge lives, in seconds.
    pub fn challenge_lifetime_seconds(&self) -> u64 {
        self.challenge_lifetime_seconds
    }

    /// The `evm/charge` request for `amount` atomic units.
    pub fn charge_request(&self, amount: U256) -> ChargeRequest {
        ChargeRequest {
            amount: DecimalU256(amount),
            currency: self.network.asset,
            recipient: self.recipient,
            method_details: MethodDetails {
                chain_id: self.network.chain_id,
                credential_types: vec![CREDENTIAL_TYPE_AUTHORIZATION.to_owned()],
                decimals: Some(self.network.decimals),
            },
        }
    }

    /// A challenge to pay `amount` atomic units, issued at `now` (Unix seconds). Control
    /// characters in `description` (shown to the payer, not bound by the id) become spaces.
    pub fn issue_challenge(&self, amount: U256, description: Option<&str>, now: u64) -> Challenge {
        let charge = self.charge_request(amount);
        let request_json = serde_json::to_value(&charge).expect("a charge request is plain JSON");
        let request = base64url(jcs::canonicalize(&request_json).as_bytes());
        let expires_at = now.saturating_add(self.challenge_lifetime_seconds);
        let expires = format_rfc3339(expires_at);
        let slots = ChallengeSlots {
            realm: &self.realm,
            method: METHOD_EVM,
            intent: INTENT_CHARGE,
            request: &request,
            expires: Some(&expires),
            digest: None,
            opaque: None,
        };
        let id = base64url(&self.challenge_mac(&slots).finalize().into_bytes());
        let description = description.map(|text| text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect());
        Challenge { id, realm: self.realm.clone(), request, charge, expires, expires_at, description }
    }

    /// HMAC-SHA256 over `realm|method|intent|request|expires|digest|opaque`, absent slots
    /// empty: the challenge id before base64url.
    pub(super) fn challenge_mac(&self, slots: &ChallengeSlots<'_>) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_slice()).expect("HMAC takes keys of any length");
        let fields = [
            slots.realm,
            slots.method,
            slots.intent,
            slots.request,
            slots.expires.unwrap_or_default(),
            slots.digest.unwrap_or_default(),
            slots.opaque.unwrap_or_default(),
        ];
        for (idx, field) in fields.into_iter().enumerate() {
            if idx > 0 {
                mac.update(b"|");
            }
            mac.update(field.as_bytes());
        }
        mac
    }
}

/// The challenge fields the id binds, as they travel (request and opaque base64url).
pub(super) struct ChallengeSlots<'a> {
    pub(super) realm: &'a str,
    pub(super) method: &'a str,
    pub(super) intent: &'a str,
    pub(super) request: &'a str,
    pub(super) expires: Option<&'a str>,
    pub(super) digest: Option<&'a str>,
    pub(super) opaque: Option<&'a str>,
}

/// The `evm/charge` request a challenge carries (JCS JSON, base64url, in `request`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeRequest {
    /// Amount in the token's atomic units, a decimal string.
    pub amount: DecimalU256,
    /// Token contract (written checksummed, as the SDKs do).
    #[serde(with = "checksummed")]
    pub currency: Address,
    /// Who is paid (written checksummed).
    #[serde(with = "checksummed")]
    pub recipient: Address,
    /// The `evm` method's details.
    pub method_details: MethodDetails,
}

/// `methodDetails` of an `evm/charge` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodDetails {
    /// EIP-155 chain id; the client's must match.
    pub chain_id: u64,
    /// Credential types the server accepts; here `["authorization"]`.
    #[serde(default)]
    pub credential_types: Vec<String>,
    /// The token's decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u8>,
}

/// One issued `evm/charge` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    id: String,
    realm: String,
    request: String,
    charge: ChargeRequest,
    expires: String,
    expires_at: u64,
    description: Option<String>,
}

impl Challenge {
    /// The HMAC-bound id (base64url).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The realm it was issued for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The `request` auth-param: base64url (no padding) of the JCS JSON of [`Self::charge`].
    pub fn request(&self) -> &str {
        &self.request
    }

    /// What the challenge asks for.
    pub fn charge(&self) -> &ChargeRequest {
        &self.charge
    }

    /// The `expires` auth-param (RFC 3339, UTC).
    pub fn expires(&self) -> &str {
        &self.expires
    }

    /// When it expires, Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The human-readable description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The `WWW-Authenticate` value: `Payment id="…", realm="…", method="evm",
    /// intent="charge", request="…", expires="…"`, then `description="…"` when present.
    pub fn www_authenticate(&self) -> String {
        let mut value = format!("{SCHEME} ");
        let params = [
            ("id", Some(self.id.as_str())),
            ("realm", Some(self.realm.as_str())),
            ("method", Some(METHOD_EVM)),
            ("intent", Some(INTENT_CHARGE)),
            ("request", Some(self.request.as_str())),
            ("expires", Some(self.expires.as_str())),
            ("description", self.description.as_deref()),
        ];
        for (idx, (name, text)) in params.into_iter().filter_map(|(name, text)| Some((name, text?))).enumerate() {
            if idx > 0 {
                value.push_str(", ");
            }
            value.push_str(name);
            value.push_str("=\"");
            push_quoted(&mut value, text);
            value.push('"');
        }
        value
    }
}

/// Appends `text` as the inside of an HTTP quoted-string: `\` and `"` backslash-escaped, and
/// anything outside printable ASCII as `\uXXXX` UTF-16 escapes, which `mppx` emits and both
/// SDKs decode.
fn push_quoted(out: &mut String, text: &str) {
    for character in text.chars() {
        match character {
            '\\' | '"' => {
                out.push('\\');
                out.push(character);
            }
            ' '..='~' => out.push(character),
            other => {
                let mut units = [0u16; 2];
                for unit in other.encode_utf16(&mut units) {
                    write!(out, "\\u{unit:04x}").expect("writing to a String cannot fail");
                }
            }
        }
    }
}

/// Addresses as EIP-55 checksummed text, which the SDKs write; any letter case is read.
mod checksummed {
    use alloy_primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(address: &Address, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&address.to_checksum(None))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Address, D::Error> {
        Address::deserialize(deserializer)
    }
}
