//! Scenario: general compute with real processes. `sgl-grid up` with three compute nodes of
//! three operators, one of them made to lie (the test-only fault); the requester CLI signs a
//! 4-slice prime-sieve bundle and submits it with redundancy 2. Every slice is run by nodes of
//! two operators and verified, the liar is outvoted, loses reputation and is slashed with the
//! receipts as evidence, the job is billed from escrow with the 1 % fee and refunded the rest,
//! and the downloaded result is the primes computed here. A node SIGKILLed mid-slice loses its
//! lease and the slice finishes on another; a cancelled job gives its escrow back. A second
//! grid of one lying node shows a canary catching a liar that has nobody to be outvoted by.

use serde_json::Value;

use crate::support::compute::{ComputeGrid, expected_primes, result_file};
use crate::support::grid::signal;
use crate::support::{exclusive, test_env, wait_for};

const RANGES: [(u32, u32); 4] = [(0, 250_000), (250_000, 500_000), (500_000, 750_000), (750_000, 1_000_000)];

fn attempts(job: &Value, slice: usize) -> Vec<Value> {
    job["slices"][slice]["attempts"].as_array().expect("attempts").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliced_redundant_job_is_verified_billed_and_survives_a_liar_and_a_killed_node() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let grid = ComputeGrid::start(&env, 3, &[2], 0.0).await;
    let (liar_node, liar_operator) = (grid.node_ids[2].clone(), grid.operators[2].clone());
    let credits_before = grid.cloud_json(&["credits", "balance"]).await["balance_micros"].as_i64().expect("credits");

    let bundle = grid.primes_bundle("primes", &RANGES, 2).await;
    let job = grid.cloud_json(&["jobs", "submit", &bundle.display().to_string(), "--wait"]).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    let id = job["id"].as_str().expect("an id").to_owned();

    // Each slice: two accepted receipts from nodes of two operators, none from the liar.
    let operator_of = |node: &Value| {
        let index = grid.node_ids.iter().position(|id| Some(id.as_str()) == node.as_str()).expect("a local node");
        grid.operators[index].clone()
    };
    let mut liar_attempts = 0;
    for slice in 0..RANGES.len() {
        let attempts = attempts(&job, slice);
        let accepted: Vec<&Value> = attempts.iter().filter(|a| a["state"] == "accepted").collect();
        assert_eq!(accepted.len(), 2, "slice {slice}: {attempts:?}");
        assert_ne!(operator_of(&accepted[0]["node_id"]), operator_of(&accepted[1]["node_id"]));
        for attempt in attempts.iter().filter(|a| a["node_id"] == liar_node.as_str()) {
            assert_eq!(attempt["state"], "rejected", "the liar is outvoted: {attempt}");
            liar_attempts += 1;
        }
    }
    assert!(liar_attempts > 0, "the liar took part: {job}");
    let stake = grid.get(&format!("/grid/operators/{liar_operator}/stake"), None).await;
    let slashes = stake["slashes"].as_array().expect("slashes");
    assert_eq!(slashes.len(), liar_attempts, "one slash per wrong receipt: {stake}");
    assert!(slashes.iter().all(|s| s["reason"] == "wrong_compute_result" && s["node_id"] == liar_node.as_str()));
    let reputation = |index: usize| {
        let (grid, node) = (&grid, grid.node_ids[index].clone());
        async move {
            grid.get(&format!("/grid/nodes/{node}"), Some(&grid.node_token(index))).await["reputation_score"].as_f64()
        }
    };
    assert!(reputation(2).await < reputation(0).await, "the liar's reputation fell below an honest node's");

    // Billed from escrow: 99 % to the operators, the rest back to the caller.
    let charged = job["charged_micros"].as_i64().expect("charged");
    assert!(charged > 0);
    assert_eq!(
        job["refunded_micros"].as_i64().expect("refunded"),
        job["escrow_micros"].as_i64().expect("escrow") - charged
    );
    let credits = grid.cloud_json(&["credits", "balance"]).await["balance_micros"].as_i64().expect("credits");
    assert_eq!(credits, credits_before - charged);
    let mut earned = 0;
    for operator in &grid.operators[..2] {
        earned += grid.get(&format!("/grid/operators/{operator}/stake"), None).await["earnings_micros"]
            .as_i64()
            .expect("earnings");
    }
    assert!(
        earned <= charged * 99 / 100 && earned >= charged * 99 / 100 - 2,
        "99 % of {charged} to operators, got {earned}"
    );
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");

    // The verified result downloads and is the primes computed here.
    let out = grid.dir("result");
    let result = grid.cloud_json(&["jobs", "result", &id, "-o", &out.display().to_string()]).await;
    assert_eq!(result["slices"].as_array().expect("slices").len(), 4, "{result}");
    for (slice, (lo, hi)) in RANGES.iter().enumerate() {
        assert!(result_file(&out, slice) == expected_primes(*lo, *hi), "slice {slice} differs from the primes");
    }

    killed_mid_slice(&grid).await;
    cancelled(&grid).await;
    grid.stop().await;
}

/// Node 1 is SIGKILLed holding a slice (node 0 paused so that node 1 takes it); its lease
/// expires when the grid hears nothing, and node 0 finishes the slice.
async fn killed_mid_slice(grid: &ComputeGrid) {
    let (survivor, victim) = (grid.node_pid(0), grid.node_pid(1));
    signal(survivor, "STOP");
    let bundle = grid.primes_bundle("killed", &[(0, 2_000_000)], 1).await;
    let submitted = grid.cloud_json(&["jobs", "submit", &bundle.display().to_string()]).await;
    let id = submitted["id"].as_str().expect("an id").to_owned();
    let victim_id = grid.node_ids[1].clone();
    wait_for("node 1 to lease the slice", || async {
        let job = grid.cloud_json(&["jobs", "status", &id]).await;
        attempts(&job, 0)
            .iter()
            .any(|a| a["node_id"] == victim_id.as_str() && (a["state"] == "leased" || a["state"] == "running"))
            .then_some(())
    })
    .await;
    signal(victim, "KILL");
    signal(survivor, "CONT");
    let job = wait_for("the slice to finish elsewhere", || async {
        let job = grid.cloud_json(&["jobs", "status", &id]).await;
        (job["state"] == "done").then_some(job)
    })
    .await;
    let attempts = attempts(&job, 0);
    assert_eq!(attempts[0]["state"], "expired", "{attempts:?}");
    assert_eq!(attempts[0]["node_id"], victim_id.as_str());
    assert_eq!(attempts.last().expect("an attempt")["state"], "accepted");
    assert_eq!(attempts.last().expect("an attempt")["node_id"], grid.node_ids[0].as_str());
}

/// A job cancelled before any node ran it gives its whole escrow back.
async fn cancelled(grid: &ComputeGrid) {
    let survivor = grid.node_pid(0);
    signal(survivor, "STOP");
    let before = grid.cloud_json(&["credits", "balance"]).await["balance_micros"].as_i64().expect("credits");
    let bundle = grid.primes_bundle("cancelled", &RANGES, 1).await;
    let submitted = grid.cloud_json(&["jobs", "submit", &bundle.display().to_string()]).await;
    let id = submitted["id"].as_str().expect("an id").to_owned();
    let held = grid.cloud_json(&["credits", "balance"]).await["balance_micros"].as_i64().expect("credits");
    assert_eq!(held, before - submitted["escrow_micros"].as_i64().expect("escrow"));
    let cancelled = grid.cloud_json(&["jobs", "cancel", &id]).await;
    signal(survivor, "CONT");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["refunded_micros"], submitted["escrow_micros"]);
    let after = grid.cloud_json(&["credits", "balance"]).await["balance_micros"].as_i64().expect("credits");
    assert_eq!(after, before, "the whole escrow came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_catches_a_node_lying_alone() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let grid = ComputeGrid::start(&env, 1, &[0], 1.0).await;
    let bundle = grid.primes_bundle("alone", &[(0, 100_000)], 1).await;
    let job = grid.cloud_json(&["jobs", "submit", &bundle.display().to_string(), "--wait"]).await;
    assert_eq!(job["state"], "done", "alone, the lie cannot be outvoted: {job}");
    let operator = grid.operators[0].clone();
    let stake = wait_for("a canary to catch the liar", || async {
        let stake = grid.get(&format!("/grid/operators/{operator}/stake"), None).await;
        (!stake["slashes"].as_array().expect("slashes").is_empty()).then_some(stake)
    })
    .await;
    let slash = &stake["slashes"][0];
    assert_eq!(slash["reason"], "wrong_compute_result", "{stake}");
    assert_ne!(
        slash["job_id"].as_str().expect("a job").split('/').next(),
        job["id"].as_str(),
        "caught by a canary, not by the job"
    );
    grid.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_the_guest_sealed_and_never_the_grid_in_clear() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let grid = ComputeGrid::start(&env, 1, &[], 0.0).await;
    let secret = crate::support::canary();
    let dir = grid.dir("secret");
    let dir_text = dir.display().to_string();
    assert_eq!(grid.cloud(&["bundle", "init", &dir_text, "--entry", "secret-xor.wat"]).await.0, 0);
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wasm/secret-xor/secret-xor.wat");
    std::fs::copy(module, dir.join("secret-xor.wat")).expect("the example guest");
    let path = dir.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).expect("manifest.json")).expect("JSON");
    manifest["secrets"] = serde_json::json!(["token"]);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).expect("JSON")).expect("manifest.json");
    assert_eq!(grid.cloud(&["bundle", "sign", &dir_text]).await.0, 0);
    let missing = grid.cloud(&["jobs", "submit", &dir_text]).await;
    assert_eq!(missing.0, 2, "a job whose secrets are not given is refused before upload");

    let given = format!("token={secret}");
    let job = grid.cloud_json(&["jobs", "submit", &dir_text, "--secret", &given]).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    let out = grid.dir("secret-out");
    grid.cloud_json(&["jobs", "result", job["id"].as_str().expect("an id"), "-o", &out.display().to_string()]).await;
    let xored = std::fs::read(out.join("slice-0").join("token.xor")).expect("the guest's output");
    assert_eq!(xored.iter().map(|b| b ^ 0xff).collect::<Vec<u8>>(), secret.as_bytes(), "the guest read the secret");

    // The grid's database and logs, and the node's logs and files, never hold it in clear.
    let data = grid.dir("data");
    for file in walk(&data) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!contains(&bytes, secret.as_bytes()), "{} holds the secret", file.display());
    }
    assert!(!grid.log().contains(&secret), "the grid's log holds the secret");
    grid.stop().await;
}

/// Every file under `dir` (the grid's database, blobs, node directories and logs).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_in_deterministic_mode_are_answered_alike_by_two_operators_and_verified() {
    let Some(env) = test_env() else { return };
    let _turn = exclusive().await;
    let grid = ComputeGrid::start_running(&env, 2, &[], 0.0, "chat,llm").await;
    let model = sgl_protocol::compute::Digest::of(std::fs::read(&env.model).expect("the test model"));
    let dir = grid.dir("llm");
    let dir_text = dir.display().to_string();
    let init = ["bundle", "init", &dir_text, "--entry", "system.txt", "--slices", "2", "--redundancy", "2"];
    assert_eq!(grid.cloud(&init).await.0, 0);
    std::fs::write(dir.join("system.txt"), "").expect("an empty system prompt");
    let path = dir.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).expect("manifest.json")).expect("JSON");
    manifest["class"] = "llm".into();
    manifest["model"] = serde_json::json!({"sha256": model, "max_tokens": 12});
    manifest["limits"]["fuel"] = 1_000_000_000u64.into();
    manifest["slices"] = serde_json::json!([{"args": ["The capital of France is"]}, {"args": ["Once upon a time"]}]);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).expect("JSON")).expect("manifest.json");
    assert_eq!(grid.cloud(&["bundle", "sign", &dir_text]).await.0, 0);
    let job = grid.cloud_json(&["jobs", "submit", &dir_text, "--wait"]).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    for slice in 0..2 {
        let accepted: Vec<Value> = attempts(&job, slice).into_iter().filter(|a| a["state"] == "accepted").collect();
        assert_eq!(accepted.len(), 2, "both operators' greedy answers agree: {job}");
        assert_ne!(accepted[0]["node_id"], accepted[1]["node_id"]);
    }
    let out = grid.dir("llm-out");
    grid.cloud_json(&["jobs", "result", job["id"].as_str().expect("an id"), "-o", &out.display().to_string()]).await;
    for slice in 0..2 {
        let answer =
            std::fs::read_to_string(out.join(format!("slice-{slice}")).join("completion.txt")).expect("an answer");
        assert!(!answer.trim().is_empty(), "slice {slice} answered");
    }
    grid.stop().await;
}
