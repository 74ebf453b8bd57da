//! Networks and their payment asset as configuration: chain identifiers in both x402 spellings
//! and the token's EIP-712 domain. Nothing here is looked up on a chain.

use std::borrow::Cow;

use alloy_primitives::{Address, address};

/// One EVM network with the EIP-3009 token the grid accepts on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// CAIP-2 identifier used by x402 v2, `eip155:<chain_id>`.
    pub caip2: Cow<'static, str>,
    /// Legacy name used by x402 v1, if v1 clients know this chain (`None` for a local chain:
    /// v1 cannot express an arbitrary chain id).
    pub v1_name: Option<Cow<'static, str>>,
    /// EIP-155 chain id; part of the EIP-712 domain.
    pub chain_id: u64,
    /// Token contract; the EIP-712 `verifyingContract`.
    pub asset: Address,
    /// The token's EIP-712 domain name (`extra.name`).
    pub domain_name: Cow<'static, str>,
    /// The token's EIP-712 domain version (`extra.version`).
    pub domain_version: Cow<'static, str>,
    /// Decimals of the token (USDC: 6), for turning prices into atomic units.
    pub decimals: u8,
}

impl NetworkConfig {
    /// Base Sepolia with Circle's test USDC: the development default, and a pair the stock
    /// clients pay without any spend-control configuration (at most $1 per payment).
    pub const BASE_SEPOLIA: Self = Self {
        caip2: Cow::Borrowed("eip155:84532"),
        v1_name: Some(Cow::Borrowed("base-sepolia")),
        chain_id: 84532,
        asset: address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
        domain_name: Cow::Borrowed("USDC"),
        domain_version: Cow::Borrowed("2"),
        decimals: 6,
    };

    /// Base mainnet with native USDC, for production.
    pub const BASE: Self = Self {
        caip2: Cow::Borrowed("eip155:8453"),
        v1_name: Some(Cow::Borrowed("base")),
        chain_id: 8453,
        asset: address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
        domain_name: Cow::Borrowed("USD Coin"),
        domain_version: Cow::Borrowed("2"),
        decimals: 6,
    };

    /// Whether `network` names this network, as a CAIP-2 id or as its v1 name.
    pub fn is_named(&self, network: &str) -> bool {
        network == self.caip2 || self.v1_name.as_deref() == Some(network)
    }

    /// The EIP-712 domain as x402 puts it in a requirement's `extra`.
    pub fn extra(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.domain_name, "version": self.domain_version })
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self::BASE_SEPOLIA
    }
}

/// The network in `networks` that `network` names, by CAIP-2 id or v1 name.
pub fn find_network<'a>(networks: &'a [NetworkConfig], network: &str) -> Option<&'a NetworkConfig> {
    networks.iter().find(|config| config.is_named(network))
}
