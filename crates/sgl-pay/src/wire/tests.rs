//! Wire-shape tests: camelCase names, decimal-string amounts, version tags, and payloads as the
//! Python client writes them.

use alloy_primitives::{U256, address};
use serde_json::json;

use super::*;

#[test]
fn decimal_u256_is_a_decimal_string_both_ways() {
    let amount = DecimalU256(U256::from(10_000));
    assert_eq!(serde_json::to_value(amount).unwrap(), json!("10000"));
    assert_eq!(serde_json::from_value::<DecimalU256>(json!("10000")).unwrap(), amount);
    let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    assert_eq!(serde_json::from_value::<DecimalU256>(json!(max)).unwrap().0, U256::MAX);
    for bad in [json!(10000), json!(""), json!("0x10"), json!("-1"), json!("1e3"), json!(format!("{max}0"))] {
        assert!(serde_json::from_value::<DecimalU256>(bad.clone()).is_err(), "{bad} must be refused");
    }
}

#[test]
fn version_tags_accept_only_their_number() {
    assert_eq!(serde_json::to_value(V1).unwrap(), json!(1));
    assert_eq!(serde_json::to_value(V2).unwrap(), json!(2));
    assert!(serde_json::from_value::<V1>(json!(1)).is_ok());
    assert!(serde_json::from_value::<V1>(json!(2)).is_err());
    assert!(serde_json::from_value::<V2>(json!("2")).is_err());
}

/// A v2 payload exactly as Python `x402` 2.25.0 emits it (its key order, checksummed and
/// lower-case addresses mixed).
fn python_style_v2_payload() -> serde_json::Value {
    json!({
        "x402Version": 2,
        "payload": {
            "authorization": {
                "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
                "to": "0x00000000000000000000000000000000005e11e7",
                "value": "10000",
                "validAfter": "0",
                "validBefore": "1800000060",
                "nonce": "0x0101010101010101010101010101010101010101010101010101010101010101"
            },
            "signature": "0x01"
        },
        "accepted": {
            "scheme": "exact",
            "network": "eip155:84532",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "amount": "10000",
            "payTo": "0x00000000000000000000000000000000005E11E7",
            "maxTimeoutSeconds": 60,
            "extra": {"name": "USDC", "version": "2"}
        },
        "resource": {"url": "http://127.0.0.1/x", "description": "", "mimeType": ""}
    })
}

#[test]
fn v2_payload_parses_and_its_exact_evm_payload_too() {
    let payload: PaymentPayloadV2 = serde_json::from_value(python_style_v2_payload()).unwrap();
    assert_eq!(payload.accepted.amount.0, U256::from(10_000));
    assert_eq!(payload.accepted.max_timeout_seconds, 60);
    let exact: ExactEvmPayload = serde_json::from_value(payload.payload).unwrap();
    assert_eq!(exact.authorization.from, address!("0x857b06519E91e3A54538791bDbb0E22373e36b66"));
    assert_eq!(exact.authorization.valid_before.0, U256::from(1_800_000_060u64));
    assert_eq!(exact.signature, "0x01");
}

#[test]
fn v1_requirements_use_max_amount_required_and_camel_case() {
    let requirements = PaymentRequirementsV1 {
        scheme: SCHEME_EXACT.to_owned(),
        network: "base-sepolia".to_owned(),
        max_amount_required: DecimalU256::from(5),
        asset: "0xa".to_owned(),
        pay_to: "0xb".to_owned(),
        resource: "http://r".to_owned(),
        description: String::new(),
        mime_type: None,
        output_schema: None,
        max_timeout_seconds: 60,
        extra: None,
    };
    assert_eq!(
        serde_json::to_value(&requirements).unwrap(),
        json!({
            "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "5", "asset": "0xa",
            "payTo": "0xb", "resource": "http://r", "description": "", "maxTimeoutSeconds": 60
        })
    );
}

#[test]
fn facilitator_request_picks_its_version_from_x402_version() {
    let v2 = json!({
        "x402Version": 2,
        "paymentPayload": python_style_v2_payload(),
        "paymentRequirements": python_style_v2_payload()["accepted"],
    });
    let request: FacilitatorRequest = serde_json::from_value(v2.clone()).unwrap();
    assert_eq!(request.x402_version(), 2);
    assert_eq!(request.required_network(), "eip155:84532");
    assert_eq!(request.required_amount(), U256::from(10_000));
    assert_eq!(serde_json::to_value(&request).unwrap()["paymentRequirements"], v2["paymentRequirements"]);

    let v1 = json!({
        "x402Version": 1,
        "paymentPayload": {"x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": {}},
        "paymentRequirements": {
            "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "7", "asset": "0xa",
            "payTo": "0xb", "resource": "http://r", "maxTimeoutSeconds": 60
        },
    });
    let request: FacilitatorRequest = serde_json::from_value(v1).unwrap();
    assert_eq!(request.x402_version(), 1);
    assert_eq!(request.required_amount(), U256::from(7));
}

#[test]
fn responses_use_the_spec_field_names() {
    let settle = SettleResponse {
        success: false,
        error_reason: Some("insufficient_funds".to_owned()),
        payer: None,
        transaction: String::new(),
        network: "eip155:84532".to_owned(),
        amount: None,
        extensions: None,
    };
    assert_eq!(
        serde_json::to_value(&settle).unwrap(),
        json!({"success": false, "errorReason": "insufficient_funds", "transaction": "", "network": "eip155:84532"})
    );
    let verify: VerifyResponse = serde_json::from_value(json!({"isValid": true, "payer": "0xa"})).unwrap();
    assert!(verify.is_valid);
    let supported: SupportedResponse =
        serde_json::from_value(json!({"kinds": [{"x402Version": 1, "scheme": "exact", "network": "base"}]})).unwrap();
    assert_eq!(supported.kinds[0].network, "base");
    assert!(supported.signers.is_empty());
}
