//! The SGL node agent, `sgl`. Today: hardware detection (`sgl detect`), build identity
//! (`sgl version`) and registration (`sgl init`, `sgl login --code --wallet`); attestation and
//! serving come with the rest of issue 4.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod agent;
pub mod attest;
pub mod client;
pub mod detect;
pub mod harden;
pub mod init;
pub mod logfile;
pub mod node;
pub mod service;
pub mod start;
pub mod update;
