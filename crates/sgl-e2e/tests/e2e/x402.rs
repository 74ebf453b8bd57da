//! Scenario: a caller with nothing but an EVM key pays for inference per request with the stock
//! Python `x402` client and the MPP client `pympp` (`python/x402_pay.py`): the dual 402, a
//! completion paid each way, replayed and expired payments refused, and a paid credits top-up.
//! Here the money is checked in the
//! grid's own database: the payer's test USDC fell by exactly what was paid, the job was billed
//! from the payment, the unspent quote came back as credit, and the ledger audit is sound.

use std::process::Stdio;

use rand_core::{OsRng, RngCore};
use serde_json::Value;

use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::{DEADLINE, exclusive, python_x402, test_env};

/// Base Sepolia USDC, the local grid's default payment asset.
const USDC: &str = "0x036cbd53842c5426634e7929541ec2318f3dcf7e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_pays_per_request_with_the_stock_x402_client() {
    let Some(env) = test_env() else { return };
    if !python_x402() {
        return;
    }
    let _turn = exclusive().await;
    let mut grid = LocalGrid::start(&env, GridOptions::nodes(1)).await.expect("a local grid");
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let key = format!("0x{}", hex::encode(secret));
    let address = python_line(&[
        "-c",
        "import sys; from eth_account import Account; print(Account.from_key(sys.argv[1]).address.lower())",
        &key,
    ])
    .await;
    let funded = grid.admin(&["faucet", "--address", &address, "--usdc", "2"]).await;
    assert_eq!(funded["balance_units"].as_str(), Some("2000000"), "{funded}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/x402_pay.py");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .env("SGL_E2E_BASE_URL", &grid.base_url)
        .env("SGL_E2E_MODEL", &grid.model)
        .env("SGL_E2E_PAYER_KEY", &key)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("the script finishes").expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "x402_pay.py failed ({}):\n{stderr}\n{stdout}", output.status);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("one JSON summary line ({e}): {stdout}"));
    assert_eq!(summary["payer"].as_str(), Some(address.as_str()), "{summary}");
    let quote = summary["quote_micros"].as_i64().expect("the quote");
    assert!(quote > 0 && quote < 1_000_000, "a completion costs under the client's $1 cap: {summary}");

    // Two jobs (x402, MPP), served and billed from the payments; nothing for the replays or the
    // expired payment.
    let jobs = grid.wait_jobs_finished().await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for (job, key) in jobs.iter().zip(["completion_id", "mpp_completion_id"]) {
        assert_eq!(job.status, "completed");
        assert_eq!(Some(format!("chatcmpl-{}", job.id)).as_deref(), summary[key].as_str());
        let billed = job.billed_micros.expect("billed");
        assert!(billed > 0 && billed <= quote, "billed {billed} of a {quote} quote");
    }
    assert_eq!(jobs[0].completion_tokens, summary["completion_tokens"].as_i64());
    let billed: i64 = jobs.iter().filter_map(|job| job.billed_micros).sum();

    // The payer paid exactly two quotes and the top-up, once each.
    let usdc = grid.x402_balance(&address, USDC).await;
    assert_eq!(usdc, 2_000_000 - 2 * quote - 500_000, "USDC left");
    // The top-up key holds the top-up plus what the quotes did not use.
    assert_eq!(summary["topup_key_balance_micros"].as_i64(), Some(500_000 + 2 * quote - billed), "{summary}");
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");
    grid.stop().await;
}

async fn python_line(args: &[&str]) -> String {
    let output = tokio::process::Command::new("python3").args(args).output().await.expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
