//! The SGL grid coordinator.
//!
//! Nodes register, attest and heartbeat through the node API; callers discover models and
//! reserve nodes through the caller API, which speaks OpenAI's shapes. The binary `sgl-grid`
//! serves [`routes::router`] and offers [`admin`] commands that work directly on the store.
//!
//! Layout: [`config`] (file, environment, flags), [`state`] (shared state and clock),
//! [`registry`] (live nodes), [`admission`] (job slots claimed atomically), [`service`] (prices, ranking, secrets; no HTTP),
//! [`routes`] (handlers; no SQL), [`error`] (the one HTTP error mapping), [`metrics`],
//! [`server`] (the accept loop: timeouts and connection caps), [`cluster`] (several replicas on
//! one PostgreSQL).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admin;
pub mod admission;
pub mod blobs;
pub mod chain;
pub mod child;
pub mod cluster;
pub mod config;
pub mod data_dir;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod payments;
pub mod registry;
pub mod routes;
pub mod server;
pub mod service;
pub mod state;
