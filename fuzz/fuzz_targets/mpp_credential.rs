//! MPP credentials (`Authorization: Payment <base64url JSON>`), parsed and verified by a server
//! with a fixed configuration (the one of sgl-pay's unit tests) at a fixed time.
//!
//! The first byte picks a mode:
//! - 0: the rest is the `Authorization` value as a client sends it;
//! - 1: the rest is a credential's `payload` (JSON) answering a challenge this server really
//!   issued, so verification goes past the challenge checks;
//! - 2: the rest is a JSON object whose members replace those of an honest `authorization`
//!   payload for a real challenge, which a fixed payer then signs, so verification reaches
//!   the value, recipient, validity window and nonce checks with a valid signature.
//!
//! Invariants: nothing panics; a parsed credential re-encodes to an equal credential; a real
//! challenge passes every challenge check, whatever the payload; a credential that verifies
//! pays the challenged amount to the recipient from the recovered signer, with a nonce bound
//! to the challenge; in mode 2 it verifies exactly when every signed field is what the
//! challenge asks for.

#![no_main]

use alloy_primitives::{Address, B256, U256, address};
use k256::ecdsa::SigningKey;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use sgl_pay::exact_evm::{VALID_BEFORE_BUFFER_SECONDS, authorization_digest, token_domain};
use sgl_pay::header::decode_header;
use sgl_pay::mpp::{
    AuthorizationPayload, Challenge, ChargeRequest, Credential, MppConfig, MppError, NonceDerivation,
    VerifiedMppPayment, parse_authorization, verify_credential,
};
use sgl_pay::network::NetworkConfig;
use sgl_pay::wire::{DecimalU256, ExactEvmAuthorization};

const REALM: &str = "api.example.com";
const SECRET: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const SELLER: Address = address!("0x00000000000000000000000000000000005e11e7");
const AMOUNT: u64 = 10_000;
/// When the challenge was issued; credentials are verified a second later.
const ISSUED: u64 = 1_800_000_000;
const NOW: u64 = ISSUED + 1;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let config = MppConfig::new(REALM, SECRET, NetworkConfig::BASE_SEPOLIA, SELLER).expect("a valid configuration");
    match mode {
        0 => {
            let Some(header) = sgl_fuzz::text(rest) else { return };
            let Some(credential) = round_trip(header) else { return };
            if let Ok(charge) = decode_header::<ChargeRequest>(&credential.challenge.request) {
                let again = serde_json::to_vec(&charge).expect("encodes");
                assert_eq!(serde_json::from_slice::<ChargeRequest>(&again).expect("decodes"), charge);
            }
            if let Ok(verified) = verify_credential(&config, &credential, U256::from(AMOUNT), NOW) {
                check_verified(&verified, &credential);
            }
        }
        1 => {
            let Ok(payload) = serde_json::from_slice::<Value>(rest) else { return };
            let challenge = config.issue_challenge(U256::from(AMOUNT), None, ISSUED);
            let credential = Credential::for_challenge(&challenge, payload, None);
            let credential = round_trip(&credential.authorization_header_value()).expect("our credential parses");
            match verify_credential(&config, &credential, U256::from(AMOUNT), NOW) {
                Ok(verified) => check_verified(&verified, &credential),
                Err(error) => assert_not_a_challenge_error(&error),
            }
        }
        2 => {
            let Ok(changes) = serde_json::from_slice::<Map<String, Value>>(rest) else { return };
            signed_by_the_payer(&config, changes);
        }
        _ => {}
    }
});

/// Parses an `Authorization` value, and checks that re-encoding the credential gives it back.
fn round_trip(header: &str) -> Option<Credential> {
    let credential = parse_authorization(header).ok()?;
    let again = parse_authorization(&credential.authorization_header_value()).expect("a re-encoded credential parses");
    assert_eq!(again, credential);
    Some(credential)
}

fn check_verified(verified: &VerifiedMppPayment, credential: &Credential) {
    assert_eq!((verified.to, verified.value), (SELLER, U256::from(AMOUNT)));
    assert_eq!(verified.challenge_id, credential.challenge.id);
    assert_eq!(verified.nonce_derivation.nonce(&credential.challenge.id, &credential.challenge.realm), verified.nonce);
    let payload: AuthorizationPayload = serde_json::from_value(credential.payload.clone()).expect("it verified");
    assert_eq!(verified.payer, payload.from);
}

/// A real challenge, echoed unchanged, must pass every check on the challenge itself.
fn assert_not_a_challenge_error(error: &MppError) {
    assert!(
        matches!(
            error,
            MppError::UnsupportedCredentialType(_)
                | MppError::Payload(_)
                | MppError::Authorization(_)
                | MppError::NonceMismatch(_)
                | MppError::SourceMismatch(_)
        ),
        "a real challenge was refused: {error}"
    );
}

fn signed_by_the_payer(config: &MppConfig, changes: Map<String, Value>) {
    let key = SigningKey::from_bytes(&[0x11; 32].into()).expect("a valid key");
    let payer = Address::from_private_key(&key);
    let challenge = config.issue_challenge(U256::from(AMOUNT), None, ISSUED);
    let mut payload = honest_payload(&challenge, payer);
    let source = changes.get("source").cloned();
    for (name, value) in changes {
        if !matches!(name.as_str(), "from" | "signature" | "source") {
            payload.insert(name, value);
        }
    }
    let Ok(signed) = serde_json::from_value::<AuthorizationPayload>(Value::Object(payload.clone())) else { return };
    let authorization = ExactEvmAuthorization {
        from: signed.from,
        to: signed.to,
        value: signed.value,
        valid_after: signed.valid_after,
        valid_before: signed.valid_before,
        nonce: signed.nonce,
    };
    let digest = authorization_digest(&authorization, &token_domain(config.network()));
    let (signature, recovery) = key.sign_prehash_recoverable(digest.as_slice()).expect("signs");
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    payload.insert("signature".to_owned(), json!(format!("0x{}", alloy_primitives::hex::encode(bytes))));
    let source = match source {
        None => None,
        Some(Value::String(text)) => Some(text),
        Some(_) => return,
    };
    let credential = Credential::for_challenge(&challenge, Value::Object(payload), source.clone());
    let result = verify_credential(config, &credential, U256::from(AMOUNT), NOW);

    let bound_nonce =
        NonceDerivation::ALL.iter().any(|derivation| derivation.nonce(challenge.id(), REALM) == authorization.nonce);
    let should_verify = signed.kind == "authorization"
        && authorization.to == SELLER
        && authorization.value == DecimalU256::from(AMOUNT)
        && authorization.valid_before.0 >= U256::from(NOW + VALID_BEFORE_BUFFER_SECONDS)
        && authorization.valid_after.0 <= U256::from(NOW)
        && bound_nonce;
    match (&result, &source) {
        (Ok(verified), _) => {
            assert!(should_verify, "verified although a signed field is wrong: {authorization:?}");
            check_verified(verified, &credential);
        }
        (Err(MppError::SourceMismatch(_)), Some(_)) => assert!(should_verify, "the source is checked last"),
        (Err(error), _) => assert!(!should_verify, "refused a correct payment: {error}"),
    }
    if let (Ok(_), Some(source)) = (&result, &source) {
        let address = source.strip_prefix("did:pkh:eip155:84532:").expect("a verified source names the chain");
        let digits = address.strip_prefix("0x").unwrap_or(address);
        assert!(digits.eq_ignore_ascii_case(&alloy_primitives::hex::encode(payer)), "{source} is not the payer");
    }
}

/// The `authorization` payload an honest client sends for `challenge`, without its signature.
fn honest_payload(challenge: &Challenge, payer: Address) -> Map<String, Value> {
    let nonce: B256 = NonceDerivation::JsonArray.nonce(challenge.id(), challenge.realm());
    let Value::Object(payload) = json!({
        "type": "authorization",
        "from": payer,
        "to": SELLER,
        "value": DecimalU256::from(AMOUNT),
        "validAfter": DecimalU256::from(0),
        "validBefore": DecimalU256::from(challenge.expires_at()),
        "nonce": nonce,
    }) else {
        unreachable!("an object")
    };
    payload
}
