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
    let key = |hash: &'static str| NewApiKey {
        key_hash: hash,
        prefix: "wallet",
        label: "w",
        wallet: None,
        account_id: None,
        expires_at: None,
    };
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

/// A settlement and its payer's credit commit together: a credit that cannot be posted leaves
/// the payment unsettled (nonce unused, balances untouched), and a good one lands with it.
pub(crate) async fn a_payment_is_settled_and_credited_in_one_transaction(store: &Store) {
    use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posting};
    let credit = |key: &str, micros: i64| NewTransaction {
        idempotency_key: key.into(),
        kind: sgl_grid_store::ledger::TransactionKind::Payment,
        memo: "payment".into(),
        postings: vec![
            Posting { account: Account::External { source: "x402".into(), asset: Asset::Usd }, amount: -micros },
            Posting { account: Account::Credits { api_key_id: 7 }, amount: micros },
        ],
    };
    store.x402_credit(&account(PAYER), U256::from(1_000u64)).await.unwrap();
    // The credit's key was already used for a different movement: nothing is settled.
    store.post(&credit("payment:taken", 1), 1).await.unwrap();
    let refused = store.settle_and_credit(&transfer(9, 400, 0x99), &credit("payment:taken", 400), 2).await;
    assert!(matches!(refused, Err(PostError::IdempotencyConflict(_))), "{refused:?}");
    assert_eq!(store.nonce_use(&transfer(9, 0, 0).nonce).await.unwrap(), None, "the nonce is still unused");
    assert_eq!(PaymentLedger::balance(store, &account(PAYER)).await.unwrap(), U256::from(1_000u64));
    assert_eq!(PaymentLedger::balance(store, &account(PAYEE)).await.unwrap(), U256::ZERO);

    let settled = store.settle_and_credit(&transfer(9, 400, 0x99), &credit("payment:fresh", 400), 3).await;
    assert_eq!(settled.unwrap(), LedgerOutcome::Settled);
    assert_eq!(PaymentLedger::balance(store, &account(PAYEE)).await.unwrap(), U256::from(400u64));
    assert_eq!(store.balance(&Account::Credits { api_key_id: 7 }).await.unwrap(), 401);
    // The same authorization again settles nothing and credits nothing.
    let again = store.settle_and_credit(&transfer(9, 400, 0x99), &credit("payment:fresh", 400), 4).await;
    assert_eq!(again.unwrap(), LedgerOutcome::AlreadySettled);
    assert_eq!(store.balance(&Account::Credits { api_key_id: 7 }).await.unwrap(), 401);
}

/// A payout leaves the ledger and reaches the token balance together, once.
pub(crate) async fn a_payout_moves_both_ledgers_in_one_transaction(store: &Store) {
    use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posted, Posting};
    let earnings = Account::Earnings { wallet: "0xop".into() };
    let grant = NewTransaction {
        idempotency_key: "earned".into(),
        kind: sgl_grid_store::ledger::TransactionKind::CreditsGrant,
        memo: "earned".into(),
        postings: vec![
            Posting { account: Account::External { source: "test".into(), asset: Asset::Usd }, amount: -300 },
            Posting { account: earnings.clone(), amount: 300 },
        ],
    };
    store.post(&grant, 1).await.unwrap();
    let payout = |key: &str, micros: i64| NewTransaction {
        idempotency_key: key.into(),
        kind: sgl_grid_store::ledger::TransactionKind::Payout,
        memo: "payout".into(),
        postings: vec![
            Posting { account: earnings.clone(), amount: -micros },
            Posting { account: Account::External { source: "payout".into(), asset: Asset::Usd }, amount: micros },
        ],
    };
    // More than was earned: neither ledger moves.
    let refused = store.post_and_pay_out(&payout("p1", 500), &account(PAYEE), U256::from(500u64), 2).await;
    assert!(matches!(refused, Err(PostError::InsufficientFunds { .. })), "{refused:?}");
    assert_eq!(PaymentLedger::balance(store, &account(PAYEE)).await.unwrap(), U256::ZERO);
    let paid = store.post_and_pay_out(&payout("p2", 200), &account(PAYEE), U256::from(200u64), 3).await;
    assert!(matches!(paid, Ok(Posted::Applied(_))), "{paid:?}");
    assert_eq!(PaymentLedger::balance(store, &account(PAYEE)).await.unwrap(), U256::from(200u64));
    assert_eq!(store.balance(&earnings).await.unwrap(), 100);
    // The same payout again moves neither.
    let again = store.post_and_pay_out(&payout("p2", 200), &account(PAYEE), U256::from(200u64), 4).await;
    assert!(matches!(again, Ok(Posted::AlreadyApplied(_))), "{again:?}");
    assert_eq!(PaymentLedger::balance(store, &account(PAYEE)).await.unwrap(), U256::from(200u64));
    assert_eq!(store.balance(&earnings).await.unwrap(), 100);
}
