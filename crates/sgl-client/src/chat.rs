//! Chat: sealed to a verified node and verified on the way back (the default), or plain
//! OpenAI JSON that the grid seals to the node on the caller's behalf.
//!
//! Sealed flow: reserve → verify the keybind → seal the whole request (messages, sampling,
//! `max_tokens`, and for streams `stream` and a secret `nonce`) to the node's X25519 key →
//! post → verify the node's v2 signature over ciphertext, usage and model hash → open.

use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use serde::Serialize;
use sgl_protocol::api::caller::{SealedChatRequest, SealedChatResponse};
use sgl_protocol::api::inference::{InferenceRequest, Usage};
use sgl_protocol::api::openai::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionRequest, ChatMessage, FinishReason, StopSequences,
};
use sgl_protocol::encoding::b58_encode;
use sgl_protocol::seal::{ReplyOpener, SealVersion, seal_request};
use zeroize::Zeroizing;

use crate::client::{Client, decode, is_event_stream};
use crate::error::{Error, VerifyError};
use crate::retry::chat_may_retry;
use crate::stream::{PlainChatStream, SealedChatStream};
use crate::verify::{StreamVerifier, Verification, VerifiedNode, verify_sealed_reply};

/// A chat request. Every field but `model` travels sealed, so the coordinator sees neither the
/// conversation nor the sampling settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The model id, as `/v1/models` lists it.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Completion cap (the node defaults to 2048 and clamps to 8192).
    pub max_tokens: Option<u64>,
    /// Sampling temperature, 0..=2.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    pub top_k: Option<u32>,
    /// Min-p sampling.
    pub min_p: Option<f64>,
    /// Sampling seed.
    pub seed: Option<u64>,
    /// Stop sequences.
    pub stop: Option<StopSequences>,
}

impl ChatRequest {
    /// A request with default sampling.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self { model: model.into(), messages, ..Self::default() }
    }

    /// The plaintext sealed to the node; `nonce` is set for streams.
    fn inference(&self, nonce: Option<String>) -> InferenceRequest {
        InferenceRequest {
            messages: Some(self.messages.clone()),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            prompt: None,
            stream: nonce.is_some().then_some(true),
            nonce,
            top_p: self.top_p,
            top_k: self.top_k,
            min_p: self.min_p,
            seed: self.seed,
            stop: self.stop.clone(),
        }
    }

    /// The same request as OpenAI's plain JSON (for [`Client::chat_plain`]).
    pub fn to_openai(&self, stream: bool) -> ChatCompletionRequest {
        ChatCompletionRequest {
            model: self.model.clone(),
            messages: self.messages.clone(),
            temperature: self.temperature,
            top_p: self.top_p,
            stream: stream.then_some(true),
            stop: self.stop.clone(),
            max_tokens: self.max_tokens,
            seed: self.seed,
            top_k: self.top_k,
            min_p: self.min_p,
            ..ChatCompletionRequest::default()
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.model.trim().is_empty() {
            return Err(Error::InvalidRequest("model is required".into()));
        }
        if self.messages.is_empty() {
            return Err(Error::InvalidRequest("at least one message is required".into()));
        }
        Ok(())
    }
}

/// A verified sealed answer: OpenAI's shape plus what was verified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifiedChat {
    /// The answer, OpenAI-shaped (`id` is `chatcmpl-{job_id}`).
    pub completion: ChatCompletion,
    /// The node, model hash and job the signature covered.
    pub verification: Verification,
}

impl VerifiedChat {
    /// The answer's text.
    pub fn content(&self) -> &str {
        self.completion.choices.first().and_then(|c| c.message.content.as_deref()).unwrap_or_default()
    }

    /// The signed usage.
    pub fn usage(&self) -> Option<Usage> {
        self.completion.usage
    }
}

impl Client {
    /// A sealed, verified chat completion: reserves a node (verifying its keybind), seals the
    /// request to it, and verifies the signed reply before opening it. A refusal the grid made
    /// before any work (429, or 503 with no capacity) and a node that failed before any output
    /// (503 `upstream_failed`, nothing billed) are retried with a fresh reservation, so the
    /// request reaches another node and is paid for once.
    pub async fn chat(&self, request: &ChatRequest) -> Result<VerifiedChat, Error> {
        request.validate()?;
        self.on_a_fresh_node(request, |node| self.chat_with_node(node, request)).await
    }

    /// Runs `call` on a newly reserved node, again on another one while the grid says nothing
    /// was billed (see [`chat_may_retry`]).
    async fn on_a_fresh_node<T, F, Fut>(&self, request: &ChatRequest, mut call: F) -> Result<T, Error>
    where
        F: FnMut(VerifiedNode) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0;
        loop {
            let node = self.reserve(&request.model).await?;
            match call(node).await {
                Err(Error::Api { status, code, retry_after, .. })
                    if attempt < self.retry.max_retries && chat_may_retry(status_of(status), code, true) =>
                {
                    tokio::time::sleep(self.retry.delay(attempt, retry_after)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A sealed chat on a node already reserved (the reservation is used up). Not retried.
    pub async fn chat_with_node(&self, node: VerifiedNode, request: &ChatRequest) -> Result<VerifiedChat, Error> {
        request.validate()?;
        let (body, opener) = sealed_body(&node, request, None)?;
        let response = self.post_chat(&body).await?;
        let response: SealedChatResponse = decode(response).await.map_err(as_shape)?;
        let opened = verify_sealed_reply(&node, &opener, &response)?;
        let created = response.created.unwrap_or_else(now_secs);
        let completion = completion(request, &response.id.to_string(), created, opened.result.content, opened.usage);
        let completion = ChatCompletion {
            system_fingerprint: opened.verification.model_sha256.as_deref().map(fingerprint),
            ..completion
        };
        Ok(VerifiedChat { completion, verification: opened.verification })
    }

    /// A sealed, verified stream of deltas. Every chunk's signature is checked and the order
    /// enforced; the final chunk's signed usage is available at the end. A node that answers
    /// the stream whole is verified the same way and yields one delta.
    pub async fn chat_stream(&self, request: &ChatRequest) -> Result<SealedChatStream, Error> {
        request.validate()?;
        self.on_a_fresh_node(request, |node| self.chat_stream_with_node(node, request)).await
    }

    /// A sealed stream on a node already reserved. Not retried.
    pub async fn chat_stream_with_node(
        &self,
        node: VerifiedNode,
        request: &ChatRequest,
    ) -> Result<SealedChatStream, Error> {
        request.validate()?;
        let mut nonce_bytes = [0u8; 16];
        OsRng.fill_bytes(&mut nonce_bytes);
        let nonce = b58_encode(nonce_bytes);
        let (body, opener) = sealed_body(&node, request, Some(&nonce))?;
        let response = self.post_chat(&body).await?;
        if is_event_stream(&response) {
            let stream_opener = opener
                .stream(&nonce)
                .map_err(|e| VerifyError::UnexpectedShape(format!("cannot open a stream: {e}")))?;
            let verifier = StreamVerifier::new(node, stream_opener);
            return Ok(SealedChatStream::from_sse(response, verifier, self.stream_idle_timeout()));
        }
        // Answered whole (seed §3.1): the non-stream JSON, verified like any sealed reply.
        let response: SealedChatResponse = decode(response).await.map_err(as_shape)?;
        let opened = verify_sealed_reply(&node, &opener, &response)?;
        Ok(SealedChatStream::whole(opened.result.content, opened.usage, opened.verification))
    }

    /// A plain OpenAI chat completion: the grid sees the prompt and seals it to a node itself.
    pub async fn chat_plain(&self, request: &ChatCompletionRequest) -> Result<ChatCompletion, Error> {
        let response = self.post_plain(request).await?;
        decode(response).await
    }

    /// A plain OpenAI chat stream (`data:` chunks until `[DONE]`).
    pub async fn chat_plain_stream(&self, request: &ChatCompletionRequest) -> Result<PlainChatStream, Error> {
        let request = ChatCompletionRequest { stream: Some(true), ..request.clone() };
        let response = self.post_plain(&request).await?;
        if is_event_stream(&response) {
            return Ok(PlainChatStream::from_sse(response, self.stream_idle_timeout()));
        }
        let completion: ChatCompletion = decode(response).await?;
        Ok(PlainChatStream::whole(completion))
    }

    async fn post_plain(&self, request: &ChatCompletionRequest) -> Result<reqwest::Response, Error> {
        let mut attempt = 0;
        loop {
            match self.post_chat(request).await {
                Err(Error::Api { status, code, retry_after, .. })
                    if attempt < self.retry.max_retries && chat_may_retry(status_of(status), code, false) =>
                {
                    tokio::time::sleep(self.retry.delay(attempt, retry_after)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// The request sealed v2 to `node` (with `stream` and the secret `nonce` inside for a stream),
/// as the body to post, and the opener for its reply.
fn sealed_body(
    node: &VerifiedNode,
    request: &ChatRequest,
    nonce: Option<&str>,
) -> Result<(SealedChatRequest, ReplyOpener), Error> {
    let inference = request.inference(nonce.map(str::to_owned));
    let plaintext = Zeroizing::new(serde_json::to_vec(&inference).map_err(|e| unexpected(&e))?);
    let (enc, opener) = seal_request(node.encryption_key(), SealVersion::V2, &plaintext, &mut OsRng)
        .map_err(|e| VerifyError::UnexpectedShape(format!("cannot seal to the node's key: {e}")))?;
    let body = SealedChatRequest {
        reservation_token: node.reservation_token().clone(),
        max_tokens: request.max_tokens,
        enc,
        stream: nonce.map(|_| true),
        pay_in_coin: None,
    };
    Ok((body, opener))
}

/// OpenAI's shape for a sealed answer.
pub(crate) fn completion(
    request: &ChatRequest,
    job_id: &str,
    created: u64,
    content: String,
    usage: Usage,
) -> ChatCompletion {
    let finish_reason = match request.max_tokens {
        Some(cap) if usage.completion_tokens >= cap => FinishReason::Length,
        _ => FinishReason::Stop,
    };
    ChatCompletion {
        id: format!("chatcmpl-{job_id}"),
        object: "chat.completion".into(),
        created,
        model: request.model.clone(),
        choices: vec![ChatChoice {
            index: 0,
            message: AssistantMessage { role: "assistant".into(), content: Some(content) },
            finish_reason: Some(finish_reason),
            logprobs: None,
        }],
        usage: Some(usage),
        system_fingerprint: None,
    }
}

/// `gguf-` and the first 12 hex digits of the model hash, as the grid's plain path writes it.
fn fingerprint(model_sha256: &str) -> String {
    format!("gguf-{}", model_sha256.get(..12).unwrap_or(model_sha256))
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn status_of(status: u16) -> reqwest::StatusCode {
    reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR)
}

fn unexpected(error: &serde_json::Error) -> Error {
    Error::InvalidRequest(error.to_string())
}

/// A 2xx sealed reply that is not the documented JSON is a verification failure: nothing in it
/// can be trusted.
fn as_shape(error: Error) -> Error {
    match error {
        Error::UnexpectedResponse(message) => VerifyError::UnexpectedShape(message).into(),
        other => other,
    }
}
