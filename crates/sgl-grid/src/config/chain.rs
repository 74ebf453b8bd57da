//! The `[chain]` section: the EVM chain the grid's money lives on, when it has one. Without it
//! the grid keeps everything in its own ledger, as before; with it, x402 payments settle by
//! `transferWithAuthorization` on the chain's USDC, stake and bonds are read from the chain's
//! events, slashes and payouts are chain transactions, and `sgl-grid admin chain audit` compares
//! the ledger with the chain.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChainFile {
    rpc_url: Option<String>,
    contracts: Option<PathBuf>,
    signer_key_file: Option<PathBuf>,
    poll_secs: Option<u64>,
}

/// Where the chain is and who the grid is on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// The chain's JSON-RPC endpoint (HTTP).
    pub rpc_url: String,
    /// The contracts file (`sgl-grid up --chain` writes one): chain id and addresses.
    pub contracts: PathBuf,
    /// The grid's signer: 64 hex digits. It holds the slasher, verifier and arbiter roles,
    /// receives x402 payments and pays gas and payouts. Never printed.
    pub signer_key_file: PathBuf,
    /// How often the leader reads new stake and bond events.
    pub poll: Duration,
}

impl ChainConfig {
    /// `SGL_CHAIN_RPC_URL`, `SGL_CHAIN_CONTRACTS` and `SGL_CHAIN_SIGNER_KEY_FILE` over the file's
    /// section. `None` when neither names an RPC URL: no chain.
    pub(super) fn from_sources(
        file: Option<ChainFile>,
        env: &BTreeMap<String, String>,
        problems: &mut Vec<String>,
    ) -> Option<Self> {
        let file = file.unwrap_or_default();
        let rpc_url = env.get("SGL_CHAIN_RPC_URL").cloned().or(file.rpc_url)?;
        if !(rpc_url.starts_with("http://") || rpc_url.starts_with("https://")) {
            problems.push(format!("chain rpc_url: {rpc_url:?} is not an http(s) URL"));
        }
        let contracts = env.get("SGL_CHAIN_CONTRACTS").map(PathBuf::from).or(file.contracts);
        let signer_key_file = env.get("SGL_CHAIN_SIGNER_KEY_FILE").map(PathBuf::from).or(file.signer_key_file);
        if contracts.is_none() {
            problems.push("chain: contracts (the file naming the deployed contracts) is missing".into());
        }
        if signer_key_file.is_none() {
            problems.push("chain: signer_key_file (the grid's key on the chain) is missing".into());
        }
        let poll_secs = file.poll_secs.unwrap_or(2);
        if poll_secs == 0 || poll_secs > 3600 {
            problems.push(format!("chain poll_secs: {poll_secs} is not between 1 and 3600"));
        }
        Some(Self {
            rpc_url,
            contracts: contracts?,
            signer_key_file: signer_key_file?,
            poll: Duration::from_secs(poll_secs),
        })
    }
}
