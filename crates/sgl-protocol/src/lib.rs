//! Every wire type of the SGL grid and the cryptography that is part of the wire.
//!
//! This crate is the one thing the coordinator (`sgl-grid`), the node agent (`sgl`) and the
//! callers (`sgl-client`, `sgl-cloud`) must agree on, so it is the only place where a wire type
//! or a signed byte layout is defined. It does no network I/O and no async; the one exception to
//! "no I/O" is [`keyfile`], which owns how identity keys sit on disk, because getting file modes
//! right is part of the key-custody contract.
//!
//! The seed-compatible formats follow `shared/reference/sgl-protocol.md` byte for byte; our
//! extensions (the `sgl-result-v2` envelope, the capability manifest layout) are specified in
//! `docs/protocol.md`.
//!
//! Map:
//! - [`ids`]: newtype identifiers; [`encoding`]: base58 and hex helpers.
//! - [`identity`]: ed25519 node identity, the derived X25519 key, signatures;
//!   [`keyfile`]: `keypair.json` at rest; [`payout`]: the secp256k1 payout key and EVM address.
//! - [`seal`]: v1, v2 and v2-stream sealing in both directions.
//! - [`envelope`]: result envelope signatures (v1 seed, v2 ours) and the proof of execution;
//!   [`keybind`]: the 104-byte key binding; [`attestation`]: challenge signing and report hash;
//!   [`manifest`]: the signed capability manifest.
//! - [`compute`]: the signed job bundle and the signed receipt of general compute.
//! - [`api`]: request and response bodies of the node API, the caller API and OpenAI's shapes.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod attestation;
mod canonical;
pub mod compute;
pub mod encoding;
pub mod envelope;
pub mod identity;
pub mod ids;
pub mod keybind;
pub mod keyfile;
pub mod manifest;
pub mod payout;
pub mod rfc3339;
mod schema;
pub mod seal;
pub mod wallet;
