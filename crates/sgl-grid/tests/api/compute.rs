//! General compute through the real router: bundles refused before any charge, slices leased
//! to distinct operators, receipts decided by quorum and paid by the 99/1 split, liars outvoted
//! and slashed, canaries, expired leases, cancel and the result's download.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sgl_protocol::api::compute::{Lease, LeaseResponse};
use sgl_protocol::compute::Digest;
use sgl_protocol::compute::bundle::BundleSignature;
use sgl_protocol::compute::receipt::{OutputFile, Receipt, ResourceUsage};
use sgl_protocol::identity::NodeIdentity;

use crate::harness::{Grid, Node, assert_error, sse_events};

const NO_CANARIES: &str = "[compute]\ncanary_rate = 0.0\n";
const FUEL: u64 = 500_000_000;

pub(crate) struct Requester {
    identity: NodeIdentity,
    pub(crate) key: String,
    pub(crate) key_id: i64,
}

impl Requester {
    pub(crate) async fn new(grid: &Grid) -> Self {
        let (key_id, key) = grid.api_key(1.0).await;
        Self { identity: NodeIdentity::from_seed(&[42; 32]), key, key_id }
    }

    pub(crate) fn auth(&self) -> [(&str, &str); 1] {
        [("X-API-Key", self.key.as_str())]
    }

    pub(crate) async fn put_blob(&self, grid: &Grid, text: &str) -> Digest {
        let digest = Digest::of(text);
        let (status, body) =
            grid.call("PUT", &format!("/v1/blobs/{digest}"), &self.auth(), Some(Value::String(text.into()))).await;
        assert!(status == StatusCode::CREATED || status == StatusCode::OK, "{status} {body}");
        digest
    }

    fn signed(&self, manifest: &Value) -> Value {
        let text = manifest.to_string();
        json!({"manifest": text, "signature": BundleSignature::sign(&self.identity, text.as_bytes())})
    }

    pub(crate) async fn submit(&self, grid: &Grid, manifest: &Value) -> (StatusCode, Value) {
        grid.call("POST", "/v1/jobs", &self.auth(), Some(self.signed(manifest))).await
    }

    async fn get(&self, grid: &Grid, path: &str) -> (StatusCode, Value) {
        grid.call("GET", path, &self.auth(), None).await
    }
}

pub(crate) fn manifest(module: Digest, slices: usize, redundancy: u32) -> Value {
    let slices: Vec<Value> =
        (0..slices).map(|i| json!({"args": [(i * 100).to_string(), ((i + 1) * 100).to_string()]})).collect();
    json!({
        "format": "sgl-bundle-v1", "class": "wasm", "entry": "primes.wasm",
        "files": {"primes.wasm": module},
        "limits": {"fuel": 1_000_000_000u64, "memory_mb": 64, "wall_secs": 60, "output_mb": 1, "output_files": 4},
        "slices": slices, "redundancy": redundancy, "max_price_micros_per_gfuel": 1000, "seed": 7
    })
}

async fn compute_node(grid: &Grid, wallet: &str, seed: u8) -> Node {
    let node = grid.node(wallet, seed).await;
    wasm_beat(grid, &node).await;
    node
}

async fn wasm_beat(grid: &Grid, node: &Node) {
    class_beat(grid, node, "wasm").await;
}

async fn class_beat(grid: &Grid, node: &Node, class: &str) {
    let mut body = node.heartbeat_body(&[]);
    body["workloads"] = json!([class]);
    let (status, answer) = node.heartbeat(grid, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn lease(grid: &Grid, node: &Node, slots: u32) -> Vec<Lease> {
    lease_class(grid, node, "wasm", slots).await
}

pub(crate) async fn lease_class(grid: &Grid, node: &Node, class: &str, slots: u32) -> Vec<Lease> {
    let (status, body) =
        node.call(grid, "POST", "/grid/compute/lease", Some(json!({"classes": [class], "slots": slots}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value::<LeaseResponse>(body).unwrap().leases
}

/// Uploads `output` as the slice's `primes.txt` and posts the node's signed receipt.
async fn report(grid: &Grid, node: &Node, lease: &Lease, output: &str) -> (StatusCode, Value) {
    let digest = Digest::of(output);
    let (status, body) =
        node.call(grid, "PUT", &format!("/grid/blobs/{digest}"), Some(Value::String(output.into()))).await;
    assert!(status.is_success(), "{body}");
    let receipt = Receipt {
        job_id: lease.job_id.clone(),
        slice: lease.slice,
        attempt: lease.attempt,
        node_id: node.node_id,
        bundle_hash: Digest::of(&lease.manifest),
        inputs: Default::default(),
        outputs: vec![OutputFile {
            path: "primes.txt".into(),
            sha256: digest,
            size: output.len() as u64,
            pixels: None,
        }],
        exit_code: 0,
        runtime: "wasmtime 48.0.8".into(),
        usage: ResourceUsage { fuel: Some(FUEL), cpu_ms: 1, peak_memory_bytes: 1 << 20, wall_ms: 2 },
        result_digest: Digest::of(b""),
        proof: Digest::of(b""),
        signature: String::new(),
    }
    .seal(&node.identity);
    let path = format!("/grid/compute/attempts/{}/receipt", lease.attempt_id);
    node.call(grid, "POST", &path, Some(json!({"receipt": receipt, "stdout": "count 25\n"}))).await
}

#[tokio::test]
async fn bad_bundles_are_refused_clearly_and_cost_nothing() {
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let wrong = grid
        .call("PUT", &format!("/v1/blobs/{}", Digest::of("x")), &requester.auth(), Some(Value::String("y".into())))
        .await;
    assert_error(wrong, StatusCode::BAD_REQUEST, "invalid_request");
    let again =
        grid.call("PUT", &format!("/v1/blobs/{module}"), &requester.auth(), Some(Value::String("module".into()))).await;
    assert_eq!((again.0, &again.1["created"]), (StatusCode::OK, &json!(false)));

    let good = manifest(module, 1, 1);
    let mut forged = requester.signed(&good);
    forged["signature"]["signature"] =
        json!(BundleSignature::sign(&NodeIdentity::from_seed(&[1; 32]), b"other").signature);
    assert_error(
        grid.call("POST", "/v1/jobs", &requester.auth(), Some(forged)).await,
        StatusCode::BAD_REQUEST,
        "invalid_signature",
    );
    let missing = manifest(Digest::of("not uploaded"), 1, 1);
    let (status, body) = requester.submit(&grid, &missing).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains(&Digest::of("not uploaded").to_hex()), "{body}");
    let mut over = good.clone();
    over["limits"]["fuel"] = json!(10_000_000_000_000u64);
    let (status, body) = requester.submit(&grid, &over).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("limits.fuel"), "{body}");
    let mut unknown = good.clone();
    unknown["class"] = json!("quantum");
    let (status, body) = requester.submit(&grid, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown variant `quantum`"), "{body}");
    let mut cheap = good.clone();
    cheap["max_price_micros_per_gfuel"] = json!(1);
    assert_error(requester.submit(&grid, &cheap).await, StatusCode::BAD_REQUEST, "price_cap_unmet");

    assert_eq!(grid.credits(requester.key_id).await, 1_000_000, "nothing was charged");
    let (_, list) = requester.get(&grid, "/v1/jobs").await;
    assert_eq!(list["data"], json!([]));
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_job_runs_on_distinct_operators_is_verified_paid_and_downloads() {
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let (status, job) = requester.submit(&grid, &manifest(module, 2, 2)).await;
    assert_eq!((status, &job["state"]), (StatusCode::OK, &json!("queued")), "{job}");
    assert_eq!(job["escrow_micros"], 800, "2 slices × 2 × 10^9 fuel at 200 micro-USD per 10^9");
    let id = job["id"].as_str().unwrap().to_owned();
    let (a, b, c) =
        (compute_node(&grid, "0xa", 1).await, compute_node(&grid, "0xb", 2).await, compute_node(&grid, "0xc", 3).await);
    let leased_a = lease(&grid, &a, 4).await;
    assert_eq!(leased_a.len(), 2);
    assert_eq!(lease(&grid, &b, 4).await.len(), 2);
    let leased_b = {
        let (_, view) = requester.get(&grid, &format!("/v1/jobs/{id}")).await;
        assert_eq!(view["state"], "leased", "{view}");
        view
    };
    assert!(lease(&grid, &c, 4).await.is_empty(), "each slice already has two nodes: {leased_b}");
    let b_leases = grid.store.compute_attempts(&id).await.unwrap();
    let b_leases: Vec<Lease> = leased_a
        .iter()
        .map(|l| {
            let other = b_leases.iter().find(|r| r.slice == l.slice && r.node_id == b.node_id.to_string()).unwrap();
            Lease { attempt_id: other.id, attempt: other.attempt, ..l.clone() }
        })
        .collect();
    for (la, lb) in leased_a.iter().zip(&b_leases) {
        let text = format!("primes of slice {}\n", la.slice);
        assert_eq!(report(&grid, &a, la, &text).await.1["state"], "submitted");
        assert_eq!(report(&grid, &b, lb, &text).await.1["state"], "accepted");
    }
    let (_, done) = requester.get(&grid, &format!("/v1/jobs/{id}")).await;
    assert_eq!(
        (&done["state"], &done["charged_micros"], &done["refunded_micros"]),
        (&json!("done"), &json!(400), &json!(400)),
        "{done}"
    );
    assert_eq!(grid.credits(requester.key_id).await, 1_000_000 - 400);
    for wallet in ["0xa", "0xb"] {
        let earnings = sgl_grid_store::ledger::Account::Earnings { wallet: wallet.into() };
        assert_eq!(grid.store.balance(&earnings).await.unwrap(), 198, "99 % of 2 × 100");
    }
    assert_eq!(grid.store.balance(&sgl_grid_store::ledger::Account::Platform).await.unwrap(), 4, "1 % of 400");

    let (status, result) = requester.get(&grid, &format!("/v1/jobs/{id}/result")).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["slices"][1]["receipts"].as_array().unwrap().len(), 2);
    let output = result["slices"][1]["outputs"][0]["sha256"].as_str().unwrap();
    let (status, bytes) = requester.get(&grid, &format!("/v1/blobs/{output}")).await;
    assert_eq!((status, bytes), (StatusCode::OK, json!("primes of slice 1\n")));
    let (_, logs) = requester.get(&grid, &format!("/v1/jobs/{id}/logs")).await;
    assert_eq!(logs.as_array().unwrap().len(), 4, "{logs}");
    let (_, followed) = requester.get(&grid, &format!("/v1/jobs/{id}/logs?follow=true")).await;
    let events = sse_events(followed.as_str().unwrap());
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["log", "log", "log", "log", "state", "done"]);
    let (_, stranger) = grid.api_key(1.0).await;
    assert_error(
        grid.call("GET", &format!("/v1/jobs/{id}"), &[("X-API-Key", &stranger)], None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_lying_node_is_outvoted_loses_reputation_and_is_slashed_with_evidence() {
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let (_, job) = requester.submit(&grid, &manifest(module, 1, 2)).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let (honest, liar, third) =
        (compute_node(&grid, "0xh", 1).await, compute_node(&grid, "0xl", 2).await, compute_node(&grid, "0xt", 3).await);
    let h = lease(&grid, &honest, 1).await;
    let l = lease(&grid, &liar, 1).await;
    assert!(lease(&grid, &third, 1).await.is_empty());
    assert_eq!(report(&grid, &honest, &h[0], "2\n3\n").await.1["state"], "submitted");
    assert_eq!(report(&grid, &liar, &l[0], "4\n").await.1["state"], "submitted", "a tie waits for a third");
    let t = lease(&grid, &third, 1).await;
    assert_eq!(t[0].attempt, 3);
    assert_eq!(report(&grid, &third, &t[0], "2\n3\n").await.1["state"], "accepted");
    let (_, view) = requester.get(&grid, &format!("/v1/jobs/{id}")).await;
    let states: Vec<&Value> = view["slices"][0]["attempts"].as_array().unwrap().iter().map(|a| &a["state"]).collect();
    assert_eq!(states, [&json!("accepted"), &json!("rejected"), &json!("accepted")], "{view}");
    assert_eq!(grid.store.tamper_count(&liar.node_id.to_string()).await.unwrap(), 1);
    let (_, stake) = grid.call("GET", "/grid/operators/0xl/stake", &[], None).await;
    assert_eq!(stake["slashes"][0]["reason"], "wrong_compute_result", "{stake}");
    assert_eq!(stake["staked_micros"], 47_500_000_000i64, "{stake}");
    let slashes = grid.store.slashes("0xl").await.unwrap();
    let evidence: Value = serde_json::from_str(&slashes[0].evidence).unwrap();
    assert_eq!(evidence["agreeing_receipts"].as_array().unwrap().len(), 2, "{evidence}");
    assert_eq!(evidence["wrong_receipt"]["node_id"], liar.node_id.to_string());
    let liar_reputation = grid.store.node(&liar.node_id.to_string()).await.unwrap().unwrap().reputation;
    let honest_reputation = grid.store.node(&honest.node_id.to_string()).await.unwrap().unwrap().reputation;
    assert!(liar_reputation < honest_reputation, "{liar_reputation} < {honest_reputation}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_canary_catches_a_node_lying_alone() {
    let grid = Grid::with_config("[compute]\ncanary_rate = 1.0\n").await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    requester.submit(&grid, &manifest(module, 1, 1)).await;
    let liar = compute_node(&grid, "0xl", 2).await;
    let real = lease(&grid, &liar, 1).await;
    assert_eq!(report(&grid, &liar, &real[0], "lies\n").await.1["state"], "accepted", "alone, nothing to compare");
    let canary = lease(&grid, &liar, 1).await;
    assert_eq!(canary.len(), 1, "a canary follows real work");
    assert_ne!(canary[0].job_id, real[0].job_id);
    let (status, ack) = report(&grid, &liar, &canary[0], "lies\n").await;
    assert_eq!((status, &ack["state"]), (StatusCode::OK, &json!("rejected")), "{ack}");
    let (_, stake) = grid.call("GET", "/grid/operators/0xl/stake", &[], None).await;
    assert_eq!(stake["slashes"][0]["reason"], "wrong_compute_result", "{stake}");
    let slashes = grid.store.slashes("0xl").await.unwrap();
    let evidence: Value = serde_json::from_str(&slashes[0].evidence).unwrap();
    assert_eq!(evidence["known_answer"]["exit_code"], 0, "{evidence}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn an_honest_node_passes_its_canary_and_is_paid_by_the_grid() {
    let grid = Grid::with_config("[compute]\ncanary_rate = 1.0\n").await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    requester.submit(&grid, &manifest(module, 1, 1)).await;
    let node = compute_node(&grid, "0xh", 1).await;
    let real = lease(&grid, &node, 1).await;
    report(&grid, &node, &real[0], "2\n").await;
    let canary = lease(&grid, &node, 1).await;
    let manifest: Value = serde_json::from_str(&canary[0].manifest).unwrap();
    let args = &manifest["slices"][0]["args"];
    let (lo, hi): (u32, u32) = (args[0].as_str().unwrap().parse().unwrap(), args[1].as_str().unwrap().parse().unwrap());
    let answer = sgl_grid::service::compute::canary::primes_text(lo, hi);
    assert_eq!(report(&grid, &node, &canary[0], &answer).await.1["state"], "accepted");
    assert_eq!(grid.store.tamper_count(&node.node_id.to_string()).await.unwrap(), 0);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_silent_nodes_lease_expires_and_another_finishes_the_slice() {
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let (_, job) = requester.submit(&grid, &manifest(module, 1, 1)).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let (dead, alive) = (compute_node(&grid, "0xd", 1).await, compute_node(&grid, "0xa", 2).await);
    let lost = lease(&grid, &dead, 1).await;
    assert_eq!(grid.reap().await, 0);
    grid.advance_ms(20_000);
    wasm_beat(&grid, &alive).await;
    grid.reap().await;
    let (_, view) = requester.get(&grid, &format!("/v1/jobs/{id}")).await;
    assert_eq!(view["slices"][0]["attempts"][0]["state"], "expired", "{view}");
    let again = lease(&grid, &alive, 1).await;
    assert_eq!(again[0].attempt, 2);
    assert_eq!(report(&grid, &alive, &again[0], "2\n").await.1["state"], "accepted");
    let late = report(&grid, &dead, &lost[0], "2\n").await;
    assert_error(late, StatusCode::CONFLICT, "conflict");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn each_epoch_of_a_training_job_resumes_from_the_accepted_checkpoint_even_after_a_lost_node() {
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "trainer").await;
    let mut train = manifest(module, 2, 1);
    train["class"] = "train".into();
    let (status, job) = requester.submit(&grid, &train).await;
    assert!(status.is_success(), "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let (lost_node, other) = (grid.node("0xd", 1).await, grid.node("0xa", 2).await);
    class_beat(&grid, &lost_node, "train").await;
    class_beat(&grid, &other, "train").await;
    let first = lease_class(&grid, &lost_node, "train", 2).await;
    assert_eq!(first.iter().map(|l| l.slice).collect::<Vec<_>>(), [0], "epoch 2 waits for epoch 1");
    assert!(first[0].carry.is_empty());
    assert!(lease_class(&grid, &other, "train", 1).await.is_empty());
    assert_eq!(report(&grid, &lost_node, &first[0], "checkpoint 1").await.1["state"], "accepted");
    let checkpoint = vec![OutputFile {
        path: "primes.txt".into(),
        sha256: Digest::of("checkpoint 1"),
        size: "checkpoint 1".len() as u64,
        pixels: None,
    }];
    let lost = lease_class(&grid, &lost_node, "train", 1).await;
    assert_eq!((lost[0].slice, &lost[0].carry), (1, &checkpoint), "epoch 2 gets epoch 1's accepted outputs");
    // The node goes silent mid-epoch: its lease expires and the other node resumes from the
    // same accepted checkpoint.
    grid.advance_ms(20_000);
    class_beat(&grid, &other, "train").await;
    grid.reap().await;
    let again = lease_class(&grid, &other, "train", 1).await;
    assert_eq!((again[0].slice, again[0].attempt, &again[0].carry), (1, 2, &checkpoint));
    assert_eq!(report(&grid, &other, &again[0], "checkpoint 2").await.1["state"], "accepted");
    let (_, view) = requester.get(&grid, &format!("/v1/jobs/{id}")).await;
    assert_eq!(view["state"], "done", "{view}");
    for slice in 0..2 {
        let accepted = view["slices"][slice]["attempts"].as_array().unwrap().iter().find(|a| a["state"] == "accepted");
        assert!(accepted.unwrap()["charged_micros"].as_i64().unwrap() > 0, "each epoch paid on its own: {view}");
    }
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn cancel_gives_back_the_unused_escrow_and_nodes_must_announce_their_classes() {
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let (_, job) = requester.submit(&grid, &manifest(module, 3, 1)).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let chat_only = grid.node("0xc", 4).await;
    chat_only.beat(&grid, &["gemma-3-270m"]).await;
    let refused =
        chat_only.call(&grid, "POST", "/grid/compute/lease", Some(json!({"classes": ["wasm"], "slots": 1}))).await;
    assert_error(refused, StatusCode::CONFLICT, "conflict");
    let node = compute_node(&grid, "0xa", 1).await;
    let leased = lease(&grid, &node, 1).await;
    report(&grid, &node, &leased[0], "2\n").await;
    assert_eq!(grid.credits(requester.key_id).await, 1_000_000 - 600);
    let (status, cancelled) = grid.call("DELETE", &format!("/v1/jobs/{id}"), &requester.auth(), None).await;
    assert_eq!((status, &cancelled["state"]), (StatusCode::OK, &json!("cancelled")), "{cancelled}");
    assert_eq!((&cancelled["charged_micros"], &cancelled["refunded_micros"]), (&json!(100), &json!(500)));
    assert_eq!(grid.credits(requester.key_id).await, 1_000_000 - 100, "only the delivered slice is paid");
    assert_error(
        grid.call("DELETE", &format!("/v1/jobs/{id}"), &requester.auth(), None).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    let (status, _) = requester.get(&grid, &format!("/v1/jobs/{id}/result")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_job_without_a_key_is_quoted_its_escrow_by_x402() {
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let (status, headers, body) =
        grid.call_full("POST", "/v1/jobs", &[], Some(requester.signed(&manifest(module, 2, 2)))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["accepts"][0]["maxAmountRequired"], "800", "{body}");
    assert!(headers.contains_key("payment-required"));
}

#[tokio::test]
async fn secrets_are_sealed_to_the_leasing_node_given_once_and_cleared_when_it_reports() {
    use sgl_protocol::api::compute::{AttemptSecrets, JobView, SecretsTarget};
    use sgl_protocol::compute::secrets::{SecretFor, open_secret, seal_secret};
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let mut with_secret = manifest(module, 1, 1);
    with_secret["secrets"] = json!(["token"]);
    let (_, job) = requester.submit(&grid, &with_secret).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let node = compute_node(&grid, "0xa", 1).await;
    let leased = lease(&grid, &node, 1).await;
    let (_, view) = requester.get(&grid, &format!("/v1/jobs/{id}")).await;
    let view: JobView = serde_json::from_value(view).unwrap();
    let attempt = &view.slices[0].attempts[0];
    let target: SecretsTarget = attempt.secrets_to.clone().expect("the attempt waits for its secrets");
    assert_eq!(target.node_public_key, node.identity.public_key().to_b58());
    let job_id = leased[0].job_id.clone();
    let to = SecretFor { job_id: &job_id, slice: 0, attempt: 1 };
    let seal =
        |name: &str| seal_secret(&target, &node.node_id, &to, name, "canary-s3cret", &mut rand_core::OsRng).unwrap();
    let path = format!("/v1/jobs/{id}/attempts/{}/secrets", attempt.attempt_id);
    let wrong = json!(AttemptSecrets { secrets: vec![seal("other")] });
    assert_error(
        grid.call("POST", &path, &requester.auth(), Some(wrong)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let (fetch_status, none) =
        node.call(&grid, "GET", &format!("/grid/compute/attempts/{}/secrets", leased[0].attempt_id), None).await;
    assert_eq!((fetch_status, &none["secrets"]), (StatusCode::OK, &json!([])), "none until given");
    let given = json!(AttemptSecrets { secrets: vec![seal("token")] });
    let (status, _) = grid.call("POST", &path, &requester.auth(), Some(given.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_error(grid.call("POST", &path, &requester.auth(), Some(given)).await, StatusCode::CONFLICT, "conflict");
    let (_, stranger) = grid.api_key(1.0).await;
    let foreign = json!(AttemptSecrets { secrets: vec![seal("token")] });
    assert_error(
        grid.call("POST", &path, &[("X-API-Key", &stranger)], Some(foreign)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let (_, fetched) =
        node.call(&grid, "GET", &format!("/grid/compute/attempts/{}/secrets", leased[0].attempt_id), None).await;
    let fetched: AttemptSecrets = serde_json::from_value(fetched).unwrap();
    let opened = open_secret(&node.identity.encryption_secret(), &to, &fetched.secrets[0]).unwrap();
    assert_eq!(opened.as_str(), "canary-s3cret");
    report(&grid, &node, &leased[0], "done\n").await;
    assert!(!grid.store.compute_attempts(&id).await.unwrap()[0].has_secrets, "cleared when the attempt ended");
    let (_, after) = requester.get(&grid, &format!("/v1/jobs/{id}")).await;
    assert!(after["slices"][0]["attempts"][0].get("secrets_to").is_none());
}

#[tokio::test]
async fn a_wallet_pays_a_jobs_escrow_with_x402_and_follows_it_with_the_key_it_gets() {
    use alloy_primitives::{B256, U256};
    use base64::Engine as _;
    let grid = Grid::with_config(NO_CANARIES).await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let payer =
        sgl_pay::payer::Payer::new(k256::ecdsa::SigningKey::random(&mut rand_core::OsRng), U256::from(1_000_000u64));
    grid.admin(sgl_grid::admin::AdminCommand::Faucet { address: format!("{:#x}", payer.address()), usdc: 1.0 }).await;
    let body = requester.signed(&manifest(module, 1, 1));
    let (status, headers, _) = grid.call_full("POST", "/v1/jobs", &[], Some(body.clone())).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let required = headers.get("payment-required").unwrap().to_str().unwrap().to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (name, value) = payer.pay_header(&required, now, B256::repeat_byte(7)).unwrap();
    let (status, headers, job) = grid.call_full("POST", "/v1/jobs", &[(name, &value)], Some(body)).await;
    assert_eq!((status, &job["state"]), (StatusCode::OK, &json!("queued")), "{job}");
    let settle: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(headers.get("payment-response").unwrap().to_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(settle["success"], true, "{settle}");
    let key = job["management_api_key"].as_str().expect("a key to follow the job").to_owned();
    let id = job["id"].as_str().unwrap().to_owned();
    let node = compute_node(&grid, "0xa", 1).await;
    let leased = lease(&grid, &node, 1).await;
    report(&grid, &node, &leased[0], "2\n").await;
    let (status, done) = grid.call("GET", &format!("/v1/jobs/{id}"), &[("X-API-Key", &key)], None).await;
    assert_eq!(
        (status, &done["state"], &done["charged_micros"]),
        (StatusCode::OK, &json!("done"), &json!(100)),
        "{done}"
    );
    assert!(done.get("management_api_key").is_none(), "shown once");
    let wallet = grid.store.wallet_account_id(&format!("{:#x}", payer.address())).await.unwrap().unwrap();
    assert_eq!(grid.credits(wallet).await, 200 - 100, "the unused escrow stays as the wallet's credit");
    grid.assert_ledger_balanced().await;
}
