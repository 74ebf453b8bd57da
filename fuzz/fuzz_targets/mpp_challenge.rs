//! MPP challenges: the `WWW-Authenticate: Payment …` value a 402 carries, read back the way a
//! client reads it, and the challenge echoed back in a credential.
//!
//! The input is an amount (8 bytes, little-endian), an issue time (4 bytes, seconds after
//! 2027-01-15T08:00:00Z), then text: the server's realm, a newline, and the description.
//!
//! Invariants: a realm is refused exactly when it is empty or has a control character; the
//! header value is printable ASCII (a valid HTTP header value) whatever the realm and the
//! description; an RFC 7235 auth-param reader (quoted strings with `\` escapes and `\uXXXX`
//! UTF-16 escapes, as `pympp` and `mppx` decode them) gets back every field, the description
//! with control characters turned into spaces; `request` decodes to the charge and `expires`
//! to the expiry; a client echoing the challenge passes every challenge check until it expires,
//! whatever description it echoes, and only for the challenged amount.

#![no_main]

use alloy_primitives::{Address, U256, address};
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sgl_pay::header::decode_header;
use sgl_pay::mpp::{ChargeRequest, Credential, MppConfig, MppError, parse_authorization, verify_credential};
use sgl_pay::network::NetworkConfig;
use sgl_protocol::rfc3339;

const SECRET: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const SELLER: Address = address!("0x00000000000000000000000000000000005e11e7");
const EPOCH: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let amount = U256::from(u64::from_le_bytes(data[..8].try_into().expect("8 bytes")));
    let now = EPOCH + u64::from(u32::from_le_bytes(data[8..12].try_into().expect("4 bytes")));
    let text = String::from_utf8_lossy(&data[12..]);
    let (realm, description) = match text.split_once('\n') {
        Some((realm, description)) => (realm, Some(description)),
        None => (&*text, None),
    };
    let config = match MppConfig::new(realm, SECRET, NetworkConfig::BASE_SEPOLIA, SELLER) {
        Ok(config) => config,
        Err(_) => return assert!(realm.is_empty() || realm.chars().any(char::is_control), "{realm:?} refused"),
    };
    assert!(!realm.is_empty() && !realm.chars().any(char::is_control), "{realm:?} accepted");

    let challenge = config.issue_challenge(amount, description, now);
    let shown: Option<String> = description.map(|d| d.chars().map(|c| if c.is_control() { ' ' } else { c }).collect());
    assert_eq!(challenge.description(), shown.as_deref());
    let header = challenge.www_authenticate();
    assert!(header.bytes().all(|b| (b' '..=b'~').contains(&b)), "not a printable header value: {header:?}");
    let mut expected = vec![
        ("id", challenge.id().to_owned()),
        ("realm", realm.to_owned()),
        ("method", "evm".to_owned()),
        ("intent", "charge".to_owned()),
        ("request", challenge.request().to_owned()),
        ("expires", challenge.expires().to_owned()),
    ];
    expected.extend(shown.map(|shown| ("description", shown)));
    let read = read_auth_params(&header).unwrap_or_else(|| panic!("unreadable header: {header}"));
    let read: Vec<(&str, String)> = read.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
    assert_eq!(read, expected);

    let charge: ChargeRequest = decode_header(challenge.request()).expect("the request decodes");
    assert_eq!(&charge, challenge.charge());
    assert_eq!(charge.amount.0, amount);
    assert_eq!(challenge.expires_at(), now + config.challenge_lifetime_seconds());
    assert_eq!(rfc3339::parse(challenge.expires()), Some(challenge.expires_at()));

    // A client echoes the challenge in a credential; every challenge check passes, so the
    // refusal is about the (empty) payload.
    let mut credential = Credential::for_challenge(&challenge, json!({}), None);
    credential.challenge.description = Some("a client's own text".to_owned());
    let credential = parse_authorization(&credential.authorization_header_value()).expect("parses");
    let verify = |amount: U256, at: u64| verify_credential(&config, &credential, amount, at);
    assert!(matches!(verify(amount, now), Err(MppError::UnsupportedCredentialType(kind)) if kind.is_empty()));
    assert!(matches!(verify(amount, challenge.expires_at() - 1), Err(MppError::UnsupportedCredentialType(_))));
    assert!(matches!(verify(amount, challenge.expires_at()), Err(MppError::ChallengeExpired { .. })));
    let other = amount.wrapping_add(U256::from(1));
    assert!(matches!(verify(other, now), Err(MppError::AmountMismatch { .. })));
});

/// Reads `Payment name="value", …` as RFC 7235 auth-params whose values are quoted strings,
/// decoding `\c` escapes and `\uXXXX` UTF-16 escapes.
fn read_auth_params(header: &str) -> Option<Vec<(String, String)>> {
    let mut rest = header.strip_prefix("Payment ")?;
    let mut params = Vec::new();
    loop {
        let (name, after) = rest.split_once("=\"")?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return None;
        }
        let mut units: Vec<u16> = Vec::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (idx, c) = chars.next()?;
            match c {
                '"' => break idx,
                '\\' => match chars.next()?.1 {
                    'u' => {
                        let digits: String = (0..4).map(|_| chars.next().map(|(_, d)| d)).collect::<Option<_>>()?;
                        units.push(u16::from_str_radix(&digits, 16).ok()?);
                    }
                    escaped => units.extend(escaped.encode_utf16(&mut [0; 2]).iter()),
                },
                c => units.extend(c.encode_utf16(&mut [0; 2]).iter()),
            }
        };
        params.push((name.to_owned(), String::from_utf16(&units).ok()?));
        rest = &after[end + 1..];
        if rest.is_empty() {
            return Some(params);
        }
        rest = rest.strip_prefix(", ")?;
    }
}
