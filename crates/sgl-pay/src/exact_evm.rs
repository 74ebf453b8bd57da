//! Verification of the x402 `exact` scheme on EVM chains (EIP-3009
//! `TransferWithAuthorization`): the EIP-712 digest, strict 65-byte signature parsing, signer
//! recovery, and the reference facilitators' checks with the spec's reason strings.
//!
//! Pure: the caller passes the current time and the configured network. Only ordinary
//! accounts (65-byte ECDSA signatures) are accepted; smart-wallet signatures need a chain.

#[cfg(test)]
mod tests;

use alloy_primitives::{Address, B256, Signature, U256};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain};
use serde_json::Value;

use crate::network::NetworkConfig;
use crate::wire::{ExactEvmAuthorization, ExactEvmPayload, FacilitatorRequest, SCHEME_EXACT};

/// Seconds an authorization must stay valid beyond now, so it cannot expire before the
/// settlement lands (the reference facilitators' block-time buffer).
pub const VALID_BEFORE_BUFFER_SECONDS: u64 = 6;

/// Private home of the `sol!` items, so the generated code stays out of the public API.
mod eip3009 {
    alloy_sol_types::sol! {
        /// EIP-3009 `TransferWithAuthorization`, field order as in the token contracts.
        struct TransferWithAuthorization {
            address from;
            address to;
            uint256 value;
            uint256 validAfter;
            uint256 validBefore;
            bytes32 nonce;
        }
    }
}

/// Why a payment is not valid. [`VerifyError::reason`] gives the x402 reason string.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The requirement asks for a scheme other than `exact`.
    #[error("unsupported scheme {0:?}")]
    UnsupportedScheme(String),
    /// The payment's scheme differs from the requirement's.
    #[error("payment scheme {paid:?} differs from the required {required:?}")]
    SchemeMismatch {
        /// Scheme in the payment.
        paid: String,
        /// Scheme in the requirement.
        required: String,
    },
    /// The payment's network differs from the requirement's.
    #[error("payment network {paid:?} differs from the required {required:?}")]
    NetworkMismatch {
        /// Network in the payment.
        paid: String,
        /// Network in the requirement.
        required: String,
    },
    /// The requirement names a network this verifier is not configured for.
    #[error("network {0:?} is not supported")]
    UnsupportedNetwork(String),
    /// The requirement's asset or recipient is malformed or not the configured asset.
    #[error("invalid payment requirements: {0}")]
    InvalidRequirements(&'static str),
    /// The requirement lacks `extra.name` / `extra.version`.
    #[error("the requirement has no EIP-712 domain in extra")]
    MissingDomain,
    /// The requirement's `extra.name` is not the configured token's.
    #[error("EIP-712 domain name {0:?} is not the token's")]
    TokenNameMismatch(String),
    /// The requirement's `extra.version` is not the configured token's.
    #[error("EIP-712 domain version {0:?} is not the token's")]
    TokenVersionMismatch(String),
    /// The payload is not an `exact` EVM payload.
    #[error("malformed exact EVM payload: {0}")]
    InvalidPayload(#[source] serde_json::Error),
    /// The signature is malformed, high-s, or not by `authorization.from`.
    #[error("invalid signature: {0}")]
    Signature(#[from] SignatureError),
    /// `authorization.to` is not the requirement's `payTo`.
    #[error("authorization pays {to}, not {pay_to}")]
    RecipientMismatch {
        /// Recipient in the authorization.
        to: Address,
        /// Recipient in the requirement.
        pay_to: Address,
    },
    /// `authorization.value` is not exactly the required amount.
    #[error("authorization value {value} is not the required {required}")]
    ValueMismatch {
        /// Amount authorized.
        value: U256,
        /// Amount required.
        required: U256,
        /// Protocol version, which picks the reason string.
        x402_version: u8,
    },
    /// `validAfter` is in the future.
    #[error("authorization not valid before {0}")]
    NotYetValid(U256),
    /// `validBefore` is too close (within the settlement buffer) or past.
    #[error("authorization expires at {0}, too soon")]
    Expired(U256),
}

impl VerifyError {
    /// The x402 reason string (`invalidReason` / `errorReason`) for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnsupportedScheme(_) => "unsupported_scheme",
            Self::SchemeMismatch { .. } => "invalid_scheme",
            Self::NetworkMismatch { .. } => "network_mismatch",
            Self::UnsupportedNetwork(_) => "invalid_network",
            Self::InvalidRequirements(_) => "invalid_payment_requirements",
            Self::MissingDomain => "missing_eip712_domain",
            Self::TokenNameMismatch(_) => "invalid_exact_evm_token_name_mismatch",
            Self::TokenVersionMismatch(_) => "invalid_exact_evm_token_version_mismatch",
            Self::InvalidPayload(_) => "invalid_payload",
            Self::Signature(_) => "invalid_exact_evm_payload_signature",
            Self::RecipientMismatch { .. } => "invalid_exact_evm_payload_recipient_mismatch",
            Self::ValueMismatch { x402_version: 1, .. } => "invalid_exact_evm_payload_authorization_value",
            Self::ValueMismatch { .. } => "invalid_exact_evm_payload_authorization_value_mismatch",
            Self::NotYetValid(_) => "invalid_exact_evm_payload_authorization_valid_after",
            Self::Expired(_) => "invalid_exact_evm_payload_authorization_valid_before",
        }
    }
}

/// Why a signature was refused; all map to `invalid_exact_evm_payload_signature`.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Not 0x-prefixed hex.
    #[error("signature is not 0x-prefixed hex")]
    NotHex,
    /// Not 65 bytes (longer ones are smart-wallet signatures, which need a chain).
    #[error("signature is {0} bytes, expected 65")]
    Length(usize),
    /// The recovery byte is not 0, 1, 27 or 28.
    #[error("recovery byte {0} is not 0, 1, 27 or 28")]
    RecoveryByte(u8),
    /// `s` is in the upper half of the curve order (malleable).
    #[error("signature has a high s value")]
    HighS,
    /// No public key recovers from the signature.
    #[error("no signer recovers from the signature")]
    Unrecoverable,
    /// The recovered signer is not `authorization.from`.
    #[error("signed by {signer}, not by {from}")]
    WrongSigner {
        /// Recovered signer.
        signer: Address,
        /// Claimed payer.
        from: Address,
    },
}

/// A payment that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPayment {
    /// The payer (the recovered signer, equal to `authorization.from`).
    pub payer: Address,
    /// The recipient.
    pub to: Address,
    /// The amount in atomic units.
    pub value: U256,
    /// The EIP-3009 nonce.
    pub nonce: B256,
    /// The EIP-712 digest that was signed; identifies this exact authorization.
    pub digest: B256,
    /// `validAfter`: what `transferWithAuthorization` needs besides the above.
    pub valid_after: U256,
    /// `validBefore`.
    pub valid_before: U256,
    /// The payer's signature over `digest`.
    pub signature: Signature,
}

/// The EIP-712 domain of `network`'s token.
pub fn token_domain(network: &NetworkConfig) -> Eip712Domain {
    eip712_domain! {
        name: network.domain_name.clone(),
        version: network.domain_version.clone(),
        chain_id: network.chain_id,
        verifying_contract: network.asset,
    }
}

/// The EIP-712 digest a client signs for `authorization` under `domain`.
pub fn authorization_digest(authorization: &ExactEvmAuthorization, domain: &Eip712Domain) -> B256 {
    eip3009::TransferWithAuthorization {
        from: authorization.from,
        to: authorization.to,
        value: authorization.value.0,
        validAfter: authorization.valid_after.0,
        validBefore: authorization.valid_before.0,
        nonce: authorization.nonce,
    }
    .eip712_signing_hash(domain)
}

/// Parses a 65-byte `r‖s‖v` hex signature, accepting v ∈ {27, 28} or {0, 1} and refusing
/// high-s.
pub fn parse_signature(hex_signature: &str) -> Result<Signature, SignatureError> {
    let digits = hex_signature.strip_prefix("0x").ok_or(SignatureError::NotHex)?;
    let bytes = alloy_primitives::hex::decode(digits).map_err(|_| SignatureError::NotHex)?;
    let bytes: [u8; 65] = bytes.as_slice().try_into().map_err(|_| SignatureError::Length(bytes.len()))?;
    let odd_y = match bytes[64] {
        0 | 27 => false,
        1 | 28 => true,
        other => return Err(SignatureError::RecoveryByte(other)),
    };
    let signature =
        Signature::from_scalars_and_parity(B256::from_slice(&bytes[..32]), B256::from_slice(&bytes[32..64]), odd_y);
    if signature.normalize_s().is_some() {
        return Err(SignatureError::HighS);
    }
    Ok(signature)
}

/// Recovers who signed `digest`, requiring it to be `from`.
pub fn check_signer(hex_signature: &str, digest: &B256, from: Address) -> Result<Address, SignatureError> {
    let signature = parse_signature(hex_signature)?;
    let signer = signature.recover_address_from_prehash(digest).map_err(|_| SignatureError::Unrecoverable)?;
    if signer != from {
        return Err(SignatureError::WrongSigner { signer, from });
    }
    Ok(signer)
}

/// The fields of a facilitator request the checks need, the same for both versions.
struct RequestView<'a> {
    x402_version: u8,
    paid_scheme: &'a str,
    paid_network: &'a str,
    payload: &'a Value,
    scheme: &'a str,
    network: &'a str,
    amount: U256,
    asset: &'a str,
    pay_to: &'a str,
    extra: Option<&'a Value>,
}

impl<'a> RequestView<'a> {
    fn new(request: &'a FacilitatorRequest) -> Self {
        match request {
            FacilitatorRequest::V1(r) => Self {
                x402_version: 1,
                paid_scheme: &r.payment_payload.scheme,
                paid_network: &r.payment_payload.network,
                payload: &r.payment_payload.payload,
                scheme: &r.payment_requirements.scheme,
                network: &r.payment_requirements.network,
                amount: r.payment_requirements.max_amount_required.0,
                asset: &r.payment_requirements.asset,
                pay_to: &r.payment_requirements.pay_to,
                extra: r.payment_requirements.extra.as_ref(),
            },
            FacilitatorRequest::V2(r) => Self {
                x402_version: 2,
                paid_scheme: &r.payment_payload.accepted.scheme,
                paid_network: &r.payment_payload.accepted.network,
                payload: &r.payment_payload.payload,
                scheme: &r.payment_requirements.scheme,
                network: &r.payment_requirements.network,
                amount: r.payment_requirements.amount.0,
                asset: &r.payment_requirements.asset,
                pay_to: &r.payment_requirements.pay_to,
                extra: r.payment_requirements.extra.as_ref(),
            },
        }
    }
}

/// Checks an `exact` EVM payment against the server's requirement, in the reference
/// facilitators' order: scheme, network, token domain, payload shape, signature (recovers to
/// `from`), recipient, `validBefore` ≥ `now` + 6 s, `validAfter` ≤ `now`, exact value.
///
/// `network` is the configuration the requirement's network must name; its token and EIP-712
/// domain are the ones the signature is checked under. `now` is Unix seconds.
pub fn verify_exact_evm(
    request: &FacilitatorRequest,
    network: &NetworkConfig,
    now: u64,
) -> Result<VerifiedPayment, VerifyError> {
    let view = RequestView::new(request);
    check_requirement(&view, network)?;
    let pay_to: Address =
        view.pay_to.parse().map_err(|_| VerifyError::InvalidRequirements("payTo is not an address"))?;
    let payload: ExactEvmPayload = serde_json::from_value(view.payload.clone()).map_err(VerifyError::InvalidPayload)?;
    let expected = ExpectedTransfer { network, pay_to, amount: view.amount, x402_version: view.x402_version };
    verify_authorization(&payload, &expected, now)
}

/// What a signed authorization must pay, for [`verify_authorization`].
pub(crate) struct ExpectedTransfer<'a> {
    /// Network whose token domain the signature is checked under.
    pub(crate) network: &'a NetworkConfig,
    /// Required recipient.
    pub(crate) pay_to: Address,
    /// Required amount, exactly.
    pub(crate) amount: U256,
    /// Protocol version, which picks the value-mismatch reason string.
    pub(crate) x402_version: u8,
}

/// The checks on the signed EIP-3009 authorization itself, shared by x402 `exact` and MPP
/// `evm/charge`: signature (recovers to `from`), recipient, `validBefore` ≥ `now` + 6 s,
/// `validAfter` ≤ `now`, exact value.
pub(crate) fn verify_authorization(
    payload: &ExactEvmPayload,
    expected: &ExpectedTransfer<'_>,
    now: u64,
) -> Result<VerifiedPayment, VerifyError> {
    let authorization = &payload.authorization;
    let digest = authorization_digest(authorization, &token_domain(expected.network));
    let payer = check_signer(&payload.signature, &digest, authorization.from)?;
    let signature = parse_signature(&payload.signature)?;
    let pay_to = expected.pay_to;
    if authorization.to != pay_to {
        return Err(VerifyError::RecipientMismatch { to: authorization.to, pay_to });
    }
    if authorization.valid_before.0 < U256::from(now) + U256::from(VALID_BEFORE_BUFFER_SECONDS) {
        return Err(VerifyError::Expired(authorization.valid_before.0));
    }
    if authorization.valid_after.0 > U256::from(now) {
        return Err(VerifyError::NotYetValid(authorization.valid_after.0));
    }
    if authorization.value.0 != expected.amount {
        return Err(VerifyError::ValueMismatch {
            value: authorization.value.0,
            required: expected.amount,
            x402_version: expected.x402_version,
        });
    }
    Ok(VerifiedPayment {
        payer,
        to: pay_to,
        value: authorization.value.0,
        nonce: authorization.nonce,
        digest,
        valid_after: authorization.valid_after.0,
        valid_before: authorization.valid_before.0,
        signature,
    })
}

/// The checks that need only the requirement and the payment's declared scheme and network.
fn check_requirement(view: &RequestView<'_>, network: &NetworkConfig) -> Result<(), VerifyError> {
    if view.scheme != SCHEME_EXACT {
        return Err(VerifyError::UnsupportedScheme(view.scheme.to_owned()));
    }
    if view.paid_scheme != view.scheme {
        return Err(VerifyError::SchemeMismatch {
            paid: view.paid_scheme.to_owned(),
            required: view.scheme.to_owned(),
        });
    }
    if view.paid_network != view.network {
        return Err(VerifyError::NetworkMismatch {
            paid: view.paid_network.to_owned(),
            required: view.network.to_owned(),
        });
    }
    let named = match view.x402_version {
        1 => network.v1_name.as_deref() == Some(view.network),
        _ => network.caip2 == view.network,
    };
    if !named {
        return Err(VerifyError::UnsupportedNetwork(view.network.to_owned()));
    }
    if view.asset.parse::<Address>().ok() != Some(network.asset) {
        return Err(VerifyError::InvalidRequirements("asset is not the network's token"));
    }
    let domain_field = |key: &str| view.extra.and_then(|extra| extra.get(key)).and_then(Value::as_str);
    let (Some(name), Some(version)) = (domain_field("name"), domain_field("version")) else {
        return Err(VerifyError::MissingDomain);
    };
    if name != network.domain_name {
        return Err(VerifyError::TokenNameMismatch(name.to_owned()));
    }
    if version != network.domain_version {
        return Err(VerifyError::TokenVersionMismatch(version.to_owned()));
    }
    Ok(())
}
