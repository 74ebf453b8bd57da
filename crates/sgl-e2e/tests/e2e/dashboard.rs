//! The web dashboard in a real browser: Debian's Chromium driven by Python Playwright
//! (`python/dashboard.py`, which asserts on each page and saves a screenshot of it under
//! `docs/screenshots/`) against `sgl-grid up` with a real node. A caller signs in, creates,
//! labels and revokes a key, sends a chat sealed in the page and sees every chunk verified, sees
//! its usage move, and tops its key up with x402 from a browser wallet; the page's sealing
//! reproduces `sgl-protocol`'s bytes; an operator sees why a node without attestation gets no
//! work; the admin sees capacity. Here, what the pages did is checked against the grid's own
//! records. A second scenario watches a real compute job on the jobs page and downloads its
//! output through it, holds the page's bundle code to the CLI's bytes, and submits three jobs
//! from the page (a folder it signs, a folder the CLI signed, the training form), each of which
//! runs to the end on the grid. A third rents a machine on the local backend through the
//! machines page, logs into it with the SSH command the page shows, extends, resizes and
//! destroys it there.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::machines::{balance, leftovers, network_leftovers, ssh_key};
use crate::support::compute::{ComputeGrid, expected_primes};
use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::machines::{MachineGrid, machine_image};
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

/// Runs the browser script `python/{script}` with `vars` and Debian's Chromium, within
/// `deadline`, and returns the one JSON summary line it prints last; a failure panics with its
/// output and `log()` (the grid's log).
async fn browser_script(
    script: &str,
    chromium: &Path,
    vars: &[(&str, &std::ffi::OsStr)],
    deadline: std::time::Duration,
    log: impl FnOnce() -> String,
) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run = tokio::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(script))
        .envs(vars.iter().copied())
        .env("SGL_CHROMIUM", chromium)
        .env("SGL_SCREENSHOTS", root.join("docs/screenshots"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(deadline, run).await.expect("the browser test finishes").expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{script} failed ({}):\n{stderr}\n{stdout}\n{}", output.status, log());
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("one JSON summary line ({e}): {stdout}"))
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
    let seal_vector = root.join("dashboard/test-vectors/seal-v2.json");
    let vars: [(&str, &std::ffi::OsStr); 9] = [
        ("SGL_DASHBOARD_URL", grid.base_url.as_ref()),
        ("SGL_API_KEY", grid.api_key.as_ref()),
        ("SGL_ADMIN_TOKEN", admin_token.as_ref()),
        ("SGL_WALLET", wallet.as_ref()),
        ("SGL_UNATTESTED_NODE", unattested.as_ref()),
        ("SGL_BROWSER_WALLET_KEY", WALLET_KEY.as_ref()),
        ("SGL_BROWSER_WALLET", payer.as_ref()),
        ("SGL_MODEL", grid.model.as_ref()),
        ("SGL_SEAL_VECTOR", seal_vector.as_os_str()),
    ];
    let summary = browser_script("dashboard.py", &chromium, &vars, DEADLINE * 2, || grid.grid_log()).await;

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
    // The wallet's sign-in made a key of the wallet's account, with an expiry, and its sign-out
    // revoked it.
    let signed_in = summary["wallet_sign_in_key_id"].as_i64().expect("the page reports the sign-in's key");
    let listed = grid.admin(&["api-key", "list"]).await;
    let key = listed.as_array().and_then(|k| k.iter().find(|k| k["id"] == signed_in)).expect("the key is listed");
    assert_eq!((key["label"].as_str(), key["revoked"].as_bool()), (Some("wallet sign-in"), Some(true)), "{key}");
    assert_eq!(key["wallet"].as_str(), Some(payer.to_lowercase().as_str()), "{key}");
    assert!(key["expires_at"].is_string(), "{key}");
    for page in ["sign-in", "account", "chat", "operator", "admin", "account-phone", "jobs", "topup", "wallet-sign-in"]
    {
        let shot = root.join(format!("docs/screenshots/dashboard-{page}.png"));
        assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000), "{} saved", shot.display());
    }
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");
    grid.stop().await;
}

/// A bundle folder as a person leaves it before signing: a hand-written manifest (its keys in
/// another order, no `files`) beside the prime sieve and an input. Also the bundle hash
/// `sgl-cloud bundle sign` gives a copy of it.
async fn unsigned_bundle(grid: &ComputeGrid) -> (PathBuf, String) {
    let dir = grid.dir("page-signed");
    std::fs::create_dir_all(dir.join("in")).expect("the bundle folder");
    let manifest = serde_json::json!({
        "slices": [{"args": ["0", "500"]}, {"args": ["500", "1000"]}],
        "entry": "primes.wasm", "class": "wasm", "format": "sgl-bundle-v1",
        "limits": {"output_files": 4, "fuel": 1_000_000_000u64, "memory_mb": 64, "wall_secs": 60, "output_mb": 1},
        "max_price_micros_per_gfuel": 1000,
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("manifest.json");
    let module = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wasm/primes/primes.wasm");
    std::fs::copy(module, dir.join("primes.wasm")).expect("the example module");
    std::fs::write(dir.join("in/note.txt"), "inputs are hashed too\n").expect("an input");
    let copy = grid.dir("cli-signed-copy");
    std::fs::create_dir_all(copy.join("in")).expect("the copy");
    for name in ["manifest.json", "primes.wasm", "in/note.txt"] {
        std::fs::copy(dir.join(name), copy.join(name)).expect("a copied file");
    }
    let signed = grid.cloud_json(&["bundle", "sign", &copy.display().to_string()]).await;
    (dir, signed["bundle_hash"].as_str().expect("a bundle hash").to_owned())
}

/// A small training set in mnist-train's format: 60 rows of 784 pixels and a label.
fn train_data(grid: &ComputeGrid) -> PathBuf {
    let rows: Vec<String> = (0..60u32)
        .map(|row| {
            let pixels = (0..784u32).map(|i| ((row * 31 + i * 7) % 256).to_string());
            pixels.chain([(row % 10).to_string()]).collect::<Vec<_>>().join(",")
        })
        .collect();
    let path = grid.dir("train.csv");
    std::fs::write(&path, rows.join("\n") + "\n").expect("the training data");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_page_submits_and_follows_real_jobs() {
    let Some(env) = test_env() else { return };
    let Some(chromium) = browser() else { return };
    let _turn = exclusive().await;
    let grid = ComputeGrid::start_running(&env, 1, &[], 0.0, "wasm,train").await;
    let bundle = grid.primes_bundle("primes", &[(0, 2_000)], 1).await;
    let job = grid.cloud_json(&["jobs", "submit", &bundle.display().to_string(), "--wait"]).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    let signed = grid.primes_bundle("cli-signed", &[(2_000, 3_000)], 1).await;
    let signed_hash =
        grid.cloud_json(&["bundle", "verify", &signed.display().to_string()]).await["bundle_hash"].clone();
    let (unsigned, cli_hash) = unsigned_bundle(&grid).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (bundle_vector, data) = (root.join("dashboard/test-vectors/bundle-v1.json"), train_data(&grid));
    let vars: [(&str, &std::ffi::OsStr); 7] = [
        ("SGL_DASHBOARD_URL", grid.base_url.as_ref()),
        ("SGL_API_KEY", grid.api_key.as_ref()),
        ("SGL_JOB_ID", job["id"].as_str().expect("a job id").as_ref()),
        ("SGL_BUNDLE_VECTOR", bundle_vector.as_os_str()),
        ("SGL_UNSIGNED_BUNDLE", unsigned.as_os_str()),
        ("SGL_SIGNED_BUNDLE", signed.as_os_str()),
        ("SGL_TRAIN_DATA", data.as_os_str()),
    ];
    let summary = browser_script("dashboard_jobs.py", &chromium, &vars, DEADLINE * 2, || grid.log()).await;
    // What the page downloaded is the primes below 2,000, as computed here.
    assert_eq!(summary["file"], "primes.txt");
    assert_eq!(summary["text"].as_str(), Some(expected_primes(0, 2_000).as_str()));
    // The folder the page hashed and signed is the bundle the CLI makes of it, byte for byte,
    // signed by the page's own key; the CLI-signed folder went in as it was signed.
    let shown = |key: &str| summary[key].as_str().unwrap_or_else(|| panic!("{key} in {summary}")).to_owned();
    let page_job = grid.get(&format!("/v1/jobs/{}", shown("page_signed_job")), None).await;
    assert_eq!((page_job["state"].as_str(), page_job["bundle_hash"].as_str()), (Some("done"), Some(cli_hash.as_str())));
    assert_eq!(page_job["slice_count"], 2);
    let cli_job = grid.get(&format!("/v1/jobs/{}", shown("cli_signed_job")), None).await;
    assert_eq!((&cli_job["state"], &cli_job["bundle_hash"]), (&Value::from("done"), &signed_hash));
    let result = grid
        .cloud_json(&["jobs", "result", &shown("page_signed_job"), "-o", &grid.dir("page-out").display().to_string()])
        .await;
    assert!(result.to_string().contains("primes.txt"), "{result}");
    let second = std::fs::read_to_string(grid.dir("page-out/slice-1/primes.txt")).expect("slice 1's primes");
    assert_eq!(second, expected_primes(500, 1_000));
    // The training form's job ran both epochs, each a checkpoint and its metrics.
    let train = grid.get(&format!("/v1/jobs/{}", shown("train_job")), None).await;
    assert_eq!(
        (train["class"].as_str(), train["state"].as_str(), &train["slices_done"]),
        (Some("train"), Some("done"), &Value::from(2))
    );
    // The job the page cancelled before any node could take it paid nothing and got its whole
    // escrow back.
    let cancelled = grid.get(&format!("/v1/jobs/{}", shown("cancelled_job")), None).await;
    assert_eq!((cancelled["state"].as_str(), cancelled["redundancy"].as_u64()), (Some("cancelled"), Some(2)));
    assert_eq!(
        (&cancelled["charged_micros"], &cancelled["refunded_micros"]),
        (&Value::from(0), &cancelled["escrow_micros"])
    );
    assert!(cancelled["escrow_micros"].as_i64().is_some_and(|e| e > 0), "{cancelled}");
    // The page's requester key is its own ed25519 key, not the CLI's.
    let requester = shown("requester");
    assert!(sgl_protocol::identity::NodePublicKey::from_b58(&requester).is_ok(), "a base58 ed25519 key: {requester}");
    let cli_signature: Value =
        serde_json::from_slice(&std::fs::read(signed.join("manifest.sig")).expect("manifest.sig")).expect("JSON");
    assert_ne!(cli_signature["requester"].as_str(), Some(requester.as_str()));
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");
    grid.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_machines_page_rents_a_real_machine() {
    let Some(env) = test_env() else { return };
    let Some(image) = machine_image() else { return };
    let Some(chromium) = browser() else { return };
    let _turn = exclusive().await;
    let mut grid = MachineGrid::start(&env.grid_binary, &image).await.expect("a grid selling machines");
    let key_file = ssh_key(grid.root.path()).await;
    let before = balance(&grid, &grid.api_key).await;
    let network_before = network_leftovers().await;
    let vars: [(&str, &std::ffi::OsStr); 3] = [
        ("SGL_DASHBOARD_URL", grid.base_url.as_ref()),
        ("SGL_API_KEY", grid.api_key.as_ref()),
        ("SGL_SSH_KEY", key_file.as_os_str()),
    ];
    let summary = browser_script("dashboard_machines.py", &chromium, &vars, DEADLINE * 2, || grid.log()).await;
    let id = summary["id"].as_str().expect("the machine's id").to_owned();
    // The command the page showed logged into this machine.
    assert_eq!(summary["ssh_output"], serde_json::json!(["in-the-machine", id.replace('_', "-")]), "{summary}");
    // What the page did is the machine's record: 30 h and 1 h more paid at the small plan's rate,
    // resized for free, destroyed by its owner, and nothing of it left on the host.
    let (status, machine) = grid.get(&grid.api_key, &format!("/compute/instances/{id}")).await;
    assert_eq!(status, 200, "{machine}");
    assert_eq!(
        (machine["state"].as_str(), machine["end_reason"].as_str()),
        (Some("destroyed"), Some("destroyed_by_user"))
    );
    assert_eq!(machine["plan"], "local:2c-1gb", "{machine}");
    let kinds: Vec<&str> =
        machine["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["extended", "resized", "destroyed"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(balance(&grid, &grid.api_key).await, before - 31 * 5_000, "30 h and 1 h at $0.005/h");
    assert_eq!(leftovers(&grid, &id), Vec::<String>::new());
    assert_eq!(network_leftovers().await, network_before);
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");
    grid.stop().await;
}
