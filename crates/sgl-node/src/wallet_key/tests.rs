//! Each key format loads and signs what the grid verifies; another wallet's key, broken files
//! and mismatched Solana halves are refused; the secret never shows.

use std::os::unix::fs::PermissionsExt;

use sgl_protocol::keyfile::{encode_keypair_json, save_payout_key};
use sgl_protocol::wallet::verify_wallet_signature;

use super::*;

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// The request verifies for `wallet` over the exact message the grid rebuilds.
fn assert_verifies(wallet: &str, request: &SignedOperatorRequest) {
    let message = operator_message(wallet, &request.action, &request.nonce, request.signed_at);
    verify_wallet_signature(wallet, message.as_bytes(), &request.signature).unwrap();
}

#[test]
fn an_sgl_key_file_is_an_evm_wallet_that_personal_signs() {
    let dir = tempfile::tempdir().unwrap();
    let payout = PayoutKey::generate(&mut OsRng);
    let path = dir.path().join("operator.key");
    save_payout_key(&path, &payout).unwrap();
    let loaded = WalletKey::load(&path).unwrap();
    assert_eq!(loaded.loose_mode, None);
    let wallet = payout.address().to_checksummed();
    assert_eq!(loaded.key.wallet(), wallet);
    let action = OperatorAction::Unstake { amount_micros: Some(1_000_000) };
    let request = loaded.key.sign_action(&wallet, action.clone()).unwrap();
    assert_eq!(request.action, action);
    assert!(request.signature.starts_with("0x") && request.signature.len() == 132, "{}", request.signature);
    assert_eq!(request.nonce.len(), 32);
    assert!(request.nonce.bytes().all(|b| b.is_ascii_hexdigit()));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(request.signed_at.abs_diff(now) < 60);
    assert_verifies(&wallet, &request);
    // The wallet as stored in lower case is the same wallet, and is what is signed.
    let lower = wallet.to_lowercase();
    assert_verifies(&lower, &loaded.key.sign_action(&lower, OperatorAction::WithdrawStake).unwrap());
    // Nonces are single use, so each request gets a new one.
    let again = loaded.key.sign_action(&wallet, OperatorAction::WithdrawStake).unwrap();
    assert_ne!(again.nonce, request.nonce);
}

#[test]
fn a_bare_hex_secret_loads_with_or_without_0x_and_a_loose_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let key = PayoutKey::from_hex(&"11".repeat(32)).unwrap();
    let wallet = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A";
    for (name, text) in [("plain", "11".repeat(32)), ("prefixed", format!("  0x{}\n\n", "11".repeat(32)))] {
        let loaded = WalletKey::load(&write(dir.path(), name, &text, 0o644)).unwrap();
        assert_eq!(loaded.key.wallet(), wallet);
        assert_eq!(key.address().to_checksummed(), wallet);
        assert_eq!(loaded.loose_mode, Some(0o644));
    }
    // The file is the operator's: reading it does not change its mode.
    assert_eq!(std::fs::metadata(dir.path().join("plain")).unwrap().permissions().mode() & 0o777, 0o644);
    // RFC 6979: a fixed key, nonce and time give a fixed, verifiable signature.
    let loaded = WalletKey::parse(&"11".repeat(32), Path::new("k")).unwrap();
    let payout = OperatorAction::Payout { amount_micros: None, to: wallet.into() };
    let first = loaded.sign_action_at(wallet, payout.clone(), "ab".into(), 1_700_000_000);
    assert_eq!(first, loaded.sign_action_at(wallet, payout, "ab".into(), 1_700_000_000));
    assert_verifies(wallet, &first);
}

#[test]
fn a_solana_keypair_signs_base58_ed25519() {
    let dir = tempfile::tempdir().unwrap();
    let identity = NodeIdentity::generate(&mut OsRng);
    let path = write(dir.path(), "id.json", &encode_keypair_json(&identity), 0o600);
    let loaded = WalletKey::load(&path).unwrap();
    let wallet = identity.public_key().to_b58();
    assert_eq!(loaded.key.wallet(), wallet);
    assert!(matches!(loaded.key, WalletKey::Solana(_)));
    let request = loaded.key.sign_action(&wallet, OperatorAction::Unstake { amount_micros: None }).unwrap();
    assert!(!request.signature.starts_with("0x"));
    assert_verifies(&wallet, &request);
    // The public half must be the secret's.
    let other = NodeIdentity::generate(&mut OsRng);
    let mut numbers: Vec<u8> = serde_json::from_str(&encode_keypair_json(&identity)).unwrap();
    numbers[32..].copy_from_slice(&other.public_key().to_bytes());
    let mismatched = write(dir.path(), "bad.json", &serde_json::to_string(&numbers).unwrap(), 0o600);
    let error = WalletKey::load(&mismatched).unwrap_err();
    assert!(matches!(error, WalletKeyError::InvalidSolanaKeypair(KeyFileError::PublicKeyMismatch { .. })), "{error}");
    let short = write(dir.path(), "short.json", "[1,2,3]", 0o600);
    assert!(matches!(WalletKey::load(&short), Err(WalletKeyError::InvalidSolanaKeypair(_))));
}

#[test]
fn another_wallet_s_key_is_refused_before_signing() {
    let evm = WalletKey::Evm(PayoutKey::generate(&mut OsRng));
    let other = PayoutKey::generate(&mut OsRng).address().to_checksummed();
    for wallet in [other.as_str(), "0xop", "", "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"] {
        let error = evm.sign_action(wallet, OperatorAction::WithdrawStake).unwrap_err();
        let WalletKeyError::WrongWallet { key_wallet, wallet: acted_for } = &error else { panic!("{error}") };
        assert_eq!((key_wallet.as_str(), acted_for.as_str()), (evm.wallet().as_str(), wallet));
        assert!(error.to_string().starts_with(&format!("this key is wallet {}", evm.wallet())), "{error}");
    }
    let solana = WalletKey::Solana(NodeIdentity::generate(&mut OsRng));
    assert!(!solana.controls(&evm.wallet()) && !evm.controls(&solana.wallet()));
    assert!(solana.controls(&format!(" {} ", solana.wallet())));
    // A mixed-case address with a wrong checksum is not this key's wallet; one case is fine.
    let fixed = WalletKey::parse(&"11".repeat(32), Path::new("k")).unwrap();
    assert!(fixed.controls("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"));
    assert!(fixed.controls("0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a"));
    assert!(!fixed.controls("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2a"));
}

#[test]
fn unknown_content_is_refused_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret_looking = "zz".repeat(32);
    for (name, text) in [("words", "abandon ability able about above"), ("short", "0x1234"), ("bad", &secret_looking)] {
        let error = WalletKey::load(&write(dir.path(), name, text, 0o600)).unwrap_err();
        assert!(matches!(error, WalletKeyError::Unrecognized(_)), "{error}");
        assert!(!error.to_string().contains(text), "{error}");
    }
    // Zero is not a secp256k1 secret.
    let zero = write(dir.path(), "zero", &"00".repeat(32), 0o600);
    assert!(matches!(WalletKey::load(&zero), Err(WalletKeyError::InvalidEvmSecret(_))));
    let missing = WalletKey::load(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(missing, WalletKeyError::Io { .. }) && missing.to_string().contains("missing"), "{missing}");
    let big = write(dir.path(), "big", &"0".repeat(20_000), 0o600);
    assert!(matches!(WalletKey::load(&big), Err(WalletKeyError::TooLarge(_))));
}

#[test]
fn debug_output_never_shows_the_secret() {
    let secret = "11".repeat(32);
    let key = WalletKey::parse(&secret, Path::new("k")).unwrap();
    let shown = format!("{:?}", LoadedWalletKey { key, loose_mode: None });
    assert!(shown.contains("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A") && shown.contains("redacted"), "{shown}");
    assert!(!shown.contains(&secret) && !shown.contains("1111"), "{shown}");
}
