//! [`Chain`]: one signer's view of the grid's contracts.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Signature, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use tokio::sync::Mutex;

use crate::bindings::{Escrow, ProviderRegistry, Staking, TestToken};
use crate::{ChainError, Contracts};

/// The grid's contracts as one signer (the grid's, or an operator's) sees them. Transactions
/// from one `Chain` are sent one at a time, each waited for until mined, so its account's
/// nonces never race or leave gaps.
#[derive(Debug)]
pub struct Chain {
    provider: DynProvider,
    contracts: Contracts,
    signer: Address,
    pub(crate) usdc: TestToken::TestTokenInstance<DynProvider>,
    pub(crate) stake_token: TestToken::TestTokenInstance<DynProvider>,
    pub(crate) staking: Staking::StakingInstance<DynProvider>,
    pub(crate) registry: ProviderRegistry::ProviderRegistryInstance<DynProvider>,
    pub(crate) escrow: Escrow::EscrowInstance<DynProvider>,
    /// Held while a transaction is sent and mined.
    pub(crate) sends: Mutex<()>,
}

/// A mined transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mined {
    /// Its hash.
    pub tx_hash: B256,
    /// The block it is in.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
}

impl From<&TransactionReceipt> for Mined {
    fn from(receipt: &TransactionReceipt) -> Self {
        Self {
            tx_hash: receipt.transaction_hash,
            block: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
        }
    }
}

/// An operator's stake in `Staking`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StakeOnChain {
    /// Staked and not unstaking.
    pub active: U256,
    /// Unstaking: still slashable until withdrawn.
    pub pending: U256,
    /// When the pending stake may be withdrawn (Unix seconds; 0 when nothing is pending).
    pub unlock_at: u64,
}

/// An operator's entry in `ProviderRegistry`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bond {
    /// Whether it registered (and has not withdrawn its bond).
    pub registered: bool,
    /// The bond.
    pub amount: U256,
    /// The metadata hash it registered with.
    pub metadata: B256,
    /// When a requested deregistration may withdraw the bond (0: none requested).
    pub unlock_at: u64,
    /// The reputation the grid last set.
    pub reputation: u32,
}

/// An escrow stream in `Escrow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Who funded it.
    pub payer: Address,
    /// Who it pays.
    pub provider: Address,
    /// What was deposited.
    pub deposit: U256,
    /// Token units per second.
    pub rate_per_second: U256,
    /// When it started (Unix seconds).
    pub start: u64,
    /// What the provider has taken (gross, before the fee).
    pub withdrawn: U256,
    /// Whether it was closed.
    pub closed: bool,
}

/// A signed EIP-3009 `transferWithAuthorization`, as an x402 payment carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The payer.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// Token units.
    pub value: U256,
    /// Not valid before (Unix seconds).
    pub valid_after: U256,
    /// Not valid at or after (Unix seconds).
    pub valid_before: U256,
    /// The random 32-byte nonce.
    pub nonce: B256,
    /// The payer's signature over the EIP-712 digest.
    pub signature: Signature,
}

/// A provider sending as `signer` to `rpc_url`. Each transaction's nonce is read from the chain
/// (the signer's pending count) when it is built, not counted locally: a send refused before it
/// left (a revert in gas estimation) must not leave a gap that stalls the next one, and sends
/// from one [`Chain`] go one at a time anyway.
pub(crate) fn provider(rpc_url: &str, signer: PrivateKeySigner) -> Result<DynProvider, ChainError> {
    let url = rpc_url
        .parse::<alloy::transports::http::reqwest::Url>()
        .map_err(|e| ChainError::Url { url: rpc_url.to_owned(), reason: e.to_string() })?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased())
}

impl Chain {
    /// Talks to `rpc_url` as `signer`, with the contracts in `contracts`.
    pub fn connect(rpc_url: &str, signer: PrivateKeySigner, contracts: Contracts) -> Result<Self, ChainError> {
        let address = signer.address();
        let provider = provider(rpc_url, signer)?;
        Ok(Self {
            usdc: TestToken::new(contracts.usdc, provider.clone()),
            stake_token: TestToken::new(contracts.stake_token, provider.clone()),
            staking: Staking::new(contracts.staking, provider.clone()),
            registry: ProviderRegistry::new(contracts.registry, provider.clone()),
            escrow: Escrow::new(contracts.escrow, provider.clone()),
            provider,
            contracts,
            signer: address,
            sends: Mutex::new(()),
        })
    }

    /// The provider underneath (for reads the methods here do not cover).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The contracts.
    pub fn contracts(&self) -> &Contracts {
        &self.contracts
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.signer
    }

    /// Checks the chain id and that every contract has code.
    pub async fn check(&self) -> Result<(), ChainError> {
        let chain_id = self.provider.get_chain_id().await?;
        if chain_id != self.contracts.chain_id {
            return Err(ChainError::WrongChain { expected: self.contracts.chain_id, found: chain_id });
        }
        self.contracts.check(&self.provider).await
    }

    /// The latest block's number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.provider.get_block_number().await?)
    }

    /// The latest block's timestamp (Unix seconds): the contracts' "now".
    pub async fn now(&self) -> Result<u64, ChainError> {
        let block = self.provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await?;
        Ok(block.map_or(0, |b| b.header.timestamp))
    }

    /// `who`'s USDC.
    pub async fn usdc_balance(&self, who: Address) -> Result<U256, ChainError> {
        Ok(self.usdc.balanceOf(who).call().await?)
    }

    /// `who`'s stake tokens (not staked).
    pub async fn stake_token_balance(&self, who: Address) -> Result<U256, ChainError> {
        Ok(self.stake_token.balanceOf(who).call().await?)
    }

    /// `operator`'s stake.
    pub async fn stake_of(&self, operator: Address) -> Result<StakeOnChain, ChainError> {
        let stake = self.staking.stakeOf(operator).call().await?;
        Ok(StakeOnChain { active: stake.active, pending: stake.pending, unlock_at: stake.unlockAt })
    }

    /// `provider`'s bond.
    pub async fn bond_of(&self, provider: Address) -> Result<Bond, ChainError> {
        let entry = self.registry.providerOf(provider).call().await?;
        Ok(Bond {
            registered: entry.registered,
            amount: entry.bond,
            metadata: entry.metadataHash,
            unlock_at: entry.unlockAt,
            reputation: entry.reputation,
        })
    }

    /// Whether transaction `hash` was mined and succeeded, and the contract it called: `None`
    /// when the chain does not know it.
    pub async fn outcome(&self, hash: B256) -> Result<Option<(bool, Option<Address>)>, ChainError> {
        let receipt = self.provider.get_transaction_receipt(hash).await?;
        Ok(receipt.map(|r| (r.status(), r.to)))
    }

    /// The smallest bond the registry accepts.
    pub async fn min_bond(&self) -> Result<U256, ChainError> {
        Ok(self.registry.minBond().call().await?)
    }

    /// Whether `from` has used the EIP-3009 `nonce` on the payment token.
    pub async fn authorization_used(&self, from: Address, nonce: B256) -> Result<bool, ChainError> {
        Ok(self.usdc.authorizationState(from, nonce).call().await?)
    }

    /// Stream `id`.
    pub async fn stream(&self, id: U256) -> Result<Stream, ChainError> {
        let s = self.escrow.streamOf(id).call().await?;
        Ok(Stream {
            payer: s.payer,
            provider: s.provider,
            deposit: s.deposit,
            rate_per_second: s.ratePerSecond,
            start: s.start,
            withdrawn: s.withdrawn,
            closed: s.closed,
        })
    }

    /// Whether `payer` has paid batch `batch_id` through `Escrow.payBatch`.
    pub async fn batch_paid(&self, payer: Address, batch_id: B256) -> Result<bool, ChainError> {
        Ok(self.escrow.batchPaid(payer, batch_id).call().await?)
    }

    /// The transaction that paid batch `batch_id` (by any payer), from its `BatchPaid` event
    /// since the contracts were deployed.
    pub async fn batch_transaction(&self, batch_id: B256) -> Result<Option<B256>, ChainError> {
        let from = self.contracts.deployed_block;
        let logs = self.escrow.BatchPaid_filter().topic1(batch_id).from_block(from).query().await?;
        Ok(logs.first().and_then(|(_, log)| log.transaction_hash))
    }
}
