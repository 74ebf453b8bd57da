//! The grid on an EVM chain.
//!
//! The grid's contracts live in `contracts/` (Solidity, tested with forge); their ABI and bytecode
//! are committed in `contracts/abi/` and compiled into typed bindings here ([`bindings`]), so
//! building this crate needs neither node nor solc. On top of them:
//!
//! - [`anvil`] starts a local chain (anvil from npm `@foundry-rs/anvil`) for tests and
//!   `sgl-grid up --chain`;
//! - [`deploy`] puts the five contracts on a chain and names them in a [`Contracts`] file;
//! - [`Chain`] is one signer's view of them: the grid reads stake and bonds and their events,
//!   slashes with evidence, settles x402 authorizations with `transferWithAuthorization`, pays
//!   operators in batches and runs escrow streams; an operator stakes and bonds.
//!
//! Amounts are token units: both test tokens have 6 decimals, so one unit is one micro-USD
//! (USDC) or one micro-SGL (stake), the grid ledger's own unit.

pub mod anvil;
pub mod bindings;
mod chain;
pub mod deploy;
mod error;
mod events;
mod writes;

pub use self::chain::{Authorization, Bond, Chain, Mined, StakeOnChain, Stream};
pub use self::deploy::Contracts;
pub use self::error::ChainError;
pub use self::events::{ChainEvent, StakeEventKind};
pub use alloy::primitives::{Address, B256, U256, keccak256};
pub use alloy::signers::local::PrivateKeySigner;
