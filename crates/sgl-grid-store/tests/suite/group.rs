//! Group commit: many jobs' starts and ends written in one transaction come to exactly what the
//! same writes one by one would, a hold the credits cannot cover is refused on its own, and a
//! group that cannot be written whole falls back to one by one.

use sgl_grid_store::Store;
use sgl_grid_store::group::{Commit, EndedJob, JobWrite, StartedJob};
use sgl_grid_store::jobs::{JobMovement, JobStatus};
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posting, TransactionKind};
use sgl_grid_store::nodes::NewNode;
use sgl_grid_store::reputation::{self, Outcome};
use sgl_grid_store::settlement::{Settlement, Shares};

const NOW: i64 = 1_700_000_000_000;

fn movement(key: String, kind: TransactionKind, postings: Vec<(Account, i64)>) -> NewTransaction {
    let postings = postings.into_iter().map(|(account, amount)| Posting { account, amount }).collect();
    NewTransaction { idempotency_key: key, kind, memo: String::new(), postings }
}

fn escrow(id: &str) -> Account {
    Account::Escrow { job_id: id.into() }
}

fn start(id: &str, api_key_id: i64, held: i64) -> JobWrite {
    let job = StartedJob {
        id: id.into(),
        node_id: "n1".into(),
        api_key_id,
        model: "m".into(),
        sealed_by_caller: false,
        stream: false,
        max_tokens: 8,
        held_micros: held,
        replica: None,
    };
    let credits = Account::Credits { api_key_id };
    let hold =
        movement(format!("hold:job:{id}"), TransactionKind::EscrowHold, vec![(credits, -held), (escrow(id), held)]);
    JobWrite::Start { job, hold }
}

/// Settles `id` for `cost` on node `n` (1 or 2), whose operator's wallet is `0xop` or `0xb`.
fn settle(id: &str, cost: i64, n: u8) -> JobWrite {
    let settlement = Settlement {
        job_id: id.into(),
        api_key_id: 1,
        operator_wallet: if n == 1 { "0xop" } else { "0xb" }.into(),
        held: 5,
        cost,
        shares: Shares::default(),
    };
    JobWrite::End {
        job_id: id.into(),
        end: EndedJob::Completed { prompt_tokens: 1, completion_tokens: 2, billed_micros: cost },
        movement: JobMovement::Settle(settlement),
        outcome: Some((format!("n{n}"), true)),
    }
}

fn release(id: &str, api_key_id: i64, outcome: Option<bool>) -> JobWrite {
    let credits = Account::Credits { api_key_id };
    let back = movement(format!("settle:job:{id}"), TransactionKind::Release, vec![(escrow(id), -5), (credits, 5)]);
    JobWrite::End {
        job_id: id.into(),
        end: EndedJob::Failed { error: "the node failed".into() },
        movement: JobMovement::Release(back),
        outcome: outcome.map(|completed| ("n1".into(), completed)),
    }
}

async fn balance(store: &Store, account: Account) -> i64 {
    store.balance(&account).await.unwrap()
}

async fn grant(store: &Store, api_key_id: i64, micros: i64) {
    let admin = Account::External { source: "admin".into(), asset: Asset::Usd };
    let credits = Account::Credits { api_key_id };
    let grant = movement(
        format!("grant:{api_key_id}"),
        TransactionKind::CreditsGrant,
        vec![(admin, -micros), (credits, micros)],
    );
    store.post(&grant, NOW).await.unwrap();
}

pub(crate) async fn a_group_of_job_writes_comes_to_what_the_writes_one_by_one_would(store: &Store) {
    for (id, key, wallet, token) in [("n1", "k1", "0xop", "t1"), ("n2", "k2", "0xb", "t2")] {
        let node = NewNode {
            id,
            public_key: key,
            wallet,
            tee_type: "linux_se",
            token_hash: token,
            token_expires_at: NOW + 1000,
            cpu_cores: 2,
            ram_gb: 24.0,
            gpu_model: "none",
            manifest: None,
        };
        store.insert_node(&node, NOW).await.unwrap();
    }
    grant(store, 1, 1_000).await;
    grant(store, 2, 12).await;

    // Ten starts for key 1 and three for key 2, whose credits cover two: the third is refused
    // alone, without a job row, and the writes after it still go through.
    let mut starts: Vec<JobWrite> = ["j1", "j2", "j3"].iter().map(|id| start(id, 2, 5)).collect();
    starts.extend((0..10).map(|n| start(&format!("k{n}"), 1, 5)));
    let (outcomes, commit) = store.write_jobs(&starts, NOW).await;
    assert!(matches!(commit, Commit::Together), "{commit:?}");
    assert!(matches!(outcomes[2], Err(PostError::InsufficientFunds { balance: 2, debit: 5, .. })), "{outcomes:?}");
    assert!(outcomes.iter().enumerate().all(|(i, outcome)| i == 2 || matches!(outcome, Ok(true))), "{outcomes:?}");
    assert_eq!(store.job("j3").await.unwrap(), None, "a refused hold records no job");
    assert_eq!(store.job("k9").await.unwrap().unwrap().status, JobStatus::Dispatched);
    assert_eq!((balance(store, Account::Credits { api_key_id: 2 }).await, balance(store, escrow("j2")).await), (2, 5));
    assert_eq!(balance(store, Account::Credits { api_key_id: 1 }).await, 950);

    // Ten settlements of 3 micro-dollars on two nodes of two operators (a job ended twice in the
    // group ends once), a release counted against a node, one not counted, and an end of a job
    // that never was.
    let mut ends: Vec<JobWrite> = (0..10).map(|n| settle(&format!("k{n}"), 3, 1 + n % 2)).collect();
    ends.push(settle("k0", 3, 1));
    ends.extend([release("j1", 2, Some(false)), release("j2", 2, None), release("nope", 2, None)]);
    let (outcomes, commit) = store.write_jobs(&ends, NOW).await;
    assert!(matches!(commit, Commit::Together), "{commit:?}");
    let outcomes: Vec<bool> = outcomes.into_iter().map(Result::unwrap).collect();
    let mut expected = vec![true; 10];
    expected.extend([false, true, true, false]);
    assert_eq!(outcomes, expected);

    // As one by one: 0.8 of 15 micro-dollars to each operator, 0.05, 0.1 and 0.05 of 30 to the
    // platform, the stakers and the burn, the fractions carried.
    let (op, b) = (Account::Earnings { wallet: "0xop".into() }, Account::Earnings { wallet: "0xb".into() });
    let paid = [op.clone(), b.clone(), Account::Platform, Account::Stakers, Account::Burn, Account::Rounding];
    let mut amounts = Vec::new();
    for account in paid {
        amounts.push(balance(store, account).await);
    }
    assert_eq!(amounts, [12, 12, 1, 3, 1, 1]);
    let mut carried = Vec::new();
    for account in [op, b, Account::Platform, Account::Stakers, Account::Burn] {
        carried.push(store.carry(&account).await.unwrap().units());
    }
    assert_eq!(carried, [0, 0, 5_000, 0, 5_000]);
    assert_eq!(balance(store, Account::Credits { api_key_id: 1 }).await, 1_000 - 30);
    assert_eq!(balance(store, Account::Credits { api_key_id: 2 }).await, 12);
    let mut value = 0.5;
    for _ in 0..5 {
        value = reputation::after(value, Outcome::Completed);
    }
    let (n1, n2) = (store.node("n1").await.unwrap().unwrap(), store.node("n2").await.unwrap().unwrap());
    assert_eq!((n2.jobs_completed, n2.jobs_failed), (5, 0));
    assert!((n2.reputation - value).abs() < 1e-12, "{} against {value}", n2.reputation);
    value = reputation::after(value, Outcome::Failed);
    assert_eq!((n1.jobs_completed, n1.jobs_failed), (5, 1));
    assert!((n1.reputation - value).abs() < 1e-12, "{} against {value}", n1.reputation);
    let k0 = store.job("k0").await.unwrap().unwrap();
    assert_eq!((k0.status, k0.billed_micros, k0.completion_tokens), (JobStatus::Completed, Some(3), Some(2)));
    assert!(store.audit_ledger().await.unwrap().is_sound());

    // A group holding a job id already used cannot be written whole: each write is then done
    // alone, the repeat refused and the new job recorded.
    let (outcomes, commit) = store.write_jobs(&[start("k1", 1, 5), start("k10", 1, 5)], NOW).await;
    assert!(
        matches!(commit, Commit::Fallback(PostError::IdempotencyConflict(ref key)) if key == "hold:job:k1"),
        "{commit:?}"
    );
    assert!(outcomes[0].is_err() && matches!(outcomes[1], Ok(true)), "{outcomes:?}");
    assert_eq!(balance(store, escrow("k10")).await, 5);
    assert_eq!(balance(store, Account::Credits { api_key_id: 1 }).await, 1_000 - 35);
    assert!(store.audit_ledger().await.unwrap().is_sound());
}
