//! x402 headers and bodies: the payment a client sends (v2 `PAYMENT-SIGNATURE`, v1
//! `X-PAYMENT`), the 402 answer a client reads (v2 `PAYMENT-REQUIRED`, the v1 body), the
//! settlement result (`PAYMENT-RESPONSE`), and a facilitator's `/verify` body.
//!
//! The first byte picks the decoder, the rest is the header value or body:
//! - 0 / 1: a payment in `PAYMENT-SIGNATURE` / `X-PAYMENT`; 2: both headers, split at the
//!   first newline;
//! - 3: `PAYMENT-REQUIRED`, which our payer then pays;
//! - 4: the v1 402 body; 5: `PAYMENT-RESPONSE`; 6: a facilitator request body.
//!
//! Invariants: nothing panics; what decodes re-encodes to the same value; `PAYMENT-SIGNATURE`
//! wins over `X-PAYMENT`; a payment that verifies against the grid's quote pays the quote's
//! amount to its recipient from the recovered signer; whatever our payer signs for a
//! requirement on a network we know, our verifier accepts for that requirement.

#![no_main]

use std::fmt::Debug;

use alloy_primitives::{Address, B256, U256, address};
use k256::ecdsa::SigningKey;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sgl_pay::exact_evm::{VALID_BEFORE_BUFFER_SECONDS, verify_exact_evm};
use sgl_pay::header::{IncomingPayment, decode_header, encode_header};
use sgl_pay::network::{NetworkConfig, find_network};
use sgl_pay::payer::Payer;
use sgl_pay::quote::PaymentQuote;
use sgl_pay::wire::{
    FacilitatorRequest, FacilitatorRequestV2, PaymentRequiredV1, PaymentRequiredV2, ResourceInfo, SCHEME_EXACT,
    SettleResponse, V2,
};

/// "Now", Unix seconds.
const NOW: u64 = 1_800_000_000;
/// The grid's recipient.
const SELLER: Address = address!("0x00000000000000000000000000000000005e11e7");
/// The networks a grid or facilitator is configured with.
const NETWORKS: [NetworkConfig; 2] = [NetworkConfig::BASE_SEPOLIA, NetworkConfig::BASE];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some(value) = sgl_fuzz::text(rest) else { return };
    match mode {
        0 => check_payment(IncomingPayment::from_headers(Some(value), None)),
        1 => check_payment(IncomingPayment::from_headers(None, Some(value))),
        2 => {
            let (signature, x_payment) = value.split_once('\n').unwrap_or((value, ""));
            let both = IncomingPayment::from_headers(Some(signature), Some(x_payment));
            let alone = IncomingPayment::from_headers(Some(signature), None);
            assert_eq!(both.ok(), alone.ok(), "PAYMENT-SIGNATURE wins");
        }
        3 => pay(value),
        4 => {
            sgl_fuzz::json_round_trip::<PaymentRequiredV1>(rest);
        }
        5 => {
            header_round_trip::<SettleResponse>(value);
        }
        6 => {
            if let Some(request) = sgl_fuzz::json_round_trip::<FacilitatorRequest>(rest)
                && let Some(network) = find_network(&NETWORKS, request.required_network())
                && let Ok(verified) = verify_exact_evm(&request, network, NOW)
            {
                assert_eq!(verified.value, request.required_amount());
            }
        }
        _ => {}
    }
});

/// Decodes a header value and checks that re-encoding it gives the same value.
fn header_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &str) -> Option<T> {
    let decoded: T = decode_header(value).ok()?;
    let encoded = encode_header(&decoded).expect("a decoded value encodes");
    assert_eq!(decode_header::<T>(&encoded).expect("a re-encoded value decodes"), decoded);
    Some(decoded)
}

/// The grid's quote for a request: $0.01 on Base Sepolia.
fn quote() -> PaymentQuote {
    PaymentQuote {
        amount: U256::from(10_000),
        pay_to: SELLER,
        network: NetworkConfig::BASE_SEPOLIA,
        resource: ResourceInfo {
            url: "http://127.0.0.1:8080/v1/chat/completions".to_owned(),
            description: None,
            mime_type: None,
        },
        max_timeout_seconds: 60,
    }
}

fn check_payment(parsed: Result<Option<IncomingPayment>, sgl_pay::header::HeaderError>) {
    let Ok(Some(payment)) = parsed else { return };
    let encoded = match &payment {
        IncomingPayment::V1(payload) => encode_header(payload),
        IncomingPayment::V2(payload) => encode_header(payload),
    }
    .expect("a decoded payment encodes");
    let reparsed = IncomingPayment::from_headers(Some(&encoded), None).expect("decodes").expect("present");
    assert_eq!(reparsed, payment);

    let quote = quote();
    let Some(request) = quote.facilitator_request(payment) else { return };
    if let Ok(verified) = verify_exact_evm(&request, &quote.network, NOW) {
        assert_eq!((verified.to, verified.value), (quote.pay_to, quote.amount));
    }
}

fn pay(payment_required: &str) {
    let Some(required) = header_round_trip::<PaymentRequiredV2>(payment_required) else { return };
    let payer = Payer::new(SigningKey::from_bytes(&[0x11; 32].into()).expect("a valid key"), U256::from(1_000_000));
    let Ok((_, header)) = payer.pay_header(payment_required, NOW, B256::repeat_byte(7)) else { return };
    let Some(IncomingPayment::V2(payment)) =
        IncomingPayment::from_headers(Some(&header), None).expect("our header decodes")
    else {
        panic!("our payer's header is not a v2 payment");
    };
    let requirement = payment.accepted.clone();
    assert!(required.accepts.contains(&requirement), "the payer paid a requirement it was not offered");
    assert!(requirement.scheme == SCHEME_EXACT && requirement.network.starts_with("eip155:"));

    // Our verifier accepts it for that requirement, on a network we know.
    let Some(network) = find_network(&NETWORKS, &requirement.network) else { return };
    let domain_field =
        |key: &str| requirement.extra.as_ref().and_then(|extra| extra.get(key)).and_then(serde_json::Value::as_str);
    let known_domain = requirement.asset.parse::<Address>().ok() == Some(network.asset)
        && domain_field("name") == Some(&*network.domain_name)
        && domain_field("version") == Some(&*network.domain_version);
    let request = FacilitatorRequest::V2(FacilitatorRequestV2 {
        x402_version: V2,
        payment_payload: payment,
        payment_requirements: requirement.clone(),
    });
    let verified = verify_exact_evm(&request, network, NOW);
    if known_domain && requirement.max_timeout_seconds >= VALID_BEFORE_BUFFER_SECONDS {
        let verified = verified.unwrap_or_else(|error| panic!("our own payment for {requirement:?} failed: {error}"));
        assert_eq!(verified.payer, payer.address());
        assert_eq!(verified.value, requirement.amount.0);
    }
}
