//! Request and response bodies: the node API (`/grid/...`, sgl-protocol.md §1), the caller API
//! (`/v1/...` and `/grid/...` discovery, §4), OpenAI's chat completion and embeddings shapes
//! and error body.
//!
//! Field names, optionality and serialisation order follow the seed exactly where it has them;
//! fields we add are optional, documented in `docs/protocol.md`, and never change the meaning
//! of a seed field.

pub mod account;
pub mod admin;
pub mod caller;
pub mod chain;
pub mod compute;
pub mod embeddings;
pub mod error;
pub mod inference;
mod lenient;
pub mod machines;
pub mod market;
pub mod node;
pub mod openai;
pub mod operator;
pub mod sealed;

#[cfg(test)]
mod tests;
