//! Managing machines with a wallet's signature instead of an API key
//! ([`crate::service::wallet_auth`]): the wallet signs
//! `sgl_protocol::api::machines::machine_message` over the request's method, path and body
//! hash. The machines it may touch are those of its wallet account (made by its first x402 or
//! MPP payment, or its first sign-in).

use sgl_protocol::api::machines::machine_message;

pub use crate::service::wallet_auth::{WalletAuthError, WalletSigned};

use super::{MachineError, Machines};

impl Machines {
    /// The account of the wallet that signed `action` (`METHOD path [body-sha256]`); `None` if
    /// the signature holds but the wallet has no account (so no machines).
    pub async fn wallet_account(&self, signed: &WalletSigned, action: &str) -> Result<Option<i64>, MachineError> {
        let message = machine_message(&signed.wallet, action, &signed.nonce, signed.signed_at);
        let wallet = signed.verify(self.store(), self.now_ms(), &message, "machine").await?;
        Ok(self.store().wallet_account_id(&wallet).await?)
    }
}
