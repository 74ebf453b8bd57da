//! Stake: unstaking moves stake to unbonding for a cooldown, withdrawal only after it, slashing
//! takes a share of both with its evidence recorded once, and operator nonces are single-use.

use sgl_grid_store::Store;
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, Posting};
use sgl_grid_store::stake::{NewSlash, StakeError};

const NOW: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

async fn deposit(store: &Store, wallet: &str, micros: i64) {
    let deposit = NewTransaction {
        idempotency_key: format!("deposit:{wallet}:{micros}"),
        kind: sgl_grid_store::ledger::TransactionKind::StakeDeposit,
        memo: String::new(),
        postings: vec![
            Posting { account: Account::External { source: "admin".into(), asset: Asset::Sgl }, amount: -micros },
            Posting { account: Account::Stake { wallet: wallet.into() }, amount: micros },
        ],
    };
    store.post(&deposit, NOW).await.unwrap();
}

async fn balances(store: &Store, wallet: &str) -> (i64, i64, i64) {
    (
        store.balance(&Account::Stake { wallet: wallet.into() }).await.unwrap(),
        store.balance(&Account::Unbonding { wallet: wallet.into() }).await.unwrap(),
        store.balance(&Account::Slashed).await.unwrap(),
    )
}

pub(crate) async fn unstaking_cools_down_before_withdrawal_and_slashing_reaches_unbonding(store: &Store) {
    deposit(store, "0xop", 1_000_000).await;
    assert!(matches!(
        store.request_unstake("0xop", Some(2_000_000), NOW, NOW + 7 * DAY).await,
        Err(StakeError::NotEnoughStake { staked: 1_000_000, asked: 2_000_000 })
    ));
    let request = store.request_unstake("0xop", Some(600_000), NOW, NOW + 7 * DAY).await.unwrap();
    assert_eq!((request.amount, request.available_at), (600_000, NOW + 7 * DAY));
    assert_eq!(balances(store, "0xop").await, (400_000, 600_000, 0));
    assert_eq!(store.unstake_request("0xop").await.unwrap(), Some(request));
    assert!(matches!(
        store.request_unstake("0xop", None, NOW + 1, NOW + 8 * DAY).await,
        Err(StakeError::AlreadyUnstaking)
    ));
    assert_eq!(balances(store, "0xop").await, (400_000, 600_000, 0), "a refused unstake moves nothing");
    assert!(matches!(
        store.withdraw_stake("0xop", NOW + 7 * DAY - 1).await,
        Err(StakeError::CoolingDown { available_at }) if available_at == NOW + 7 * DAY
    ));

    // A slash of 10 % takes from the active and the unbonding stake, once per job and reason.
    let slash = NewSlash {
        wallet: "0xop",
        node_id: Some("node-1"),
        job_id: Some("job-9"),
        reason: "bad_signature",
        evidence: r#"{"kind":"plain"}"#,
        basis_points: 1_000,
        active_first: false,
    };
    assert_eq!(store.slash(&slash, NOW + DAY).await.unwrap(), 100_000);
    assert_eq!(store.slash(&slash, NOW + DAY + 1).await.unwrap(), 0, "the same fault is slashed once");
    assert_eq!(balances(store, "0xop").await, (360_000, 540_000, 100_000));
    let slashes = store.slashes("0xop").await.unwrap();
    assert_eq!(slashes.len(), 1);
    assert_eq!((slashes[0].amount, slashes[0].reason.as_str()), (100_000, "bad_signature"));
    assert_eq!(slashes[0].evidence, r#"{"kind":"plain"}"#);

    // After the cooldown, what is left unbonding is withdrawn, once.
    assert_eq!(store.withdraw_stake("0xop", NOW + 7 * DAY).await.unwrap(), 540_000);
    assert_eq!(balances(store, "0xop").await, (360_000, 0, 100_000));
    assert_eq!(store.unstake_request("0xop").await.unwrap(), None);
    assert!(matches!(store.withdraw_stake("0xop", NOW + 8 * DAY).await, Err(StakeError::NoUnstake)));
    for (asset, total) in store.ledger_totals().await.unwrap() {
        assert_eq!(total, 0, "the ledger balances for {asset}");
    }
}

/// A fault slashed while the wallet had nothing stays slashed: stake deposited later is not
/// taken by a repeat of it (found by the random ledger workload).
pub(crate) async fn a_fault_that_took_nothing_is_not_slashed_again(store: &Store) {
    let slash = NewSlash {
        wallet: "0xempty",
        node_id: None,
        job_id: Some("job-1"),
        reason: "bad_signature",
        evidence: "{}",
        basis_points: 1_000,
        active_first: false,
    };
    assert_eq!(store.slash(&slash, NOW).await.unwrap(), 0);
    deposit(store, "0xempty", 1_000_000).await;
    assert_eq!(store.slash(&slash, NOW + 1).await.unwrap(), 0, "the fault was already dealt with");
    assert_eq!(balances(store, "0xempty").await.0, 1_000_000);
    assert_eq!(store.slashes("0xempty").await.unwrap().len(), 1);
}

pub(crate) async fn settings_are_set_once(store: &Store) {
    assert_eq!(store.setting_or_insert("mpp_secret", "first").await.unwrap(), "first");
    assert_eq!(store.setting_or_insert("mpp_secret", "second").await.unwrap(), "first", "the first value stays");
}

pub(crate) async fn operator_nonces_are_single_use(store: &Store) {
    assert!(store.use_operator_nonce("0xop", "n1", NOW).await.unwrap());
    assert!(!store.use_operator_nonce("0xop", "n1", NOW + 1).await.unwrap(), "a replay");
    assert!(store.use_operator_nonce("0xother", "n1", NOW).await.unwrap(), "nonces are per wallet");
}
