//! The grid on a chain (`[chain]`): its signer and contracts ([`GridChain`]), the leader's
//! follower that books stake and bond events ([`follow`]), x402 settlement by
//! `transferWithAuthorization` ([`settle`]), slashes sent with their evidence ([`slash`]),
//! operator payouts in batches ([`payouts`]), leases streamed by the escrow ([`leases`]), and
//! the ledger-versus-chain audit ([`audit`]).

pub mod audit;
pub mod follow;
pub mod leases;
pub mod payouts;
pub mod settle;
pub mod slash;

use std::borrow::Cow;
use std::path::Path;

use sgl_chain::{Address, Chain, ChainError, Contracts, PrivateKeySigner};
use sgl_pay::network::NetworkConfig;

use crate::config::ChainConfig;

/// The grid could not start on its chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainSetupError {
    /// The signer key file could not be read.
    #[error("chain signer key {path}: {source}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The signer key file does not hold 64 hex digits.
    #[error("chain signer key {0}: not 64 hex digits (an EVM secret key)")]
    BadKey(std::path::PathBuf),
    /// The chain or the contracts file failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The grid's signer on its chain, and the configuration that named them.
#[derive(Debug)]
pub struct GridChain {
    chain: Chain,
    config: ChainConfig,
    min_bond: i64,
}

/// Reads an EVM secret key: 64 hex digits, `0x` optional, surrounding whitespace ignored.
pub fn read_signer(path: &Path) -> Result<PrivateKeySigner, ChainSetupError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ChainSetupError::KeyFile { path: path.to_owned(), source })?;
    text.trim().parse::<PrivateKeySigner>().map_err(|_| ChainSetupError::BadKey(path.to_owned()))
}

impl GridChain {
    /// Connects as the configured signer and checks that the contracts are where the contracts
    /// file says, on the chain the RPC URL serves.
    pub async fn open(config: ChainConfig) -> Result<Self, ChainSetupError> {
        let signer = read_signer(&config.signer_key_file)?;
        let contracts = Contracts::load(&config.contracts)?;
        let chain = Chain::connect(&config.rpc_url, signer, contracts)?;
        chain.check().await?;
        let min_bond = i64::try_from(chain.min_bond().await?).unwrap_or(i64::MAX);
        Ok(Self { chain, config, min_bond })
    }

    /// The chain client, as the grid's signer.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The registry's smallest bond, micro-SGL.
    pub fn min_bond(&self) -> i64 {
        self.min_bond
    }

    /// The `[chain]` settings.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The grid's address: it receives x402 payments and pays gas and payouts.
    pub fn address(&self) -> Address {
        self.chain.address()
    }

    /// The x402 network of this chain's USDC, `eip155:{chain id}` (x402 v1 has no name for it).
    pub fn network(&self) -> NetworkConfig {
        let contracts = self.chain.contracts();
        NetworkConfig {
            caip2: Cow::Owned(format!("eip155:{}", contracts.chain_id)),
            v1_name: None,
            chain_id: contracts.chain_id,
            asset: contracts.usdc,
            domain_name: Cow::Borrowed("USD Coin"),
            domain_version: Cow::Borrowed("2"),
            decimals: 6,
        }
    }
}

/// How the grid names an operator wallet it met on the chain: the checksummed address.
pub fn wallet_name(address: Address) -> String {
    address.to_checksum(None)
}

/// The chain address an operator wallet names, if it is an EVM address.
pub fn wallet_address(wallet: &str) -> Option<Address> {
    wallet.parse().ok()
}

/// The name the ledger keeps `wallet`'s stake under: on a chain, the checksummed address the
/// follower books its events under (however the operator spelled it); otherwise as given.
pub fn ledger_wallet(state: &crate::state::AppState, wallet: &str) -> String {
    match (state.chain(), wallet_address(wallet)) {
        (Some(_), Some(address)) => wallet_name(address),
        _ => wallet.to_owned(),
    }
}
