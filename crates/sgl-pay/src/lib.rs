//! Payments for the grid, standalone. x402: the v1 and v2 wire types, the base64 header codec
//! and the dual 402 answer, networks and assets as configuration, verification of the `exact`
//! scheme on EVM chains (EIP-3009 / EIP-712), a chain-less local facilitator that settles into
//! a [`ledger::PaymentLedger`], and an HTTP client for remote facilitators
//! ([`http_facilitator`]). MPP: the `Payment` HTTP authentication scheme's `evm/charge` with
//! EIP-3009 authorizations, settled into the same ledger ([`mpp`]). And a Rust payer for x402 requirements ([`payer`]).
//!
//! Not here yet: the grid's SQL ledger (it lives with the grid's store), MPP's `tempo` and
//! `stripe` methods and `session` intent, and chain-settling facilitators.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod exact_evm;
pub mod facilitator;
pub mod header;
#[cfg(feature = "http")]
pub mod http_facilitator;
pub mod ledger;
pub mod mpp;
pub mod network;
pub mod payer;
pub mod quote;
pub mod wire;

#[cfg(test)]
mod test_payer;
