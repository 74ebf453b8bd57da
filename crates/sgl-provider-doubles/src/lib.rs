//! Test doubles of the cloud APIs the machines backends call: Vultr's API v2 and DigitalOcean's
//! API v2, each a real HTTP server on `127.0.0.1:0` that replays the providers' documented JSON
//! (`fixtures/`, sources in `fixtures/README.md`) and keeps state, so a client is exercised over
//! the wire: keys registered and deleted, instances created, polled until ready, stopped,
//! resized and destroyed.
//!
//! Test-only: no product crate may depend on it (`xtask/src/tidy/deps.rs`), and it depends on no
//! `sgl-*` crate, so any crate's tests, or an end-to-end test process that points a grid's
//! `api_url` at [`Double::base_url`], can use it.
//!
//! ```ignore
//! let vultr = VultrDouble::start().await?;
//! vultr.rate_limit_next(2, Some(1));
//! vultr.fail_next(Op::Create, 500, serde_json::json!({"error": "boom", "status": 500}));
//! // … drive a client at vultr.base_url() …
//! assert!(vultr.calls().iter().all(|c| c.authorization.as_deref() == Some("Bearer t")));
//! ```

mod double;

pub mod digitalocean;
pub mod vultr;

pub use digitalocean::DigitalOceanDouble;
pub use double::{Call, Double, Machine, Op};
pub use vultr::VultrDouble;

#[cfg(test)]
mod tests;
