//! Job records finish exactly once, and settling them pays every share to the micro-unit.

use sgl_grid_store::Store;
use sgl_grid_store::jobs::{JobEnd, JobMovement, JobStatus, NewJob};
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, Posting};
use sgl_grid_store::settlement::{Carry, Recipient, Settlement, Shares};

const NOW: i64 = 1_700_000_000_000;

pub(crate) fn job(id: &str) -> NewJob<'_> {
    NewJob {
        id,
        node_id: "n1",
        api_key_id: 1,
        model: "m",
        sealed_by_caller: true,
        stream: false,
        max_tokens: 16,
        held_micros: 100,
        replica: None,
    }
}

pub(crate) async fn jobs_finish_exactly_once(store: &Store) {
    store.insert_job(&job("j1"), NOW).await.unwrap();
    store.insert_job(&job("j2"), NOW + 5).await.unwrap();
    assert!(store.insert_job(&job("j1"), NOW).await.is_err());
    assert_eq!(store.dispatched_jobs("n1").await.unwrap().len(), 2);
    assert_eq!(store.stale_jobs(NOW + 1).await.unwrap().len(), 1);
    let done = JobEnd::Completed { prompt_tokens: 3, completion_tokens: 4, billed_micros: 7 };
    assert!(store.finish_job("j1", &done, NOW).await.unwrap());
    assert!(!store.finish_job("j1", &JobEnd::Failed { error: "late" }, NOW).await.unwrap(), "finished once");
    let record = store.job("j1").await.unwrap().unwrap();
    assert_eq!((record.status, record.billed_micros, record.error), (JobStatus::Completed, Some(7), None));
    assert!(store.finish_job("j2", &JobEnd::Failed { error: "node died" }, NOW).await.unwrap());
    assert_eq!(store.job("j2").await.unwrap().unwrap().error.as_deref(), Some("node died"));
    assert!(store.dispatched_jobs("n1").await.unwrap().is_empty());
    assert_eq!(store.job("nope").await.unwrap(), None);
}

fn movement(key: &str, postings: Vec<(Account, i64)>) -> NewTransaction {
    NewTransaction {
        idempotency_key: key.into(),
        kind: sgl_grid_store::ledger::TransactionKind::CreditsGrant,
        memo: String::new(),
        postings: postings.into_iter().map(|(account, amount)| Posting { account, amount }).collect(),
    }
}

pub(crate) async fn a_job_and_its_hold_are_recorded_together_and_settle_once(store: &Store) {
    use sgl_grid_store::ledger::PostError;
    let credits = Account::Credits { api_key_id: 1 };
    let escrow = |id: &str| Account::Escrow { job_id: id.into() };
    let admin = Account::External { source: "admin".into(), asset: Asset::Usd };
    store.post(&movement("grant", vec![(admin, -150), (credits.clone(), 150)]), NOW).await.unwrap();
    // A hold the credits cannot cover records no job either.
    let too_big = movement("hold:j1", vec![(credits.clone(), -200), (escrow("j1"), 200)]);
    let refused = store.insert_job_with_hold(&job("j1"), &too_big, NOW).await;
    assert!(matches!(refused, Err(PostError::InsufficientFunds { .. })));
    assert_eq!(store.job("j1").await.unwrap(), None);
    let hold = movement("hold:j2", vec![(credits.clone(), -100), (escrow("j2"), 100)]);
    store.insert_job_with_hold(&job("j2"), &hold, NOW).await.unwrap();
    assert_eq!(store.balance(&credits).await.unwrap(), 50);
    let release = JobMovement::Release(movement("settle:j2", vec![(escrow("j2"), -100), (credits.clone(), 100)]));
    let end = JobEnd::Failed { error: "node died" };
    assert!(store.finish_job_with("j2", &end, &release, NOW).await.unwrap());
    assert!(!store.finish_job_with("j2", &end, &release, NOW).await.unwrap(), "a second finish changes nothing");
    assert_eq!(store.balance(&credits).await.unwrap(), 150);
    assert_eq!(store.job("j2").await.unwrap().unwrap().status, JobStatus::Failed);
}

/// Records `id` for `api_key_id` holding `held`, dispatched to `wallet`'s node.
async fn dispatch(store: &Store, id: &str, api_key_id: i64, held: i64) {
    let job = NewJob { api_key_id, held_micros: held, ..job(id) };
    let credits = Account::Credits { api_key_id };
    let hold =
        movement(&format!("hold:job:{id}"), vec![(credits, -held), (Account::Escrow { job_id: id.into() }, held)]);
    store.insert_job_with_hold(&job, &hold, NOW).await.unwrap();
}

/// Finishes `id` as completed, billing `cost` by `shares`.
async fn settle(store: &Store, id: &str, wallet: &str, held: i64, cost: i64, shares: Shares) -> bool {
    let end = JobEnd::Completed { prompt_tokens: 1, completion_tokens: 1, billed_micros: cost };
    let settlement =
        Settlement { job_id: id.into(), api_key_id: 1, operator_wallet: wallet.into(), held, cost, shares };
    store.finish_job_with(id, &end, &JobMovement::Settle(settlement), NOW).await.unwrap()
}

/// Issue 13: 343 short chats of 3 micro-dollars, settled concurrently, pay the operator 823 (not
/// 686), the platform 51 and the stakers 102 (not 0), the burn 51 (not 343), and carry the
/// remaining 2 in the rounding account. Then jobs under other shares, a release and a repeated
/// finish: every recipient holds the floor of its exact share, and the carries and the rounding
/// account agree with it and with the audit.
pub(crate) async fn short_jobs_settle_every_share_to_the_micro_unit(store: &Store) {
    let admin = Account::External { source: "admin".into(), asset: Asset::Usd };
    let credits = Account::Credits { api_key_id: 1 };
    store.post(&movement("grant", vec![(admin, -100_000), (credits.clone(), 100_000)]), NOW).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..7 {
        let store = store.clone();
        tasks.spawn(async move {
            for n in 0..49 {
                let id = format!("chat-{task}-{n}");
                dispatch(&store, &id, 1, 5).await;
                assert!(settle(&store, &id, "0xop", 5, 3, Shares::default()).await);
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    let balance = |account: Account| async move { store.balance(&account).await.unwrap() };
    let op = || Account::Earnings { wallet: "0xop".into() };
    let shares = [op(), Account::Platform, Account::Stakers, Account::Burn, Account::Rounding, credits.clone()];
    let mut paid = Vec::new();
    for account in shares.clone() {
        paid.push(balance(account).await);
    }
    assert_eq!(paid, [823, 51, 102, 51, 2, 100_000 - 1_029]);
    let carries = [op(), Account::Platform, Account::Stakers, Account::Burn];
    let mut carried = Vec::new();
    for account in &carries {
        carried.push(store.carry(account).await.unwrap().units());
    }
    assert_eq!(carried, [2_000, 4_500, 9_000, 4_500], "0.2, 0.45, 0.9 and 0.45 of a micro-dollar");
    assert!(store.audit_ledger().await.unwrap().is_sound());

    // Other shares, another operator, odd costs, a cost over the hold.
    let other = Shares::new(9_000, 300, 0).unwrap();
    let jobs = [("b-1", "0xop", 5, 3, other), ("b-2", "0xb", 7, 7, other), ("b-3", "0xb", 4, 9, Shares::default())];
    for (id, wallet, held, cost, shares) in jobs {
        dispatch(store, id, 1, held).await;
        assert!(settle(store, id, wallet, held, cost, shares).await);
    }
    // A finished job does not settle again, and its carries do not move.
    assert!(!settle(store, "b-2", "0xb", 7, 7, other).await, "finished once");
    dispatch(store, "b-4", 1, 9).await;
    let release =
        movement("settle:job:b-4", vec![(Account::Escrow { job_id: "b-4".into() }, -9), (credits.clone(), 9)]);
    assert!(
        store
            .finish_job_with("b-4", &JobEnd::Failed { error: "x" }, &JobMovement::Release(release), NOW)
            .await
            .unwrap()
    );

    // The exact shares in 1/10,000 micro-dollars: 343 × 3 by default, then the three jobs.
    let exact = |recipient: Recipient, wallet: &str| -> i64 {
        let default = i64::from(Shares::default().bps(recipient));
        let mut total = 0;
        if recipient != Recipient::Operator || wallet == "0xop" {
            total += 343 * 3 * default;
        }
        for (_, job_wallet, held, cost, shares) in jobs {
            if recipient != Recipient::Operator || job_wallet == wallet {
                total += i64::min(held, cost) * i64::from(shares.bps(recipient));
            }
        }
        total
    };
    let mut remainders = 0;
    for (recipient, wallet) in Recipient::ALL.iter().map(|r| (*r, "0xop")).chain([(Recipient::Operator, "0xb")]) {
        let account = recipient.account(wallet);
        let exact = exact(recipient, wallet);
        assert_eq!(store.balance(&account).await.unwrap(), exact / 10_000, "{account}");
        assert_eq!(store.carry(&account).await.unwrap(), Carry::new(exact % 10_000).unwrap(), "{account}");
        remainders += exact % 10_000;
    }
    assert_eq!(store.balance(&Account::Rounding).await.unwrap() * 10_000, remainders);
    let billed = 1_029 + 3 + 7 + 4;
    assert_eq!(store.balance(&credits).await.unwrap(), 100_000 - billed);
    let audit = store.audit_ledger().await.unwrap();
    assert!(audit.is_sound(), "{audit:?}");
    let recorded = store.recorded_transaction("settle:job:b-3").await.unwrap().unwrap();
    assert_eq!(recorded.kind, sgl_grid_store::ledger::TransactionKind::Settlement);
    assert!(recorded.postings.contains(&("escrow:job:b-3".to_owned(), -4)), "{recorded:?}");
    assert!(!recorded.postings.iter().any(|(account, _)| account.starts_with("credits:")), "all 4 held were billed");
}

/// A settlement whose key is already in the ledger (posted behind the grid's back, with the very
/// postings it would make) is refused, and the job, its escrow and every carry stay as they
/// were; the audit names the rounding the forged posting left without a carry.
pub(crate) async fn a_settlement_under_a_used_key_changes_nothing(store: &Store) {
    use sgl_grid_store::ledger::PostError;
    let admin = Account::External { source: "admin".into(), asset: Asset::Usd };
    let credits = Account::Credits { api_key_id: 1 };
    store.post(&movement("grant", vec![(admin, -100), (credits.clone(), 100)]), NOW).await.unwrap();
    dispatch(store, "j", 1, 5).await;
    let escrow = Account::Escrow { job_id: "j".into() };
    let earnings = Account::Earnings { wallet: "0xop".into() };
    let forged = vec![(escrow.clone(), -5), (earnings.clone(), 2), (Account::Rounding, 1), (credits.clone(), 2)];
    store.post(&movement("settle:job:j", forged), NOW).await.unwrap();
    let end = JobEnd::Completed { prompt_tokens: 1, completion_tokens: 1, billed_micros: 3 };
    let settlement = Settlement {
        job_id: "j".into(),
        api_key_id: 1,
        operator_wallet: "0xop".into(),
        held: 5,
        cost: 3,
        shares: Shares::default(),
    };
    let refused = store.finish_job_with("j", &end, &JobMovement::Settle(settlement), NOW).await;
    assert!(matches!(&refused, Err(PostError::IdempotencyConflict(key)) if key == "settle:job:j"), "{refused:?}");
    assert_eq!(store.job("j").await.unwrap().unwrap().status, JobStatus::Dispatched);
    for recipient in Recipient::ALL {
        assert_eq!(store.carry(&recipient.account("0xop")).await.unwrap(), Carry::ZERO, "{recipient:?}");
    }
    assert_eq!((store.balance(&earnings).await.unwrap(), store.balance(&credits).await.unwrap()), (2, 97));
    let problems = store.audit_ledger().await.unwrap().problems.join("\n");
    assert!(problems.contains("the rounding account holds 1 but the settlement carries sum to 0/10000"), "{problems}");
}
