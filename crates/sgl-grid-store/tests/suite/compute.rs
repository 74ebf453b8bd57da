//! General compute: jobs lease slices to distinct operators, receipts decide slices by quorum,
//! accepted attempts are paid by the compute split and the rest of the escrow goes back.

use sgl_grid_store::Store;
use sgl_grid_store::compute::{ComputeError, ComputeShares, Funding, LeaseAsk, NewComputeJob, ReceiptIn};
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, TransactionKind};
use sgl_protocol::api::compute::{AttemptState, WorkState};

const NOW: i64 = 1_700_000_000_000;
const KEY: i64 = 1;

async fn grant(store: &Store, micros: i64) {
    let grant = NewTransaction::from_amounts(
        format!("grant:{micros}"),
        TransactionKind::CreditsGrant,
        String::new(),
        [
            (Account::External { source: "admin".into(), asset: Asset::Usd }, -micros),
            (Account::Credits { api_key_id: KEY }, micros),
        ],
    );
    store.post(&grant, NOW).await.unwrap();
}

fn job<'a>(id: &'a str, slices: u32, redundancy: u32) -> NewComputeJob<'a> {
    NewComputeJob {
        id,
        funding: Funding::Credits { api_key_id: KEY, account_id: KEY },
        requester: "requester",
        class: "wasm",
        bundle_hash: "bundle",
        manifest: "{}",
        signature: "{}",
        redundancy,
        slice_count: slices,
        price_micros_per_gfuel: 1_000,
        attempt_hold_micros: 1_000,
        lease_ms: 60_000,
        target_node: None,
        expected: None,
        model_sha256: None,
        engine: None,
    }
}

fn ask<'a>(node: &'a str, slots: u32) -> LeaseAsk<'a> {
    LeaseAsk { node_id: node, operator: node, classes: &["wasm"], slots, model_sha256: None, engines: &[] }
}

async fn receipt(store: &Store, attempt_id: i64, node: &str, digest: &str) -> sgl_grid_store::compute::SliceVerdict {
    let receipt = ReceiptIn {
        attempt_id,
        node_id: node,
        result_digest: digest,
        fuel: Some(500_000_000),
        receipt: "{}",
        stdout: "",
        stderr: "",
        matches_expected: None,
    };
    store.submit_compute_receipt(&receipt, ComputeShares::default(), NOW + 1).await.unwrap()
}

async fn credits(store: &Store) -> i64 {
    store.balance(&Account::Credits { api_key_id: KEY }).await.unwrap()
}

async fn earnings(store: &Store, wallet: &str) -> i64 {
    store.balance(&Account::Earnings { wallet: wallet.into() }).await.unwrap()
}

async fn assert_sound(store: &Store) {
    let audit = store.audit_ledger().await.unwrap();
    assert!(audit.is_sound(), "{:?}", audit.problems);
}

pub(crate) async fn slices_go_to_distinct_operators_and_quorum_pays_agreeing_nodes(store: &Store) {
    grant(store, 10_000).await;
    store.submit_compute_job(&job("cj_1", 2, 2), NOW).await.unwrap();
    assert_eq!(credits(store).await, 6_000, "escrow = 2 slices × redundancy 2 × 1,000");
    let a = store.lease_compute(&ask("a", 4), NOW).await.unwrap();
    assert_eq!(a.iter().map(|l| l.slice).collect::<Vec<_>>(), [0, 1]);
    assert!(store.lease_compute(&ask("a", 4), NOW).await.unwrap().is_empty(), "one operator per slice");
    let b = store.lease_compute(&ask("b", 4), NOW).await.unwrap();
    assert_eq!(b.len(), 2);
    assert!(store.lease_compute(&ask("c", 4), NOW).await.unwrap().is_empty(), "each slice has its two");
    assert_eq!(store.compute_job("cj_1").await.unwrap().unwrap().state, WorkState::Leased);

    let first = receipt(store, a[0].attempt_id, "a", "x").await;
    assert_eq!((first.attempt_state, first.job_state), (AttemptState::Submitted, WorkState::Leased));
    let second = receipt(store, b[0].attempt_id, "b", "x").await;
    assert_eq!(second.accepted.iter().map(|o| o.charged_micros).collect::<Vec<_>>(), [500, 500]);
    assert!(second.rejected.is_empty());

    receipt(store, a[1].attempt_id, "a", "x").await;
    let split = receipt(store, b[1].attempt_id, "b", "y").await;
    assert!(split.accepted.is_empty() && split.rejected.is_empty(), "a tie waits for a third receipt");
    let c = store.lease_compute(&ask("c", 4), NOW).await.unwrap();
    assert_eq!((c.len(), c[0].slice, c[0].attempt), (1, 1, 3));
    let decided = receipt(store, c[0].attempt_id, "c", "x").await;
    assert_eq!(decided.accepted.iter().map(|o| o.node_id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(decided.rejected.iter().map(|o| o.node_id.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(decided.job_state, WorkState::Done);

    let record = store.compute_job("cj_1").await.unwrap().unwrap();
    assert_eq!((record.charged_micros, record.refunded_micros, record.state), (2_000, 2_000, WorkState::Done));
    assert_eq!(credits(store).await, 8_000);
    assert_eq!((earnings(store, "a").await, earnings(store, "b").await, earnings(store, "c").await), (990, 495, 495));
    assert_eq!(store.balance(&Account::Platform).await.unwrap(), 20, "1 % of 2,000");
    assert_eq!(store.balance(&Account::Escrow { job_id: "cj_1".into() }).await.unwrap(), 0);
    let slices = store.compute_slices("cj_1").await.unwrap();
    assert!(slices.iter().all(|s| s.state == WorkState::Done && s.result_digest.as_deref() == Some("x")));
    assert_sound(store).await;
}

pub(crate) async fn a_job_its_credits_cannot_cover_is_refused_whole(store: &Store) {
    grant(store, 1_500).await;
    let err = store.submit_compute_job(&job("cj_2", 2, 1), NOW).await.unwrap_err();
    assert!(matches!(err, ComputeError::InsufficientCredits { needed: 2_000, available: 1_500 }), "{err:?}");
    assert!(store.compute_job("cj_2").await.unwrap().is_none());
    assert!(store.compute_slices("cj_2").await.unwrap().is_empty());
    assert_eq!(credits(store).await, 1_500);
    assert_sound(store).await;
}

pub(crate) async fn failed_and_expired_attempts_requeue_until_the_budget_is_spent(store: &Store) {
    grant(store, 1_000).await;
    store.submit_compute_job(&job("cj_3", 1, 1), NOW).await.unwrap();
    // Budget for redundancy 1: 1 × 2 + 3 = 5 attempts.
    for node in ["n1", "n2", "n3", "n4"] {
        let lease = store.lease_compute(&ask(node, 1), NOW).await.unwrap();
        let ended = store.fail_compute_attempt(lease[0].attempt_id, node, "no luck", "err", NOW).await.unwrap();
        assert_eq!(ended.job_state, WorkState::Queued);
    }
    let last = store.lease_compute(&ask("n5", 1), NOW).await.unwrap();
    assert!(store.expire_compute_leases(&[], NOW + 59_999).await.unwrap().is_empty(), "not yet");
    let expired = store.expire_compute_leases(&[], NOW + 60_000).await.unwrap();
    assert_eq!(
        (expired.len(), expired[0].attempt_id, expired[0].job_state),
        (1, last[0].attempt_id, WorkState::Failed)
    );
    let record = store.compute_job("cj_3").await.unwrap().unwrap();
    assert!(record.error.unwrap().contains("every attempt failed or expired"));
    assert_eq!((record.charged_micros, record.refunded_micros), (0, 1_000));
    assert_eq!(credits(store).await, 1_000, "nothing charged for work not delivered");
    let late = store.fail_compute_attempt(last[0].attempt_id, "n5", "late", "", NOW).await.unwrap_err();
    assert!(matches!(late, ComputeError::NotLive("expired")), "{late:?}");
    assert_sound(store).await;
}

pub(crate) async fn a_silent_node_loses_its_lease_and_another_finishes_the_slice(store: &Store) {
    grant(store, 1_000).await;
    store.submit_compute_job(&job("cj_4", 1, 1), NOW).await.unwrap();
    let lost = store.lease_compute(&ask("dead", 1), NOW).await.unwrap();
    assert!(store.start_compute_attempt(lost[0].attempt_id, "dead").await.unwrap());
    assert_eq!(store.nodes_with_live_attempts().await.unwrap(), ["dead"]);
    let expired = store.expire_compute_leases(&["dead".to_owned()], NOW + 1).await.unwrap();
    assert_eq!(expired[0].job_state, WorkState::Queued);
    let again = store.lease_compute(&ask("alive", 1), NOW + 2).await.unwrap();
    assert_eq!(again[0].attempt, 2);
    assert_eq!(receipt(store, again[0].attempt_id, "alive", "x").await.job_state, WorkState::Done);
    let attempts = store.compute_attempts("cj_4").await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.state).collect::<Vec<_>>(), [AttemptState::Expired, AttemptState::Accepted]);
    assert_eq!(attempts[0].error.as_deref(), Some("the node went silent"));
    assert_sound(store).await;
}

pub(crate) async fn cancel_refunds_the_unused_escrow_once(store: &Store) {
    grant(store, 4_000).await;
    store.submit_compute_job(&job("cj_5", 2, 2), NOW).await.unwrap();
    let a = store.lease_compute(&ask("a", 2), NOW).await.unwrap();
    let b = store.lease_compute(&ask("b", 1), NOW).await.unwrap();
    receipt(store, a[0].attempt_id, "a", "x").await;
    receipt(store, b[0].attempt_id, "b", "x").await;
    assert_eq!(store.cancel_compute_job("cj_5", 99, NOW).await.unwrap_err().to_string(), "not found");
    assert_eq!(store.cancel_compute_job("cj_5", KEY, NOW).await.unwrap(), ["a"]);
    let err = store.cancel_compute_job("cj_5", KEY, NOW).await.unwrap_err();
    assert!(matches!(err, ComputeError::Ended("cancelled")), "{err:?}");
    let record = store.compute_job("cj_5").await.unwrap().unwrap();
    assert_eq!((record.state, record.charged_micros, record.refunded_micros), (WorkState::Cancelled, 1_000, 3_000));
    assert_eq!(credits(store).await, 3_000);
    let late = store.fail_compute_attempt(a[1].attempt_id, "a", "x", "", NOW).await.unwrap_err();
    assert!(matches!(late, ComputeError::NotLive("cancelled")), "{late:?}");
    assert!(store.lease_compute(&ask("c", 2), NOW).await.unwrap().is_empty());
    assert_sound(store).await;
}

pub(crate) async fn a_canary_goes_to_its_node_only_and_a_wrong_answer_is_rejected(store: &Store) {
    let canary = NewComputeJob { funding: Funding::Canary, target_node: Some("suspect"), ..job("cj_6", 1, 1) };
    store.submit_compute_job(&canary, NOW).await.unwrap();
    grant(store, 1_000).await;
    store.submit_compute_job(&job("cj_7", 1, 1), NOW - 1).await.unwrap();
    let other = store.lease_compute(&ask("other", 2), NOW).await.unwrap();
    assert_eq!(other.iter().map(|l| l.job_id.as_str()).collect::<Vec<_>>(), ["cj_7"]);
    let suspect = store.lease_compute(&ask("suspect", 1), NOW).await.unwrap();
    assert_eq!(suspect[0].job_id, "cj_6", "a node's canary comes first");
    let wrong = ReceiptIn {
        attempt_id: suspect[0].attempt_id,
        node_id: "suspect",
        result_digest: "lie",
        fuel: Some(1),
        receipt: "{\"evidence\":true}",
        stdout: "",
        stderr: "",
        matches_expected: Some(false),
    };
    let verdict = store.submit_compute_receipt(&wrong, ComputeShares::default(), NOW).await.unwrap();
    assert!(verdict.canary && verdict.accepted.is_empty());
    assert_eq!(verdict.rejected[0].receipt.as_deref(), Some("{\"evidence\":true}"));
    assert_eq!((verdict.attempt_state, verdict.job_state), (AttemptState::Rejected, WorkState::Failed));
    assert_eq!(earnings(store, "suspect").await, 0);
    let canary_source = Account::External { source: "canary".into(), asset: Asset::Usd };
    assert_eq!(store.balance(&canary_source).await.unwrap(), 0, "the canary's escrow went back");
    assert_sound(store).await;
}

pub(crate) async fn an_llm_job_goes_only_to_nodes_serving_its_model(store: &Store) {
    grant(store, 1_000).await;
    let llm = NewComputeJob { class: "llm", model_sha256: Some("gguf-a"), ..job("cj_8", 1, 1) };
    store.submit_compute_job(&llm, NOW).await.unwrap();
    let asking = |node: &'static str, model: Option<&'static str>| LeaseAsk {
        node_id: node,
        operator: node,
        classes: &["llm"],
        slots: 1,
        model_sha256: model,
        engines: &[],
    };
    assert!(store.lease_compute(&asking("none", None), NOW).await.unwrap().is_empty());
    assert!(store.lease_compute(&asking("other", Some("gguf-b")), NOW).await.unwrap().is_empty());
    assert_eq!(store.lease_compute(&asking("right", Some("gguf-a")), NOW).await.unwrap()[0].job_id, "cj_8");
    assert_sound(store).await;
}

pub(crate) async fn a_chained_job_leases_each_slice_after_the_one_before_is_done(store: &Store) {
    grant(store, 10_000).await;
    let train = NewComputeJob { class: "train", ..job("cj_9", 3, 1) };
    store.submit_compute_job(&train, NOW).await.unwrap();
    let asking = |node: &'static str| LeaseAsk { classes: &["train"], ..ask(node, 4) };
    let first = store.lease_compute(&asking("a"), NOW).await.unwrap();
    assert_eq!(first.iter().map(|a| a.slice).collect::<Vec<_>>(), [0], "epoch 2 waits for epoch 1");
    assert!(store.lease_compute(&asking("b"), NOW).await.unwrap().is_empty());
    receipt(store, first[0].attempt_id, "a", "epoch-1").await;
    let second = store.lease_compute(&asking("b"), NOW).await.unwrap();
    assert_eq!(second.iter().map(|a| a.slice).collect::<Vec<_>>(), [1]);
    assert_sound(store).await;
}

pub(crate) async fn a_native_job_goes_only_to_nodes_with_its_engine(store: &Store) {
    grant(store, 1_000).await;
    let image = NewComputeJob { class: "image", engine: Some("onnxruntime 1.32.0"), ..job("cj_10", 1, 1) };
    store.submit_compute_job(&image, NOW).await.unwrap();
    let asking = |node: &'static str, engines: &'static [&'static str]| LeaseAsk {
        classes: &["image"],
        engines,
        ..ask(node, 1)
    };
    assert!(store.lease_compute(&asking("none", &[]), NOW).await.unwrap().is_empty());
    assert!(store.lease_compute(&asking("older", &["onnxruntime 1.31.0"]), NOW).await.unwrap().is_empty());
    let right = store.lease_compute(&asking("right", &["blender 3.4.1", "onnxruntime 1.32.0"]), NOW).await.unwrap();
    assert_eq!(right[0].job_id, "cj_10");
    assert_sound(store).await;
}
