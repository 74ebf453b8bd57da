//! OpenAI's chat completion shapes, as the official SDKs send and expect them: request,
//! response, stream chunk and model list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::inference::Usage;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`, or another role a template knows.
    pub role: String,
    /// Text, an array of content parts, or null (an assistant turn that only called tools).
    #[serde(default)]
    pub content: Option<MessageContent>,
    /// An optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ChatMessage {
    /// A message with plain text content.
    pub fn text(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: Some(MessageContent::Text(content.into())), name: None }
    }
}

/// Message content: a string, or OpenAI's array of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Typed parts (text, images).
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The same content as one string: what a node that has not announced content parts reads
    /// (a seed node reads `content` as a string only).
    pub fn flattened(&self) -> Self {
        Self::Text(self.joined_text())
    }

    /// The text of the content: the string, or the text parts joined by newlines.
    pub fn joined_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    ContentPart::Text { text } => Some(text.as_str()),
                    ContentPart::ImageUrl { .. } | ContentPart::Unsupported => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// One typed part of message content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// A text part.
    Text {
        /// The text.
        text: String,
    },
    /// An image part.
    ImageUrl {
        /// `{"url": …, "detail"?: …}`.
        image_url: ImageUrl,
    },
    /// A part of any other type (`input_audio`, `file`, …): read so that it can be refused by
    /// name, never served.
    #[serde(other)]
    Unsupported,
}

impl ContentPart {
    /// The part's `type`, as OpenAI names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::ImageUrl { .. } => "image_url",
            Self::Unsupported => "non-text",
        }
    }
}

/// An image reference inside a content part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageUrl {
    /// An `https:` or `data:` URL.
    pub url: String,
    /// `auto`, `low` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StopSequences {
    /// A single stop sequence.
    One(String),
    /// Several stop sequences.
    Many(Vec<String>),
}

impl StopSequences {
    /// The sequences as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one.clone()],
            Self::Many(many) => many.clone(),
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// `POST /v1/chat/completions` in OpenAI's plain form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletionRequest {
    /// The model id, as listed by `/v1/models`.
    #[schema(min_length = 1, pattern = "\\S")]
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Number of choices; only 1 is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSequences>,
    /// Completion cap (legacy name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Completion cap (current name); wins over `max_tokens` when both are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// An end-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Top-k sampling (llama.cpp extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Min-p sampling (llama.cpp extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// Every other field the caller sent, kept so the coordinator can refuse what it does not
    /// support with a clear error instead of silently dropping it.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ChatCompletionRequest {
    /// The effective completion cap: `max_completion_tokens`, else `max_tokens`.
    pub fn effective_max_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token or a stop sequence.
    Stop,
    /// `max_tokens` or the context was reached.
    Length,
    /// The model called a tool.
    ToolCalls,
    /// Content was filtered.
    ContentFilter,
}

/// The assistant message in a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: String,
    /// The generated text.
    pub content: Option<String>,
}

/// One choice of a non-stream response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatChoice {
    /// Index of the choice, 0.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage,
    /// Why generation stopped.
    pub finish_reason: Option<FinishReason>,
    /// Always null; log probabilities are not served.
    #[serde(default)]
    pub logprobs: Option<Value>,
}

/// A non-stream response (`object: "chat.completion"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletion {
    /// Response id (`chatcmpl-…`).
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// The choices; one.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Identifies the serving configuration; we put the model's GGUF hash prefix here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
}

/// The incremental message of a stream chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChunkDelta {
    /// `assistant` on the first chunk only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a stream chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChunkChoice {
    /// Index of the choice, 0.
    pub index: u32,
    /// The new text.
    pub delta: ChunkDelta,
    /// Set on the last content chunk.
    pub finish_reason: Option<FinishReason>,
    /// Always null.
    #[serde(default)]
    pub logprobs: Option<Value>,
}

/// A stream chunk (`object: "chat.completion.chunk"`), one per SSE `data:` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletionChunk {
    /// Response id, the same on every chunk.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// The choices; empty on the usage-only chunk.
    pub choices: Vec<ChunkChoice>,
    /// Present on the usage chunk when `stream_options.include_usage` was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Model {
    /// The model id.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// Who serves it (`sgl-grid`).
    pub owned_by: String,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The models.
    pub data: Vec<Model>,
}
