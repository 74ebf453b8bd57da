//! Scenario: the grid on a chain, with real processes. `sgl-grid up --chain` starts anvil and
//! deploys the contracts; three operators stake and bond there with `sgl stake deposit` from
//! their own keys, and their nodes are admitted because the follower booked those events. The stock Python `x402` client
//! pays a chat and the USDC moves on the chain (read back with `cast`). A liar's forged compute
//! receipts are outvoted and its stake and bond are slashed on the chain with the hash of the
//! evidence. `sgl-grid chain audit` then finds the ledger and the chain in agreement.

use std::process::Stdio;

use serde_json::Value;

use crate::support::compute::ComputeGrid;
use crate::support::{DEADLINE, exclusive, in_ci, python_x402, test_env, wait_for};

/// `cast` from npm `@foundry-rs/cast` (`.ci/run` exports `SGL_CAST`).
pub(crate) fn cast_binary() -> Option<String> {
    let found = std::env::var("SGL_CAST").ok().filter(|p| std::path::Path::new(p).is_file());
    if found.is_none() {
        assert!(!in_ci(), "CI=true but no cast (SGL_CAST)");
        eprintln!("note: skipping the chain scenario: no cast (SGL_CAST; cargo xtask contracts installs it)");
    }
    found
}

/// `cast ARGS --rpc-url RPC`, its trimmed stdout.
pub(crate) async fn cast(binary: &str, rpc: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(binary).args(args).args(["--rpc-url", rpc]).output().await.expect("cast");
    assert!(output.status.success(), "cast {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A `uint256` read with `cast call`, without cast's ` [1e6]` annotation.
pub(crate) async fn uint(binary: &str, rpc: &str, args: &[&str]) -> u128 {
    let text = cast(binary, rpc, args).await;
    text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("a number: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_stake_on_chain_payments_settle_on_chain_and_a_liar_is_slashed_there() {
    let Some(env) = test_env() else { return };
    let Some(cast_bin) = cast_binary() else { return };
    if !python_x402() {
        return;
    }
    let _turn = exclusive().await;
    let grid = ComputeGrid::start_with(&env, 3, &[2], 0.0, "chat,wasm", &["--chain"]).await;
    let chain = grid.ready["chain"].clone();
    let rpc = chain["rpc_url"].as_str().expect("rpc_url").to_owned();
    let text = |v: &Value| v.as_str().expect("a string").to_owned();
    let (usdc, staking, registry) = (
        text(&chain["contracts"]["usdc"]),
        text(&chain["contracts"]["staking"]),
        text(&chain["contracts"]["registry"]),
    );
    let min_stake = chain["min_stake"].as_u64().expect("min_stake");
    let min_bond = chain["min_bond"].as_u64().expect("min_bond");

    // Each operator staked and bonded itself with `sgl stake deposit` (from its own key), and was
    // admitted because of the chain: its stake and bond are there, and the grid says staked (its
    // nodes registered and serve: `up` waited for that).
    let deposits = grid.log().matches("staked and bonded on the local chain (sgl stake deposit)").count();
    assert_eq!(deposits, 3, "{}", grid.log());
    for operator in &grid.operators {
        let stake =
            cast(&cast_bin, &rpc, &["call", &staking, "stakeOf(address)(uint256,uint256,uint64)", operator]).await;
        assert_eq!(
            stake.lines().next().and_then(|l| l.split_whitespace().next()),
            Some(min_stake.to_string().as_str())
        );
        let entry = cast(
            &cast_bin,
            &rpc,
            &["call", &registry, "providerOf(address)(bool,uint256,bytes32,uint64,uint32)", operator],
        )
        .await;
        assert!(entry.starts_with("true"), "{operator} is registered: {entry}");
        let status = grid.get(&format!("/grid/operators/{operator}/stake"), None).await;
        assert_eq!(status["state"], "staked", "{status}");
    }

    // A chat paid with the stock x402 client: the USDC moves on the chain.
    let payer_key = std::fs::read_to_string(text(&chain["payer_key_file"])).expect("payer.key");
    let models = grid.get("/grid/models", None).await;
    let model = text(&models["models"][0]["id"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/x402_chain.py");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .env("SGL_E2E_BASE_URL", &grid.base_url)
        .env("SGL_E2E_MODEL", &model)
        .env("SGL_E2E_PAYER_KEY", format!("0x{}", payer_key.trim()))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("the script finishes").expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "x402_chain.py: {}\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr),
        grid.log()
    );
    let paid: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("one JSON line");
    assert_eq!(paid["asset"].as_str(), Some(usdc.to_lowercase().as_str()));
    let quote = u128::from(paid["quote_units"].as_u64().expect("quote"));
    let payer = text(&paid["payer"]);
    let balance = |who: String| {
        let (cast_bin, rpc, usdc) = (cast_bin.clone(), rpc.clone(), usdc.clone());
        async move { uint(&cast_bin, &rpc, &["call", &usdc, "balanceOf(address)(uint256)", &who]).await }
    };
    assert_eq!(balance(payer.clone()).await, 100_000_000 - quote, "the payer paid the quote on chain");
    let float = u128::from(chain["grid_usdc"].as_u64().expect("grid_usdc"));
    assert_eq!(balance(text(&paid["pay_to"])).await, float + quote, "the grid received it on chain");
    let receipt = cast(&cast_bin, &rpc, &["receipt", &text(&paid["transaction"]), "status"]).await;
    assert_eq!(receipt, "true", "the settlement's transaction succeeded");

    // A liar among three operators: outvoted, and slashed on the chain with the evidence's hash.
    let liar = grid.operators[2].clone();
    let bundle = grid.primes_bundle("primes", &[(0, 50_000), (50_000, 100_000), (100_000, 150_000)], 2).await;
    let job = grid.cloud_json(&["jobs", "submit", &bundle.display().to_string(), "--wait"]).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    let slashed = wait_for("the liar's bond slashed on chain", || {
        let (cast_bin, rpc, registry, liar) = (cast_bin.clone(), rpc.clone(), registry.clone(), liar.clone());
        async move {
            let entry = cast(
                &cast_bin,
                &rpc,
                &["call", &registry, "providerOf(address)(bool,uint256,bytes32,uint64,uint32)", &liar],
            )
            .await;
            let bond: u128 = entry.lines().nth(1)?.split_whitespace().next()?.parse().ok()?;
            (bond < u128::from(min_bond)).then_some(bond)
        }
    })
    .await;
    assert!(slashed > 0, "a share of the bond, not all of it");
    let stake = grid.get(&format!("/grid/operators/{liar}/stake"), None).await;
    let slashes = stake["slashes"].as_array().expect("slashes");
    assert!(!slashes.is_empty(), "{stake}");
    let hashes: Vec<String> = slashes.iter().map(|s| text(&s["evidence_hash"])).collect();
    let logs = cast(
        &cast_bin,
        &rpc,
        &["logs", "--from-block", "0", "--address", &registry, "BondSlashed(address,uint256,bytes32)"],
    )
    .await;
    for hash in &hashes {
        assert!(logs.contains(&hash[2..]), "a BondSlashed event carries the evidence hash {hash}:\n{logs}");
    }
    let honest =
        uint(&cast_bin, &rpc, &["call", &staking, "stakeOf(address)(uint256,uint256,uint64)", &grid.operators[0]])
            .await;
    assert_eq!(honest, u128::from(min_stake), "honest operators keep their stake");

    // The ledger and the chain agree, once the follower has booked the slashes.
    let audit = wait_for("a clean chain audit", || async {
        let audit = chain_audit(&grid, &chain).await;
        audit["differences"].as_array().is_some_and(Vec::is_empty).then_some(audit)
    })
    .await;
    assert_eq!(audit["wallets"], 3, "{audit}");
    assert_eq!(audit["settlements"], 1, "{audit}");
    let ledger = grid.admin(&["ledger", "check"]).await;
    assert_eq!(ledger["sound"], true, "{ledger}");
    grid.stop().await;
}

/// `sgl-grid chain audit --json` against the running grid's database and chain.
pub(crate) async fn chain_audit(grid: &ComputeGrid, chain: &Value) -> Value {
    let data = grid.data_dir();
    let output = tokio::process::Command::new(grid.grid_binary())
        .arg("--data-dir")
        .arg(&data)
        .args(["chain", "audit", "--json"])
        .env("SGL_CHAIN_RPC_URL", chain["rpc_url"].as_str().expect("rpc"))
        .env("SGL_CHAIN_CONTRACTS", chain["contracts_file"].as_str().expect("contracts_file"))
        .env("SGL_CHAIN_SIGNER_KEY_FILE", data.join("chain/grid.key"))
        .output()
        .await
        .expect("sgl-grid chain audit runs");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("audit JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)))
}
