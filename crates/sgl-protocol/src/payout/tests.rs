//! Tests for the payout key and EIP-55 addresses, against published vectors.

use super::*;

#[test]
fn known_private_key_gives_known_address() {
    // The account used in web3.js's `eth.accounts.privateKeyToAccount` documentation.
    let key = PayoutKey::from_hex("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318").unwrap();
    assert_eq!(key.address().to_string(), "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23");
}

#[test]
fn eip55_vectors_round_trip_and_bad_checksums_are_refused() {
    // From the EIP-55 specification.
    for vector in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        let address: EvmAddress = vector.parse().unwrap();
        assert_eq!(address.to_string(), vector);
        let lower: EvmAddress = vector.to_lowercase().replace("0X", "0x").parse().unwrap();
        assert_eq!(lower, address);
    }
    let wrong = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    assert_eq!(wrong.parse::<EvmAddress>(), Err(PayoutKeyError::BadChecksum(wrong.to_owned())));
    assert!("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".parse::<EvmAddress>().is_err());
    assert!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA".parse::<EvmAddress>().is_err());
}

#[test]
fn zero_scalar_is_refused_and_debug_is_redacted() {
    assert_eq!(PayoutKey::from_bytes(&[0; 32]).err(), Some(PayoutKeyError::InvalidSecret));
    let key = PayoutKey::from_bytes(&[9; 32]).unwrap();
    let printed = format!("{key:?}");
    assert!(printed.contains("<redacted>"));
    assert!(!printed.contains(&hex::encode([9u8; 32])));
    assert_eq!(PayoutKey::from_hex(&key.to_hex()).unwrap().address(), key.address());
}
