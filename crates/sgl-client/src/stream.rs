//! Reading chat streams: a sealed stream (every chunk verified by a
//! [`crate::verify::StreamVerifier`]) and a plain OpenAI stream. Both are pulled with an async
//! `next_delta()`; neither has a total timeout, only a limit on silence.

use std::collections::VecDeque;
use std::time::Duration;

use sgl_protocol::api::caller::{SSE_EVENT_ERROR, SealedStreamEvent};
use sgl_protocol::api::error::ErrorBody;
use sgl_protocol::api::inference::Usage;
use sgl_protocol::api::openai::{ChatCompletion, ChatCompletionChunk, ChunkChoice, ChunkDelta};

use crate::error::{Error, VerifyError};
use crate::sse::{SseEvent, SseParser};
use crate::verify::{StreamVerifier, Verification};

/// The end of a verified sealed stream: the node's signed usage and what was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// Token counts, signed by the node on the final chunk.
    pub usage: Usage,
    /// The node, model hash and job every chunk's signature covered.
    pub verification: Verification,
}

/// SSE bytes from a response, as events, with a limit on silence.
#[derive(Debug)]
pub(crate) struct EventSource {
    response: reqwest::Response,
    parser: SseParser,
    queue: VecDeque<SseEvent>,
    idle_timeout: Duration,
    ended: bool,
}

impl EventSource {
    pub(crate) fn new(response: reqwest::Response, idle_timeout: Duration) -> Self {
        Self { response, parser: SseParser::default(), queue: VecDeque::new(), idle_timeout, ended: false }
    }

    /// The next event, or `None` at the end of the body.
    pub(crate) async fn next(&mut self) -> Result<Option<SseEvent>, Error> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            let read = tokio::time::timeout(self.idle_timeout, self.response.chunk()).await;
            match read.map_err(|_| Error::Stalled(self.idle_timeout))? {
                Ok(Some(bytes)) => {
                    let events = self
                        .parser
                        .feed(&bytes)
                        .map_err(|_| Error::UnexpectedResponse("a stream event exceeds the size limit".into()))?;
                    self.queue.extend(events);
                }
                Ok(None) => {
                    self.ended = true;
                    self.queue.extend(self.parser.finish());
                }
                Err(error) => return Err(Error::Transport(error)),
            }
        }
    }
}

/// An aborted stream's `error` event, in either error body shape.
pub(crate) fn aborted(data: &str) -> Error {
    match serde_json::from_str::<ErrorBody>(data) {
        Ok(body) => Error::StreamAborted { code: body.error.code, message: body.error.message },
        Err(_) => Error::StreamAborted { code: None, message: data.chars().take(200).collect() },
    }
}

#[derive(Debug)]
enum SealedSource {
    Events(Box<(EventSource, StreamVerifier)>),
    Whole { text: Option<String> },
}

/// A sealed chat stream. Pull deltas with [`Self::next_delta`] until it returns `None`; then
/// [`Self::end`] holds the signed usage. Any verification failure is an error and ends it.
#[derive(Debug)]
pub struct SealedChatStream {
    source: SealedSource,
    end: Option<StreamEnd>,
    failed: bool,
}

impl SealedChatStream {
    pub(crate) fn from_sse(response: reqwest::Response, verifier: StreamVerifier, idle_timeout: Duration) -> Self {
        let source = SealedSource::Events(Box::new((EventSource::new(response, idle_timeout), verifier)));
        Self { source, end: None, failed: false }
    }

    pub(crate) fn whole(text: String, usage: Usage, verification: Verification) -> Self {
        Self {
            source: SealedSource::Whole { text: Some(text) },
            end: Some(StreamEnd { usage, verification }),
            failed: false,
        }
    }

    /// The next verified piece of text, or `None` once the final chunk has been verified.
    pub async fn next_delta(&mut self) -> Result<Option<String>, Error> {
        if self.failed {
            return Err(VerifyError::UnexpectedShape("the stream already failed".into()).into());
        }
        let next = self.next_inner().await;
        if next.is_err() {
            self.failed = true;
        }
        next
    }

    /// The signed usage and verification, once the final chunk has been verified.
    pub fn end(&self) -> Option<&StreamEnd> {
        self.end.as_ref()
    }

    /// Reads the whole stream: the text and its end.
    pub async fn collect(mut self) -> Result<(String, StreamEnd), Error> {
        let mut text = String::new();
        while let Some(delta) = self.next_delta().await? {
            text.push_str(&delta);
        }
        let end = self.end.ok_or(VerifyError::StreamTruncated)?;
        Ok((text, end))
    }

    async fn next_inner(&mut self) -> Result<Option<String>, Error> {
        let (source, verifier) = match &mut self.source {
            SealedSource::Whole { text } => return Ok(text.take()),
            SealedSource::Events(events) => {
                let (source, verifier) = &mut **events;
                (source, verifier)
            }
        };
        loop {
            if self.end.is_some() {
                return Ok(None);
            }
            let Some(event) = source.next().await? else {
                verifier.finish()?;
                return Ok(None);
            };
            if event.event.as_deref() == Some(SSE_EVENT_ERROR) {
                return Err(aborted(&event.data));
            }
            if event.data.trim() == "[DONE]" {
                continue;
            }
            let event: SealedStreamEvent = serde_json::from_str(&event.data)
                .map_err(|e| VerifyError::UnexpectedShape(format!("a stream event is not a sealed chunk: {e}")))?;
            let opened = verifier.open(&event)?;
            if let Some((usage, verification)) = opened.end {
                self.end = Some(StreamEnd { usage, verification });
            }
            if !opened.text.is_empty() {
                return Ok(Some(opened.text));
            }
        }
    }
}

#[derive(Debug)]
enum PlainSource {
    Events(EventSource),
    Whole(Option<ChatCompletion>),
}

/// A plain OpenAI chat stream: `chat.completion.chunk` events until `[DONE]`.
#[derive(Debug)]
pub struct PlainChatStream {
    source: PlainSource,
    usage: Option<Usage>,
    done: bool,
}

impl PlainChatStream {
    pub(crate) fn from_sse(response: reqwest::Response, idle_timeout: Duration) -> Self {
        Self { source: PlainSource::Events(EventSource::new(response, idle_timeout)), usage: None, done: false }
    }

    pub(crate) fn whole(completion: ChatCompletion) -> Self {
        Self { usage: completion.usage, source: PlainSource::Whole(Some(completion)), done: false }
    }

    /// The next chunk, or `None` after `[DONE]`. An error chunk or a stream that ends without
    /// `[DONE]` is an error.
    pub async fn next_chunk(&mut self) -> Result<Option<ChatCompletionChunk>, Error> {
        if self.done {
            return Ok(None);
        }
        let source = match &mut self.source {
            PlainSource::Whole(completion) => {
                self.done = true;
                return Ok(completion.take().map(|c| whole_chunk(&c)));
            }
            PlainSource::Events(source) => source,
        };
        let Some(event) = source.next().await? else { return Err(Error::PlainStreamTruncated) };
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        if event.event.as_deref() == Some(SSE_EVENT_ERROR) {
            return Err(aborted(data));
        }
        let value: serde_json::Value =
            serde_json::from_str(data).map_err(|e| Error::UnexpectedResponse(format!("bad stream event: {e}")))?;
        if value.get("error").is_some() {
            return Err(aborted(data));
        }
        let chunk: ChatCompletionChunk =
            serde_json::from_value(value).map_err(|e| Error::UnexpectedResponse(format!("bad chunk: {e}")))?;
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        Ok(Some(chunk))
    }

    /// The next piece of text (chunks without text are skipped), or `None` after `[DONE]`.
    pub async fn next_delta(&mut self) -> Result<Option<String>, Error> {
        while let Some(chunk) = self.next_chunk().await? {
            let text: String = chunk.choices.iter().filter_map(|c| c.delta.content.as_deref()).collect();
            if !text.is_empty() {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }

    /// Usage, when the grid sent it (ask with `stream_options.include_usage`).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

/// A whole completion as one chunk.
fn whole_chunk(completion: &ChatCompletion) -> ChatCompletionChunk {
    let choice = completion.choices.first();
    ChatCompletionChunk {
        id: completion.id.clone(),
        object: "chat.completion.chunk".into(),
        created: completion.created,
        model: completion.model.clone(),
        choices: vec![ChunkChoice {
            index: 0,
            delta: ChunkDelta {
                role: Some("assistant".into()),
                content: choice.and_then(|c| c.message.content.clone()),
            },
            finish_reason: choice.and_then(|c| c.finish_reason),
            logprobs: None,
        }],
        usage: completion.usage,
    }
}
