//! Paying a 402 from Rust: reads a v2 `PAYMENT-REQUIRED` header, signs an EIP-3009
//! `TransferWithAuthorization` for its first `exact` EVM requirement the way the reference
//! clients do (`validAfter` 0, `validBefore` now + `maxTimeoutSeconds`, a random nonce, 65-byte
//! signature with v 27/28), and encodes the `PAYMENT-SIGNATURE` header.
//!
//! This is a client: it never checks that the seller is honest beyond what it signs (the
//! amount, the recipient and the token are all in the signature, so nothing else can be taken).

use std::borrow::Cow;

use alloy_primitives::{Address, B256, U256};
use k256::ecdsa::SigningKey;

use crate::exact_evm::{authorization_digest, token_domain};
use crate::header::{HeaderError, PAYMENT_SIGNATURE, decode_header, encode_header};
use crate::network::NetworkConfig;
use crate::wire::{
    DecimalU256, ExactEvmAuthorization, ExactEvmPayload, PaymentPayloadV2, PaymentRequiredV2, PaymentRequirementsV2,
    SCHEME_EXACT, V2,
};

/// Why a 402 cannot be paid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    /// The header is not a v2 `PaymentRequired`.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// No requirement is `exact` on an `eip155:` network with the EIP-712 domain in `extra`.
    #[error("no payable requirement: {0}")]
    Unpayable(&'static str),
    /// More than the payer allows for one payment.
    #[error("the requirement asks {asked} atomic units, above the limit of {limit}")]
    AboveLimit {
        /// Asked for.
        asked: U256,
        /// The payer's limit.
        limit: U256,
    },
}

/// A wallet that pays x402 `exact` requirements on EVM networks.
#[derive(Clone)]
pub struct Payer {
    key: SigningKey,
    address: Address,
    limit: U256,
}

impl std::fmt::Debug for Payer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payer").field("address", &self.address).field("limit", &self.limit).finish_non_exhaustive()
    }
}

impl Payer {
    /// A payer signing with `key`, paying at most `limit` atomic units per payment (the
    /// reference clients default to $1, i.e. 1,000,000 units of USDC).
    pub fn new(key: SigningKey, limit: U256) -> Self {
        let address = Address::from_private_key(&key);
        Self { key, address, limit }
    }

    /// The paying address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The `(name, value)` of the `PAYMENT-SIGNATURE` header paying the `PAYMENT-REQUIRED`
    /// header value `payment_required`, at Unix time `now`, with authorization nonce `nonce`.
    pub fn pay_header(
        &self,
        payment_required: &str,
        now: u64,
        nonce: B256,
    ) -> Result<(&'static str, String), PayError> {
        let required: PaymentRequiredV2 = decode_header(payment_required)?;
        let requirement = required
            .accepts
            .iter()
            .find(|r| r.scheme == SCHEME_EXACT && r.network.starts_with("eip155:"))
            .ok_or(PayError::Unpayable("no exact requirement on an eip155 network"))?;
        let payload = PaymentPayloadV2 {
            x402_version: V2,
            resource: Some(required.resource.clone()),
            accepted: requirement.clone(),
            payload: serde_json::to_value(self.sign(requirement, now, nonce)?)
                .map_err(|e| PayError::Header(HeaderError::Encode(e)))?,
            extensions: None,
        };
        Ok((PAYMENT_SIGNATURE, encode_header(&payload)?))
    }

    /// The signed EIP-3009 authorization for `requirement`.
    pub fn sign(
        &self,
        requirement: &PaymentRequirementsV2,
        now: u64,
        nonce: B256,
    ) -> Result<ExactEvmPayload, PayError> {
        let network = network_of(requirement)?;
        if requirement.amount.0 > self.limit {
            return Err(PayError::AboveLimit { asked: requirement.amount.0, limit: self.limit });
        }
        let to = requirement.pay_to.parse().map_err(|_| PayError::Unpayable("payTo is not an address"))?;
        let authorization = ExactEvmAuthorization {
            from: self.address,
            to,
            value: requirement.amount,
            valid_after: DecimalU256::from(0),
            valid_before: DecimalU256::from(now.saturating_add(requirement.max_timeout_seconds)),
            nonce,
        };
        let digest = authorization_digest(&authorization, &token_domain(&network));
        let (signature, recovery) = self
            .key
            .sign_prehash_recoverable(digest.as_slice())
            .map_err(|_| PayError::Unpayable("the digest could not be signed"))?;
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery.to_byte());
        Ok(ExactEvmPayload { signature: format!("0x{}", alloy_primitives::hex::encode(bytes)), authorization })
    }
}

/// The network a requirement names, with the token's EIP-712 domain from its `extra`.
fn network_of(requirement: &PaymentRequirementsV2) -> Result<NetworkConfig, PayError> {
    let chain_id = requirement
        .network
        .strip_prefix("eip155:")
        .and_then(|id| id.parse().ok())
        .ok_or(PayError::Unpayable("the network is not eip155:<chain id>"))?;
    let extra = requirement.extra.as_ref().ok_or(PayError::Unpayable("no EIP-712 domain in extra"))?;
    let field = |name: &str| extra.get(name).and_then(|v| v.as_str()).map(|v| Cow::Owned(v.to_owned()));
    Ok(NetworkConfig {
        caip2: Cow::Owned(requirement.network.clone()),
        v1_name: None,
        chain_id,
        asset: requirement.asset.parse().map_err(|_| PayError::Unpayable("asset is not an address"))?,
        domain_name: field("name").ok_or(PayError::Unpayable("no extra.name"))?,
        domain_version: field("version").ok_or(PayError::Unpayable("no extra.version"))?,
        decimals: 6,
    })
}

#[cfg(test)]
mod tests {
    //! A payment made here is accepted by this crate's own verifier, and the spend limit holds.

    use super::*;
    use crate::exact_evm::verify_exact_evm;
    use crate::header::IncomingPayment;
    use crate::test_payer::{NOW, quote};

    #[test]
    fn a_paid_header_verifies_against_the_quote_it_pays() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let payer = Payer::new(key, U256::from(1_000_000u64));
        let quote = quote();
        let required = quote.dual_402(None).unwrap().payment_required;
        let (name, value) = payer.pay_header(&required, NOW, B256::repeat_byte(7)).unwrap();
        assert_eq!(name, PAYMENT_SIGNATURE);
        let payment = IncomingPayment::from_headers(Some(&value), None).unwrap().unwrap();
        assert!(quote.matches(&payment));
        let request = quote.facilitator_request(payment).unwrap();
        let verified = verify_exact_evm(&request, &quote.network, NOW).unwrap();
        assert_eq!(verified.payer, payer.address());
        assert_eq!(verified.value, quote.amount);

        let stingy = Payer::new(SigningKey::random(&mut rand_core::OsRng), U256::from(1u64));
        assert!(matches!(stingy.pay_header(&required, NOW, B256::ZERO), Err(PayError::AboveLimit { .. })));
        assert!(matches!(payer.pay_header("not base64!", NOW, B256::ZERO), Err(PayError::Header(_))));
    }
}
