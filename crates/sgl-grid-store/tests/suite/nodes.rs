//! Node records: registration, token rotation, challenges, prices, outcomes, tamper evidence.

use sgl_grid_store::Store;
use sgl_grid_store::nodes::{CustomPrice, NewNode};

const NOW: i64 = 1_700_000_000_000;

pub(crate) fn node<'a>(id: &'a str, key: &'a str, token_hash: &'a str) -> NewNode<'a> {
    NewNode {
        id,
        public_key: key,
        wallet: "0xop",
        tee_type: "linux_se",
        token_hash,
        token_expires_at: NOW + 1000,
        cpu_cores: 2,
        ram_gb: 24.0,
        gpu_model: "none",
        manifest: None,
    }
}

pub(crate) async fn nodes_register_once_and_authenticate_by_token(store: &Store) {
    let created = store.insert_node(&node("n1", "k1", "t1"), NOW).await.unwrap();
    assert_eq!((created.reputation, created.off_grid, created.attested), (0.5, false, false));
    assert!(store.insert_node(&node("n2", "k1", "t2"), NOW).await.is_err(), "one registration per key");
    assert!(store.insert_node(&node("n1", "k3", "t3"), NOW).await.is_err(), "ids are unique");
    assert!(store.public_key_registered("k1").await.unwrap());
    assert!(!store.public_key_registered("k9").await.unwrap());
    assert_eq!(store.node_by_token("t1", NOW).await.unwrap().unwrap().id, "n1");
    assert_eq!(store.node_by_token("t1", NOW + 1000).await.unwrap(), None, "expired tokens fail");
    assert_eq!(store.node_by_token("nope", NOW).await.unwrap(), None);
    assert_eq!(store.list_nodes().await.unwrap().len(), 1);
}

pub(crate) async fn rotated_tokens_overlap_until_the_new_one_is_used(store: &Store) {
    let registered = store.insert_node(&node("n1", "k1", "old"), NOW).await.unwrap();
    store.rotate_node_token(&registered, "new", NOW + 5000).await.unwrap();
    // The node never received "new" and rotates again from "old": "old" must keep working.
    let via_old = store.node_by_token("old", NOW).await.unwrap().unwrap();
    assert!(via_old.via_previous_token);
    store.rotate_node_token(&via_old, "newer", NOW + 6000).await.unwrap();
    assert!(store.node_by_token("new", NOW).await.unwrap().is_none(), "the unreceived token is replaced");
    assert!(store.node_by_token("old", NOW).await.unwrap().is_some());
    store.rotate_node_token(&via_old, "new", NOW + 5000).await.unwrap();
    assert!(store.node_by_token("old", NOW).await.unwrap().is_some(), "the node may not have the new token yet");
    assert!(store.node_by_token("new", NOW).await.unwrap().is_some());
    assert!(store.node_by_token("old", NOW).await.unwrap().is_none(), "using the new token retires the old one");
}

pub(crate) async fn challenges_are_single_use_and_expire(store: &Store) {
    store.insert_node(&node("n1", "k1", "t1"), NOW).await.unwrap();
    store.put_challenge("n1", "c-old", NOW + 100).await.unwrap();
    store.put_challenge("n1", "c-new", NOW + 100).await.unwrap();
    assert_eq!(store.take_challenge("n1", NOW).await.unwrap().as_deref(), Some("c-new"));
    assert_eq!(store.take_challenge("n1", NOW).await.unwrap(), None);
    store.put_challenge("n1", "c-late", NOW + 100).await.unwrap();
    assert_eq!(store.take_challenge("n1", NOW + 100).await.unwrap(), None);
}

pub(crate) async fn prices_outcomes_and_tamper_evidence(store: &Store) {
    store.insert_node(&node("n1", "k1", "t1"), NOW).await.unwrap();
    store.set_price("n1", "m", CustomPrice { input_per_m: 0.1, output_per_m: 0.2 }).await.unwrap();
    store.set_price("n1", "m", CustomPrice { input_per_m: 0.3, output_per_m: 0.4 }).await.unwrap();
    assert_eq!(
        store.prices("n1").await.unwrap(),
        vec![("m".to_owned(), CustomPrice { input_per_m: 0.3, output_per_m: 0.4 })]
    );
    assert!(store.reset_price("n1", "m").await.unwrap());
    assert!(!store.reset_price("n1", "m").await.unwrap());
    store.record_job_outcome("n1", true, NOW).await.unwrap();
    store.record_job_outcome("n1", false, NOW).await.unwrap();
    let after = store.node("n1").await.unwrap().unwrap();
    assert_eq!((after.jobs_completed, after.jobs_failed), (1, 1));
    assert!(after.reputation < 0.5);
    store.set_off_grid("n1", true).await.unwrap();
    store.set_attested("n1", true, "abc").await.unwrap();
    store
        .record_tamper("n1", "job-1", sgl_grid_store::nodes::TamperKind::BadResultSignature, "{\"sig\":\"x\"}", NOW)
        .await
        .unwrap();
    let tampered = store.node("n1").await.unwrap().unwrap();
    assert!(tampered.off_grid && tampered.attested && tampered.binary_hash.as_deref() == Some("abc"));
    assert!(tampered.reputation < after.reputation * 0.51);
    assert_eq!(store.tamper_count("n1").await.unwrap(), 1);
    // Reputation decays toward neutral: half the distance in a half-life, all of it eventually.
    let half_life = sgl_grid_store::reputation::HALF_LIFE_MS;
    let distance = 0.5 - tampered.reputation;
    assert!((tampered.reputation_at(NOW + half_life) - (0.5 - distance / 2.0)).abs() < 1e-9);
    assert!((tampered.reputation_at(NOW + 40 * half_life) - 0.5).abs() < 1e-9);
    // An outcome much later starts from the decayed value, not the stale one.
    store.record_job_outcome("n1", true, NOW + 40 * half_life).await.unwrap();
    let later = store.node("n1").await.unwrap().unwrap();
    assert!((later.reputation - 0.51).abs() < 1e-9, "{}", later.reputation);
    assert_eq!(store.node("nope").await.unwrap(), None);
}

/// A job's end and its node's outcome (counter and reputation) are one transaction: counted
/// once with the job, and not at all when the job had already ended.
pub(crate) async fn a_jobs_outcome_is_counted_with_its_end(store: &Store) {
    use sgl_grid_store::jobs::{JobEnd, JobMovement, NewJob};
    use sgl_grid_store::ledger::{Account, Asset, NewTransaction, Posting, TransactionKind};
    store.insert_node(&node("n9", "k9", "t9"), NOW).await.unwrap();
    let movement = |key: &str, from: Account, to: Account, micros: i64| NewTransaction {
        idempotency_key: key.into(),
        kind: TransactionKind::CreditsGrant,
        memo: String::new(),
        postings: vec![Posting { account: from, amount: -micros }, Posting { account: to, amount: micros }],
    };
    let (credits, escrow) = (Account::Credits { api_key_id: 9 }, Account::Escrow { job_id: "j9".into() });
    let admin = Account::External { source: "admin".into(), asset: Asset::Usd };
    store.post(&movement("grant-9", admin, credits.clone(), 10), NOW).await.unwrap();
    let job = NewJob {
        id: "j9",
        node_id: "n9",
        api_key_id: 9,
        model: "m",
        sealed_by_caller: true,
        stream: false,
        max_tokens: 8,
        held_micros: 10,
        replica: None,
    };
    store.insert_job_with_hold(&job, &movement("hold:j9", credits.clone(), escrow.clone(), 10), NOW).await.unwrap();
    let release = JobMovement::Release(movement("settle:j9", escrow, credits, 10));
    let end = JobEnd::Failed { error: "the node failed" };
    assert!(store.finish_job_scored("j9", &end, &release, Some(("n9", false)), NOW).await.unwrap());
    assert!(!store.finish_job_scored("j9", &end, &release, Some(("n9", false)), NOW).await.unwrap());
    let record = store.node("n9").await.unwrap().unwrap();
    assert_eq!((record.jobs_failed, record.jobs_completed), (1, 0), "counted once, with the job's end");
    assert!(record.reputation < 0.5, "{}", record.reputation);
}
