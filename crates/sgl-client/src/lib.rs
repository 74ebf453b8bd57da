//! The SGL caller SDK: discovery, reservations, sealed chat that the caller verifies itself,
//! plain OpenAI chat, and the account (credits and API keys).
//!
//! The sealed path trusts the coordinator with nothing it could abuse unnoticed:
//! - [`Client::reserve`] verifies the node's keybind before anything is sealed to its X25519
//!   key (seed weakness S1), and refuses a node without one;
//! - [`Client::chat`] seals the whole request (sampling and `max_tokens` included) and checks
//!   the node's `sgl-result-v2` signature over the ciphertext, the usage and the model hash
//!   before opening the reply (S2, S3);
//! - [`Client::chat_stream`] does the same for every chunk of a stream, in order, and refuses
//!   gaps, replays, chunks after the final one and a stream that ends without one.
//!
//! Failures of those checks are [`Error::Verification`] with a distinct [`VerifyError`] each;
//! they are never retried. 429 and 503 answers are retried with backoff (honouring
//! `Retry-After`) for idempotent calls and reservations; a chat request only when the grid
//! refused it before doing any work, so nothing is ever billed twice.
//!
//! Embeddings: [`Client::embeddings`] seals the texts to a node reserved for them and checks
//! the signed vectors the same way; [`Client::embeddings_plain`] is OpenAI's call.
//!
//! General compute: [`Client::put_blob`] and [`Client::get_blob`] (refusing bytes that do not
//! hash to their name), the job API ([`Client::submit_job`] … [`Client::cancel_job`]), and
//! [`Client::job_result`], which checks that each slice's receipts hold together
//! ([`job_verify`]) before handing the result over.
//!
//! The order book: [`Client::place_order`] … [`Client::complete_lease`] ([`market`]).
//!
//! Map: [`client`] (the client, discovery, account), [`chat`] (requests and sealed answers),
//! [`embeddings`],
//! [`stream`] (stream readers), [`verify`] (every check, without I/O), [`jobs`] (blobs and the
//! job API), [`job_verify`] (their checks, without I/O), [`retry`], [`error`].
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod chat;
pub mod client;
pub mod embeddings;
pub mod error;
pub mod job_verify;
pub mod jobs;
pub mod machines;
pub mod market;
pub mod retry;
mod sse;
pub mod stream;
pub mod verify;

pub use chat::{ChatRequest, VerifiedChat};
pub use client::{Client, ClientBuilder};
pub use embeddings::VerifiedEmbeddings;
pub use error::{Error, JobVerifyError, VerifyError};
pub use jobs::{JobEvent, JobEvents};
pub use retry::RetryPolicy;
pub use sgl_protocol::ids::ApiKey;
pub use stream::{PlainChatStream, SealedChatStream, StreamEnd};
pub use verify::{Verification, VerifiedNode};
