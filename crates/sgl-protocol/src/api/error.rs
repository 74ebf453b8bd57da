//! The error body every HTTP endpoint returns, in OpenAI's shape, so stock OpenAI clients
//! surface our messages: `{"error":{"message","type","param","code"}}`.
//!
//! Reading is more forgiving than writing: a seed grid answers `{"error":"<text>"}`, and a
//! newer peer may send a `type` or `code` we do not know; both still parse.

use serde::{Deserialize, Deserializer, Serialize};

/// OpenAI's broad error class (`error.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorType {
    /// The request is malformed or names something that does not exist (400, 404, 409).
    InvalidRequestError,
    /// No or a wrong credential (401).
    AuthenticationError,
    /// The credential may not do this (403).
    PermissionError,
    /// The resource does not exist (404).
    NotFoundError,
    /// Payment is needed: no credits, or x402/MPP (402).
    PaymentRequiredError,
    /// Too many requests (429).
    RateLimitError,
    /// No capacity right now (503).
    ServiceUnavailableError,
    /// Our fault (500).
    ServerError,
    /// A type this version does not know (read only).
    #[serde(other)]
    Other,
}

/// A closed set of machine-readable error codes (`error.code`). Clients branch on these, never
/// on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body or a parameter is invalid.
    InvalidRequest,
    /// The API key is missing, unknown or revoked.
    InvalidApiKey,
    /// The node token is missing, unknown or expired.
    InvalidNodeToken,
    /// The caller's credits do not cover the request.
    InsufficientCredits,
    /// Pay with x402 or MPP to proceed.
    PaymentRequired,
    /// No node serves this model.
    ModelNotFound,
    /// The resource does not exist.
    NotFound,
    /// No provider is at or under `max_price`.
    PriceCapUnmet,
    /// Every suitable node is busy.
    NoCapacity,
    /// The reservation is unknown, used or expired.
    InvalidReservation,
    /// The request conflicts with the current state.
    Conflict,
    /// A signature did not verify.
    InvalidSignature,
    /// Too many requests.
    RateLimited,
    /// The node failed or vanished while serving.
    UpstreamFailed,
    /// An internal error; details are in the coordinator's log, not here.
    Internal,
    /// A code this version does not know (read only).
    #[serde(other)]
    Other,
}

/// The inner error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A human-readable explanation, safe to show (never secrets or prompt text).
    pub message: String,
    /// The broad class.
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    /// The offending parameter, when one is to blame.
    #[serde(default)]
    pub param: Option<String>,
    /// The machine-readable code.
    #[serde(default)]
    pub code: Option<ErrorCode>,
}

/// `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The two shapes an error body arrives in.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBodyWire {
    OpenAi { error: ErrorDetail },
    Seed { error: String },
}

impl<'de> Deserialize<'de> for ErrorBody {
    /// Reads OpenAI's object form and the seed's `{"error": "<text>"}` (as type `other`).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match ErrorBodyWire::deserialize(deserializer)? {
            ErrorBodyWire::OpenAi { error } => Self { error },
            ErrorBodyWire::Seed { error } => {
                Self { error: ErrorDetail { message: error, error_type: ErrorType::Other, param: None, code: None } }
            }
        })
    }
}

impl ErrorBody {
    /// An error body with no parameter named.
    pub fn new(error_type: ErrorType, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { message: message.into(), error_type, param: None, code: Some(code) } }
    }

    /// Names the offending parameter.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.error.param = Some(param.into());
        self
    }
}
