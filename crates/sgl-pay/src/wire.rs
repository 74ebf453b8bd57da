//! x402 wire types, v1 and v2: what travels in the 402 answer, the payment headers, the
//! settlement headers and the facilitator API. Field names are camelCase and amounts are
//! decimal strings, exactly as the spec and the reference clients write them.
//!
//! Addresses in requirements stay strings so that what a client echoes back is kept verbatim;
//! they are parsed (case-insensitively) where they are compared.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use alloy_primitives::{Address, B256, U256};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The only scheme this crate verifies: a fixed amount, EIP-3009 on EVM chains.
pub const SCHEME_EXACT: &str = "exact";

/// An unsigned 256-bit integer written as a decimal string (`"10000"`), the form x402 uses for
/// amounts and EIP-3009 time bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DecimalU256(pub U256);

impl From<U256> for DecimalU256 {
    fn from(value: U256) -> Self {
        Self(value)
    }
}

impl From<u64> for DecimalU256 {
    fn from(value: u64) -> Self {
        Self(U256::from(value))
    }
}

impl fmt::Display for DecimalU256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for DecimalU256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DecimalU256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom(format!("expected a decimal integer string, got {text:?}")));
        }
        U256::from_str_radix(&text, 10).map(Self).map_err(D::Error::custom)
    }
}

impl utoipa::PartialSchema for DecimalU256 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("An unsigned 256-bit integer as a decimal string."))
            .pattern(Some("^[0-9]{1,78}$"))
            .into()
    }
}

impl utoipa::ToSchema for DecimalU256 {}

/// Declares a unit type that (de)serializes as one fixed `x402Version` number.
macro_rules! version_tag {
    ($name:ident, $number:literal) => {
        #[doc = concat!("The `x402Version` number `", stringify!($number), "`; any other number fails to parse.")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u8($number)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .enum_values(Some([$number]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                match u64::deserialize(deserializer)? {
                    $number => Ok(Self),
                    other => Err(D::Error::custom(format!("x402Version {other}, expected {}", $number))),
                }
            }
        }
    };
}

version_tag!(V1, 1);
version_tag!(V2, 2);

/// One acceptable way to pay, v1 shape (`maxAmountRequired`, v1 network names, resource info
/// inside the requirement).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirementsV1 {
    /// Payment scheme, `"exact"`.
    pub scheme: String,
    /// Legacy network name, e.g. `base-sepolia`.
    pub network: String,
    /// Price in the asset's atomic units (USDC: 6 decimals).
    pub max_amount_required: DecimalU256,
    /// Token contract address.
    pub asset: String,
    /// Recipient address.
    pub pay_to: String,
    /// URL of the protected resource.
    pub resource: String,
    /// Human-readable description of the resource.
    #[serde(default)]
    pub description: String,
    /// MIME type of the resource's response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// JSON schema of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// How long the client should make its authorization valid.
    pub max_timeout_seconds: u64,
    /// Scheme data; for EVM `exact`, the token's EIP-712 domain `{name, version}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// One acceptable way to pay, v2 shape (`amount`, CAIP-2 networks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirementsV2 {
    /// Payment scheme, `"exact"`.
    pub scheme: String,
    /// CAIP-2 network, e.g. `eip155:84532`.
    pub network: String,
    /// Price in the asset's atomic units.
    pub amount: DecimalU256,
    /// Token contract address.
    pub asset: String,
    /// Recipient address.
    pub pay_to: String,
    /// How long the client should make its authorization valid.
    pub max_timeout_seconds: u64,
    /// Scheme data; for EVM `exact`, `{name, version}` and optionally `assetTransferMethod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// The resource a v2 payment is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// URL of the protected resource.
    pub url: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// The v1 402 body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV1 {
    /// Always 1.
    pub x402_version: V1,
    /// Why payment is required (e.g. "X-PAYMENT header is required").
    pub error: String,
    /// Acceptable payments.
    pub accepts: Vec<PaymentRequirementsV1>,
}

/// The v2 `PAYMENT-REQUIRED` header object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV2 {
    /// Always 2.
    pub x402_version: V2,
    /// Why payment is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource being sold.
    pub resource: ResourceInfo,
    /// Acceptable payments.
    pub accepts: Vec<PaymentRequirementsV2>,
    /// Extension declarations, `name -> {info, schema}`; clients echo them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// A v1 payment (`X-PAYMENT` header).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV1 {
    /// Always 1.
    pub x402_version: V1,
    /// Scheme the client chose.
    pub scheme: String,
    /// v1 network name the client chose.
    pub network: String,
    /// Scheme data; for EVM `exact`, an [`ExactEvmPayload`].
    pub payload: Value,
}

/// A v2 payment (`PAYMENT-SIGNATURE` header).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV2 {
    /// Always 2.
    pub x402_version: V2,
    /// The resource, as the client received it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The requirement the client chose, echoed (the client may have filled in `extra`).
    pub accepted: PaymentRequirementsV2,
    /// Scheme data; for EVM `exact`, an [`ExactEvmPayload`].
    pub payload: Value,
    /// Extension data echoed by the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// The `payload` of an EVM `exact` payment (EIP-3009), the same in v1 and v2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExactEvmPayload {
    /// 0x-prefixed hex signature; 65 bytes for an ordinary account.
    pub signature: String,
    /// The signed `TransferWithAuthorization` message.
    pub authorization: ExactEvmAuthorization,
}

/// The EIP-3009 `TransferWithAuthorization` fields as the client signed them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExactEvmAuthorization {
    /// Payer.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{40}$")]
    pub from: Address,
    /// Recipient.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{40}$")]
    pub to: Address,
    /// Amount in atomic units.
    pub value: DecimalU256,
    /// Unix time after which the authorization is valid.
    pub valid_after: DecimalU256,
    /// Unix time before which the authorization is valid.
    pub valid_before: DecimalU256,
    /// Random 32-byte nonce, single use per `from` and token.
    #[schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$")]
    pub nonce: B256,
}

/// Result of a settlement, sent to the client in `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`
/// and returned by a facilitator's `/settle`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the payment moved.
    pub success: bool,
    /// Spec reason string when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// The payer's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Transaction hash, `""` on failure.
    #[serde(default)]
    pub transaction: String,
    /// Network of the payment (as named in the requirement).
    pub network: String,
    /// Amount settled in atomic units (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<DecimalU256>,
    /// Extension data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// Result of a facilitator's `/verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment would settle.
    pub is_valid: bool,
    /// Spec reason string when it would not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// The payer's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// Body of a v1 facilitator `/verify` or `/settle` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequestV1 {
    /// Always 1.
    pub x402_version: V1,
    /// The decoded `X-PAYMENT` header.
    pub payment_payload: PaymentPayloadV1,
    /// The server's own requirement the payment is checked against.
    pub payment_requirements: PaymentRequirementsV1,
}

/// Body of a v2 facilitator `/verify` or `/settle` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FacilitatorRequestV2 {
    /// Always 2.
    pub x402_version: V2,
    /// The decoded `PAYMENT-SIGNATURE` header.
    pub payment_payload: PaymentPayloadV2,
    /// The server's own requirement the payment is checked against.
    pub payment_requirements: PaymentRequirementsV2,
}

/// Body of a facilitator `/verify` or `/settle` request, `{x402Version, paymentPayload,
/// paymentRequirements}`, in either version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum FacilitatorRequest {
    /// Version 1.
    V1(FacilitatorRequestV1),
    /// Version 2.
    V2(FacilitatorRequestV2),
}

impl FacilitatorRequest {
    /// The `x402Version` of this request.
    pub fn x402_version(&self) -> u8 {
        match self {
            Self::V1(_) => 1,
            Self::V2(_) => 2,
        }
    }

    /// The network the server requires, as named in its requirement.
    pub fn required_network(&self) -> &str {
        match self {
            Self::V1(request) => &request.payment_requirements.network,
            Self::V2(request) => &request.payment_requirements.network,
        }
    }

    /// The amount the server requires.
    pub fn required_amount(&self) -> U256 {
        match self {
            Self::V1(request) => request.payment_requirements.max_amount_required.0,
            Self::V2(request) => request.payment_requirements.amount.0,
        }
    }
}

/// One `(version, scheme, network)` a facilitator handles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// Protocol version, 1 or 2.
    pub x402_version: u8,
    /// Scheme, e.g. `"exact"`.
    pub scheme: String,
    /// Network: a v1 name for version 1, CAIP-2 for version 2.
    pub network: String,
    /// Scheme data (e.g. an SVM fee payer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// A facilitator's `/supported` answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    /// What it can verify and settle.
    pub kinds: Vec<SupportedKind>,
    /// Extensions it understands.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Its signing addresses per network pattern (e.g. `"eip155:*"`).
    #[serde(default)]
    pub signers: BTreeMap<String, Vec<String>>,
}
