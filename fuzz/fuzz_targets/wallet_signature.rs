//! Wallet signatures on an operator's own requests (unstake, withdraw, payout): EIP-191
//! `personal_sign` for `0x` wallets, ed25519 for base58 wallets, with arbitrary wallets,
//! messages and signatures.
//!
//! The input is text: the wallet, a newline, the signature, a newline, then the message.
//!
//! Invariants: nothing panics; an EVM signature verifies exactly when it recovers to the
//! named wallet; our own `personal_sign` of any message verifies under the signer's address
//! in checksum and lowercase form, with v as 27/28 or 0/1, and not under another message;
//! a base58 wallet's signature verifies only when it is the identity's own.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sgl_fuzz::node_identity;
use sgl_protocol::payout::{EvmAddress, PayoutKey};
use sgl_protocol::wallet::{WalletSignatureError, personal_sign, recover_personal_sign, verify_wallet_signature};

fuzz_target!(|data: &[u8]| {
    let Some(text) = sgl_fuzz::text(data) else { return };
    let mut parts = text.splitn(3, '\n');
    let (Some(wallet), Some(signature), Some(message)) = (parts.next(), parts.next(), parts.next()) else { return };
    let message = message.as_bytes();

    let result = verify_wallet_signature(wallet, message, signature);
    if wallet.starts_with("0x") {
        match (wallet.parse::<EvmAddress>(), recover_personal_sign(message, signature)) {
            (Ok(expected), Ok(recovered)) => assert_eq!(result.is_ok(), recovered == expected),
            (Err(_), _) => assert!(matches!(result, Err(WalletSignatureError::UnknownWallet(_)))),
            (Ok(_), Err(error)) => assert_eq!(result, Err(error)),
        }
    } else if result.is_ok() {
        let identity = node_identity();
        assert_eq!(wallet, identity.public_key().to_b58(), "a signature verified for a key nobody holds");
        assert_eq!(signature, identity.sign_b58(message), "ed25519 signatures are deterministic");
    }

    // Our own signatures over the same message.
    let key = PayoutKey::from_hex(&"11".repeat(32)).expect("a valid key");
    let address = key.address();
    let signed = personal_sign(&key, message);
    for wallet in [address.to_checksummed(), address.to_checksummed().to_lowercase()] {
        assert_eq!(verify_wallet_signature(&wallet, message, &signed), Ok(()));
    }
    let mut v_as_bit = signed.clone();
    let v = u8::from_str_radix(&signed[130..], 16).expect("hex") - 27;
    v_as_bit.replace_range(130.., &format!("{v:02x}"));
    assert_eq!(verify_wallet_signature(&address.to_checksummed(), message, &v_as_bit), Ok(()));
    let mut other = message.to_vec();
    other.push(b'!');
    assert!(verify_wallet_signature(&address.to_checksummed(), &other, &signed).is_err());
    let identity = node_identity();
    let ed25519 = identity.sign_b58(message);
    assert_eq!(verify_wallet_signature(&identity.public_key().to_b58(), message, &ed25519), Ok(()));
});
