//! A local chain: anvil (npm `@foundry-rs/anvil`), started and stopped with the process that
//! owns it, for tests and `sgl-grid up --chain`.

use std::path::{Path, PathBuf};

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;

use crate::ChainError;

/// Where the real anvil binary is looked for, first match wins: `$SGL_ANVIL`; the npm package's
/// platform binary under `contracts/node_modules` of `repo` (the shim in `node_modules/.bin`
/// would be a node process holding anvil as its child); `anvil` on `PATH`.
pub fn find_binary(repo: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SGL_ANVIL").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let in_repo = repo.map(|r| r.join("contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"));
    if let Some(path) = in_repo.filter(|p| p.is_file()) {
        return Some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("anvil")).find(|p| p.is_file())
}

/// A running anvil; stopped when dropped.
#[derive(Debug)]
pub struct LocalChain {
    instance: AnvilInstance,
}

/// How to start anvil.
#[derive(Clone, Debug, Default)]
pub struct LocalChainOptions {
    /// The anvil binary.
    pub binary: PathBuf,
    /// The port [default: a free one].
    pub port: Option<u16>,
    /// A state file anvil loads at start and writes when it stops, so the chain outlives a
    /// restart [default: in memory only].
    pub state: Option<PathBuf>,
}

impl LocalChain {
    /// Starts anvil (chain id 31337, the ten usual development accounts) and waits until it
    /// listens.
    pub async fn start(options: LocalChainOptions) -> Result<Self, ChainError> {
        let mut anvil = Anvil::at(&options.binary).chain_id(31_337_u64);
        if let Some(port) = options.port {
            anvil = anvil.port(port);
        }
        if let Some(state) = &options.state {
            anvil = anvil.arg("--state").arg(state);
        }
        let instance = tokio::task::spawn_blocking(move || anvil.try_spawn())
            .await
            .map_err(|e| ChainError::Anvil(e.to_string()))?
            .map_err(|e| ChainError::Anvil(format!("{} ({e})", options.binary.display())))?;
        Ok(Self { instance })
    }

    /// The HTTP JSON-RPC endpoint, `http://localhost:PORT`.
    pub fn endpoint(&self) -> String {
        self.instance.endpoint()
    }

    /// The port anvil listens on.
    pub fn port(&self) -> u16 {
        self.instance.port()
    }

    /// The `n`th development account's key (10,000 ETH each): 0 deploys, the others are free
    /// for operators and payers.
    pub fn signer(&self, n: usize) -> Option<PrivateKeySigner> {
        self.instance.keys().get(n).cloned().map(PrivateKeySigner::from)
    }

    /// The development accounts' addresses.
    pub fn addresses(&self) -> &[Address] {
        self.instance.addresses()
    }
}
