//! The small text formats every body and path carries: node ids (UUIDs), job ids, EVM
//! addresses (EIP-55) and RFC 3339 times.
//!
//! The first byte picks the parser, the rest is the text (or, for times, also 8 bytes read as
//! Unix seconds).
//!
//! Invariants, each against an oracle written here or in another crate: a node id is accepted
//! exactly in the dashed or undashed 32-hex-digit form and prints as lowercase dashed text
//! that parses back; a job id is accepted exactly when it is 1 to 128 printable ASCII
//! characters and keeps its text; an address is accepted exactly as `0x` and 40 hex digits
//! in one letter case or with a valid checksum, and its checksum form is the one
//! `alloy-primitives` computes; a time that parses formats to a time that parses to the same
//! second, and every second before the year 10000 formats and parses back.

#![no_main]

use alloy_primitives::Address;
use libfuzzer_sys::fuzz_target;
use sgl_protocol::ids::{JobId, NodeId};
use sgl_protocol::payout::EvmAddress;
use sgl_protocol::rfc3339;

/// 10000-01-01T00:00:00Z: the first second RFC 3339's four-digit year cannot write.
const YEAR_10000: u64 = 253_402_300_800;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    if selector % 4 == 3
        && let Some(bytes) = rest.get(..8)
    {
        let unix = u64::from_le_bytes(bytes.try_into().expect("8 bytes")) % YEAR_10000;
        assert_eq!(rfc3339::parse(&rfc3339::format(unix)), Some(unix), "{}", rfc3339::format(unix));
    }
    let Some(text) = sgl_fuzz::text(rest) else { return };
    match selector % 4 {
        0 => node_id(text),
        1 => job_id(text),
        2 => address(text),
        _ => time(text),
    }
});

fn node_id(text: &str) {
    let trimmed = text.trim();
    let hex_at =
        |range: std::ops::Range<usize>| trimmed.get(range).is_some_and(|s| s.bytes().all(|b| b.is_ascii_hexdigit()));
    let undashed = trimmed.len() == 32 && hex_at(0..32);
    let dashed = trimmed.len() == 36
        && [8, 13, 18, 23].iter().all(|&at| trimmed.as_bytes()[at] == b'-')
        && [0..8, 9..13, 14..18, 19..23, 24..36].into_iter().all(hex_at);
    match text.parse::<NodeId>() {
        Ok(id) => {
            assert!(undashed || dashed, "{text:?} accepted");
            let shown = id.to_string();
            assert_eq!(shown, shown.to_lowercase());
            assert!(shown.replace('-', "").eq_ignore_ascii_case(&trimmed.replace('-', "")));
            assert_eq!(shown.parse::<NodeId>(), Ok(id));
        }
        Err(_) => assert!(!(undashed || dashed), "{text:?} refused"),
    }
}

fn job_id(text: &str) {
    let valid = (1..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
    match text.parse::<JobId>() {
        Ok(id) => {
            assert!(valid, "{text:?} accepted");
            assert_eq!(id.as_str(), text);
            let json = serde_json::to_string(&id).expect("encodes");
            assert_eq!(serde_json::from_str::<JobId>(&json).expect("decodes"), id);
        }
        Err(_) => assert!(!valid, "{text:?} refused"),
    }
}

fn address(text: &str) {
    let digits = text.strip_prefix("0x").filter(|d| d.len() == 40 && d.bytes().all(|b| b.is_ascii_hexdigit()));
    let oracle = digits.map(|d| d.parse::<Address>().expect("40 hex digits").to_checksum(None));
    let acceptable = digits.is_some_and(|d| {
        let one_case = !d.bytes().any(|b| b.is_ascii_lowercase()) || !d.bytes().any(|b| b.is_ascii_uppercase());
        one_case || oracle.as_deref() == Some(text)
    });
    match text.parse::<EvmAddress>() {
        Ok(address) => {
            assert!(acceptable, "{text:?} accepted");
            assert_eq!(Some(address.to_checksummed()), oracle);
            assert_eq!(address.to_checksummed().parse::<EvmAddress>().ok(), Some(address));
            assert_eq!(text.to_lowercase().parse::<EvmAddress>().ok(), Some(address));
        }
        Err(_) => assert!(!acceptable, "{text:?} refused"),
    }
}

fn time(text: &str) {
    let Some(unix) = rfc3339::parse(text) else { return };
    let shown = rfc3339::format(unix);
    if unix < YEAR_10000 {
        assert_eq!(rfc3339::parse(&shown), Some(unix), "{text:?} is {shown}");
    }
    // Without an offset or a leap second, the text names the same calendar second.
    let plain = text.len() >= 20
        && text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit()).eq_ignore_ascii_case("z");
    if plain && &text[17..19] != "60" {
        assert!(shown[..19].eq_ignore_ascii_case(&text[..19]), "{text:?} is {shown}");
    }
}
