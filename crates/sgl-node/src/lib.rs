//! The SGL node agent, `sgl`. Today: hardware detection (`sgl detect`), build identity
//! (`sgl version`) and registration (`sgl init`, `sgl login --code --wallet`); attestation and
//! serving come with the rest of issue 4. The operator's money (`sgl stake`, `sgl withdraw`)
//! signs with the wallet's own key ([`wallet_key`]) and counts in millionths ([`micros`]).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod agent;
pub mod attest;
pub mod client;
pub mod detect;
pub mod harden;
pub mod init;
pub mod instance_lock;
pub mod logfile;
pub mod micros;
pub mod node;
pub mod price_policy;
pub mod service;
pub mod start;
pub mod update;
pub mod wallet_key;
