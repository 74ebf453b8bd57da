//! What can go wrong talking to the chain.

/// A chain call failed. Reverts carry the contract's custom error where the ABI names it.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The RPC endpoint could not be reached or answered nonsense.
    #[error("the chain's RPC endpoint failed: {0}")]
    Transport(#[from] alloy::transports::TransportError),
    /// A call or transaction was refused (a revert, a bad argument).
    #[error("the contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// A sent transaction was not mined.
    #[error("the transaction was not mined: {0}")]
    Pending(#[from] alloy::providers::PendingTransactionError),
    /// A transaction was mined but reverted.
    #[error("transaction {0} reverted")]
    Reverted(alloy::primitives::B256),
    /// The RPC URL does not parse.
    #[error("bad RPC URL {url:?}: {reason}")]
    Url {
        /// What was given.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The contracts file could not be read or written.
    #[error("contracts file {path}: {source}")]
    ContractsFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The contracts file does not parse.
    #[error("contracts file {path}: {source}")]
    ContractsJson {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A deployment's code is missing at an address the contracts file names.
    #[error("no contract at {address} ({name}): is this the chain the contracts were deployed to?")]
    NoCode {
        /// Which contract.
        name: &'static str,
        /// Where it should be.
        address: alloy::primitives::Address,
    },
    /// The RPC endpoint is another chain than the contracts file's.
    #[error("the RPC endpoint is chain {found}, the contracts are on chain {expected}")]
    WrongChain {
        /// The contracts file's chain.
        expected: u64,
        /// The endpoint's.
        found: u64,
    },
    /// anvil did not start.
    #[error("anvil did not start: {0}")]
    Anvil(String),
    /// An amount does not fit the ledger's integer.
    #[error("amount {0} does not fit a 64-bit micro-unit count")]
    Amount(alloy::primitives::U256),
}
