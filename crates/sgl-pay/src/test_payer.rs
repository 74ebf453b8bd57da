//! Test fixtures: a payer with a fresh secp256k1 key that signs EIP-3009 authorizations the way
//! x402 clients do (65 bytes, v = 27/28), and a standard quote to pay.

use alloy_primitives::{Address, B256, U256, address};
use k256::ecdsa::SigningKey;
use rand_core::{OsRng, RngCore};

use crate::exact_evm::{authorization_digest, token_domain};
use crate::header::IncomingPayment;
use crate::network::NetworkConfig;
use crate::quote::PaymentQuote;
use crate::wire::{
    DecimalU256, ExactEvmAuthorization, ExactEvmPayload, FacilitatorRequest, PaymentPayloadV1, PaymentPayloadV2,
    ResourceInfo, SCHEME_EXACT, V1, V2,
};

/// The fixed "now" of the tests, Unix seconds.
pub(crate) const NOW: u64 = 1_800_000_000;

/// The seller in [`quote`].
pub(crate) const SELLER: Address = address!("0x00000000000000000000000000000000005e11e7");

/// A $0.01 quote on Base Sepolia, valid 60 s.
pub(crate) fn quote() -> PaymentQuote {
    PaymentQuote {
        amount: U256::from(10_000),
        pay_to: SELLER,
        network: NetworkConfig::BASE_SEPOLIA,
        resource: ResourceInfo {
            url: "http://127.0.0.1:8080/v1/chat/completions".to_owned(),
            description: Some("Chat completion".to_owned()),
            mime_type: Some("application/json".to_owned()),
        },
        max_timeout_seconds: 60,
    }
}

pub(crate) struct TestPayer {
    key: SigningKey,
    pub(crate) address: Address,
}

impl TestPayer {
    pub(crate) fn random() -> Self {
        let key = SigningKey::random(&mut OsRng);
        let address = Address::from_private_key(&key);
        Self { key, address }
    }

    /// The authorization a v2 client makes for `quote` at [`NOW`], with a random nonce.
    pub(crate) fn authorization(&self, quote: &PaymentQuote) -> ExactEvmAuthorization {
        let mut nonce = B256::ZERO;
        OsRng.fill_bytes(nonce.as_mut_slice());
        ExactEvmAuthorization {
            from: self.address,
            to: quote.pay_to,
            value: DecimalU256(quote.amount),
            valid_after: DecimalU256::from(0),
            valid_before: DecimalU256::from(NOW + quote.max_timeout_seconds),
            nonce,
        }
    }

    /// `r‖s‖v` over `digest`, v = 27/28, low s.
    pub(crate) fn sign_digest(&self, digest: &B256) -> [u8; 65] {
        let (signature, recovery) = self.key.sign_prehash_recoverable(digest.as_slice()).expect("signable digest");
        let mut bytes = [0u8; 65];
        bytes[..64].copy_from_slice(&signature.to_bytes());
        bytes[64] = 27 + recovery.to_byte();
        bytes
    }

    /// Signs `authorization` under `network`'s token domain.
    pub(crate) fn sign(&self, authorization: ExactEvmAuthorization, network: &NetworkConfig) -> ExactEvmPayload {
        let digest = authorization_digest(&authorization, &token_domain(network));
        ExactEvmPayload { signature: hex(&self.sign_digest(&digest)), authorization }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    format!("0x{}", alloy_primitives::hex::encode(bytes))
}

/// The v2 payment a client sends for `quote` carrying `payload`.
pub(crate) fn v2_payment(quote: &PaymentQuote, payload: &ExactEvmPayload) -> IncomingPayment {
    IncomingPayment::V2(PaymentPayloadV2 {
        x402_version: V2,
        resource: Some(quote.resource.clone()),
        accepted: quote.requirements_v2(),
        payload: serde_json::to_value(payload).expect("payload serializes"),
        extensions: None,
    })
}

/// The v1 payment a client sends for `quote` carrying `payload`.
pub(crate) fn v1_payment(quote: &PaymentQuote, payload: &ExactEvmPayload) -> IncomingPayment {
    IncomingPayment::V1(PaymentPayloadV1 {
        x402_version: V1,
        scheme: SCHEME_EXACT.to_owned(),
        network: quote.network.v1_name.as_deref().expect("v1 name").to_owned(),
        payload: serde_json::to_value(payload).expect("payload serializes"),
    })
}

/// The facilitator request for a v2 payment of `quote` with `payload`.
pub(crate) fn v2_request(quote: &PaymentQuote, payload: &ExactEvmPayload) -> FacilitatorRequest {
    quote.facilitator_request(v2_payment(quote, payload)).expect("v2 request")
}

/// The facilitator request for a v1 payment of `quote` with `payload`.
pub(crate) fn v1_request(quote: &PaymentQuote, payload: &ExactEvmPayload) -> FacilitatorRequest {
    quote.facilitator_request(v1_payment(quote, payload)).expect("v1 request")
}
