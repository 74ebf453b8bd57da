//! Managing machines with a wallet's signature instead of an API key: the wallet signs
//! `sgl_protocol::api::machines::machine_message` over the request's method, path and body
//! hash, with a single-use nonce and a time within five minutes, as operators' actions do. The
//! machines it may touch are those of its wallet account (made by its first x402 or MPP payment).

use sgl_protocol::api::machines::machine_message;
use sgl_protocol::wallet::verify_wallet_signature;

use super::{MachineError, Machines};
use crate::service::operators::{MAX_NONCE, MAX_SKEW_SECS};

/// A wallet's signature on one request, as its headers carried it.
#[derive(Debug, Clone)]
pub struct WalletSigned {
    /// The wallet.
    pub wallet: String,
    /// A single-use nonce.
    pub nonce: String,
    /// Unix seconds.
    pub signed_at: u64,
    /// EIP-191 hex or base58 ed25519.
    pub signature: String,
}

/// A wallet-signed request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletAuthError {
    /// The nonce is empty, too long or not printable.
    #[error("x-wallet-nonce must be 1 to {MAX_NONCE} printable ASCII characters")]
    BadNonce,
    /// Signed too long ago or in the future.
    #[error("x-wallet-signed-at is {skew} s from the grid's clock; sign within five minutes")]
    Stale {
        /// Seconds off.
        skew: i64,
    },
    /// The signature does not verify.
    #[error("x-wallet-signature does not verify for this wallet and request: {0}")]
    BadSignature(String),
    /// The nonce was used before.
    #[error("x-wallet-nonce was used before; sign again with a new one")]
    NonceUsed,
}

impl Machines {
    /// The account of the wallet that signed `action` (`METHOD path [body-sha256]`); `None` if
    /// the signature holds but the wallet has no account (so no machines).
    pub async fn wallet_account(&self, signed: &WalletSigned, action: &str) -> Result<Option<i64>, MachineError> {
        let nonce = &signed.nonce;
        if nonce.is_empty() || nonce.len() > MAX_NONCE || !nonce.chars().all(|c| c.is_ascii_graphic()) {
            return Err(WalletAuthError::BadNonce.into());
        }
        let skew = (self.now_ms() / 1000).saturating_sub(i64::try_from(signed.signed_at).unwrap_or(i64::MAX));
        if skew.abs() > MAX_SKEW_SECS {
            return Err(WalletAuthError::Stale { skew }.into());
        }
        let message = machine_message(&signed.wallet, action, nonce, signed.signed_at);
        verify_wallet_signature(&signed.wallet, message.as_bytes(), &signed.signature)
            .map_err(|error| WalletAuthError::BadSignature(error.to_string()))?;
        let wallet = normalise(&signed.wallet);
        if !self.store().use_operator_nonce(&wallet, &format!("machine:{nonce}"), self.now_ms()).await? {
            return Err(WalletAuthError::NonceUsed.into());
        }
        Ok(self.store().wallet_account_id(&wallet).await?)
    }
}

/// EVM addresses are stored lowercase; other wallets as given.
fn normalise(wallet: &str) -> String {
    if wallet.starts_with("0x") { wallet.to_lowercase() } else { wallet.to_owned() }
}
