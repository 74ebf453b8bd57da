//! Quote tests: the dual 402 answer's exact shapes and matching payments to quotes.

use std::borrow::Cow;

use alloy_primitives::U256;
use serde_json::json;

use super::*;
use crate::header::decode_header;
use crate::test_payer::{TestPayer, quote, v1_payment, v2_payment};

#[test]
fn dual_402_header_is_the_v2_object_and_body_is_v1() {
    let dual = quote().dual_402(None).unwrap();
    assert_eq!(dual.header().0, "PAYMENT-REQUIRED");
    let header: serde_json::Value = decode_header(dual.header().1).unwrap();
    assert_eq!(
        header,
        json!({
            "x402Version": 2,
            "resource": {
                "url": "http://127.0.0.1:8080/v1/chat/completions",
                "description": "Chat completion",
                "mimeType": "application/json"
            },
            "accepts": [{
                "scheme": "exact",
                "network": "eip155:84532",
                "amount": "10000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x00000000000000000000000000000000005E11e7",
                "maxTimeoutSeconds": 60,
                "extra": {"name": "USDC", "version": "2"}
            }]
        })
    );
    assert_eq!(serde_json::to_value(&dual.v2).unwrap(), header);
    assert_eq!(
        serde_json::to_value(&dual.body).unwrap(),
        json!({
            "x402Version": 1,
            "error": "X-PAYMENT header is required",
            "accepts": [{
                "scheme": "exact",
                "network": "base-sepolia",
                "maxAmountRequired": "10000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x00000000000000000000000000000000005E11e7",
                "resource": "http://127.0.0.1:8080/v1/chat/completions",
                "description": "Chat completion",
                "mimeType": "application/json",
                "maxTimeoutSeconds": 60,
                "extra": {"name": "USDC", "version": "2"}
            }]
        })
    );
}

#[test]
fn dual_402_error_text_goes_into_both_versions() {
    let dual = quote().dual_402(Some("insufficient_funds")).unwrap();
    assert_eq!(dual.v2.error.as_deref(), Some("insufficient_funds"));
    assert_eq!(dual.body.error, "insufficient_funds");
}

#[test]
fn a_network_without_a_v1_name_offers_nothing_to_v1_clients() {
    let mut quote = quote();
    quote.network.caip2 = Cow::Borrowed("eip155:31337");
    quote.network.chain_id = 31337;
    quote.network.v1_name = None;
    let dual = quote.dual_402(None).unwrap();
    assert!(dual.body.accepts.is_empty());
    assert_eq!(dual.v2.accepts[0].network, "eip155:31337");
    let payload = TestPayer::random().sign(TestPayer::random().authorization(&quote), &quote.network);
    let mut base_sepolia = crate::test_payer::quote();
    base_sepolia.network = NetworkConfig::BASE_SEPOLIA;
    assert_eq!(quote.facilitator_request(v1_payment(&base_sepolia, &payload)), None);
}

#[test]
fn matching_compares_fields_and_addresses_in_any_case() {
    let quote = quote();
    let payer = TestPayer::random();
    let payload = payer.sign(payer.authorization(&quote), &quote.network);
    let mut payment = v2_payment(&quote, &payload);
    assert!(quote.matches(&payment));
    let IncomingPayment::V2(inner) = &mut payment else { unreachable!() };
    inner.accepted.pay_to = inner.accepted.pay_to.to_lowercase();
    inner.accepted.asset = inner.accepted.asset.to_uppercase().replacen("0X", "0x", 1);
    inner.accepted.extra = None;
    assert!(quote.matches(&payment), "case and extra must not matter");

    let mut cheaper = quote.clone();
    cheaper.amount = U256::from(1);
    assert!(!cheaper.matches(&payment));
    let mut elsewhere = quote.clone();
    elsewhere.network = NetworkConfig::BASE;
    assert!(!elsewhere.matches(&payment));
    assert!(!elsewhere.matches(&v1_payment(&quote, &payload)));
    assert!(quote.matches(&v1_payment(&quote, &payload)));
}

#[test]
fn facilitator_request_pairs_the_payment_with_the_quotes_own_requirement() {
    let quote = quote();
    let payer = TestPayer::random();
    let payload = payer.sign(payer.authorization(&quote), &quote.network);
    let mut payment = v2_payment(&quote, &payload);
    let IncomingPayment::V2(inner) = &mut payment else { unreachable!() };
    inner.accepted.amount = U256::from(1).into();
    let Some(FacilitatorRequest::V2(request)) = quote.facilitator_request(payment) else { unreachable!() };
    assert_eq!(request.payment_requirements, quote.requirements_v2());
    assert_eq!(request.payment_payload.accepted.amount.0, U256::from(1), "the client's echo is kept as sent");
}
