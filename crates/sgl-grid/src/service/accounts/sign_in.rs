//! A wallet signs in instead of giving an API key (`POST /v1/auth/wallet`): its signature over
//! `sgl_protocol::api::account::sign_in_message` for this grid's host opens its wallet account
//! (made here on its first sign-in, as a first x402 or MPP payment makes it) and gets a new key
//! of that account that stops working after [`SIGN_IN_KEY_MS`].

use sgl_grid_store::api_keys::{ApiKeyRecord, NewApiKey};
use sgl_grid_store::{Store, StoreError};
use sgl_protocol::api::account::{CreatedKey, SIGN_IN_KEY_MS, WalletSignIn, WalletSignInRequest, sign_in_message};
use sgl_protocol::ids::ApiKey;

use super::{AccountError, Accounts, new_secret};
use crate::service::wallet_auth::WalletSigned;
use crate::service::{rfc3339, secrets};

/// The label of a sign-in's key.
const SIGN_IN_LABEL: &str = "wallet sign-in";

/// The root key of `wallet`'s account (as the store keeps the wallet), made when it has none.
/// Its secret is never shown: the wallet reaches the account through a top-up's key or a
/// sign-in's.
pub async fn wallet_root(store: &Store, wallet: &str, now_ms: i64) -> Result<ApiKeyRecord, StoreError> {
    let secret = secrets::api_key();
    let label = format!("wallet {wallet}");
    let new_key = NewApiKey {
        key_hash: &secrets::hash(&secret),
        prefix: "wallet",
        label: &label,
        wallet: None,
        account_id: None,
        expires_at: None,
    };
    store.wallet_account_key(wallet, &new_key, now_ms).await
}

impl Accounts {
    /// Checks `request`'s signature for `host` and answers with a new key of the wallet's
    /// account.
    pub async fn wallet_sign_in(&self, host: &str, request: WalletSignInRequest) -> Result<WalletSignIn, AccountError> {
        let now = self.clock.now_ms();
        let message = sign_in_message(host, &request.wallet, &request.nonce, request.signed_at);
        let signed = WalletSigned {
            wallet: request.wallet,
            nonce: request.nonce,
            signed_at: request.signed_at,
            signature: request.signature,
        };
        let wallet = signed.verify(&self.store, now, &message, "sign-in").await?;
        let account_created = self.store.wallet_account_id(&wallet).await?.is_none();
        let root = wallet_root(&self.store, &wallet, now).await?;
        let (secret, prefix) = new_secret();
        let expires_at = now + SIGN_IN_KEY_MS;
        let new_key = NewApiKey {
            key_hash: &secrets::hash(&secret),
            prefix: &prefix,
            label: SIGN_IN_LABEL,
            wallet: Some(&wallet),
            account_id: Some(root.account()),
            expires_at: Some(expires_at),
        };
        let record = self.store.create_api_key(&new_key, now).await?;
        tracing::info!(target: "sgl::events::account", wallet = %wallet, key_id = record.id, account_created, "wallet signed in");
        Ok(WalletSignIn {
            wallet,
            account_created,
            key: CreatedKey {
                id: record.id,
                api_key: ApiKey::new(secret),
                prefix: record.prefix,
                label: record.label,
                credits_micros: 0,
            },
            expires_at: rfc3339::format(expires_at),
            expires_at_ms: expires_at,
        })
    }
}
