//! Wallet signatures for an operator's own requests: EIP-191 `personal_sign` for EVM wallets
//! (`0x` addresses) and plain ed25519 for Solana-style wallets (base58 public keys), checked
//! against the wallet named in the request.

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::identity::NodePublicKey;
use crate::payout::{EvmAddress, PayoutKey};

/// A wallet signature that does not prove the wallet signed the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalletSignatureError {
    /// The wallet is neither a `0x` EVM address nor a base58 ed25519 public key.
    #[error("the wallet {0:?} is neither a 0x EVM address nor a base58 ed25519 public key")]
    UnknownWallet(String),
    /// The signature is not 65 bytes of hex (EVM) or a base58 ed25519 signature.
    #[error("the signature is malformed: {0}")]
    Malformed(&'static str),
    /// The signature is well formed but was made by another key.
    #[error("the signature was not made by the wallet {0}")]
    WrongSigner(String),
}

/// The digest EIP-191 version `0x45` (`personal_sign`) signs:
/// keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message).
pub fn eip191_digest(message: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    hasher.update(message);
    hasher.finalize().into()
}

/// Signs `message` as an EVM wallet's `personal_sign` does: `0x` and 65 bytes r‖s‖v with v 27
/// or 28.
pub fn personal_sign(key: &PayoutKey, message: &[u8]) -> String {
    let (signature, recovery) = key
        .signing_key()
        .sign_prehash_recoverable(&eip191_digest(message))
        .unwrap_or_else(|_| unreachable!("a 32-byte prehash always signs"));
    let mut bytes = signature.to_bytes().to_vec();
    bytes.push(27 + recovery.to_byte());
    format!("0x{}", hex::encode(bytes))
}

/// Checks that `wallet` signed `message`: EIP-191 recovery for a `0x` address (v 27/28 or 0/1,
/// high-s refused), ed25519 for a base58 public key (signature in base58).
pub fn verify_wallet_signature(wallet: &str, message: &[u8], signature: &str) -> Result<(), WalletSignatureError> {
    if wallet.starts_with("0x") {
        let expected: EvmAddress =
            wallet.parse().map_err(|_| WalletSignatureError::UnknownWallet(wallet.to_owned()))?;
        let recovered = recover_personal_sign(message, signature)?;
        return if recovered == expected { Ok(()) } else { Err(WalletSignatureError::WrongSigner(wallet.to_owned())) };
    }
    let key = NodePublicKey::from_b58(wallet).map_err(|_| WalletSignatureError::UnknownWallet(wallet.to_owned()))?;
    key.verify_b58(message, signature).map_err(|_| WalletSignatureError::WrongSigner(wallet.to_owned()))
}

/// The EVM address that `personal_sign`ed `message` with `signature`.
pub fn recover_personal_sign(message: &[u8], signature: &str) -> Result<EvmAddress, WalletSignatureError> {
    let bytes = hex::decode(signature.trim().trim_start_matches("0x"))
        .map_err(|_| WalletSignatureError::Malformed("not hex"))?;
    let [rs @ .., v] = bytes.as_slice() else { return Err(WalletSignatureError::Malformed("empty")) };
    if rs.len() != 64 {
        return Err(WalletSignatureError::Malformed("an EVM signature is 65 bytes"));
    }
    let recovery = match v {
        0 | 27 => 0,
        1 | 28 => 1,
        _ => return Err(WalletSignatureError::Malformed("v must be 27, 28, 0 or 1")),
    };
    let signature = Signature::from_slice(rs).map_err(|_| WalletSignatureError::Malformed("r or s out of range"))?;
    if signature.normalize_s().is_some() {
        return Err(WalletSignatureError::Malformed("high-s signatures are refused"));
    }
    let recovery = RecoveryId::from_byte(recovery).ok_or(WalletSignatureError::Malformed("recovery id"))?;
    let key = VerifyingKey::recover_from_prehash(&eip191_digest(message), &signature, recovery)
        .map_err(|_| WalletSignatureError::Malformed("no key recovers from this signature"))?;
    Ok(EvmAddress::from_verifying_key(&key))
}

#[cfg(test)]
mod tests {
    //! Round trips, the wrong signer, malleated and malformed signatures, and a known vector.

    use rand_core::OsRng;

    use super::*;
    use crate::identity::NodeIdentity;

    #[test]
    fn evm_wallets_sign_and_verify_with_personal_sign() {
        let key = PayoutKey::generate(&mut OsRng);
        let wallet = key.address().to_checksummed();
        let signature = personal_sign(&key, b"hello");
        verify_wallet_signature(&wallet, b"hello", &signature).unwrap();
        verify_wallet_signature(&wallet.to_lowercase(), b"hello", &signature).unwrap();
        assert!(matches!(
            verify_wallet_signature(&wallet, b"hellO", &signature),
            Err(WalletSignatureError::WrongSigner(_))
        ));
        let other = PayoutKey::generate(&mut OsRng).address().to_checksummed();
        assert!(verify_wallet_signature(&other, b"hello", &signature).is_err());
        // v as 0/1 is accepted too.
        let mut bytes = hex::decode(&signature[2..]).unwrap();
        bytes[64] -= 27;
        verify_wallet_signature(&wallet, b"hello", &hex::encode(&bytes)).unwrap();
        // The high-s twin of a valid signature is refused.
        let sig = Signature::from_slice(&bytes[..64]).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let mut twin = high.to_bytes().to_vec();
        twin.push(28 - bytes[64]);
        assert_eq!(
            verify_wallet_signature(&wallet, b"hello", &hex::encode(twin)),
            Err(WalletSignatureError::Malformed("high-s signatures are refused"))
        );
        assert!(matches!(
            verify_wallet_signature(&wallet, b"hello", "0x1234"),
            Err(WalletSignatureError::Malformed(_))
        ));
    }

    #[test]
    fn a_known_personal_sign_vector_recovers_its_address() {
        // eth-account 0.14: Account.from_key("0x" + "11" * 32).sign_message(encode_defunct(text="sgl"))
        let python = "0x456353b9ede937f746d03c4ce20ba05b0978eb5a262879fb5c8a26de6a1941b1\
                      0bf73833646167c1d5b248d3ed9008bf4b8b85a5adef6cd47a9a846f6ed65b861c";
        let key = PayoutKey::from_hex(&"11".repeat(32)).unwrap();
        assert_eq!(key.address().to_checksummed(), "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A");
        assert_eq!(recover_personal_sign(b"sgl", python).unwrap(), key.address());
        // RFC 6979 nonces: the same key signs the same bytes.
        assert_eq!(personal_sign(&key, b"sgl"), python);
    }

    #[test]
    fn solana_wallets_verify_with_ed25519() {
        let identity = NodeIdentity::generate(&mut OsRng);
        let wallet = identity.public_key().to_b58();
        let signature = identity.sign_b58(b"hello");
        verify_wallet_signature(&wallet, b"hello", &signature).unwrap();
        assert!(verify_wallet_signature(&wallet, b"other", &signature).is_err());
        assert!(matches!(
            verify_wallet_signature("not a wallet", b"hello", &signature),
            Err(WalletSignatureError::UnknownWallet(_))
        ));
    }
}
