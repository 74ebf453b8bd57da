//! `exact` EVM verification tests with payloads signed here by fresh keys: the happy path in
//! both versions, each check with its reason string, signature encodings, and wrong domains.

use std::borrow::Cow;

use alloy_primitives::{U256, address};
use alloy_sol_types::SolStruct;
use serde_json::json;

use super::*;
use crate::quote::PaymentQuote;
use crate::test_payer::{NOW, SELLER, TestPayer, hex, quote, v1_request, v2_request};
use crate::wire::ExactEvmAuthorization;

/// Signs the authorization for `quote` after `edit`, and verifies a v2 request at [`NOW`].
fn verify_edited(edit: impl FnOnce(&mut ExactEvmAuthorization)) -> Result<VerifiedPayment, VerifyError> {
    let quote = quote();
    let payer = TestPayer::random();
    let mut authorization = payer.authorization(&quote);
    edit(&mut authorization);
    let payload = payer.sign(authorization, &quote.network);
    verify_exact_evm(&v2_request(&quote, &payload), &quote.network, NOW)
}

fn reason(result: Result<VerifiedPayment, VerifyError>) -> &'static str {
    result.expect_err("payment must be refused").reason()
}

#[test]
fn type_hash_is_eip3009s() {
    assert_eq!(
        eip3009::TransferWithAuthorization::eip712_type_hash(&eip3009::TransferWithAuthorization {
            from: Address::ZERO,
            to: Address::ZERO,
            value: U256::ZERO,
            validAfter: U256::ZERO,
            validBefore: U256::ZERO,
            nonce: B256::ZERO,
        }),
        "0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267".parse::<B256>().unwrap()
    );
}

#[test]
fn a_valid_payment_verifies_and_recovers_the_payer_in_both_versions() {
    let quote = quote();
    let payer = TestPayer::random();
    let authorization = payer.authorization(&quote);
    let payload = payer.sign(authorization.clone(), &quote.network);
    for request in [v2_request(&quote, &payload), v1_request(&quote, &payload)] {
        let verified = verify_exact_evm(&request, &quote.network, NOW).unwrap();
        assert_eq!(verified.payer, payer.address);
        assert_eq!(verified.to, SELLER);
        assert_eq!(verified.value, U256::from(10_000));
        assert_eq!(verified.nonce, authorization.nonce);
        assert_eq!(verified.digest, authorization_digest(&authorization, &token_domain(&quote.network)));
    }
}

#[test]
fn recipient_must_be_pay_to() {
    let other = address!("0x0000000000000000000000000000000000000bad");
    assert_eq!(reason(verify_edited(|a| a.to = other)), "invalid_exact_evm_payload_recipient_mismatch");
}

#[test]
fn value_must_equal_the_amount_exactly_with_the_versions_reason() {
    let more = |a: &mut ExactEvmAuthorization| a.value = U256::from(10_001).into();
    assert_eq!(reason(verify_edited(more)), "invalid_exact_evm_payload_authorization_value_mismatch");
    let less = |a: &mut ExactEvmAuthorization| a.value = U256::from(9_999).into();
    assert_eq!(reason(verify_edited(less)), "invalid_exact_evm_payload_authorization_value_mismatch");

    let quote = quote();
    let payer = TestPayer::random();
    let mut authorization = payer.authorization(&quote);
    authorization.value = U256::from(1).into();
    let payload = payer.sign(authorization, &quote.network);
    let result = verify_exact_evm(&v1_request(&quote, &payload), &quote.network, NOW);
    assert_eq!(reason(result), "invalid_exact_evm_payload_authorization_value");
}

#[test]
fn valid_after_must_not_be_in_the_future() {
    assert!(verify_edited(|a| a.valid_after = NOW.into()).is_ok());
    let future = |a: &mut ExactEvmAuthorization| a.valid_after = (NOW + 1).into();
    assert_eq!(reason(verify_edited(future)), "invalid_exact_evm_payload_authorization_valid_after");
}

#[test]
fn valid_before_needs_six_seconds_of_margin() {
    assert!(verify_edited(|a| a.valid_before = (NOW + 6).into()).is_ok());
    let tight = |a: &mut ExactEvmAuthorization| a.valid_before = (NOW + 5).into();
    assert_eq!(reason(verify_edited(tight)), "invalid_exact_evm_payload_authorization_valid_before");
    let past = |a: &mut ExactEvmAuthorization| a.valid_before = (NOW - 100).into();
    assert_eq!(reason(verify_edited(past)), "invalid_exact_evm_payload_authorization_valid_before");
}

#[test]
fn the_signer_must_be_from() {
    let someone_else = address!("0x00000000000000000000000000000000000000aa");
    let result = verify_edited(|a| a.from = someone_else);
    assert!(matches!(result, Err(VerifyError::Signature(SignatureError::WrongSigner { .. }))));
    assert_eq!(reason(result), "invalid_exact_evm_payload_signature");
}

/// A v2 request for `quote` whose signature is `signature` over a valid authorization.
fn with_signature(edit: impl FnOnce(&mut [u8; 65])) -> Result<VerifiedPayment, VerifyError> {
    let quote = quote();
    let payer = TestPayer::random();
    let authorization = payer.authorization(&quote);
    let digest = authorization_digest(&authorization, &token_domain(&quote.network));
    let mut signature = payer.sign_digest(&digest);
    edit(&mut signature);
    let payload = ExactEvmPayload { signature: hex(&signature), authorization };
    verify_exact_evm(&v2_request(&quote, &payload), &quote.network, NOW)
}

#[test]
fn recovery_byte_may_be_27_28_or_0_1_and_nothing_else() {
    assert!(with_signature(|_| ()).is_ok());
    assert!(with_signature(|s| s[64] -= 27).is_ok());
    for bad_v in [2u8, 26, 29, 37] {
        let result = with_signature(|s| s[64] = bad_v);
        assert!(matches!(result, Err(VerifyError::Signature(SignatureError::RecoveryByte(v))) if v == bad_v));
    }
}

#[test]
fn high_s_is_refused_even_though_it_recovers_the_same_signer() {
    // secp256k1 group order n; (r, n - s, flipped parity) is the malleated twin signature.
    let order: U256 = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141".parse().unwrap();
    let result = with_signature(|s| {
        let low = U256::from_be_slice(&s[32..64]);
        s[32..64].copy_from_slice(&(order - low).to_be_bytes::<32>());
        s[64] = if s[64] == 27 { 28 } else { 27 };
    });
    assert!(matches!(result, Err(VerifyError::Signature(SignatureError::HighS))), "{result:?}");
    assert_eq!(reason(result), "invalid_exact_evm_payload_signature");
}

#[test]
fn malformed_signatures_are_invalid_signatures() {
    for (signature, expected) in
        [("0x1234", "Length"), ("1234", "NotHex"), ("0xzz", "NotHex"), (&format!("0x{}", "11".repeat(66)), "Length")]
    {
        let error = parse_signature(signature).unwrap_err();
        assert!(format!("{error:?}").starts_with(expected), "{signature}: {error:?}");
    }
    let zero = format!("0x{}1b", "00".repeat(64));
    let quote = quote();
    let payer = TestPayer::random();
    let payload = ExactEvmPayload { signature: zero, authorization: payer.authorization(&quote) };
    let result = verify_exact_evm(&v2_request(&quote, &payload), &quote.network, NOW);
    assert_eq!(reason(result), "invalid_exact_evm_payload_signature");
}

/// Signs for `signed_on`, verifies against the standard quote's network.
fn signed_under(signed_on: &NetworkConfig) -> Result<VerifiedPayment, VerifyError> {
    let quote = quote();
    let payer = TestPayer::random();
    let payload = payer.sign(payer.authorization(&quote), signed_on);
    verify_exact_evm(&v2_request(&quote, &payload), &quote.network, NOW)
}

#[test]
fn a_signature_for_another_chain_or_domain_is_refused() {
    let base = NetworkConfig::BASE_SEPOLIA;
    let wrong_chain = NetworkConfig { chain_id: 8453, ..base.clone() };
    let wrong_name = NetworkConfig { domain_name: Cow::Borrowed("USD Coin"), ..base.clone() };
    let wrong_version = NetworkConfig { domain_version: Cow::Borrowed("1"), ..base.clone() };
    let wrong_token = NetworkConfig { asset: NetworkConfig::BASE.asset, ..base.clone() };
    for network in [wrong_chain, wrong_name, wrong_version, wrong_token] {
        assert_eq!(reason(signed_under(&network)), "invalid_exact_evm_payload_signature", "{network:?}");
    }
    assert!(signed_under(&base).is_ok());
}

/// Verifies a valid v2 payment of the standard quote after editing the request.
fn with_request(edit: impl FnOnce(&mut crate::wire::FacilitatorRequestV2)) -> Result<VerifiedPayment, VerifyError> {
    let quote: PaymentQuote = quote();
    let payer = TestPayer::random();
    let payload = payer.sign(payer.authorization(&quote), &quote.network);
    let FacilitatorRequest::V2(mut request) = v2_request(&quote, &payload) else { unreachable!() };
    edit(&mut request);
    verify_exact_evm(&FacilitatorRequest::V2(request), &quote.network, NOW)
}

#[test]
fn requirement_and_payment_must_agree_on_scheme_network_asset_and_domain() {
    type Edit = fn(&mut crate::wire::FacilitatorRequestV2);
    let cases: [(&str, Edit); 10] = [
        ("unsupported_scheme", |r| {
            r.payment_requirements.scheme = "upto".to_owned();
            r.payment_payload.accepted.scheme = "upto".to_owned();
        }),
        ("invalid_scheme", |r| r.payment_payload.accepted.scheme = "upto".to_owned()),
        ("network_mismatch", |r| r.payment_payload.accepted.network = "eip155:8453".to_owned()),
        ("invalid_network", |r| {
            r.payment_requirements.network = "eip155:8453".to_owned();
            r.payment_payload.accepted.network = "eip155:8453".to_owned();
        }),
        ("invalid_payment_requirements", |r| r.payment_requirements.asset = SELLER.to_string()),
        ("invalid_payment_requirements", |r| r.payment_requirements.pay_to = "0xnope".to_owned()),
        ("missing_eip712_domain", |r| r.payment_requirements.extra = None),
        ("invalid_exact_evm_token_name_mismatch", |r| {
            r.payment_requirements.extra = Some(json!({"name": "USD Coin", "version": "2"}));
        }),
        ("invalid_exact_evm_token_version_mismatch", |r| {
            r.payment_requirements.extra = Some(json!({"name": "USDC", "version": "1"}));
        }),
        ("invalid_payload", |r| r.payment_payload.payload = json!({"signature": "0x"})),
    ];
    for (expected, edit) in cases {
        assert_eq!(reason(with_request(edit)), expected);
    }
    // The client's own echo of `extra` does not matter: the server's requirement rules.
    assert!(with_request(|r| r.payment_payload.accepted.extra = None).is_ok());
}

/// An authorization signed by `eth-account` 0.14.0 (key `0x11…11`, Python `encode_typed_data`),
/// an oracle independent of alloy: the digest and the recovered signer must match its answer.
#[test]
fn golden_vector_signed_by_eth_account() {
    let authorization = ExactEvmAuthorization {
        from: address!("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"),
        to: SELLER,
        value: U256::from(10_000).into(),
        valid_after: 0u64.into(),
        valid_before: 1_800_000_060u64.into(),
        nonce: B256::repeat_byte(0xab),
    };
    let digest = authorization_digest(&authorization, &token_domain(&NetworkConfig::BASE_SEPOLIA));
    assert_eq!(digest, "0x9a7584a541626629d9aeabe6048d0f58aa60a937a122d58ef6cf8095cb607f77".parse::<B256>().unwrap());
    let signature = "0xb7b956d9e971c0e57b8ef48fad4c659578991d90a789709687c1064252c74264\
                     05f3b226e849533fa97eaf5c7aa0476532e0163864f1120555d6063215f2371c1b";
    let payload = ExactEvmPayload { signature: signature.to_owned(), authorization };
    let verified = verify_exact_evm(&v2_request(&quote(), &payload), &NetworkConfig::BASE_SEPOLIA, NOW).unwrap();
    assert_eq!(verified.payer, address!("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"));
    assert_eq!(verified.digest, digest);
}
