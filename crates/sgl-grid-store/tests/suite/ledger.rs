//! Ledger cases: balanced movements, refusals that change nothing, idempotency, concurrency.

use sgl_grid_store::Store;
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posted, Posting};

const NOW: i64 = 1_700_000_000_000;

fn admin() -> Account {
    Account::External { source: "admin".into(), asset: Asset::Usd }
}

fn credits(id: i64) -> Account {
    Account::Credits { api_key_id: id }
}

fn transaction(key: &str, postings: &[(Account, i64)]) -> NewTransaction {
    NewTransaction {
        idempotency_key: key.into(),
        kind: sgl_grid_store::ledger::TransactionKind::CreditsGrant,
        memo: String::new(),
        postings: postings
            .iter()
            .map(|(account, amount)| Posting { account: account.clone(), amount: *amount })
            .collect(),
    }
}

async fn assert_balanced(store: &Store) {
    for (asset, total) in store.ledger_totals().await.unwrap() {
        assert_eq!(total, 0, "the ledger does not balance for {asset}");
    }
}

pub(crate) async fn grant_hold_settle_and_release_balance(store: &Store) {
    let escrow = Account::Escrow { job_id: "job-1".into() };
    let earnings = Account::Earnings { wallet: "0xop".into() };
    store.post(&transaction("grant:1", &[(admin(), -10_000_000), (credits(1), 10_000_000)]), NOW).await.unwrap();
    store
        .post(&transaction("hold:job-1", &[(credits(1), -1_000_000), (escrow.clone(), 1_000_000)]), NOW)
        .await
        .unwrap();
    // The node delivered 400_000 micro-USD worth: 80 / 5 / 10 / 5, and the rest goes back.
    let settle = transaction(
        "settle:job-1",
        &[
            (escrow.clone(), -1_000_000),
            (earnings.clone(), 320_000),
            (Account::Platform, 20_000),
            (Account::Stakers, 40_000),
            (Account::Burn, 20_000),
            (credits(1), 600_000),
        ],
    );
    assert!(matches!(store.post(&settle, NOW).await.unwrap(), Posted::Applied(_)));
    assert_eq!(store.balance(&credits(1)).await.unwrap(), 9_600_000);
    assert_eq!(store.balance(&escrow).await.unwrap(), 0);
    assert_eq!(store.balance(&earnings).await.unwrap(), 320_000);
    assert_eq!(store.balance(&Account::Platform).await.unwrap(), 20_000);
    assert_eq!(store.balance(&admin()).await.unwrap(), -10_000_000);
    assert_eq!(store.balance(&credits(99)).await.unwrap(), 0, "an unknown account has no money");
    assert_balanced(store).await;
}

pub(crate) async fn malformed_and_unbalanced_transactions_are_refused(store: &Store) {
    let stake = Account::Stake { wallet: "0xop".into() };
    let cases = [
        transaction("one-leg", &[(credits(1), 5)]),
        transaction("zero", &[(admin(), 0), (credits(1), 0)]),
        transaction("twice", &[(admin(), -5), (credits(1), 3), (credits(1), 2)]),
        transaction("unbalanced", &[(admin(), -5), (credits(1), 4)]),
        // Dollars cannot pay for stake: each asset must balance on its own.
        transaction("cross-asset", &[(admin(), -5), (stake.clone(), 5)]),
    ];
    for case in &cases {
        let error = store.post(case, NOW).await.unwrap_err();
        assert!(
            matches!(error, PostError::Malformed(_) | PostError::Unbalanced { .. }),
            "{}: {error}",
            case.idempotency_key
        );
    }
    assert!(matches!(
        store.post(&cases[4], NOW).await.unwrap_err(),
        PostError::Unbalanced { asset: Asset::Usd, imbalance: -5 }
    ));
    assert!(store.ledger_totals().await.unwrap().is_empty(), "nothing was recorded");
    let sgl_source = Account::External { source: "admin".into(), asset: Asset::Sgl };
    store.post(&transaction("stake", &[(sgl_source, -50_000), (stake.clone(), 50_000)]), NOW).await.unwrap();
    assert_eq!(store.balance(&stake).await.unwrap(), 50_000);
    assert_balanced(store).await;
}

pub(crate) async fn overdrafts_are_refused_and_change_nothing(store: &Store) {
    store.post(&transaction("grant", &[(admin(), -100), (credits(7), 100)]), NOW).await.unwrap();
    let escrow = Account::Escrow { job_id: "j".into() };
    let error = store.post(&transaction("hold", &[(credits(7), -101), (escrow.clone(), 101)]), NOW).await.unwrap_err();
    match error {
        PostError::InsufficientFunds { account, balance, debit } => {
            assert_eq!((account.as_str(), balance, debit), ("credits:key:7", 100, 101));
        }
        other => panic!("expected insufficient funds, got {other}"),
    }
    assert_eq!(store.balance(&credits(7)).await.unwrap(), 100);
    assert_eq!(store.balance(&escrow).await.unwrap(), 0);
    // The refused key was not consumed: the right amount can be posted under it.
    store.post(&transaction("hold", &[(credits(7), -100), (escrow.clone(), 100)]), NOW).await.unwrap();
    assert_eq!(store.balance(&credits(7)).await.unwrap(), 0);
    assert_balanced(store).await;
}

pub(crate) async fn idempotency_keys_apply_once_and_refuse_conflicts(store: &Store) {
    let grant = transaction("grant:once", &[(admin(), -500), (credits(2), 500)]);
    let first = store.post(&grant, NOW).await.unwrap();
    let again = store.post(&grant, NOW + 1).await.unwrap();
    assert!(matches!(first, Posted::Applied(_)));
    assert_eq!(again, Posted::AlreadyApplied(first.transaction_id()));
    assert_eq!(store.balance(&credits(2)).await.unwrap(), 500);
    let different = transaction("grant:once", &[(admin(), -900), (credits(2), 900)]);
    assert!(matches!(store.post(&different, NOW).await.unwrap_err(), PostError::IdempotencyConflict(_)));
    assert_eq!(store.balance(&credits(2)).await.unwrap(), 500);
    assert_balanced(store).await;
}

pub(crate) async fn concurrent_debits_never_overdraw(store: &Store) {
    store.post(&transaction("grant", &[(admin(), -100), (credits(3), 100)]), NOW).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            let escrow = Account::Escrow { job_id: format!("job-{n}") };
            store.post(&transaction(&format!("hold:{n}"), &[(credits(3), -10), (escrow, 10)]), NOW).await
        });
    }
    let mut n_ok = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => n_ok += 1,
            Err(PostError::InsufficientFunds { .. }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(n_ok, 10);
    assert_eq!(store.balance(&credits(3)).await.unwrap(), 0);
    assert_balanced(store).await;
}

pub(crate) async fn concurrent_posts_of_one_key_apply_once(store: &Store) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks
            .spawn(async move { store.post(&transaction("grant:race", &[(admin(), -7), (credits(4), 7)]), NOW).await });
    }
    let mut n_applied = 0;
    while let Some(result) = tasks.join_next().await {
        if let Posted::Applied(_) = result.unwrap().unwrap() {
            n_applied += 1;
        }
    }
    assert_eq!(n_applied, 1);
    assert_eq!(store.balance(&credits(4)).await.unwrap(), 7);
    assert_balanced(store).await;
}

/// The audit passes a ledger the store wrote, and names each fault planted behind its back.
pub(crate) async fn the_audit_passes_a_sound_ledger_and_names_each_planted_fault(db: &crate::fixture::TestDb) {
    let store = &db.store;
    let audit = store.audit_ledger().await.unwrap();
    assert!(audit.is_sound() && audit.transactions == 0, "{audit:?}");
    store.post(&transaction("grant:a", &[(admin(), -5_000), (credits(7), 5_000)]), NOW).await.unwrap();
    store.post(&transaction("spend:a", &[(credits(7), -2_000), (Account::Platform, 2_000)]), NOW).await.unwrap();
    let audit = store.audit_ledger().await.unwrap();
    assert!(audit.is_sound(), "{audit:?}");
    assert_eq!((audit.transactions, audit.postings), (2, 4));

    // Planted: a one-sided posting (unbalances its transaction, the asset, and overdraws).
    db.raw(
        "INSERT INTO ledger_transactions (idempotency_key, kind, memo, created_at) VALUES ('forged', 'forged', '', 0); \
         INSERT INTO ledger_postings (transaction_id, account, amount) \
         SELECT id, 'credits:key:7', -9000 FROM ledger_transactions WHERE idempotency_key = 'forged';",
    )
    .await;
    let audit = store.audit_ledger().await.unwrap();
    let problems = audit.problems.join("\n");
    assert!(problems.contains("does not balance in usd: off by -9000"), "{problems}");
    assert!(problems.contains("has 1 posting(s), fewer than two"), "{problems}");
    assert!(problems.contains("credits:key:7 must not go negative but holds -6000"), "{problems}");
    assert!(problems.contains("does not sum to zero in usd"), "{problems}");
    // The running balance moved only with the store's own posting.
    assert!(problems.contains("credits:key:7 carries a balance of 3000 but its postings sum to -6000"), "{problems}");
    // Planted: a carry the rounding account does not hold.
    assert!(!problems.contains("rounding"), "{problems}");
    db.raw("INSERT INTO settlement_carries (account, carry) VALUES ('platform', 5000)").await;
    let problems = store.audit_ledger().await.unwrap().problems.join("\n");
    assert!(
        problems.contains("the rounding account holds 0 but the settlement carries sum to 5000/10000 micro-units"),
        "{problems}"
    );
    assert!(!audit.is_sound());
}
