//! A wallet's signature standing in for an API key, for one request: the wallet signs a text the
//! protocol fixes for that request (`sgl_protocol::api::machines::machine_message` to manage
//! machines, `sgl_protocol::api::account::sign_in_message` to sign in) with a single-use nonce
//! and a time within five minutes of the grid's clock, as operators' actions do. EVM wallets
//! sign with EIP-191, others with ed25519 (base58).

use sgl_grid_store::{Store, StoreError};
use sgl_protocol::wallet::verify_wallet_signature;

use crate::service::operators::{MAX_NONCE, MAX_SKEW_SECS};

/// A wallet's signature on one request.
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
    #[error("the nonce must be 1 to {MAX_NONCE} printable ASCII characters")]
    BadNonce,
    /// Signed too long ago or in the future.
    #[error("the signature's time is {skew} s from the grid's clock; sign within five minutes")]
    Stale {
        /// Seconds off.
        skew: i64,
    },
    /// The signature does not verify.
    #[error("the signature does not verify for this wallet and request: {0}")]
    BadSignature(String),
    /// The nonce was used before.
    #[error("the nonce was used before; sign again with a new one")]
    NonceUsed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WalletSigned {
    /// Checks the nonce's shape, the time, and the signature over `message`, then spends the
    /// nonce (in `scope`, so one nonce serves one kind of request once). Returns the wallet as
    /// the store keeps it.
    pub async fn verify(
        &self,
        store: &Store,
        now_ms: i64,
        message: &str,
        scope: &str,
    ) -> Result<String, WalletAuthError> {
        let nonce = &self.nonce;
        if nonce.is_empty() || nonce.len() > MAX_NONCE || !nonce.chars().all(|c| c.is_ascii_graphic()) {
            return Err(WalletAuthError::BadNonce);
        }
        let skew = (now_ms / 1000).saturating_sub(i64::try_from(self.signed_at).unwrap_or(i64::MAX));
        if skew.abs() > MAX_SKEW_SECS {
            return Err(WalletAuthError::Stale { skew });
        }
        verify_wallet_signature(&self.wallet, message.as_bytes(), &self.signature)
            .map_err(|error| WalletAuthError::BadSignature(error.to_string()))?;
        let wallet = normalise(&self.wallet);
        if !store.use_operator_nonce(&wallet, &format!("{scope}:{nonce}"), now_ms).await? {
            return Err(WalletAuthError::NonceUsed);
        }
        Ok(wallet)
    }
}

/// EVM addresses are stored lowercase; other wallets as given.
pub fn normalise(wallet: &str) -> String {
    if wallet.starts_with("0x") { wallet.to_lowercase() } else { wallet.to_owned() }
}
