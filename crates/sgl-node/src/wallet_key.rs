//! The operator's wallet key, for the money commands (`sgl stake unstake|withdraw`,
//! `sgl withdraw`): read from a file whose format is recognised by its content, checked to be
//! the wallet being acted for before anything is sent, and used to sign
//! [`operator_message`]s.
//!
//! Two formats are understood:
//!
//! - an EVM secret, 64 hex digits with or without `0x` (what `sgl`'s `payout.key` and
//!   `sgl-grid up`'s `operator.key` hold, see [`sgl_protocol::keyfile::save_payout_key`]); it
//!   signs with EIP-191 `personal_sign`;
//! - a Solana keypair, a JSON array of 64 numbers, secret then public key, as `solana-keygen`
//!   writes it; the public half must match the secret, and it signs with ed25519 in base58.
//!
//! Unlike the node's own key files, a wallet key file is the operator's: it is never rewritten
//! or re-permissioned here. Group or world bits are reported back ([`LoadedWalletKey`]) so the
//! command can warn. The secret is zeroised when dropped and never appears in an error or in
//! `Debug` output.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{CryptoRngCore, OsRng};
use sgl_protocol::api::operator::{OperatorAction, SignedOperatorRequest, operator_message};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::keyfile::{KeyFileError, decode_keypair_json};
use sgl_protocol::payout::{EvmAddress, PayoutKey};
use sgl_protocol::wallet::personal_sign;
use zeroize::Zeroizing;

/// The environment variable naming the wallet key file when `--wallet-key` is not given.
pub const WALLET_KEY_ENV: &str = "SGL_WALLET_KEY_FILE";

/// The largest file read as a wallet key; a real one is under 300 bytes.
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// A wallet key could not be loaded or may not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletKeyError {
    /// The file could not be read.
    #[error("reading the wallet key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any wallet key.
    #[error("{0} is too large to be a wallet key")]
    TooLarge(PathBuf),
    /// The content is neither format.
    #[error(
        "{0} is not a wallet key: expected 64 hex digits (an EVM secret, as in payout.key or operator.key) \
         or a Solana keypair (a JSON array of 64 numbers)"
    )]
    Unrecognized(PathBuf),
    /// 64 hex digits, but not a valid secp256k1 secret.
    #[error("{0}: not a valid EVM secret key")]
    InvalidEvmSecret(PathBuf),
    /// A JSON array that is not a valid Solana keypair (wrong length, or halves that disagree).
    #[error("{0}")]
    InvalidSolanaKeypair(#[source] KeyFileError),
    /// The key controls another wallet than the one being acted for.
    #[error("this key is wallet {key_wallet}, but the node belongs to wallet {wallet}: use that wallet's key")]
    WrongWallet {
        /// The wallet the key controls.
        key_wallet: String,
        /// The wallet being acted for.
        wallet: String,
    },
}

/// An operator's wallet key.
#[derive(Clone)]
pub enum WalletKey {
    /// An EVM (secp256k1) key; its wallet is a `0x` address.
    Evm(PayoutKey),
    /// A Solana-style ed25519 key; its wallet is the base58 public key.
    Solana(NodeIdentity),
}

/// A wallet key as loaded from a file, with what the file's permissions looked like.
#[derive(Debug)]
pub struct LoadedWalletKey {
    /// The key.
    pub key: WalletKey,
    /// The file's mode bits when group or others may read or write it (Unix only).
    pub loose_mode: Option<u32>,
}

impl WalletKey {
    /// Reads the key at `path`, recognising its format by content. The file is not modified.
    pub fn load(path: &Path) -> Result<LoadedWalletKey, WalletKeyError> {
        let io = |source| WalletKeyError::Io { path: path.to_owned(), source };
        let metadata = std::fs::metadata(path).map_err(io)?;
        if metadata.len() > MAX_KEY_FILE_BYTES {
            return Err(WalletKeyError::TooLarge(path.to_owned()));
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
        let text = std::str::from_utf8(&bytes).map_err(|_| WalletKeyError::Unrecognized(path.to_owned()))?;
        let key = Self::parse(text, path)?;
        Ok(LoadedWalletKey { key, loose_mode: loose_mode(&metadata) })
    }

    /// Parses a key file's text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, WalletKeyError> {
        let text = text.trim();
        if text.starts_with('[') {
            return decode_keypair_json(text, path).map(Self::Solana).map_err(WalletKeyError::InvalidSolanaKeypair);
        }
        let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(WalletKeyError::Unrecognized(path.to_owned()));
        }
        PayoutKey::from_hex(digits).map(Self::Evm).map_err(|_| WalletKeyError::InvalidEvmSecret(path.to_owned()))
    }

    /// The wallet this key controls: an EIP-55 `0x` address or a base58 public key.
    pub fn wallet(&self) -> String {
        match self {
            Self::Evm(key) => key.address().to_checksummed(),
            Self::Solana(identity) => identity.public_key().to_b58(),
        }
    }

    /// Whether this key controls `wallet`. EVM addresses compare by value (any letter case
    /// whose checksum is not wrong), base58 keys exactly.
    pub fn controls(&self, wallet: &str) -> bool {
        let wallet = wallet.trim();
        match self {
            Self::Evm(key) => wallet.parse::<EvmAddress>().is_ok_and(|address| address == key.address()),
            Self::Solana(identity) => identity.public_key().to_b58() == wallet,
        }
    }

    /// Refuses unless this key controls `wallet`.
    pub fn ensure_controls(&self, wallet: &str) -> Result<(), WalletKeyError> {
        if self.controls(wallet) {
            return Ok(());
        }
        Err(WalletKeyError::WrongWallet { key_wallet: self.wallet(), wallet: wallet.to_owned() })
    }

    /// Signs `message` the way the grid checks for this kind of wallet: `personal_sign` hex for
    /// EVM, base58 ed25519 for Solana.
    pub fn sign(&self, message: &[u8]) -> String {
        match self {
            Self::Evm(key) => personal_sign(key, message),
            Self::Solana(identity) => identity.sign_b58(message),
        }
    }

    /// A signed request for `action` on behalf of `wallet`, with a fresh random nonce and the
    /// current time. Refused before signing if this key does not control `wallet`.
    pub fn sign_action(&self, wallet: &str, action: OperatorAction) -> Result<SignedOperatorRequest, WalletKeyError> {
        self.ensure_controls(wallet)?;
        let signed_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(self.sign_action_at(wallet, action, new_nonce(&mut OsRng), signed_at))
    }

    /// [`Self::sign_action`] with the nonce and time given, and no wallet check.
    fn sign_action_at(
        &self,
        wallet: &str,
        action: OperatorAction,
        nonce: String,
        signed_at: u64,
    ) -> SignedOperatorRequest {
        let signature = self.sign(operator_message(wallet, &action, &nonce, signed_at).as_bytes());
        SignedOperatorRequest { action, nonce, signed_at, signature }
    }
}

impl fmt::Debug for WalletKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::Evm(_) => "Evm",
            Self::Solana(_) => "Solana",
        };
        write!(f, "WalletKey::{kind}(wallet: {}, secret: <redacted>)", self.wallet())
    }
}

/// 16 random bytes as 32 lowercase hex digits.
fn new_nonce(rng: &mut impl CryptoRngCore) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(unix)]
fn loose_mode(metadata: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_metadata: &std::fs::Metadata) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests;
