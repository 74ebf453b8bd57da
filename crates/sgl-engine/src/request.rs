//! What an engine is asked to do: the conversation and the sampling parameters, with the
//! seed node's defaults and clamps (temperature 0.7 in 0..=2, max_tokens 2048 in 1..=8192).

use sgl_protocol::api::inference::InferenceRequest;

use crate::EngineError;

/// Default temperature when the request names none.
pub const DEFAULT_TEMPERATURE: f32 = 0.7;
/// Default completion cap.
pub const DEFAULT_MAX_TOKENS: u32 = 2048;
/// Largest completion cap.
pub const MAX_MAX_TOKENS: u32 = 8192;
/// Most messages in one request.
pub const MAX_MESSAGES: usize = 256;
/// Most bytes of role and content in one request.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Sampling parameters, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Top-k sampling.
    pub top_k: Option<i32>,
    /// Min-p sampling.
    pub min_p: Option<f32>,
    /// The sampling seed (fixed seed + temperature 0 is deterministic).
    pub seed: u32,
    /// Completion cap.
    pub max_tokens: u32,
    /// Stop strings; generation ends before the first one and it is not returned.
    pub stop: Vec<String>,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: DEFAULT_TEMPERATURE,
            top_p: None,
            top_k: None,
            min_p: None,
            seed: 0,
            max_tokens: DEFAULT_MAX_TOKENS,
            stop: Vec::new(),
        }
    }
}

/// A chat to continue.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// `(role, content)` pairs, in order.
    pub messages: Vec<(String, String)>,
    /// How to sample.
    pub sampling: Sampling,
}

impl GenerateRequest {
    /// From the wire request a node receives: `messages` (string or text parts) or a bare
    /// `prompt`, with defaults and clamps applied and sizes bounded.
    pub fn from_inference(request: &InferenceRequest) -> Result<Self, EngineError> {
        let messages: Vec<(String, String)> = match (&request.messages, &request.prompt) {
            (Some(messages), _) if !messages.is_empty() => messages
                .iter()
                .map(|m| (m.role.clone(), m.content.as_ref().map(|c| c.joined_text()).unwrap_or_default()))
                .collect(),
            (_, Some(prompt)) => vec![("user".to_owned(), prompt.clone())],
            _ => {
                return Err(EngineError::InvalidRequest(
                    "Payload must contain 'messages' array or 'prompt' string".into(),
                ));
            }
        };
        if messages.len() > MAX_MESSAGES {
            return Err(EngineError::InvalidRequest(format!("too many messages ({})", messages.len())));
        }
        let n_bytes: usize = messages.iter().map(|(role, content)| role.len() + content.len()).sum();
        if n_bytes > MAX_MESSAGE_BYTES {
            return Err(EngineError::InvalidRequest(format!("prompt too large ({n_bytes} bytes)")));
        }
        let finite = |v: f64| v.is_finite().then_some(v as f32);
        let sampling = Sampling {
            temperature: request.temperature.and_then(finite).unwrap_or(DEFAULT_TEMPERATURE).clamp(0.0, 2.0),
            top_p: request.top_p.and_then(finite).filter(|p| *p > 0.0 && *p < 1.0),
            top_k: request.top_k.and_then(|k| i32::try_from(k).ok()).filter(|k| *k > 0),
            min_p: request.min_p.and_then(finite).filter(|p| *p > 0.0 && *p < 1.0),
            seed: request.seed.map_or(0, |s| s as u32),
            max_tokens: request
                .max_tokens
                .map_or(DEFAULT_MAX_TOKENS, |m| u32::try_from(m).unwrap_or(MAX_MAX_TOKENS))
                .clamp(1, MAX_MAX_TOKENS),
            stop: request
                .stop
                .as_ref()
                .map(|s| s.to_vec())
                .unwrap_or_default()
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect(),
        };
        Ok(Self { messages, sampling })
    }
}

#[cfg(test)]
mod tests {
    //! Defaults, clamps and refusals.

    use sgl_protocol::api::openai::{ChatMessage, StopSequences};

    use super::*;

    #[test]
    fn defaults_and_clamps_follow_the_seed_node() {
        let bare = InferenceRequest { prompt: Some("hi".into()), ..InferenceRequest::default() };
        let request = GenerateRequest::from_inference(&bare).unwrap();
        assert_eq!(request.messages, vec![("user".to_owned(), "hi".to_owned())]);
        assert_eq!((request.sampling.temperature, request.sampling.max_tokens), (0.7, 2048));
        let wild = InferenceRequest {
            messages: Some(vec![ChatMessage::text("user", "x")]),
            temperature: Some(9.0),
            max_tokens: Some(100_000),
            top_p: Some(1.5),
            top_k: Some(40),
            stop: Some(StopSequences::Many(vec!["".into(), "\n".into()])),
            seed: Some(7),
            ..InferenceRequest::default()
        };
        let request = GenerateRequest::from_inference(&wild).unwrap();
        assert_eq!((request.sampling.temperature, request.sampling.max_tokens), (2.0, 8192));
        assert_eq!((request.sampling.top_p, request.sampling.top_k, request.sampling.seed), (None, Some(40), 7));
        assert_eq!(request.sampling.stop, vec!["\n".to_owned()]);
    }

    #[test]
    fn empty_oversized_and_crowded_requests_are_refused() {
        assert!(GenerateRequest::from_inference(&InferenceRequest::default()).is_err());
        let crowded = InferenceRequest {
            messages: Some(vec![ChatMessage::text("user", "x"); 257]),
            ..InferenceRequest::default()
        };
        assert!(GenerateRequest::from_inference(&crowded).unwrap_err().to_string().contains("too many messages"));
        let huge = InferenceRequest { prompt: Some("x".repeat(MAX_MESSAGE_BYTES + 1)), ..InferenceRequest::default() };
        assert!(GenerateRequest::from_inference(&huge).unwrap_err().to_string().contains("prompt too large"));
    }
}
