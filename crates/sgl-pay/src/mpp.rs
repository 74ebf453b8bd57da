//! MPP, the "Payment" HTTP authentication scheme (draft-httpauth-payment), for the `evm` method,
//! `charge` intent and `authorization` credential type: an EIP-3009
//! `TransferWithAuthorization` like x402 `exact`, with the nonce pinned to the challenge.
//!
//! The flow, stateless on the server:
//! 1. [`MppConfig::issue_challenge`] makes a [`Challenge`]; answer 402 with
//!    `WWW-Authenticate: `[`Challenge::www_authenticate`] and a [`ProblemDetails`] body.
//! 2. The client retries with `Authorization: Payment <base64url JSON>`;
//!    [`parse_authorization`] reads it.
//! 3. [`verify_credential`] checks that we issued the echoed challenge (its `id` is an HMAC of
//!    the other fields), that it has not expired, that it asks for the expected amount, and
//!    that the signed authorization pays it; [`settle_payment`] then moves the amount in a
//!    [`PaymentLedger`](crate::ledger::PaymentLedger), where the nonce is used up.
//! 4. Answer 200 with `Payment-Receipt: `[`Receipt::header_value`], or 402 with a fresh
//!    challenge and [`MppError::problem`] / [`MppSettlement::problem`].
//!
//! What the real Python client (`pympp[evm]` 0.16.0, `mpp.methods.evm.client.charge`) needs,
//! read from its source and exercised by this crate's interop test:
//! - `request` (base64url without padding of JCS JSON) is
//!   `{amount, currency, recipient, methodDetails: {chainId, credentialTypes: ["authorization"],
//!   decimals}}`. The client requires `methodDetails.chainId` to equal the chain it is
//!   configured for, `currency` to equal its token (any letter case), `credentialTypes` to
//!   list `"authorization"`, no `splits`, `amount` a non-zero decimal string and `recipient` an
//!   address. Its own server model also requires `decimals`, so we always send it.
//! - It refuses a challenge whose `expires` is past, signs `validAfter = "0"` and
//!   `validBefore` = `expires` in whole seconds, so a credential must reach the server at least
//!   [`VALID_BEFORE_BUFFER_SECONDS`](crate::exact_evm::VALID_BEFORE_BUFFER_SECONDS) before
//!   its challenge expires.
//! - Its nonce is keccak256 of the compact JSON array `["<id>","<realm>"]`; `mppx` 0.11.0
//!   hashes the plain concatenation id‖realm instead (both appear in `mppx`'s history). We
//!   accept either ([`NonceDerivation`]); the HMAC-bound id, the expiry and the single-use
//!   nonce in the ledger are what protect the server.
//! - The credential echoes `id, realm, method, intent, request` (the base64url string as
//!   received), `expires`, and `description` when present; `source` is
//!   `did:pkh:eip155:<chainId>:<checksummed payer>`. It is base64url JSON without padding.
//! - The receipt needs `status: "success"`, `timestamp` (ISO 8601), `reference` and `method`.
//! - Its automatic client pays a 402 on the paid retry again (up to three times) with a fresh
//!   credential; `pympp`'s own server answers a replayed credential with 403 for that reason.

#[cfg(test)]
mod tests;

mod challenge;
mod credential;
mod error;
pub mod jcs;
mod receipt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use challenge::{Challenge, ChargeRequest, MethodDetails, MppConfig, MppConfigError};
pub use credential::{
    AuthorizationPayload, ChallengeEcho, Credential, NonceDerivation, VerifiedMppPayment, parse_authorization,
    verify_credential,
};
pub use error::{MppError, ProblemDetails, ProblemType};
pub use receipt::{MppSettlement, Receipt, settle_payment};

/// The HTTP authentication scheme name.
pub const SCHEME: &str = "Payment";
/// The payment method this module implements.
pub const METHOD_EVM: &str = "evm";
/// The intent this module implements: a one-time payment.
pub const INTENT_CHARGE: &str = "charge";
/// The credential type this module accepts: an EIP-3009 authorization.
pub const CREDENTIAL_TYPE_AUTHORIZATION: &str = "authorization";
/// Response header carrying a challenge.
pub const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
/// Request header carrying a credential.
pub const AUTHORIZATION: &str = "Authorization";
/// Response header carrying a receipt (base64url JSON) on success.
pub const PAYMENT_RECEIPT: &str = "Payment-Receipt";
/// Content type of a [`ProblemDetails`] body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
/// Default challenge lifetime, in seconds.
pub const DEFAULT_CHALLENGE_LIFETIME_SECONDS: u64 = 300;
/// Largest `Authorization` value read, as in `pympp` and `mppx`.
pub const MAX_AUTHORIZATION_BYTES: usize = 64 * 1024;

/// Base64url without padding, MPP's encoding for every binary or JSON value.
fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
