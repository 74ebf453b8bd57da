//! What a node is asked to run and what it answers: the inference request (the sealed
//! plaintext, or a plain dispatch payload), the job result and token usage.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::openai::{ChatMessage, StopSequences};
use super::sealed::SealedInput;

/// Token counts. Fields are in alphabetical order because the seed serialises results with
/// sorted keys and the signed bytes must match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    /// Tokens generated (an end-of-generation token counts, as llama-server counts it).
    pub completion_tokens: u64,
    /// Tokens in the rendered prompt.
    pub prompt_tokens: u64,
    /// The sum of the two.
    pub total_tokens: u64,
}

impl Usage {
    /// Usage with `total_tokens` computed, saturating instead of overflowing.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self { completion_tokens, prompt_tokens, total_tokens: prompt_tokens.saturating_add(completion_tokens) }
    }
}

/// An inference request as the node sees it: the sealed plaintext of a caller's request, or
/// the plain `input_payload` of an unsealed job (§1.8, §3.2).
///
/// The first three fields are what seed callers send, in their order. The rest are optional
/// sampling fields our callers may add; seed nodes ignore them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InferenceRequest {
    /// The conversation. Either this or `prompt` must be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    /// Sampling temperature; the node defaults to 0.7 and clamps to 0..=2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Completion cap; the node defaults to 2048 and clamps to 1..=8192.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// A bare prompt, wrapped by the node as one user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Inside a sealed request: the caller asks for a stream (a relay cannot turn it on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Inside a sealed stream request: the secret nonce bound into every chunk's AAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Min-p sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// Sampling seed, for reproducible output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSequences>,
}

/// A job's `input_payload`: sealed (`enc`, plus the relay's cleartext `stream` marker) or
/// plain. An object with an `enc` key is always read as sealed, so a malformed sealed payload
/// is an error and never silently runs as plain text.
#[derive(Debug, Clone, PartialEq)]
pub enum JobPayload {
    /// A sealed request.
    Sealed {
        /// The sealed request, forwarded untouched.
        enc: SealedInput,
        /// The coordinator's marker that it has an SSE relay ready.
        stream: bool,
        /// Ours: the completion cap the grid escrowed for (the caller's cleartext
        /// `max_tokens`); a node generates at most the smaller of this and the sealed
        /// `max_tokens`, so a quote cannot be undercut by a larger sealed value (seed S3).
        max_tokens: Option<u64>,
    },
    /// An unsealed request.
    Plain(InferenceRequest),
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct SealedPayloadWire {
    enc: SealedInput,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
}

impl Serialize for JobPayload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Sealed { enc, stream, max_tokens } => {
                SealedPayloadWire { enc: enc.clone(), stream: *stream, max_tokens: *max_tokens }.serialize(serializer)
            }
            Self::Plain(request) => request.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for JobPayload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let is_sealed = value.get("enc").is_some();
        if is_sealed {
            let wire: SealedPayloadWire = serde_json::from_value(value).map_err(serde::de::Error::custom)?;
            Ok(Self::Sealed { enc: wire.enc, stream: wire.stream, max_tokens: wire.max_tokens })
        } else {
            serde_json::from_value(value).map(Self::Plain).map_err(serde::de::Error::custom)
        }
    }
}

/// A finished non-stream result: the plaintext that is sent plain as `encrypted_result` or
/// sealed into `sealed_result`. Alphabetical field order reproduces the seed's sorted keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResult {
    /// The generated text.
    pub content: String,
    /// The node's model name.
    pub model: String,
    /// Token counts.
    pub usage: Usage,
}

impl JobResult {
    /// The compact JSON the seed signs and seals: `{"content":…,"model":…,"usage":{…}}`.
    pub fn to_compact_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings and integers always serialises")
    }
}
