//! The operator's money through the real `sgl` binary: `stake show`, `stake unstake`,
//! `stake withdraw` and `withdraw`, signed with the operator wallet's key file (an EVM secret
//! or a Solana keypair), refused locally for another wallet's key, and the grid's refusals
//! passed on in one line.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand_core::OsRng;
use serde_json::Value;
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, Posting, TransactionKind};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::keyfile::{encode_keypair_json, save_payout_key};
use sgl_protocol::payout::PayoutKey;
use sgl_test_support::Grid;

use crate::{args, grid, sgl};

/// A new EVM operator wallet, its key saved (0600) in `dir`: `(wallet, key file)`.
fn evm_wallet(dir: &Path, name: &str) -> (String, PathBuf) {
    let key = PayoutKey::generate(&mut OsRng);
    let path = dir.join(name);
    save_payout_key(&path, &key).unwrap();
    (key.address().to_checksummed(), path)
}

/// Registers a node in `dir` for `wallet`, staked at the grid's minimum.
async fn register(grid: &Grid, dir: &Path, wallet: &str) {
    let code = grid.registration_code(wallet).await;
    let output = sgl(args(grid, dir, &["init", "--wallet", wallet, "--code", &code])).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Runs `sgl` and parses its stdout as exactly one JSON object.
async fn sgl_json(argv: Vec<String>) -> Value {
    let output = sgl(argv).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    serde_json::from_str(&stdout).unwrap()
}

/// A failed run's stderr, which must be one line.
fn one_line_error(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// Credits `usd_micros` of earnings to `wallet`, as settled jobs would.
async fn earn(grid: &Grid, wallet: &str, usd_micros: i64) {
    let transaction = NewTransaction {
        idempotency_key: format!("test-earnings:{wallet}"),
        kind: TransactionKind::Settlement,
        memo: "earnings for the stake test".into(),
        postings: vec![
            Posting { account: Account::External { source: "test".into(), asset: Asset::Usd }, amount: -usd_micros },
            Posting { account: Account::Earnings { wallet: wallet.to_owned() }, amount: usd_micros },
        ],
    };
    grid.store.post(&transaction, sgl_grid::state::Clock::now_ms(&sgl_grid::state::SystemClock)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstaking_is_signed_by_the_wallet_and_cools_down() {
    let grid = grid().await;
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("node");
    let (wallet, key_file) = evm_wallet(config.path(), "operator.key");
    let (other_wallet, other_key) = evm_wallet(config.path(), "other.key");
    register(&grid, &dir, &wallet).await;

    let shown = sgl_json(args(&grid, &dir, &["stake", "show", "--json"])).await;
    assert_eq!(shown["wallet"], wallet.as_str());
    assert_eq!(shown["state"], "staked");
    assert_eq!(shown["staked_micros"], 50_000_000_000_i64);
    assert_eq!((shown["min_stake_sgl"].as_u64(), shown["cooldown_secs"].as_u64()), (Some(50_000), Some(604_800)));
    assert_eq!((shown["earnings_micros"].as_i64(), shown["slashes"].as_array().map(Vec::len)), (Some(0), Some(0)));
    let human = sgl(args(&grid, &dir, &["stake", "show"])).await;
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains("State         staked") && human.contains("Staked        50000 SGL"), "{human}");
    assert!(human.contains("Cooldown      7d") && human.contains("Slashes       none"), "{human}");

    // Another wallet's key is refused before anything is sent.
    let other = args(&grid, &dir, &["stake", "unstake", "--json", "--wallet-key", other_key.to_str().unwrap()]);
    let refused = one_line_error(&sgl(other).await);
    assert!(refused.contains(&format!("this key is wallet {other_wallet}")) && refused.contains(&wallet), "{refused}");
    assert_eq!(sgl_json(args(&grid, &dir, &["stake", "show", "--json"])).await["state"], "staked");
    // Neither key's secret is ever printed.
    for file in [&key_file, &other_key] {
        let secret = std::fs::read_to_string(file).unwrap();
        assert!(!refused.contains(secret.trim()), "{refused}");
    }

    // The right key, through SGL_WALLET_KEY_FILE: unstaking, withdrawable after the cooldown.
    let unstake = args(&grid, &dir, &["stake", "unstake", "--json"]);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sgl")).args(unstake).env("SGL_WALLET_KEY_FILE", key_file).output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("get no work"), "{output:?}");
    let unstaked: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stake = &unstaked["stake"];
    assert_eq!((stake["state"].as_str(), stake["withdrawable"].as_bool()), (Some("unstaking"), Some(false)));
    assert_eq!((stake["staked_micros"].as_i64(), stake["unbonding_micros"].as_i64()), (Some(0), Some(50_000_000_000)));
    let available_at = stake["unbonding_available_at"].as_str().expect("an unbonding_available_at");
    assert!(available_at.ends_with('Z'), "{available_at}");
    let key = config.path().join("operator.key");
    let key = key.to_str().unwrap();

    // Nothing left to unstake (the grid answers 400 "cannot unstake 0" before it looks for the
    // open unstake), and withdrawing before the cooldown: the grid's 409.
    let again = one_line_error(&sgl(args(&grid, &dir, &["stake", "unstake", "--wallet-key", key])).await);
    assert!(again.starts_with("sgl: the grid refused (4"), "{again}");
    let early = one_line_error(&sgl(args(&grid, &dir, &["stake", "withdraw", "--wallet-key", key])).await);
    assert!(early.contains("the grid refused (409)") && early.contains(available_at), "{early}");
    let human = String::from_utf8(sgl(args(&grid, &dir, &["stake", "show"])).await.stdout).unwrap();
    let line = format!("Unbonding     50000 SGL, withdrawable at {available_at} (in ");
    assert!(human.contains(&format!("{line}7d)")) || human.contains(&format!("{line}6d 23h)")), "{human}");

    // No earnings yet: the grid says there is nothing to pay out.
    let nothing = one_line_error(&sgl(args(&grid, &dir, &["withdraw", "--json", "--wallet-key", key])).await);
    assert!(nothing.contains("the grid refused (400)") && nothing.contains("nothing to pay out"), "{nothing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbonded_stake_and_earnings_are_withdrawn_after_the_cooldown() {
    let grid = Grid::start_with_env(&[("SGL_UNSTAKE_COOLDOWN_SECS", "0")]).await;
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("node");
    let (wallet, key_file) = evm_wallet(config.path(), "operator.key");
    let key = key_file.to_str().unwrap();
    register(&grid, &dir, &wallet).await;

    // Earnings go to the node's payout address unless --to says otherwise.
    earn(&grid, &wallet, 2_500_000).await;
    let payout_address = sgl_json(args(&grid, &dir, &["status", "--json"])).await["payout_address"].clone();
    let paid = sgl_json(args(&grid, &dir, &["withdraw", "--amount", "1.5", "--json", "--wallet-key", key])).await;
    let receipt = &paid["payout"];
    assert_eq!((&receipt["to"], receipt["paid_micros"].as_i64()), (&payout_address, Some(1_500_000)));
    assert!(receipt["network"].as_str().unwrap().starts_with("eip155:"), "{receipt}");
    assert!(receipt["transaction"].as_str().unwrap().starts_with("0x"), "{receipt}");
    assert_eq!(paid["stake"]["earnings_micros"], 1_000_000);
    let to = PayoutKey::generate(&mut OsRng).address().to_checksummed();
    let human = sgl(args(&grid, &dir, &["withdraw", "--to", &to, "--wallet-key", key])).await;
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(human.contains(&format!("paid $1.00 to {to}")) && human.contains("unpaid now    $0.00"), "{human}");
    let bad_to = one_line_error(&sgl(args(&grid, &dir, &["withdraw", "--to", "0xnope", "--wallet-key", key])).await);
    assert!(bad_to.contains("--to") && bad_to.contains("not an EVM address"), "{bad_to}");

    // Part of the stake, then withdrawn at once (no cooldown on this grid).
    let partial = args(&grid, &dir, &["stake", "unstake", "--amount", "10000", "--json", "--wallet-key", key]);
    let unstaked = sgl_json(partial).await;
    assert_eq!(unstaked["stake"]["unbonding_micros"], 10_000_000_000_i64);
    assert_eq!(
        (unstaked["stake"]["state"].as_str(), unstaked["stake"]["withdrawable"].as_bool()),
        (Some("unstaking"), Some(true))
    );
    let human = String::from_utf8(sgl(args(&grid, &dir, &["stake", "show"])).await.stdout).unwrap();
    assert!(human.contains("Unbonding     10000 SGL, withdrawable now"), "{human}");
    let second = args(&grid, &dir, &["stake", "unstake", "--amount", "1", "--wallet-key", key]);
    let second = one_line_error(&sgl(second).await);
    assert!(second.contains("the grid refused (409)") && second.contains("already cooling down"), "{second}");
    let withdrawn = sgl(args(&grid, &dir, &["stake", "withdraw", "--wallet-key", key])).await;
    let withdrawn = String::from_utf8(withdrawn.stdout).unwrap();
    assert!(withdrawn.contains("withdrew 10000 SGL of stake"), "{withdrawn}");
    assert!(withdrawn.contains("now below minimum: 40000 SGL staked"), "{withdrawn}");
    let nothing_open =
        one_line_error(&sgl(args(&grid, &dir, &["stake", "withdraw", "--json", "--wallet-key", key])).await);
    assert!(
        nothing_open.contains("the grid refused (409)") && nothing_open.contains("unstake first"),
        "{nothing_open}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_solana_wallet_acts_with_its_keypair_without_a_node_here() {
    let grid = Grid::start_with_env(&[("SGL_UNSTAKE_COOLDOWN_SECS", "0")]).await;
    let config = tempfile::tempdir().unwrap();
    let identity = NodeIdentity::generate(&mut OsRng);
    let wallet = identity.public_key().to_b58();
    let key_file = config.path().join("id.json");
    std::fs::write(&key_file, encode_keypair_json(&identity).as_bytes()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    grid.registration_code(&wallet).await;
    // No node in this config directory: --wallet names the wallet, the grid is the one given.
    let empty = config.path().join("empty");
    let key = key_file.to_str().unwrap();
    let shown = sgl_json(args(&grid, &empty, &["stake", "show", "--json", "--wallet", &wallet])).await;
    assert_eq!((shown["wallet"].as_str(), shown["state"].as_str()), (Some(wallet.as_str()), Some("staked")));
    let unstake = args(&grid, &empty, &["stake", "unstake", "--wallet", &wallet, "--wallet-key", key]);
    let output = sgl(unstake).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("unstaking: 50000 SGL unbonding, 0 SGL still staked") && stdout.contains("withdrawable at"),
        "{stdout}"
    );
    // The file is group-readable: used, with a warning, and left as the operator made it.
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("other users can access") && stderr.contains("(mode 640)"), "{stderr}");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o640);
    let withdraw = args(&grid, &empty, &["stake", "withdraw", "--json", "--wallet", &wallet, "--wallet-key", key]);
    let withdrawn = sgl_json(withdraw).await;
    assert_eq!(withdrawn["withdrawn_micros"], 50_000_000_000_i64);
    assert_eq!(withdrawn["stake"]["state"], "below_minimum");
    // A payout needs an address when there is no node to take it from.
    let no_to = args(&grid, &empty, &["withdraw", "--wallet", &wallet, "--wallet-key", key]);
    assert!(one_line_error(&sgl(no_to).await).contains("pass --to"));
    // Without --wallet and without a node there is nothing to act for.
    let unknown = one_line_error(&sgl(args(&grid, &empty, &["stake", "show"])).await);
    assert!(unknown.contains("pass --wallet") && unknown.contains("run sgl init first"), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_without_a_code_proves_the_wallet_with_its_key() {
    let grid = grid().await;
    let dir = tempfile::tempdir().unwrap();
    let (wallet, key_file) = evm_wallet(dir.path(), "operator.key");
    grid.admin(sgl_grid::admin::AdminCommand::Stake { wallet: wallet.clone(), amount_sgl: 50_000 }).await;

    // Without a code or a key, the grid refuses, and says what the operator can do.
    let refused = sgl(args(&grid, &dir.path().join("a"), &["init", "--wallet", &wallet])).await;
    let message = one_line_error(&refused);
    assert!(message.contains("403") && message.contains("--wallet-key"), "{message}");

    // Another wallet's key is refused before anything is sent.
    let (_, other_key) = evm_wallet(dir.path(), "other.key");
    let other = sgl(args(
        &grid,
        &dir.path().join("b"),
        &["init", "--wallet", &wallet, "--wallet-key", other_key.to_str().unwrap()],
    ))
    .await;
    let message = one_line_error(&other);
    assert!(message.contains(&wallet) || message.contains(&wallet.to_lowercase()), "{message}");

    // The wallet's own key registers the node, once.
    let node_dir = dir.path().join("c");
    let registered = sgl_json(args(
        &grid,
        &node_dir,
        &["init", "--wallet", &wallet, "--wallet-key", key_file.to_str().unwrap(), "--json"],
    ))
    .await;
    let node_id = registered["node_id"].as_str().unwrap();
    let record = grid.store.node(node_id).await.unwrap().expect("the node is registered");
    assert_eq!(record.wallet, wallet);
    // A Solana-style wallet works the same way.
    let identity = NodeIdentity::generate(&mut OsRng);
    let solana = identity.public_key().to_b58();
    let solana_key = dir.path().join("solana.json");
    std::fs::write(&solana_key, encode_keypair_json(&identity).as_bytes()).unwrap();
    std::fs::set_permissions(&solana_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    grid.admin(sgl_grid::admin::AdminCommand::Stake { wallet: solana.clone(), amount_sgl: 50_000 }).await;
    let output = sgl(args(
        &grid,
        &dir.path().join("d"),
        &["init", "--wallet", &solana, "--wallet-key", solana_key.to_str().unwrap()],
    ))
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
