//! x402 payments for the grid, standalone: the v1 and v2 wire types, the base64 header codec
//! and the dual 402 answer, networks and assets as configuration, verification of the `exact`
//! scheme on EVM chains (EIP-3009 / EIP-712), and a chain-less local facilitator that settles
//! into a [`ledger::PaymentLedger`].
//!
//! Not here yet: MPP (`WWW-Authenticate: Payment`), an HTTP client for remote facilitators,
//! and the grid's SQL ledger.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod exact_evm;
pub mod facilitator;
pub mod header;
pub mod ledger;
pub mod network;
pub mod quote;
pub mod wire;

#[cfg(test)]
mod test_payer;
