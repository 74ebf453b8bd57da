//! The sealed objects that travel inside other bodies: a request's `enc` and a reply's
//! `sealed_result`.

use serde::{Deserialize, Serialize};

/// A sealed request (`enc`), from the caller to one node, opaque to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealedInput {
    /// `b58(nonce24 || ct || tag)`.
    pub ciphertext: String,
    /// The caller's ephemeral X25519 key for this request, base58.
    pub client_ephemeral_pubkey: String,
    /// The caller's response X25519 key, base58; the reply is sealed to it.
    pub client_response_pubkey: String,
    /// The sealing version tag; absent means v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
}

/// A sealed non-stream reply (`sealed_result`), from the node to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealedResult {
    /// `b58(nonce24 || ct || tag)`; this string is what the result envelope signs.
    pub ciphertext: String,
    /// The node's fresh ephemeral X25519 key, base58.
    pub ephemeral_public_key: String,
    /// The version tag, mirroring the request.
    pub algorithm: String,
}
