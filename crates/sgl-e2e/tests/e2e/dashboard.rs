//! The web dashboard in a real browser: Debian's Chromium driven by Python Playwright
//! (`python/dashboard.py`, which asserts on each page and saves a screenshot of it under
//! `docs/screenshots/`) against `sgl-grid up` with a real node. A caller signs in, creates,
//! labels and revokes a key, sends a chat sealed in the page and sees every chunk verified, sees
//! its usage move, and tops its key up with x402 from a browser wallet; the page's sealing
//! reproduces `sgl-protocol`'s bytes; an operator sees why a node without attestation gets no
//! work; the admin sees capacity. Here, what the pages did is checked against the grid's own
//! records. A second scenario watches a real compute job on the jobs page and downloads its
//! output through it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::compute::{ComputeGrid, expected_primes};
use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::{DEADLINE, exclusive, in_ci, test_env};

/// The browser wallet's secp256k1 key (a test key, never funded anywhere but this grid).
const WALLET_KEY: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

/// Debian's Chromium (`SGL_CHROMIUM` overrides), and Playwright for Python; `None` (skip, with
/// a note) outside CI when either is missing.
fn browser() -> Option<PathBuf> {
    let chromium = std::env::var_os("SGL_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let playwright = std::process::Command::new("python3")
        .args(["-c", "import playwright.sync_api"])
        .output()
        .is_ok_and(|output| output.status.success());
    if chromium.is_file() && playwright {
        return Some(chromium);
    }
    let install = "apt-get install chromium; python3 -m pip install playwright";
    assert!(
        !in_ci(),
        "CI=true but the browser tests cannot run: {} or playwright missing ({install})",
        chromium.display()
    );
    eprintln!(
        "note: skipping the dashboard's browser tests: {} or Python's playwright is missing ({install})",
        chromium.display()
    );
    None
}

/// Registers a node under `wallet` that never attests (nor starts): the operator's page must
/// say why it gets no work. Its id.
async fn unattested_node(grid: &LocalGrid, node_binary: &Path, wallet: &str) -> String {
    let code = grid.admin(&["registration-code", "--wallet", wallet]).await;
    let code = code["registration_code"].as_str().expect("a registration code");
    let dir = grid.root().join("unattested-node");
    let output = tokio::process::Command::new(node_binary)
        .args(["--orchestrator-url", &grid.base_url, "--config-dir"])
        .arg(&dir)
        .args(["init", "--wallet", wallet, "--code", code])
        .output()
        .await
        .expect("sgl init runs");
    assert!(output.status.success(), "sgl init: {}", String::from_utf8_lossy(&output.stderr));
    let node: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("node.json")).expect("node.json"))
        .expect("node.json is JSON");
    node["node_id"].as_str().expect("a node id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let Some(env) = test_env() else { return };
    let Some(chromium) = browser() else { return };
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(1)).await.expect("a local grid");
    let wallet = grid.operators.first().expect("the node's operator").clone();
    let admin_token = grid.admin_token.clone().expect("up made an admin token");
    let unattested = unattested_node(&grid, &env.node_binary, &wallet).await;
    // A browser wallet's account, funded with test USDC in the grid's own facilitator: the page
    // tops the key up with it through x402 (the wallet is a test double that signs in Python).
    let wallet_key = sgl_protocol::payout::PayoutKey::from_hex(WALLET_KEY).expect("a key");
    let payer = wallet_key.address().to_checksummed();
    grid.admin(&["faucet", "--address", &payer, "--usdc", "5"]).await;
    let balance_before = grid.balance_micros().await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/dashboard.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .env("SGL_DASHBOARD_URL", &grid.base_url)
        .env("SGL_API_KEY", &grid.api_key)
        .env("SGL_ADMIN_TOKEN", &admin_token)
        .env("SGL_WALLET", &wallet)
        .env("SGL_UNATTESTED_NODE", &unattested)
        .env("SGL_BROWSER_WALLET_KEY", WALLET_KEY)
        .env("SGL_BROWSER_WALLET", &payer)
        .env("SGL_MODEL", &grid.model)
        .env("SGL_CHROMIUM", &chromium)
        .env("SGL_SCREENSHOTS", root.join("docs/screenshots"))
        .env("SGL_SEAL_VECTOR", root.join("dashboard/test-vectors/seal-v2.json"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(DEADLINE * 2, run).await.expect("the browser tests finish").expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "dashboard.py failed ({}):\n{stderr}\n{stdout}\n{}",
        output.status,
        grid.grid_log()
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("one JSON summary line ({e}): {stdout}"));

    // The key the page made is in the account, labelled as the page relabelled it, and revoked.
    let keys = grid.get("/v1/keys").await.expect("the account's keys");
    let made = summary["created_key_id"].as_i64().expect("the page reports the key it made");
    let key = keys["data"].as_array().and_then(|k| k.iter().find(|k| k["id"] == made)).expect("the made key is listed");
    assert_eq!(key["revoked"], true, "{key}");
    assert_eq!(key["label"], "browser-relabelled", "{key}");
    // The sealed chat the page sent is one completed job on the grid's node, billed once, and
    // the node and job the page verified are the grid's.
    let jobs = grid.wait_jobs_finished().await;
    let job_id = summary["chat_job_id"].as_str().expect("the page reports the verified job");
    let job = jobs.iter().find(|row| row.id == job_id).unwrap_or_else(|| panic!("job {job_id} recorded: {jobs:?}"));
    assert_eq!(job.status, "completed");
    assert!(grid.node_ids.contains(&job.node_id), "answered by the grid's node");
    assert_eq!(summary["chat_node_id"].as_str(), Some(job.node_id.as_str()));
    let billed: i64 = jobs.iter().filter_map(|row| row.billed_micros).sum();
    let moved = summary["credits_moved_to_key_micros"].as_i64().expect("the credits the page gave the new key");
    let topped = summary["topped_up_micros"].as_i64().expect("the wallet's top-up");
    assert_eq!(topped, 1_500_000, "$1.50 from the browser wallet");
    assert_eq!(
        balance_before - grid.balance_micros().await,
        billed + moved - topped,
        "credits moved by the bill, the new key's credits and the wallet's top-up"
    );
    assert!(
        summary["usage_billed_micros"].as_i64().is_some_and(|b| b == billed),
        "the usage the page showed is the bill: {summary}"
    );
    // The operator's earnings the page charted are the ledger's (nothing was paid out).
    let stake = grid.get(&format!("/grid/operators/{wallet}/stake")).await.expect("the operator's stake");
    assert_eq!(summary["operator_earned_micros"], stake["earnings_micros"], "{summary}");
    for page in ["sign-in", "account", "chat", "operator", "admin", "account-phone", "jobs", "topup"] {
        let shot = root.join(format!("docs/screenshots/dashboard-{page}.png"));
        assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000), "{} saved", shot.display());
    }
    grid.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_page_follows_a_real_job() {
    let Some(env) = test_env() else { return };
    let Some(chromium) = browser() else { return };
    let _turn = exclusive().await;
    let grid = ComputeGrid::start(&env, 1, &[], 0.0).await;
    let bundle = grid.primes_bundle("primes", &[(0, 2_000)], 1).await;
    let job = grid.cloud_json(&["jobs", "submit", &bundle.display().to_string(), "--wait"]).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/dashboard_jobs.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .env("SGL_DASHBOARD_URL", &grid.base_url)
        .env("SGL_API_KEY", &grid.api_key)
        .env("SGL_JOB_ID", job["id"].as_str().expect("a job id"))
        .env("SGL_CHROMIUM", &chromium)
        .env("SGL_SCREENSHOTS", root.join("docs/screenshots"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("the browser test finishes").expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "dashboard_jobs.py failed ({}):\n{stderr}\n{stdout}", output.status);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("one JSON summary line ({e}): {stdout}"));
    // What the page downloaded is the primes below 2,000, as computed here.
    assert_eq!(summary["file"], "primes.txt");
    assert_eq!(summary["text"].as_str(), Some(expected_primes(0, 2_000).as_str()));
    grid.stop().await;
}
