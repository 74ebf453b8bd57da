//! The dashboard's reports: an account's usage by day, key and model; the newest tamper events;
//! an operator's nodes; a key's label.

use sgl_grid_store::Store;
use sgl_grid_store::api_keys::NewApiKey;
use sgl_grid_store::jobs::{JobEnd, NewJob};
use sgl_grid_store::nodes::TamperKind;
use sgl_grid_store::reports::{DAY_MS, UsageRecord};

/// Noon of a day, so an hour either way stays on it.
const NOON: i64 = 20_000 * DAY_MS + DAY_MS / 2;

fn job<'a>(id: &'a str, api_key_id: i64, model: &'a str) -> NewJob<'a> {
    NewJob {
        id,
        node_id: "n1",
        api_key_id,
        model,
        sealed_by_caller: true,
        stream: false,
        max_tokens: 16,
        held_micros: 100,
        replica: None,
    }
}

pub(crate) async fn usage_is_summed_per_day_key_and_model_within_one_account(store: &Store) {
    let key = |hash, account_id| NewApiKey {
        key_hash: hash,
        prefix: "x402c_",
        label: "",
        wallet: None,
        account_id,
        expires_at: None,
    };
    let root = store.create_api_key(&key("h-root", None), NOON).await.unwrap();
    let child = store.create_api_key(&key("h-child", Some(root.id)), NOON).await.unwrap();
    let stranger = store.create_api_key(&key("h-other", None), NOON).await.unwrap();
    let done = |p, c, billed| JobEnd::Completed { prompt_tokens: p, completion_tokens: c, billed_micros: billed };
    for (id, key_id, model, at, end) in [
        ("a", root.id, "m", NOON - DAY_MS, Some(done(10, 5, 4))),
        ("b", root.id, "m", NOON, Some(done(3, 2, 1))),
        ("c", root.id, "m", NOON + 3_600_000, Some(done(7, 1, 2))),
        ("d", child.id, "m", NOON, Some(done(1, 1, 1))),
        ("e", child.id, "other", NOON, None),
        ("f", stranger.id, "m", NOON, Some(done(100, 100, 100))),
    ] {
        store.insert_job(&job(id, key_id, model), at).await.unwrap();
        if let Some(end) = end {
            assert!(store.finish_job(id, &end, at + 10).await.unwrap());
        } else {
            assert!(store.finish_job(id, &JobEnd::Failed { error: "node died" }, at + 10).await.unwrap());
        }
    }
    let today = NOON.div_euclid(DAY_MS);
    let row = |day, api_key_id, model: &str, jobs, prompt_tokens, completion_tokens, billed_micros| UsageRecord {
        day,
        api_key_id,
        model: model.into(),
        jobs,
        prompt_tokens,
        completion_tokens,
        billed_micros,
    };
    assert_eq!(
        store.account_usage(root.id, (today - 1) * DAY_MS).await.unwrap(),
        vec![
            row(today - 1, root.id, "m", 1, 10, 5, 4),
            row(today, root.id, "m", 2, 10, 3, 3),
            row(today, child.id, "m", 1, 1, 1, 1),
            row(today, child.id, "other", 1, 0, 0, 0),
        ],
        "the whole account, a failed job billing nothing"
    );
    assert_eq!(store.account_usage(root.id, today * DAY_MS).await.unwrap().len(), 3, "from today only");
    assert_eq!(
        store.account_usage(stranger.id, 0).await.unwrap(),
        vec![row(today, stranger.id, "m", 1, 100, 100, 100)]
    );

    // Prompts of at least N tokens for a model since a time, whoever sent them (a failed job
    // has no prompt count): 7 and 100 of "m" since noon, 10 a day before is out.
    assert_eq!(store.prompts_at_least("m", NOON, 7).await.unwrap(), 2);
    assert_eq!(store.prompts_at_least("m", NOON, 8).await.unwrap(), 1);
    assert_eq!(store.prompts_at_least("m", NOON - DAY_MS, 7).await.unwrap(), 3);
    assert_eq!(store.prompts_at_least("other", 0, 0).await.unwrap(), 0);

    assert!(store.set_api_key_label(child.id, "renamed").await.unwrap());
    assert_eq!(store.api_key(child.id).await.unwrap().unwrap().label, "renamed");
    assert!(!store.set_api_key_label(9_999, "x").await.unwrap());
}

pub(crate) async fn the_newest_tamper_events_and_a_wallets_nodes_are_listed(store: &Store) {
    store.insert_node(&crate::nodes::node("n1", "k1", "t1"), NOON).await.unwrap();
    for (job, at) in [("j1", NOON), ("j2", NOON + 5), ("j3", NOON + 9)] {
        store.record_tamper("n1", job, TamperKind::BadResultSignature, "{}", at).await.unwrap();
    }
    let newest = store.recent_tamper_events(2).await.unwrap();
    let jobs: Vec<&str> = newest.iter().map(|t| t.job_id.as_str()).collect();
    assert_eq!(jobs, ["j3", "j2"]);
    assert_eq!(newest[0].kind, TamperKind::BadResultSignature.as_str());
    assert!(store.recent_slashes(5).await.unwrap().is_empty());
    assert_eq!(store.wallet_nodes("0xOP").await.unwrap().len(), 1, "addresses compare without case");
    assert!(store.wallet_nodes("0xother").await.unwrap().is_empty());
}

pub(crate) async fn an_accounts_credits_are_summed_per_day(store: &Store) {
    use sgl_grid_store::ledger::{Account, Asset, NewTransaction, Posting, TransactionKind};
    let earnings = Account::Earnings { wallet: "0xop".into() };
    let movement = |key: &str, micros: i64| NewTransaction {
        idempotency_key: key.into(),
        kind: TransactionKind::CreditsGrant,
        memo: String::new(),
        postings: vec![
            Posting { account: Account::External { source: "test".into(), asset: Asset::Usd }, amount: -micros },
            Posting { account: earnings.clone(), amount: micros },
        ],
    };
    store.post(&movement("a", 5), NOON - DAY_MS).await.unwrap();
    store.post(&movement("b", 7), NOON).await.unwrap();
    store.post(&movement("c", 3), NOON + 60_000).await.unwrap();
    let today = NOON.div_euclid(DAY_MS);
    assert_eq!(store.daily_credits(&earnings, 0).await.unwrap(), vec![(today - 1, 5), (today, 10)]);
    assert_eq!(store.daily_credits(&earnings, today * DAY_MS).await.unwrap(), vec![(today, 10)]);
    assert!(store.daily_credits(&Account::Earnings { wallet: "0xother".into() }, 0).await.unwrap().is_empty());
}
