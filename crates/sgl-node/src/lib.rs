//! The SGL node agent, `sgl`. Today: hardware detection (`sgl detect`) and build identity
//! (`sgl version`); registration, attestation and serving come with the rest of issue 4.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod detect;
