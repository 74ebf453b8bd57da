//! Domain logic with no HTTP in it: accounts, secrets, prices, provider ranking.

pub mod accounts;
pub mod admin;
pub mod attestation;
pub mod billing;
pub mod capacity;
pub mod compute;
pub mod earnings;
pub mod eligibility;
pub mod embeddings;
pub mod heartbeat;
pub mod limits;
pub mod machines;
pub mod market;
pub mod operators;
pub mod pricing;
pub mod recent;
pub mod registration;
pub mod reservations;
pub mod results;
pub mod rfc3339;
pub mod schedule;
pub mod secrets;
pub mod stake;
pub mod wallet_auth;
