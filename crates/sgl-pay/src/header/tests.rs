//! Header codec tests: standard base64 out, lenient base64 in, and the payment parse.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;
use crate::test_payer::{TestPayer, quote, v1_payment, v2_payment};

#[test]
fn encode_emits_standard_padded_base64_of_the_json() {
    // Both `+`/`/` and padding appear for this input, so the alphabet and padding are checked.
    let value = json!({"k": "\u{fb}\u{ff}?>"});
    let encoded = encode_header(&value).unwrap();
    assert_eq!(encoded, STANDARD.encode(serde_json::to_vec(&value).unwrap()));
    assert!(encoded.ends_with('='));
    assert!(encoded.contains('/') || encoded.contains('+'), "{encoded}");
    assert_eq!(decode_header::<Value>(&encoded).unwrap(), value);
}

#[test]
fn decode_accepts_url_safe_unpadded_and_surrounding_space() {
    let value = json!({"k": "\u{fb}\u{ff}?>"});
    let json = serde_json::to_vec(&value).unwrap();
    for encoded in [URL_SAFE.encode(&json), URL_SAFE_NO_PAD.encode(&json), format!(" {} ", STANDARD.encode(&json))] {
        assert_eq!(decode_header::<Value>(&encoded).unwrap(), value, "{encoded}");
    }
}

#[test]
fn decode_errors_say_invalid_payload() {
    let not_base64 = decode_header::<Value>("%%%").unwrap_err();
    assert!(matches!(not_base64, HeaderError::Base64(_)));
    let not_json = decode_header::<Value>(&STANDARD.encode("nope")).unwrap_err();
    assert!(matches!(not_json, HeaderError::Json(_)));
    assert_eq!(not_json.reason(), "invalid_payload");
}

#[test]
fn no_payment_header_means_no_payment() {
    assert_eq!(IncomingPayment::from_headers(None, None).unwrap(), None);
}

#[test]
fn payments_parse_from_either_header_by_their_version() {
    let quote = quote();
    let payload = TestPayer::random().sign(TestPayer::random().authorization(&quote), &quote.network);
    let v2 = v2_payment(&quote, &payload);
    let v1 = v1_payment(&quote, &payload);
    let v2_header = match &v2 {
        IncomingPayment::V2(p) => encode_header(p).unwrap(),
        IncomingPayment::V1(_) => unreachable!(),
    };
    let v1_header = match &v1 {
        IncomingPayment::V1(p) => encode_header(p).unwrap(),
        IncomingPayment::V2(_) => unreachable!(),
    };

    let parsed = IncomingPayment::from_headers(Some(&v2_header), None).unwrap().unwrap();
    assert_eq!(parsed, v2);
    assert_eq!((parsed.x402_version(), parsed.response_header_name()), (2, PAYMENT_RESPONSE));
    let parsed = IncomingPayment::from_headers(None, Some(&v1_header)).unwrap().unwrap();
    assert_eq!(parsed, v1);
    assert_eq!((parsed.x402_version(), parsed.response_header_name()), (1, X_PAYMENT_RESPONSE));
    // PAYMENT-SIGNATURE wins over X-PAYMENT.
    assert_eq!(IncomingPayment::from_headers(Some(&v2_header), Some(&v1_header)).unwrap().unwrap(), v2);
}

#[test]
fn a_payment_of_an_unknown_version_is_refused() {
    let header = encode_header(&json!({"x402Version": 3, "accepted": {}, "payload": {}})).unwrap();
    assert!(matches!(IncomingPayment::from_headers(Some(&header), None), Err(HeaderError::Json(_))));
}
