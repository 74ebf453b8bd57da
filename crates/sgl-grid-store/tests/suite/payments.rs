//! The local x402 facilitator's ledger: balances funded by the faucet, settlements that move
//! them once per EIP-3009 nonce, and refusals that leave everything as it was.

use alloy_primitives::{Address, B256, U256, address};
use sgl_grid_store::Store;
use sgl_pay::ledger::{AccountKey, LedgerOutcome, LedgerTransfer, NonceKey, PaymentLedger};

const NETWORK: &str = "eip155:84532";
const USDC: Address = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
const PAYER: Address = address!("0x1111111111111111111111111111111111111111");
const PAYEE: Address = address!("0x2222222222222222222222222222222222222222");

fn account(address: Address) -> AccountKey {
    AccountKey { network: NETWORK.into(), asset: USDC, address }
}

fn transfer(nonce: u8, value: u64, hash: u8) -> LedgerTransfer {
    LedgerTransfer {
        nonce: NonceKey { chain_id: 84532, asset: USDC, from: PAYER, nonce: B256::repeat_byte(nonce) },
        network: NETWORK.into(),
        from: PAYER,
        to: PAYEE,
        value: U256::from(value),
        tx_hash: B256::repeat_byte(hash),
    }
}

pub(crate) async fn x402_payments_settle_once_and_never_overdraw(store: &Store) {
    assert_eq!(store.x402_credit(&account(PAYER), U256::from(1_000u64)).await.unwrap(), U256::from(1_000u64));
    assert_eq!(store.settle(&transfer(1, 400, 0xa1)).await.unwrap(), LedgerOutcome::Settled);
    assert_eq!(PaymentLedger::balance(store, &account(PAYER)).await.unwrap(), U256::from(600u64));
    assert_eq!(PaymentLedger::balance(store, &account(PAYEE)).await.unwrap(), U256::from(400u64));
    // The same authorization again: already settled, nothing moves.
    assert_eq!(store.settle(&transfer(1, 400, 0xa1)).await.unwrap(), LedgerOutcome::AlreadySettled);
    // Another use of that nonce: refused.
    assert_eq!(store.settle(&transfer(1, 10, 0xb2)).await.unwrap(), LedgerOutcome::NonceUsed);
    assert_eq!(store.nonce_use(&transfer(1, 0, 0).nonce).await.unwrap(), Some(B256::repeat_byte(0xa1)));
    // More than the payer holds: refused, and the nonce stays unused.
    assert_eq!(
        store.settle(&transfer(2, 700, 0xc3)).await.unwrap(),
        LedgerOutcome::InsufficientBalance { balance: U256::from(600u64) }
    );
    assert_eq!(store.nonce_use(&transfer(2, 0, 0).nonce).await.unwrap(), None);
    assert_eq!(PaymentLedger::balance(store, &account(PAYER)).await.unwrap(), U256::from(600u64));
    // Two settlements racing for one nonce: exactly one moves money.
    let (first, second) = (transfer(3, 100, 0xd4), transfer(3, 100, 0xe5));
    let (a, b) = tokio::join!(store.settle(&first), store.settle(&second));
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(outcomes.iter().filter(|o| **o == LedgerOutcome::Settled).count(), 1, "{outcomes:?}");
    assert_eq!(PaymentLedger::balance(store, &account(PAYER)).await.unwrap(), U256::from(500u64));
    assert_eq!(PaymentLedger::balance(store, &account(PAYEE)).await.unwrap(), U256::from(500u64));
}

/// A wallet that pays gets one account: its root key is made once, and a second key made for
/// the same wallet (another replica racing the first payment) is revoked, not bound.
pub(crate) async fn a_wallet_account_is_bound_once(store: &Store) {
    use sgl_grid_store::api_keys::NewApiKey;
    let key =
        |hash: &'static str| NewApiKey { key_hash: hash, prefix: "wallet", label: "w", wallet: None, account_id: None };
    assert_eq!(store.wallet_account_id("0xaa").await.unwrap(), None);
    let first = store.wallet_account_key("0xaa", &key("h1"), 1).await.unwrap();
    assert_eq!(first.wallet.as_deref(), Some("0xaa"));
    assert_eq!(store.wallet_account_id("0xaa").await.unwrap(), Some(first.id));
    let again = store.wallet_account_key("0xaa", &key("h2"), 2).await.unwrap();
    assert_eq!(again.id, first.id, "the same wallet, the same account");
    let other = store.wallet_account_key("0xbb", &key("h3"), 3).await.unwrap();
    assert_ne!(other.id, first.id);
    // The race: a key created for 0xaa outside the binding never becomes its root.
    let loser = store.create_api_key(&NewApiKey { wallet: Some("0xaa"), ..key("h4") }, 4).await.unwrap();
    assert_eq!(store.wallet_account_id("0xaa").await.unwrap(), Some(first.id));
    assert_ne!(loser.id, first.id);
}
