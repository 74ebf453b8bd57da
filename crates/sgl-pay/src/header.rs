//! The x402 HTTP header codec: standard base64 (with padding) of UTF-8 JSON, header names for
//! both protocol versions, and the parse of an incoming payment from either payment header.
//!
//! Emitting uses standard base64 because browsers' `atob` rejects the URL-safe alphabet;
//! reading is lenient about the alphabet and padding.

#[cfg(test)]
mod tests;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{PaymentPayloadV1, PaymentPayloadV2};

/// v2: the 402 answer's payment requirements (base64 JSON `PaymentRequiredV2`).
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// v2: the client's payment (base64 JSON `PaymentPayloadV2`).
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// v2: the server's settlement result (base64 JSON `SettleResponse`).
pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
/// v1: the client's payment (base64 JSON `PaymentPayloadV1`).
pub const X_PAYMENT: &str = "X-PAYMENT";
/// v1: the server's settlement result (base64 JSON `SettleResponse`).
pub const X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";
/// Headers a server should list in `Access-Control-Expose-Headers` so browser clients can read
/// them.
pub const EXPOSED_HEADERS: &[&str] = &[PAYMENT_REQUIRED, PAYMENT_RESPONSE, X_PAYMENT_RESPONSE];

/// A header value that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The value is not base64.
    #[error("header value is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The decoded bytes are not the expected JSON object.
    #[error("header value is not the expected JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The value to send could not be written as JSON.
    #[error("header value could not be encoded as JSON: {0}")]
    Encode(#[source] serde_json::Error),
}

impl HeaderError {
    /// The spec reason string for a malformed payment header.
    pub fn reason(&self) -> &'static str {
        "invalid_payload"
    }
}

/// Lenient decoders: the standard alphabet first, then URL-safe, padding optional.
const LENIENT: [GeneralPurpose; 2] = [
    GeneralPurpose::new(&alphabet::STANDARD, lenient_config()),
    GeneralPurpose::new(&alphabet::URL_SAFE, lenient_config()),
];

const fn lenient_config() -> GeneralPurposeConfig {
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent)
}

/// Encodes `value` as an x402 header value: standard base64, with padding, of its JSON.
pub fn encode_header<T: Serialize>(value: &T) -> Result<String, HeaderError> {
    let json = serde_json::to_vec(value).map_err(HeaderError::Encode)?;
    Ok(STANDARD.encode(json))
}

/// Decodes an x402 header value (base64 JSON, either alphabet, padding optional).
pub fn decode_header<T: DeserializeOwned>(value: &str) -> Result<T, HeaderError> {
    let bytes = decode_base64_lenient(value.trim())?;
    serde_json::from_slice(&bytes).map_err(HeaderError::Json)
}

/// Decodes base64 in either alphabet, padding optional; the error is the standard alphabet's.
pub(crate) fn decode_base64_lenient(value: &str) -> Result<Vec<u8>, base64::DecodeError> {
    match LENIENT[0].decode(value) {
        Ok(bytes) => Ok(bytes),
        Err(standard_error) => LENIENT[1].decode(value).map_err(|_| standard_error),
    }
}

/// A payment sent by a client, from either payment header.
// One exists per paid request and it is matched on by version; boxing v2 buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum IncomingPayment {
    /// From `X-PAYMENT` (or a v1 payload in `PAYMENT-SIGNATURE`).
    V1(PaymentPayloadV1),
    /// From `PAYMENT-SIGNATURE` (or a v2 payload in `X-PAYMENT`).
    V2(PaymentPayloadV2),
}

impl IncomingPayment {
    /// Parses the payment from the request's `PAYMENT-SIGNATURE` and `X-PAYMENT` header
    /// values; `Ok(None)` when neither is present. `PAYMENT-SIGNATURE` wins when both are.
    ///
    /// The JSON's own `x402Version` decides the shape, whichever header carried it, since the
    /// payload is self-describing.
    pub fn from_headers(payment_signature: Option<&str>, x_payment: Option<&str>) -> Result<Option<Self>, HeaderError> {
        let Some(value) = payment_signature.or(x_payment) else { return Ok(None) };
        let json: serde_json::Value = decode_header(value)?;
        let payment = if json.get("x402Version").and_then(serde_json::Value::as_u64) == Some(1) {
            Self::V1(serde_json::from_value(json).map_err(HeaderError::Json)?)
        } else {
            Self::V2(serde_json::from_value(json).map_err(HeaderError::Json)?)
        };
        Ok(Some(payment))
    }

    /// The payment's `x402Version`.
    pub fn x402_version(&self) -> u8 {
        match self {
            Self::V1(_) => 1,
            Self::V2(_) => 2,
        }
    }

    /// The header the settlement result goes back in: `X-PAYMENT-RESPONSE` for v1,
    /// `PAYMENT-RESPONSE` for v2.
    pub fn response_header_name(&self) -> &'static str {
        match self {
            Self::V1(_) => X_PAYMENT_RESPONSE,
            Self::V2(_) => PAYMENT_RESPONSE,
        }
    }
}
