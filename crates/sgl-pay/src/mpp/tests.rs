//! MPP unit tests: JCS and RFC 3339 vectors, the challenge as `pympp` renders it (golden values
//! computed with `pympp` 0.16.0), the HMAC binding, every refusal, and settlement.

use alloy_primitives::{Address, B256, U256, address};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;
use crate::exact_evm::{SignatureError, VerifyError, authorization_digest, token_domain};
use crate::ledger::{AccountKey, MemoryLedger, PaymentLedger};
use crate::network::NetworkConfig;
use crate::test_payer::{NOW, SELLER, TestPayer, hex};
use crate::wire::{DecimalU256, ExactEvmAuthorization};
use sgl_protocol::rfc3339::{format as format_rfc3339, parse as parse_rfc3339};

const REALM: &str = "api.example.com";
const SECRET: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const AMOUNT: u64 = 10_000;

fn config() -> MppConfig {
    MppConfig::new(REALM, SECRET, NetworkConfig::BASE_SEPOLIA, SELLER).unwrap()
}

fn challenge() -> Challenge {
    config().issue_challenge(U256::from(AMOUNT), None, NOW)
}

/// The authorization a client signs for `challenge` with the nonce of `derivation`.
fn authorization(payer: &TestPayer, challenge: &Challenge, derivation: NonceDerivation) -> ExactEvmAuthorization {
    ExactEvmAuthorization {
        from: payer.address,
        to: SELLER,
        value: DecimalU256::from(AMOUNT),
        valid_after: DecimalU256::from(0),
        valid_before: DecimalU256::from(challenge.expires_at()),
        nonce: derivation.nonce(challenge.id(), challenge.realm()),
    }
}

/// The `authorization` payload, signed by `payer` under `network`'s token domain.
fn signed(payer: &TestPayer, authorization: &ExactEvmAuthorization, network: &NetworkConfig) -> Value {
    let digest = authorization_digest(authorization, &token_domain(network));
    json!({
        "type": "authorization",
        "from": authorization.from,
        "to": authorization.to,
        "value": authorization.value,
        "validAfter": authorization.valid_after,
        "validBefore": authorization.valid_before,
        "nonce": authorization.nonce,
        "signature": hex(&payer.sign_digest(&digest)),
    })
}

fn source(address: Address) -> Option<String> {
    Some(format!("did:pkh:eip155:84532:{}", address.to_checksum(None)))
}

/// A well-formed credential for `challenge` by `payer`.
fn credential(payer: &TestPayer, challenge: &Challenge) -> Credential {
    let authorization = authorization(payer, challenge, NonceDerivation::JsonArray);
    let payload = signed(payer, &authorization, &NetworkConfig::BASE_SEPOLIA);
    Credential::for_challenge(challenge, payload, source(payer.address))
}

fn verify(credential: &Credential) -> Result<VerifiedMppPayment, MppError> {
    verify_credential(&config(), credential, U256::from(AMOUNT), NOW + 1)
}

#[test]
fn jcs_sorts_members_by_utf16_code_units() {
    let value: Value = serde_json::from_str(
        r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",
            "\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
    )
    .unwrap();
    // RFC 8785 §3.2.3: the emoji (UTF-16 D83D…) sorts before U+FB33, unlike by code point.
    let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                    \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
                    \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(jcs::canonicalize(&value), expected);
}

// RFC 8785's first number vector is written with more digits than a double holds, on purpose.
#[allow(clippy::excessive_precision)]
#[test]
fn jcs_escapes_strings_and_writes_numbers_like_ecmascript() {
    let mut value: Value = serde_json::from_str(
        r#"{"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/\u2028","literals":[null,true,false],
            "nested": {"b": [], "a": {}}}"#,
    )
    .unwrap();
    // Built from Rust literals: serde_json's own float parsing is not correctly rounded.
    value["numbers"] = json!([
        333_333_333.333_333_29_f64,
        1e30,
        4.50,
        2e-3,
        0.000_000_000_000_000_000_000_000_001,
        1e21,
        1e20,
        -0.0,
        5e-324,
        1e-7,
        0.000_001,
        123.456e-10,
        -12,
        u64::MAX
    ]);
    // The vectors of RFC 8785 §3.2.2 and its number table, checked against Python's `rfc8785`.
    let expected = concat!(
        r#"{"literals":[null,true,false],"nested":{"a":{},"b":[]},"#,
        r#""numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27,1e+21,100000000000000000000,0,5e-324,"#,
        r#"1e-7,0.000001,1.23456e-8,-12,18446744073709551615],"#,
        "\"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\u{2028}\"}",
    );
    assert_eq!(jcs::canonicalize(&value), expected);
}

#[test]
fn rfc3339_round_trips_and_refuses_malformed_times() {
    assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_rfc3339(NOW), "2027-01-15T08:00:00Z");
    assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    for unix in [0, 59, 86_399, 86_400, 951_782_400, NOW, 4_102_444_800] {
        assert_eq!(parse_rfc3339(&format_rfc3339(unix)), Some(unix));
    }
    assert_eq!(parse_rfc3339("2027-01-15T08:00:00.999Z"), Some(NOW));
    assert_eq!(parse_rfc3339("2027-01-15T09:30:00+01:30"), Some(NOW));
    assert_eq!(parse_rfc3339("2027-01-15t08:00:00z"), Some(NOW));
    for bad in ["", "2027-01-15T08:00:00", "2027-02-29T00:00:00Z", "2027-01-15 08:00:00Z", "2027-01-15T08:00:00.Z"] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
    assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
    assert_eq!(parse_rfc3339("2027-01-15T08:00:0é"), None);
}

#[test]
fn challenge_matches_pympp_byte_for_byte() {
    let challenge = challenge();
    // `pympp` 0.16.0: Challenge.create(secret_key="0123…cdef", realm, "evm", "charge", request,
    // expires="2027-01-15T08:05:00Z") and to_www_authenticate.
    let request = "eyJhbW91bnQiOiIxMDAwMCIsImN1cnJlbmN5IjoiMHgwMzZDYkQ1Mzg0MmM1NDI2NjM0ZTc5Mjk1NDFlQzIzMThmM2RDRjdlIiwibWV0aG9kRGV0YWlscyI6eyJjaGFpbklkIjo4NDUzMiwiY3JlZGVudGlhbFR5cGVzIjpbImF1dGhvcml6YXRpb24iXSwiZGVjaW1hbHMiOjZ9LCJyZWNpcGllbnQiOiIweDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA1RTExZTcifQ";
    assert_eq!(challenge.request(), request);
    assert_eq!(challenge.id(), "VmOflx-jiFlZP4nxBHOjkk6-mwFqNbS9it7CcPTxALg");
    assert_eq!(challenge.expires(), "2027-01-15T08:05:00Z");
    assert_eq!(challenge.expires_at(), NOW + DEFAULT_CHALLENGE_LIFETIME_SECONDS);
    assert_eq!(
        challenge.www_authenticate(),
        format!(
            "Payment id=\"VmOflx-jiFlZP4nxBHOjkk6-mwFqNbS9it7CcPTxALg\", realm=\"api.example.com\", \
             method=\"evm\", intent=\"charge\", request=\"{request}\", expires=\"2027-01-15T08:05:00Z\""
        )
    );
    // pympp's challenge_hash and mppx 0.11's concatenation, for the same id and realm.
    let json_array =
        B256::from(alloy_primitives::hex!("99685998f254592dd136fa9a872eb03c5a46be25d44afe24c3fed28658b93b19"));
    let concatenation =
        B256::from(alloy_primitives::hex!("7de5f0260c4ecb468f3a19fbacd7cb53b4fd03cae9be45a72fc180be99170511"));
    assert_eq!(NonceDerivation::JsonArray.nonce(challenge.id(), REALM), json_array);
    assert_eq!(NonceDerivation::Concatenation.nonce(challenge.id(), REALM), concatenation);
}

#[test]
fn description_is_quoted_and_escaped_and_not_bound() {
    let with = config().issue_challenge(U256::from(AMOUNT), Some("GPU \"hour\" \\ é€\r\n"), NOW);
    assert_eq!(with.id(), challenge().id(), "the description is not part of the id");
    assert_eq!(with.description(), Some("GPU \"hour\" \\ é€  "));
    assert!(with.www_authenticate().ends_with(r#", description="GPU \"hour\" \\ \u00e9\u20ac  ""#));
    let payer = TestPayer::random();
    let mut paid = credential(&payer, &with);
    paid.challenge.description = Some("something else".to_owned());
    verify(&paid).unwrap();
}

#[test]
fn config_refuses_bad_realms_and_short_lifetimes() {
    let config = |realm| MppConfig::new(realm, SECRET, NetworkConfig::BASE_SEPOLIA, SELLER);
    assert!(matches!(config(""), Err(MppConfigError::EmptyRealm)));
    assert!(matches!(config("a\nb"), Err(MppConfigError::RealmControlCharacter)));
    let short = config(REALM).unwrap().with_challenge_lifetime(11);
    assert!(matches!(short, Err(MppConfigError::LifetimeTooShort { seconds: 11, minimum: 12 })));
    let long = config(REALM).unwrap().with_challenge_lifetime(60).unwrap();
    assert_eq!(long.issue_challenge(U256::from(1), None, NOW).expires_at(), NOW + 60);
    assert!(!format!("{long:?}").contains("0123456789abcdef"), "the secret is redacted");
}

#[tokio::test]
async fn a_well_formed_credential_verifies_and_settles_once() {
    let payer = TestPayer::random();
    let challenge = challenge();
    let header = credential(&payer, &challenge).authorization_header_value();
    let verified = verify(&parse_authorization(&header).unwrap()).unwrap();
    assert_eq!(verified.payer, payer.address);
    assert_eq!(verified.to, SELLER);
    assert_eq!(verified.value, U256::from(AMOUNT));
    assert_eq!(verified.nonce_derivation, NonceDerivation::JsonArray);
    assert_eq!(verified.challenge_id, challenge.id());

    let ledger = MemoryLedger::new();
    let account =
        |address| AccountKey { network: "eip155:84532".to_owned(), asset: NetworkConfig::BASE_SEPOLIA.asset, address };
    ledger.credit(account(payer.address), U256::from(25_000));
    let settled = settle_payment(&ledger, &verified, NOW + 2).await.unwrap();
    let receipt = settled.receipt().unwrap().clone();
    assert_eq!(settled.problem(), None);
    assert_eq!(receipt.reference, verified.digest.to_string());
    assert_eq!(receipt.timestamp, "2027-01-15T08:00:02Z");
    assert_eq!(Receipt::from_header_value(&receipt.header_value()).unwrap(), receipt);
    assert!(!receipt.header_value().contains('='), "base64url without padding");
    assert_eq!(ledger.balance(&account(SELLER)).await.unwrap(), U256::from(AMOUNT));
    assert_eq!(ledger.balance(&account(payer.address)).await.unwrap(), U256::from(15_000));

    let again = settle_payment(&ledger, &verified, NOW + 3).await.unwrap();
    assert_eq!(again, MppSettlement::AlreadySettled { reference: verified.digest });
    assert_eq!(again.problem().unwrap().type_uri, ProblemType::VerificationFailed.uri());
    assert_eq!(ledger.balance(&account(SELLER)).await.unwrap(), U256::from(AMOUNT), "moved once");

    let poor = TestPayer::random();
    let broke = verify(&credential(&poor, &challenge)).unwrap();
    let refused = settle_payment(&ledger, &broke, NOW + 3).await.unwrap();
    assert_eq!(refused, MppSettlement::InsufficientBalance { balance: U256::ZERO, value: U256::from(AMOUNT) });
}

#[test]
fn both_nonce_derivations_are_accepted_and_nothing_else() {
    let payer = TestPayer::random();
    let challenge = challenge();
    for derivation in NonceDerivation::ALL {
        let payload = signed(&payer, &authorization(&payer, &challenge, derivation), &NetworkConfig::BASE_SEPOLIA);
        let verified = verify(&Credential::for_challenge(&challenge, payload, None)).unwrap();
        assert_eq!(verified.nonce_derivation, derivation);
    }
    let mut third = authorization(&payer, &challenge, NonceDerivation::JsonArray);
    third.nonce = B256::repeat_byte(7);
    let payload = signed(&payer, &third, &NetworkConfig::BASE_SEPOLIA);
    let error = verify(&Credential::for_challenge(&challenge, payload, None)).unwrap_err();
    assert!(matches!(error, MppError::NonceMismatch(_)), "{error:?}");
    assert_eq!(error.problem().type_uri, "https://paymentauth.org/problems/verification-failed");
    // A nonce bound to another challenge of ours is refused too.
    let other = config().issue_challenge(U256::from(AMOUNT), None, NOW + 1);
    let foreign =
        signed(&payer, &authorization(&payer, &other, NonceDerivation::JsonArray), &NetworkConfig::BASE_SEPOLIA);
    let error = verify(&Credential::for_challenge(&challenge, foreign, None)).unwrap_err();
    assert!(matches!(error, MppError::NonceMismatch(_)), "{error:?}");
}

#[test]
fn tampering_with_any_bound_field_is_refused() {
    let payer = TestPayer::random();
    let good = credential(&payer, &challenge());
    let tamper = |change: &dyn Fn(&mut ChallengeEcho)| {
        let mut credential = good.clone();
        change(&mut credential.challenge);
        verify(&credential).unwrap_err()
    };
    let cheaper = URL_SAFE_NO_PAD.encode(
        jcs::canonicalize(&serde_json::to_value(config().charge_request(U256::from(AMOUNT - 1))).unwrap()).as_bytes(),
    );
    let cases: [(&str, MppError); 7] = [
        ("id", tamper(&|echo| echo.id = URL_SAFE_NO_PAD.encode([0u8; 32]))),
        ("request", tamper(&|echo| echo.request = cheaper.clone())),
        ("expires", tamper(&|echo| echo.expires = Some("2027-01-15T09:05:00Z".to_owned()))),
        ("digest", tamper(&|echo| echo.digest = Some("sha-256=:AAAA:".to_owned()))),
        ("opaque", tamper(&|echo| echo.opaque = Some("e30".to_owned()))),
        ("header", tamper(&|echo| echo.header = Some("Payment-Authorization".to_owned()))),
        ("id not base64", tamper(&|echo| echo.id = "not base64!".to_owned())),
    ];
    for (field, error) in cases {
        assert!(matches!(error, MppError::NotIssued), "{field}: {error:?}");
        assert_eq!(error.problem().type_uri, ProblemType::InvalidChallenge.uri(), "{field}");
    }
    let realm = tamper(&|echo| echo.realm = "evil.example.com".to_owned());
    assert!(matches!(realm, MppError::RealmMismatch(_)), "{realm:?}");
    let method = tamper(&|echo| echo.method = "tempo".to_owned());
    assert!(matches!(method, MppError::UnsupportedMethod { .. }), "{method:?}");
    assert_eq!(method.problem().status, 400);
    let intent = tamper(&|echo| echo.intent = "session".to_owned());
    assert!(matches!(intent, MppError::UnsupportedMethod { .. }), "{intent:?}");
    let no_expiry = tamper(&|echo| echo.expires = None);
    assert!(matches!(no_expiry, MppError::NotIssued), "{no_expiry:?}");
}

#[test]
fn another_secret_did_not_issue_the_challenge() {
    let payer = TestPayer::random();
    let other = MppConfig::new(REALM, [9; 32], NetworkConfig::BASE_SEPOLIA, SELLER).unwrap();
    let foreign = other.issue_challenge(U256::from(AMOUNT), None, NOW);
    let error = verify(&credential(&payer, &foreign)).unwrap_err();
    assert!(matches!(error, MppError::NotIssued), "{error:?}");
}

#[test]
fn expired_challenges_and_authorizations_are_refused() {
    let payer = TestPayer::random();
    let challenge = challenge();
    let paid = credential(&payer, &challenge);
    let at = |now| verify_credential(&config(), &paid, U256::from(AMOUNT), now);
    // validBefore is the challenge's expiry, so the 6 s settlement buffer ends it first.
    at(challenge.expires_at() - 6).unwrap();
    let late = at(challenge.expires_at() - 5).unwrap_err();
    assert!(matches!(late, MppError::Authorization(VerifyError::Expired(_))), "{late:?}");
    assert_eq!(late.problem().type_uri, ProblemType::PaymentExpired.uri());
    let expired = at(challenge.expires_at()).unwrap_err();
    assert!(matches!(expired, MppError::ChallengeExpired { .. }), "{expired:?}");
    assert_eq!(expired.problem().type_uri, "https://paymentauth.org/problems/payment-expired");

    let mut early = authorization(&payer, &challenge, NonceDerivation::JsonArray);
    early.valid_after = DecimalU256::from(NOW + 100);
    let payload = signed(&payer, &early, &NetworkConfig::BASE_SEPOLIA);
    let error = verify(&Credential::for_challenge(&challenge, payload, None)).unwrap_err();
    assert!(matches!(error, MppError::Authorization(VerifyError::NotYetValid(_))), "{error:?}");
}

#[test]
fn wrong_recipient_amount_or_chain_is_refused() {
    let payer = TestPayer::random();
    let challenge = challenge();
    let refused = |authorization: &ExactEvmAuthorization, network: &NetworkConfig| {
        let payload = signed(&payer, authorization, network);
        verify(&Credential::for_challenge(&challenge, payload, None)).unwrap_err()
    };
    let base_sepolia = NetworkConfig::BASE_SEPOLIA;

    let mut elsewhere = authorization(&payer, &challenge, NonceDerivation::JsonArray);
    elsewhere.to = address!("0x2222222222222222222222222222222222222222");
    let error = refused(&elsewhere, &base_sepolia);
    assert!(matches!(error, MppError::Authorization(VerifyError::RecipientMismatch { .. })), "{error:?}");

    let mut less = authorization(&payer, &challenge, NonceDerivation::JsonArray);
    less.value = DecimalU256::from(AMOUNT - 1);
    let error = refused(&less, &base_sepolia);
    assert!(matches!(error, MppError::Authorization(VerifyError::ValueMismatch { .. })), "{error:?}");

    // Signed for another chain: the signature recovers someone else under our domain.
    let other_chain = NetworkConfig { chain_id: 1, ..NetworkConfig::BASE_SEPOLIA };
    let error = refused(&authorization(&payer, &challenge, NonceDerivation::JsonArray), &other_chain);
    assert!(matches!(error, MppError::Authorization(VerifyError::Signature(SignatureError::WrongSigner { .. }))));

    // The resource now costs more or less than the challenge asked.
    let paid = credential(&payer, &challenge);
    let dearer = verify_credential(&config(), &paid, U256::from(AMOUNT + 1), NOW + 1).unwrap_err();
    assert!(matches!(dearer, MppError::AmountMismatch { .. }), "{dearer:?}");
    assert_eq!(dearer.problem().type_uri, ProblemType::PaymentInsufficient.uri());
    let cheaper = verify_credential(&config(), &paid, U256::from(AMOUNT - 1), NOW + 1).unwrap_err();
    assert_eq!(cheaper.problem().type_uri, ProblemType::InvalidChallenge.uri());

    // A challenge issued (with the same secret) for another chain, recipient or token.
    let reconfigured = |network: NetworkConfig, recipient| {
        let config = MppConfig::new(REALM, SECRET, network, recipient).unwrap();
        verify_credential(&config, &paid, U256::from(AMOUNT), NOW + 1).unwrap_err()
    };
    let chain = reconfigured(NetworkConfig { chain_id: 84533, ..NetworkConfig::BASE_SEPOLIA }, SELLER);
    assert!(matches!(chain, MppError::RequestMismatch("chainId")), "{chain:?}");
    let recipient = reconfigured(NetworkConfig::BASE_SEPOLIA, Address::repeat_byte(3));
    assert!(matches!(recipient, MppError::RequestMismatch("recipient")), "{recipient:?}");
    let token = reconfigured(NetworkConfig::BASE, SELLER);
    assert!(matches!(token, MppError::RequestMismatch("currency")), "{token:?}");
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let payer = TestPayer::random();
    let thief = TestPayer::random();
    let challenge = challenge();
    let claimed = authorization(&payer, &challenge, NonceDerivation::JsonArray);
    let payload = signed(&thief, &claimed, &NetworkConfig::BASE_SEPOLIA);
    let error = verify(&Credential::for_challenge(&challenge, payload, None)).unwrap_err();
    assert!(matches!(error, MppError::Authorization(VerifyError::Signature(SignatureError::WrongSigner { .. }))));
    assert_eq!(error.problem().type_uri, ProblemType::VerificationFailed.uri());
}

#[test]
fn source_must_name_the_payer_on_our_chain() {
    let payer = TestPayer::random();
    let mut paid = credential(&payer, &challenge());
    paid.source = Some(format!("did:pkh:eip155:1:{}", payer.address));
    assert!(matches!(verify(&paid).unwrap_err(), MppError::SourceMismatch(_)));
    paid.source = source(TestPayer::random().address);
    assert!(matches!(verify(&paid).unwrap_err(), MppError::SourceMismatch(_)));
    paid.source = Some(format!("did:pkh:eip155:84532:{}", payer.address.to_string().to_lowercase()));
    verify(&paid).unwrap();
}

#[test]
fn payloads_of_other_types_or_shapes_are_refused() {
    let payer = TestPayer::random();
    let mut paid = credential(&payer, &challenge());
    paid.payload["type"] = json!("transaction");
    let error = verify(&paid).unwrap_err();
    assert!(matches!(error, MppError::UnsupportedCredentialType(ref kind) if kind == "transaction"), "{error:?}");
    assert_eq!(error.problem().status, 400);
    paid.payload["type"] = json!("authorization");
    paid.payload["value"] = json!(10_000);
    let error = verify(&paid).unwrap_err();
    assert!(matches!(error, MppError::Payload(_)), "{error:?}");
    assert_eq!(error.problem().type_uri, ProblemType::MalformedCredential.uri());
}

#[test]
fn authorization_headers_parse_leniently() {
    let payer = TestPayer::random();
    let credential = credential(&payer, &challenge());
    let json = serde_json::to_vec(&credential).unwrap();
    for encoded in [URL_SAFE_NO_PAD.encode(&json), URL_SAFE.encode(&json), STANDARD.encode(&json)] {
        for scheme in ["Payment", "payment", "PAYMENT"] {
            let parsed = parse_authorization(&format!("  {scheme} {encoded} ")).unwrap();
            assert_eq!(parsed, credential);
        }
    }
    assert!(matches!(parse_authorization("Bearer abc"), Err(MppError::NotPaymentScheme)));
    assert!(matches!(parse_authorization("Payment"), Err(MppError::NotPaymentScheme)));
    let garbage = parse_authorization("Payment !!!").unwrap_err();
    assert!(matches!(garbage, MppError::Encoding(_)), "{garbage:?}");
    assert_eq!(garbage.problem().type_uri, ProblemType::MalformedCredential.uri());
    let not_a_credential = format!("Payment {}", URL_SAFE_NO_PAD.encode(b"{\"payload\":{}}"));
    assert!(matches!(parse_authorization(&not_a_credential), Err(MppError::Encoding(_))));
    let huge = format!("Payment {}", "A".repeat(MAX_AUTHORIZATION_BYTES));
    assert!(matches!(parse_authorization(&huge), Err(MppError::TooLarge)));
}

#[test]
fn problem_details_serialize_as_rfc_9457() {
    let problem = ProblemDetails::payment_required(REALM).with_challenge_id("abc");
    assert_eq!(
        serde_json::to_value(&problem).unwrap(),
        json!({
            "type": "https://paymentauth.org/problems/payment-required",
            "title": "Payment Required",
            "status": 402,
            "detail": "Payment is required for \"api.example.com\".",
            "challengeId": "abc",
        })
    );
    let uris = [
        ProblemType::PaymentRequired,
        ProblemType::VerificationFailed,
        ProblemType::PaymentExpired,
        ProblemType::MalformedCredential,
        ProblemType::InvalidChallenge,
        ProblemType::MethodUnsupported,
        ProblemType::PaymentInsufficient,
    ]
    .map(|kind| kind.uri().rsplit('/').next().unwrap().to_owned());
    assert_eq!(
        uris,
        [
            "payment-required",
            "verification-failed",
            "payment-expired",
            "malformed-credential",
            "invalid-challenge",
            "method-unsupported",
            "payment-insufficient"
        ]
    );
}
