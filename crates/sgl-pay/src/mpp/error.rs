//! Why an MPP credential is refused, and the RFC 9457 problem details a server answers with.

use alloy_primitives::{B256, U256};
use serde::{Deserialize, Serialize};

use crate::exact_evm::VerifyError;
use crate::header::HeaderError;

/// Why a credential was refused. [`MppError::problem`] gives the problem details to answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MppError {
    /// The `Authorization` value is not of the `Payment` scheme.
    #[error("the authorization is not of the Payment scheme")]
    NotPaymentScheme,
    /// The `Authorization` value is longer than [`super::MAX_AUTHORIZATION_BYTES`].
    #[error("the credential is too large")]
    TooLarge,
    /// The credential is not base64url JSON of the expected shape.
    #[error("the credential does not decode: {0}")]
    Encoding(#[source] HeaderError),
    /// The credential answers another method or intent than `evm/charge`.
    #[error("payment method {method}/{intent} is not supported")]
    UnsupportedMethod {
        /// The echoed method.
        method: String,
        /// The echoed intent.
        intent: String,
    },
    /// The payload's `type` is not `authorization`.
    #[error("credential type {0:?} is not supported")]
    UnsupportedCredentialType(String),
    /// The `authorization` payload does not parse.
    #[error("the authorization payload is malformed: {0}")]
    Payload(#[source] serde_json::Error),
    /// The echoed realm is not ours.
    #[error("challenge realm {0:?} is not ours")]
    RealmMismatch(String),
    /// The echoed id is not the HMAC of the echoed fields under our secret: we did not issue
    /// this challenge, or a field was changed.
    #[error("the challenge was not issued here")]
    NotIssued,
    /// The echoed challenge has no (valid) `expires`; ours always do.
    #[error("the challenge has no valid expiry")]
    MissingExpiry,
    /// The challenge has expired.
    #[error("the challenge expired at {expires}")]
    ChallengeExpired {
        /// The echoed `expires`.
        expires: String,
    },
    /// The echoed `request` does not decode.
    #[error("the challenge request does not decode: {0}")]
    Request(#[source] HeaderError),
    /// The challenge's request names another token, recipient, chain or credential types than
    /// this configuration (it was issued under another configuration).
    #[error("the challenge request's {0} is not this server's")]
    RequestMismatch(&'static str),
    /// The challenge asks for another amount than the resource costs now.
    #[error("the challenge asks for {challenged}, the resource costs {expected}")]
    AmountMismatch {
        /// Amount in the challenge.
        challenged: U256,
        /// Amount expected.
        expected: U256,
    },
    /// The authorization fails a check: signature, recipient, value or validity window.
    #[error(transparent)]
    Authorization(#[from] VerifyError),
    /// The authorization's nonce is not bound to the echoed challenge.
    #[error("nonce {0} is not the challenge's hash")]
    NonceMismatch(B256),
    /// The credential's `source` names another payer or chain.
    #[error("source {0:?} is not the payer")]
    SourceMismatch(String),
}

impl MppError {
    /// The problem details for this refusal.
    pub fn problem(&self) -> ProblemDetails {
        ProblemDetails::new(self.problem_type(), self.to_string())
    }

    /// The problem type for this refusal.
    pub fn problem_type(&self) -> ProblemType {
        match self {
            Self::NotPaymentScheme | Self::TooLarge | Self::Encoding(_) | Self::Payload(_) => {
                ProblemType::MalformedCredential
            }
            Self::UnsupportedMethod { .. } | Self::UnsupportedCredentialType(_) => ProblemType::MethodUnsupported,
            Self::RealmMismatch(_)
            | Self::NotIssued
            | Self::MissingExpiry
            | Self::Request(_)
            | Self::RequestMismatch(_) => ProblemType::InvalidChallenge,
            Self::ChallengeExpired { .. } | Self::Authorization(VerifyError::Expired(_)) => ProblemType::PaymentExpired,
            Self::AmountMismatch { challenged, expected } if challenged < expected => ProblemType::PaymentInsufficient,
            Self::AmountMismatch { .. } => ProblemType::InvalidChallenge,
            Self::Authorization(_) | Self::NonceMismatch(_) | Self::SourceMismatch(_) => {
                ProblemType::VerificationFailed
            }
        }
    }
}

/// The problem types of the Payment scheme, under `https://paymentauth.org/problems/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemType {
    /// No credential was sent.
    PaymentRequired,
    /// The proof is invalid, or the payment could not be settled.
    VerificationFailed,
    /// The challenge or the authorization has expired.
    PaymentExpired,
    /// The credential does not decode.
    MalformedCredential,
    /// The challenge was not issued here, or no longer matches this server.
    InvalidChallenge,
    /// The method, intent or credential type is not supported (HTTP 400).
    MethodUnsupported,
    /// The amount is too low.
    PaymentInsufficient,
}

impl ProblemType {
    /// The `type` URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::PaymentRequired => "https://paymentauth.org/problems/payment-required",
            Self::VerificationFailed => "https://paymentauth.org/problems/verification-failed",
            Self::PaymentExpired => "https://paymentauth.org/problems/payment-expired",
            Self::MalformedCredential => "https://paymentauth.org/problems/malformed-credential",
            Self::InvalidChallenge => "https://paymentauth.org/problems/invalid-challenge",
            Self::MethodUnsupported => "https://paymentauth.org/problems/method-unsupported",
            Self::PaymentInsufficient => "https://paymentauth.org/problems/payment-insufficient",
        }
    }

    /// The short human-readable `title`.
    pub fn title(self) -> &'static str {
        match self {
            Self::PaymentRequired => "Payment Required",
            Self::VerificationFailed => "Verification Failed",
            Self::PaymentExpired => "Payment Expired",
            Self::MalformedCredential => "Malformed Credential",
            Self::InvalidChallenge => "Invalid Challenge",
            Self::MethodUnsupported => "Method Unsupported",
            Self::PaymentInsufficient => "Payment Insufficient",
        }
    }

    /// The HTTP status to answer with: 400 for an unsupported method, otherwise 402 (with a
    /// fresh challenge).
    pub fn status(self) -> u16 {
        match self {
            Self::MethodUnsupported => 400,
            _ => 402,
        }
    }
}

/// An RFC 9457 problem details body (`application/problem+json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProblemDetails {
    /// The problem type URI.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// The id of the challenge sent along, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_id: Option<String>,
}

impl ProblemDetails {
    /// Problem details of type `kind` with `detail`.
    pub fn new(kind: ProblemType, detail: String) -> Self {
        Self {
            type_uri: kind.uri().to_owned(),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail,
            challenge_id: None,
        }
    }

    /// The body of a plain 402: payment is required for `realm`.
    pub fn payment_required(realm: &str) -> Self {
        Self::new(ProblemType::PaymentRequired, format!("Payment is required for {realm:?}."))
    }

    /// The same problem, naming the fresh challenge sent with it.
    pub fn with_challenge_id(mut self, challenge_id: &str) -> Self {
        self.challenge_id = Some(challenge_id.to_owned());
        self
    }
}
