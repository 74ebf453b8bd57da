//! Job records finish exactly once.

use sgl_grid_store::Store;
use sgl_grid_store::jobs::{JobEnd, JobStatus, NewJob};

const NOW: i64 = 1_700_000_000_000;

fn job(id: &str) -> NewJob<'_> {
    NewJob {
        id,
        node_id: "n1",
        api_key_id: 1,
        model: "m",
        sealed_by_caller: true,
        stream: false,
        max_tokens: 16,
        held_micros: 100,
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

pub(crate) async fn a_job_and_its_hold_are_recorded_together_and_settle_once(store: &Store) {
    use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posting};
    let movement = |key: &str, postings: Vec<(Account, i64)>| NewTransaction {
        idempotency_key: key.into(),
        kind: "test".into(),
        memo: String::new(),
        postings: postings.into_iter().map(|(account, amount)| Posting { account, amount }).collect(),
    };
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
    let release = movement("settle:j2", vec![(escrow("j2"), -100), (credits.clone(), 100)]);
    let end = JobEnd::Failed { error: "node died" };
    assert!(store.finish_job_with("j2", &end, &release, NOW).await.unwrap());
    assert!(!store.finish_job_with("j2", &end, &release, NOW).await.unwrap(), "a second finish changes nothing");
    assert_eq!(store.balance(&credits).await.unwrap(), 150);
    assert_eq!(store.job("j2").await.unwrap().unwrap().status, JobStatus::Failed);
}
