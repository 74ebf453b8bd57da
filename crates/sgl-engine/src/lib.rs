//! Inference engines behind one trait, [`Engine`]:
//! - [`llama::LlamaEngine`], llama.cpp in process (the default);
//! - [`server::LlamaServerEngine`], a supervised `llama-server` child on loopback with a random
//!   per-start API key, restarted with backoff when it dies or stops answering;
//! - [`upstream::UpstreamEngine`], any OpenAI-compatible server (vLLM, Ollama, a remote
//!   llama-server), streamed over SSE ([`sse`]).
//!
//! An engine turns a [`GenerateRequest`] (chat messages and sampling parameters) into a stream
//! of [`EngineEvent`]s: text as it is generated, then exact token counts. Decoding never runs
//! on the async runtime: the in-process engine owns dedicated threads, one per parallel slot;
//! the other two only do I/O, on tokio tasks, so they must be created and asked to generate
//! within a tokio runtime.
//!
//! Embeddings are not a chat: [`embed::Embedder`] runs an embedding model (all-MiniLM-L6-v2 in
//! the tests) in its own llama.cpp context on its own thread, outside the [`Engine`] trait.
//!
//! This is the only crate that links C++.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod embed;
pub mod llama;
pub mod model_file;
pub mod request;
pub mod server;
pub mod sse;
pub mod template;
pub mod text;
pub mod upstream;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sgl_protocol::api::inference::Usage;
use tokio::sync::{Notify, mpsc};

pub use request::{GenerateRequest, Sampling};

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context was reached.
    Length,
    /// The caller cancelled.
    Cancelled,
}

/// A generation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The request cannot be served as given (empty, too long, bad template input).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The prompt does not fit the context.
    #[error("prompt too large ({prompt_tokens} tokens, context {context_size})")]
    PromptTooLarge {
        /// Tokens in the rendered prompt.
        prompt_tokens: usize,
        /// The per-slot context.
        context_size: u32,
    },
    /// llama.cpp reported an error while decoding.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The engine has stopped.
    #[error("the engine is not running")]
    Stopped,
}

/// What a generation produces, in order: any number of `Text`, then exactly one `Done` or
/// `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// Newly generated text (whole UTF-8 characters, never part of a stop string).
    Text(String),
    /// Finished: exact counts, as llama-server counts them (an end-of-generation token counts).
    Done {
        /// Prompt and completion tokens.
        usage: Usage,
        /// Why it stopped.
        finish_reason: FinishReason,
    },
    /// Failed; no `Done` follows.
    Failed(EngineError),
}

/// A running generation. Dropping it cancels the generation.
#[derive(Debug)]
pub struct Generation {
    /// The events, in order.
    pub events: mpsc::Receiver<EngineEvent>,
    cancel: Arc<AtomicBool>,
    /// Wakes an async engine task waiting on I/O when the generation is cancelled.
    wake: Option<Arc<Notify>>,
}

impl Generation {
    pub(crate) fn new(events: mpsc::Receiver<EngineEvent>, cancel: Arc<AtomicBool>) -> Self {
        Self { events, cancel, wake: None }
    }

    /// A generation whose engine task also waits on `wake` (notified once on cancel).
    pub(crate) fn with_wake(events: mpsc::Receiver<EngineEvent>, cancel: Arc<AtomicBool>, wake: Arc<Notify>) -> Self {
        Self { events, cancel, wake: Some(wake) }
    }

    /// Asks the engine to stop; it finishes with [`FinishReason::Cancelled`] and the counts so far.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(wake) = &self.wake {
            // A stored permit: the task sees it even if it is not waiting right now.
            wake.notify_one();
        }
    }

    /// Collects the whole generation.
    pub async fn collect(mut self) -> Result<Completion, EngineError> {
        let mut text = String::new();
        while let Some(event) = self.events.recv().await {
            match event {
                EngineEvent::Text(piece) => text.push_str(&piece),
                EngineEvent::Done { usage, finish_reason } => return Ok(Completion { text, usage, finish_reason }),
                EngineEvent::Failed(error) => return Err(error),
            }
        }
        Err(EngineError::Stopped)
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// A finished, collected generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Exact token counts.
    pub usage: Usage,
    /// Why it stopped.
    pub finish_reason: FinishReason,
}

/// An inference engine serving one model.
pub trait Engine: Send + Sync + fmt::Debug {
    /// The model's name as advertised to the grid.
    fn model_name(&self) -> &str;
    /// sha256 hex of the served GGUF, when the engine can know it.
    fn model_sha256(&self) -> Option<&str>;
    /// Parallel generations it runs.
    fn slots(&self) -> u32;
    /// Per-slot context size in tokens.
    fn context_size(&self) -> u32;
    /// Starts a generation; events arrive on the returned handle.
    fn generate(&self, request: GenerateRequest) -> Generation;
    /// Loaded and making progress.
    fn is_healthy(&self) -> bool;
    /// Restarts a wedged or dead engine; false when this engine cannot restart itself (the
    /// in-process engine: its process must be restarted instead).
    fn restart(&self) -> bool {
        false
    }
}
