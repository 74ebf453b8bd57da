//! Scenario: the order book on a chain, with real processes. `sgl-grid up --chain` with two
//! wasm nodes of two operators, each bidding from its own price policy (`sgl price policy set`):
//! a requester's order gets a bid from each, the cheaper wins, the grid funds the lease with an
//! `Escrow` stream on the chain (read back with `cast`), and when the requester completes it the
//! stream pays the provider's operator wallet on the chain, less the contract's 1 % fee. An
//! operator's earnings from a compute job then leave by `sgl withdraw`, queued and paid by the
//! grid's next `Escrow.payBatch`; the USDC arrives at the address it named. The chain audit
//! finds the batch and the stream in agreement with the ledger.

use serde_json::Value;

use crate::support::compute::ComputeGrid;
use crate::support::{DEADLINE, exclusive, test_env, wait_for};

use super::chain::{cast, cast_binary, uint};

/// Where `sgl payouts` go in this scenario: an address nobody else pays.
const PAYOUT_TO: &str = "0x000000000000000000000000000000000000bEEF";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cheaper_bid_wins_its_lease_streams_on_chain_and_payouts_arrive_in_a_batch() {
    let Some(env) = test_env() else { return };
    let Some(cast_bin) = cast_binary() else { return };
    let _turn = exclusive().await;
    // Compute at the bundles' cap, so that a small job earns its operators something to pay out.
    let price = [("SGL_COMPUTE_PRICE_MICROS_PER_GFUEL", "1000")];
    let grid = ComputeGrid::start_with_env(&env, (2, &[], 0.0), "wasm", &["--chain"], &price).await;
    let chain = grid.ready["chain"].clone();
    let text = |v: &Value| v.as_str().unwrap_or_else(|| panic!("a string: {v}")).to_owned();
    let rpc = text(&chain["rpc_url"]);
    let (usdc, escrow, grid_address) =
        (text(&chain["contracts"]["usdc"]), text(&chain["contracts"]["escrow"]), text(&chain["grid"]));
    let balance = |who: String| {
        let (cast_bin, rpc, usdc) = (cast_bin.clone(), rpc.clone(), usdc.clone());
        async move { uint(&cast_bin, &rpc, &["call", &usdc, "balanceOf(address)(uint256)", &who]).await }
    };

    // Two price policies: node 0 asks $3.60 an hour (1,000 micro-USD a second), node 1 twice that.
    for (index, usd) in [(0, "3.60"), (1, "7.20")] {
        sgl(&env, &grid, index, &["price", "policy", "set", "--class", "wasm", "--usd-per-hour", usd]).await;
    }
    let provider = grid.operators[0].clone();
    let before = balance(provider.clone()).await;

    // The order: both nodes bid within its window; the cheaper wins.
    let order = grid
        .cloud_json(&[
            "market",
            "order",
            "--class",
            "wasm",
            "--duration-secs",
            "600",
            "--max-usd-per-hour",
            "10",
            "--bid-window-secs",
            "5",
            "--wait",
        ])
        .await;
    assert_eq!(order["state"], "leased", "{order}\n{}", grid.log());
    let bids = order["bids"].as_array().expect("bids");
    assert_eq!(bids.len(), 2, "a bid from each node: {order}");
    let by_node = |index: usize| bids.iter().find(|b| b["node_id"] == grid.node_ids[index]).expect("its bid");
    assert_eq!(by_node(0)["state"], "won", "{order}");
    assert_eq!(by_node(1)["state"], "lost", "{order}");
    assert_eq!(by_node(1)["lost_reason"]["reason"], "outbid", "{order}");
    assert_eq!(by_node(1)["lost_reason"]["winning_price_micros"], 3_600_000, "{order}");
    let lease_id = text(&order["lease"]["id"]);
    assert_eq!(order["lease"]["operator_wallet"], provider.as_str());
    assert_eq!(order["lease"]["deposit_micros"], 600_000, "$3.60 an hour for 600 s");

    // The leader funds it with an escrow stream from the grid's USDC to the provider.
    let lease = wait_for("the lease funded on chain", || async {
        let lease = grid.cloud_json(&["market", "lease", "show", &lease_id]).await;
        lease["chain_stream_id"].is_string().then_some(lease)
    })
    .await;
    let stream_id = text(&lease["chain_stream_id"]);
    let stream = cast(
        &cast_bin,
        &rpc,
        &["call", &escrow, "streamOf(uint256)(address,address,uint256,uint256,uint64,uint256,bool)", &stream_id],
    )
    .await;
    let fields: Vec<&str> = stream.lines().map(|l| l.split_whitespace().next().unwrap_or_default()).collect();
    assert_eq!(fields[0].to_lowercase(), grid_address.to_lowercase(), "the grid pays: {stream}");
    assert_eq!(fields[1].to_lowercase(), provider.to_lowercase(), "the provider's operator is paid: {stream}");
    assert_eq!(fields[2], "600000", "the deposit: {stream}");
    assert_eq!(fields[3], "1000", "1,000 micro-USD a second: {stream}");
    assert_eq!(fields[6], "false", "open: {stream}");

    // It streams; the requester completes it, the grid closes the stream, the provider is paid.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let done = grid.cloud_json(&["market", "lease", "complete", &lease_id]).await;
    assert_eq!(done["state"], "completed", "{done}");
    let paid = done["paid_micros"].as_i64().expect("paid");
    assert!(paid >= 3_000, "at least 3 s streamed: {done}");
    assert_eq!(done["refunded_micros"].as_i64(), Some(600_000 - paid), "{done}");
    let closed = cast(
        &cast_bin,
        &rpc,
        &["call", &escrow, "streamOf(uint256)(address,address,uint256,uint256,uint64,uint256,bool)", &stream_id],
    )
    .await;
    let fields: Vec<&str> = closed.lines().map(|l| l.split_whitespace().next().unwrap_or_default()).collect();
    assert_eq!((fields[5], fields[6]), (paid.to_string().as_str(), "true"), "closed, paid what the grid booked");
    let fee = paid / 100;
    assert_eq!(balance(provider.clone()).await, before + u128::try_from(paid - fee).expect("paid"), "less 1 %");

    // Earnings from a job leave by sgl withdraw: queued, then paid on chain in a batch.
    let bundle = grid.primes_bundle("primes", &[(0, 50_000), (50_000, 100_000)], 1).await;
    let job = grid.cloud_json(&["jobs", "submit", &bundle.display().to_string(), "--wait"]).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    assert!(job["charged_micros"].as_i64() > Some(0), "{job}");
    let mut earner = None;
    for (index, wallet) in grid.operators.iter().enumerate() {
        let stake = grid.get(&format!("/grid/operators/{wallet}/stake"), None).await;
        if stake["earnings_micros"].as_i64().unwrap_or(0) > 0 {
            earner = Some((index, wallet.clone(), stake["earnings_micros"].as_i64().expect("earnings")));
        }
    }
    let (index, wallet, earnings) = earner.unwrap_or_else(|| panic!("a node that ran the job earned: {job}"));
    let key =
        grid.dir("data").join(if index == 0 { "operator.key".to_owned() } else { format!("operator-{index}.key") });
    let receipt =
        sgl(&env, &grid, index, &["withdraw", "--to", PAYOUT_TO, "--wallet-key", &key.display().to_string(), "--json"])
            .await;
    let receipt: Value = serde_json::from_str(&receipt).expect("JSON");
    assert_eq!(receipt["payout"]["status"], "queued", "{receipt}");
    assert_eq!(receipt["payout"]["paid_micros"], earnings, "{receipt}");
    assert_eq!(receipt["stake"]["earnings_micros"], 0, "{receipt}");
    let payout = wait_for("the payout paid on chain", || async {
        let list = grid.get(&format!("/grid/operators/{wallet}/payouts"), None).await;
        (list["data"][0]["status"] == "paid").then(|| list["data"][0].clone())
    })
    .await;
    assert_eq!(balance(PAYOUT_TO.to_owned()).await, u128::try_from(earnings).expect("earnings"));
    let status = cast(&cast_bin, &rpc, &["receipt", &text(&payout["transaction"]), "status"]).await;
    assert_eq!(status, "true", "{payout}");

    // The books agree with the chain.
    let audit = super::chain::chain_audit(&grid, &chain).await;
    assert_eq!(audit["differences"], serde_json::json!([]), "{audit}");
    assert_eq!((audit["payout_batches"].as_u64(), audit["streams"].as_u64()), (Some(1), Some(1)), "{audit}");
    let ledger = grid.admin(&["ledger", "check"]).await;
    assert_eq!(ledger["sound"], true, "{ledger}");
    grid.stop().await;
}

/// `sgl --config-dir NODE ARGS` against node `index`'s directory; its stdout (it must succeed).
async fn sgl(env: &crate::support::TestEnv, grid: &ComputeGrid, index: usize, args: &[&str]) -> String {
    let run = tokio::process::Command::new(&env.node_binary)
        .arg("--config-dir")
        .arg(grid.node_dir(index))
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("sgl finishes").expect("sgl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "sgl {args:?}: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout
}
