//! An operator's own actions, signed by its wallet: reading the stake, unstaking (its nodes get
//! no work while the cooldown runs), withdrawing after the cooldown, and paying earnings out to
//! an EVM address; forged, stale and replayed requests are refused and change nothing.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sgl_protocol::api::inference::Usage;
use sgl_protocol::api::operator::{OperatorAction, SignedOperatorRequest, operator_message};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::payout::PayoutKey;
use sgl_protocol::wallet::personal_sign;

use crate::harness::{Grid, START_MS, assert_error};

const DAY_MS: i64 = 86_400_000;

fn signed(key: &PayoutKey, wallet: &str, action: OperatorAction, nonce: &str, signed_at_ms: i64) -> Value {
    let signed_at = u64::try_from(signed_at_ms / 1000).unwrap();
    let message = operator_message(wallet, &action, nonce, signed_at);
    let request = SignedOperatorRequest {
        action,
        nonce: nonce.into(),
        signed_at,
        signature: personal_sign(key, message.as_bytes()),
    };
    serde_json::to_value(request).unwrap()
}

async fn act(grid: &Grid, wallet: &str, body: Value) -> (StatusCode, Value) {
    grid.call("POST", &format!("/grid/operators/{wallet}/actions"), &[], Some(body)).await
}

async fn stake(grid: &Grid, wallet: &str) -> Value {
    let (status, body) = grid.call("GET", &format!("/grid/operators/{wallet}/stake"), &[], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_wallet_unstakes_withdraws_after_the_cooldown_and_is_paid_its_earnings() {
    let grid = Grid::new().await;
    let key = PayoutKey::from_hex(&"22".repeat(32)).unwrap();
    let wallet = key.address().to_checksummed();
    let node = grid.node(&wallet, 41).await;
    node.beat(&grid, &["m"]).await;

    // One paid job gives the operator earnings.
    let (_, api_key) = grid.api_key(1.0).await;
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100});
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, request.clone());
    let job = node.open(&node.wait_job(&grid, "m").await);
    assert_eq!(node.complete(&grid, &job, "hello", Usage::new(10, 100)).await.0, StatusCode::OK);
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);
    let before = stake(&grid, &wallet).await;
    assert_eq!(before["state"], "staked", "{before}");
    assert_eq!(before["staked_micros"], 50_000_000_000i64, "{before}");
    // 10 input tokens at 0.10 and 100 output at 0.40 per 1M: 41 micro-dollars, 80 % earned.
    assert_eq!(before["earnings_micros"], 32, "{before}");

    // Refused: another key, a stale time, a malformed amount. Nothing changes.
    let intruder = PayoutKey::from_hex(&"33".repeat(32)).unwrap();
    let unstake = || OperatorAction::Unstake { amount_micros: None };
    assert_error(
        act(&grid, &wallet, signed(&intruder, &wallet, unstake(), "n0", START_MS)).await,
        StatusCode::BAD_REQUEST,
        "invalid_signature",
    );
    let stale = act(&grid, &wallet, signed(&key, &wallet, unstake(), "n0", START_MS - 600_000)).await;
    assert_eq!((stale.0, stale.1["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("signed_at")));
    let too_much = OperatorAction::Unstake { amount_micros: Some(60_000_000_000) };
    let refused = act(&grid, &wallet, signed(&key, &wallet, too_much, "n0b", START_MS)).await;
    assert_eq!((refused.0, refused.1["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("amount_micros")));
    assert_eq!(stake(&grid, &wallet).await["state"], "staked");

    // Unstaking: the stake cools down and the node gets no work, at once.
    let unstake_request = signed(&key, &wallet, unstake(), "n1", START_MS);
    let (status, unstaked) = act(&grid, &wallet, unstake_request.clone()).await;
    assert_eq!(status, StatusCode::OK, "{unstaked}");
    assert_eq!(unstaked["stake"]["state"], "unstaking", "{unstaked}");
    assert_eq!(unstaked["stake"]["unbonding_micros"], 50_000_000_000i64, "{unstaked}");
    assert_eq!(unstaked["stake"]["withdrawable"], false, "{unstaked}");
    assert_error(act(&grid, &wallet, unstake_request).await, StatusCode::CONFLICT, "conflict");
    let (status, body) = grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(request)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unstaking operator's node serves nothing: {body}");
    let (_, node_status) = node.call(&grid, "GET", &format!("/grid/nodes/{}", node.node_id), None).await;
    assert_eq!(node_status["stake_state"], "unstaking", "{node_status}");

    // Withdrawal waits for the cooldown.
    let early = act(&grid, &wallet, signed(&key, &wallet, OperatorAction::WithdrawStake, "n2", START_MS)).await;
    assert_error(early, StatusCode::CONFLICT, "conflict");
    grid.advance_ms(7 * DAY_MS);
    let now = START_MS + 7 * DAY_MS;
    let (status, withdrawn) =
        act(&grid, &wallet, signed(&key, &wallet, OperatorAction::WithdrawStake, "n3", now)).await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(withdrawn["withdrawn_micros"], 50_000_000_000i64, "{withdrawn}");
    assert_eq!(withdrawn["stake"]["state"], "below_minimum", "{withdrawn}");

    // Earnings paid out to an EVM address, credited in the local ledger; no more than earned.
    let to = PayoutKey::from_hex(&"44".repeat(32)).unwrap().address().to_checksummed();
    let greedy = OperatorAction::Payout { amount_micros: Some(33), to: to.clone() };
    let refused = act(&grid, &wallet, signed(&key, &wallet, greedy, "n4", now)).await;
    assert_eq!((refused.0, refused.1["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("amount_micros")));
    let payout = OperatorAction::Payout { amount_micros: None, to: to.clone() };
    let (status, paid) = act(&grid, &wallet, signed(&key, &wallet, payout, "n5", now)).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!((paid["payout"]["paid_micros"].as_i64(), paid["payout"]["to"].as_str()), (Some(32), Some(to.as_str())));
    assert_eq!(paid["stake"]["earnings_micros"], 0, "{paid}");
    let address: alloy_primitives::Address = to.parse().unwrap();
    let network = sgl_pay::network::NetworkConfig::BASE_SEPOLIA;
    let account = sgl_pay::ledger::AccountKey { network: network.caip2.to_string(), asset: network.asset, address };
    let usdc = sgl_pay::ledger::PaymentLedger::balance(&grid.store, &account).await.unwrap();
    assert_eq!(usdc, alloy_primitives::U256::from(32u64));
    assert_eq!(
        (paid["payout"]["status"].as_str(), paid["payout"]["id"].as_str()),
        (Some("paid"), Some(&*format!("payout:{wallet}:n5")))
    );
    assert!(paid["payout"]["transaction"].as_str().is_some_and(|t| t.starts_with("0x")), "{paid}");
    // Without a chain nothing is ever queued for one; a limit outside 1..=500 is refused.
    let (status, list) = grid.call("GET", &format!("/grid/operators/{wallet}/payouts"), &[], None).await;
    assert_eq!(
        (status, list["object"].as_str(), list["data"].as_array().map(Vec::len)),
        (StatusCode::OK, Some("list"), Some(0))
    );
    let (status, refused) = grid.call("GET", &format!("/grid/operators/{wallet}/payouts?limit=0"), &[], None).await;
    assert_eq!((status, refused["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("limit")));
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_solana_style_wallet_signs_with_ed25519() {
    let grid = Grid::new().await;
    let wallet_key = NodeIdentity::from_seed(&[5; 32]);
    let wallet = wallet_key.public_key().to_b58();
    grid.stake(&wallet, 60_000).await;
    let action = OperatorAction::Unstake { amount_micros: Some(10_000_000_000) };
    let signed_at = u64::try_from(START_MS / 1000).unwrap();
    let message = operator_message(&wallet, &action, "s1", signed_at);
    let request = SignedOperatorRequest {
        action,
        nonce: "s1".into(),
        signed_at,
        signature: wallet_key.sign_b58(message.as_bytes()),
    };
    let (status, body) = act(&grid, &wallet, serde_json::to_value(&request).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["stake"]["staked_micros"].as_i64(), body["stake"]["unbonding_micros"].as_i64()),
        (Some(50_000_000_000), Some(10_000_000_000))
    );
    // Even above the minimum, an open unstake keeps its nodes off work.
    assert_eq!(body["stake"]["state"], "unstaking");
}
