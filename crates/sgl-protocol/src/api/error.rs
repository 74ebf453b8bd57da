//! The error body every HTTP endpoint returns, in OpenAI's shape, so stock OpenAI clients
//! surface our messages: `{"error":{"message","type","param","code"}}`.

use serde::{Deserialize, Serialize};

/// OpenAI's broad error class (`error.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

/// A closed set of machine-readable error codes (`error.code`). Clients branch on these, never
/// on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

/// The inner error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A human-readable explanation, safe to show (never secrets or prompt text).
    pub message: String,
    /// The broad class.
    #[serde(rename = "type")]
    pub error_type: ErrorType,
    /// The offending parameter, when one is to blame.
    pub param: Option<String>,
    /// The machine-readable code.
    pub code: Option<ErrorCode>,
}

/// `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
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
