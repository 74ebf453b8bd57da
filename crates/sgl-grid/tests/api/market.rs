//! The order book through the real router: nodes bid on an order, the leader's duties match it
//! (the cheaper wins; at one price the node of higher reputation), the lease streams payment by
//! the second as the grid's clock moves, and completes, cancels and exhaustion pay what streamed
//! and refund the rest to the micro-unit; an order nobody could fill is refunded whole; a bound
//! compute job runs only on its lease's node and its end completes the lease; every refusal is
//! the right 4xx. The ledger audit is sound after each test.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sgl_grid_store::ledger::Account;

use crate::compute::{Requester, lease_class, manifest};
use crate::harness::{Grid, Node, assert_error};

const USD: i64 = 1_000_000;

/// A registered, attested and staked node announcing the `wasm` class (2 cores, 24 GB).
async fn provider(grid: &Grid, wallet: &str, seed: u8) -> Node {
    let node = grid.node(wallet, seed).await;
    beat(grid, &node).await;
    node
}

async fn beat(grid: &Grid, node: &Node) {
    let mut body = node.heartbeat_body(&[]);
    body["workloads"] = json!(["wasm"]);
    let (status, answer) = node.heartbeat(grid, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

fn order(max: i64, duration_secs: u64) -> Value {
    json!({
        "class": "wasm", "resources": {"cpu_cores": 1, "memory_mb": 1024},
        "duration_secs": duration_secs, "max_price_per_hour_micros": max
    })
}

async fn place(grid: &Grid, key: &str, body: Value) -> Value {
    let (status, placed) = grid.call("POST", "/v1/market/orders", &[("X-API-Key", key)], Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{placed}");
    placed
}

async fn bid(grid: &Grid, node: &Node, order_id: &str, price: i64) -> (StatusCode, Value) {
    let body = json!({"price_per_hour_micros": price});
    node.call(grid, "POST", &format!("/grid/market/orders/{order_id}/bids"), Some(body)).await
}

async fn get(grid: &Grid, key: &str, path: &str) -> Value {
    let (status, body) = grid.call("GET", path, &[("X-API-Key", key)], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn post(grid: &Grid, key: &str, path: &str) -> (StatusCode, Value) {
    grid.call("POST", path, &[("X-API-Key", key)], None).await
}

async fn duties(grid: &Grid) {
    grid.state().market().duties(grid.state().registry()).await.unwrap();
}

async fn earnings(grid: &Grid, wallet: &str) -> i64 {
    grid.store.balance(&Account::Earnings { wallet: wallet.into() }).await.unwrap()
}

async fn platform(grid: &Grid) -> i64 {
    grid.store.balance(&Account::Platform).await.unwrap()
}

/// Ends `id`'s bid window with `nodes` live and runs the match; returns the order.
async fn match_after_window(grid: &Grid, key: &str, id: &str, nodes: &[&Node]) -> Value {
    grid.advance_ms(5_000);
    for node in nodes {
        beat(grid, node).await;
    }
    duties(grid).await;
    get(grid, key, &format!("/v1/market/orders/{id}")).await
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_nodes_bid_the_cheaper_wins_and_its_lease_streams_to_the_micro_unit() {
    let grid = Grid::new().await;
    let (key_id, key) = grid.api_key(10.0).await;
    let (a, b) = (provider(&grid, "0xa", 1).await, provider(&grid, "0xb", 2).await);
    let placed = place(&grid, &key, order(USD, 600)).await;
    assert_eq!(
        (&placed["state"], &placed["held_micros"], &placed["bid_window_secs"]),
        (&json!("open"), &json!(166_666), &json!(5))
    );
    assert_eq!(grid.credits(key_id).await, 10 * USD - 166_666, "the maximum over 600 s is held");
    let order_id = id(&placed);
    let (_, seen) = a.call(&grid, "GET", "/grid/market/orders", None).await;
    assert_eq!(seen["data"][0]["id"], json!(order_id), "{seen}");
    assert_eq!(bid(&grid, &a, &order_id, 900_000).await.0, StatusCode::OK);
    assert_eq!(bid(&grid, &b, &order_id, 720_000).await.0, StatusCode::OK);
    let (_, seen) = a.call(&grid, "GET", "/grid/market/orders", None).await;
    assert_eq!(seen["data"][0]["own_bid_micros"], 900_000, "{seen}");

    let matched = match_after_window(&grid, &key, &order_id, &[&a, &b]).await;
    assert_eq!((&matched["state"], &matched["refunded_micros"]), (&json!("leased"), &json!(46_666)), "{matched}");
    let lease = &matched["lease"];
    assert_eq!((&lease["node_id"], &lease["operator_wallet"]), (&json!(b.node_id.to_string()), &json!("0xb")));
    assert_eq!((&lease["price_per_hour_micros"], &lease["deposit_micros"]), (&json!(720_000), &json!(120_000)));
    assert_eq!(grid.credits(key_id).await, 10 * USD - 120_000, "the hold's excess came back at the match");
    let (_, lost) = a.call(&grid, "GET", "/grid/market/bids", None).await;
    let lost = &lost["data"][0];
    assert_eq!(
        (&lost["state"], &lost["lost_reason"]),
        (&json!("lost"), &json!({"reason": "outbid", "winning_price_micros": 720_000}))
    );
    let (_, won) = b.call(&grid, "GET", "/grid/market/bids?limit=5", None).await;
    assert_eq!((&won["data"][0]["state"], &won["data"][0]["lease_id"]), (&json!("won"), &lease["id"]));

    // 61 s at 200 micro-USD a second, settled by the leader: 99 % to the operator.
    let lease_id = id(lease);
    grid.advance_ms(61_000);
    duties(&grid).await;
    let streaming = get(&grid, &key, &format!("/v1/market/leases/{lease_id}")).await;
    assert_eq!((&streaming["streamed_micros"], &streaming["paid_micros"]), (&json!(12_200), &json!(12_200)));
    assert_eq!((earnings(&grid, "0xb").await, platform(&grid).await), (12_078, 122));

    grid.advance_ms(29_000);
    let (status, done) = b.call(&grid, "POST", &format!("/grid/market/leases/{lease_id}/complete"), None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (&done["state"], &done["paid_micros"], &done["refunded_micros"]),
        (&json!("completed"), &json!(18_000), &json!(102_000))
    );
    assert_eq!(grid.credits(key_id).await, 10 * USD - 18_000, "90 s paid, the rest refunded");
    assert_eq!((earnings(&grid, "0xb").await, platform(&grid).await, earnings(&grid, "0xa").await), (17_820, 180, 0));
    assert_error(
        post(&grid, &key, &format!("/v1/market/leases/{lease_id}/cancel")).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn at_one_price_the_node_of_higher_reputation_wins_then_the_earlier_bid() {
    let grid = Grid::new().await;
    let (_, key) = grid.api_key(10.0).await;
    let (a, b, c) = (provider(&grid, "0xa", 1).await, provider(&grid, "0xb", 2).await, provider(&grid, "0xc", 3).await);
    for _ in 0..3 {
        grid.store.record_job_outcome(&b.node_id.to_string(), true, crate::harness::START_MS).await.unwrap();
    }
    let order_id = id(&place(&grid, &key, order(USD, 60)).await);
    for node in [&a, &b, &c] {
        assert_eq!(bid(&grid, node, &order_id, 500_000).await.0, StatusCode::OK);
    }
    let matched = match_after_window(&grid, &key, &order_id, &[&a, &b, &c]).await;
    assert_eq!(matched["lease"]["node_id"], json!(b.node_id.to_string()), "{matched}");
    let reason_of = |matched: &Value, node: &Node| {
        let bids = matched["bids"].as_array().unwrap();
        bids.iter().find(|bid| bid["node_id"] == json!(node.node_id.to_string())).unwrap()["lost_reason"].clone()
    };
    assert_eq!(reason_of(&matched, &a), json!({"reason": "lower_reputation"}));
    assert_eq!(reason_of(&matched, &c), json!({"reason": "lower_reputation"}));
    // Between two nodes of one reputation, the earlier bid wins.
    let order_id = id(&place(&grid, &key, order(USD, 60)).await);
    for node in [&c, &a] {
        assert_eq!(bid(&grid, node, &order_id, 500_000).await.0, StatusCode::OK);
    }
    let matched = match_after_window(&grid, &key, &order_id, &[&a, &c]).await;
    assert_eq!(matched["lease"]["node_id"], json!(c.node_id.to_string()), "{matched}");
    assert_eq!(reason_of(&matched, &a), json!({"reason": "later_bid"}));
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn exhaustion_cancel_and_complete_pay_what_streamed_and_refund_the_rest() {
    let grid = Grid::new().await;
    let (key_id, key) = grid.api_key(10.0).await;
    let node = provider(&grid, "0xp", 1).await;
    // 0.18 USD an hour is 50 micro-USD a second: 6,000 for the 120 s of each lease.
    let mut leases = Vec::new();
    for _ in 0..3 {
        beat(&grid, &node).await;
        let order_id = id(&place(&grid, &key, order(360_000, 120)).await);
        assert_eq!(bid(&grid, &node, &order_id, 180_000).await.0, StatusCode::OK);
        let matched = match_after_window(&grid, &key, &order_id, &[&node]).await;
        assert_eq!(matched["lease"]["deposit_micros"], 6_000, "{matched}");
        leases.push(id(&matched["lease"]));
    }
    // The leases started 5 s apart: 30 s from now the second has run 35 s, the third 30.5 s.
    grid.advance_ms(30_000);
    let (status, cancelled) = post(&grid, &key, &format!("/v1/market/leases/{}/cancel", leases[1])).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(
        (&cancelled["state"], &cancelled["paid_micros"], &cancelled["refunded_micros"]),
        (&json!("cancelled"), &json!(1_750), &json!(4_250))
    );
    grid.advance_ms(500);
    let (status, completed) = post(&grid, &key, &format!("/v1/market/leases/{}/complete", leases[2])).await;
    assert_eq!(status, StatusCode::OK, "{completed}");
    assert_eq!((&completed["state"], &completed["paid_micros"]), (&json!("completed"), &json!(1_500)), "whole seconds");
    grid.advance_ms(200_000);
    duties(&grid).await;
    let exhausted = get(&grid, &key, &format!("/v1/market/leases/{}", leases[0])).await;
    assert_eq!(
        (&exhausted["state"], &exhausted["paid_micros"], &exhausted["refunded_micros"]),
        (&json!("exhausted"), &json!(6_000), &json!(0))
    );
    assert_eq!(exhausted["ended_at_ms"], exhausted["ends_at_ms"]);
    assert_eq!(grid.credits(key_id).await, 10 * USD - 6_000 - 1_750 - 1_500);
    assert_eq!(
        (earnings(&grid, "0xp").await, platform(&grid).await),
        (9_157, 92),
        "99/1 of 9,250; the carries hold the last unit"
    );
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn an_order_nobody_can_fill_is_refunded_whole() {
    let grid = Grid::new().await;
    let (key_id, key) = grid.api_key(10.0).await;
    let nobody = id(&place(&grid, &key, order(USD, 600)).await);
    let unfilled = match_after_window(&grid, &key, &nobody, &[]).await;
    assert_eq!((&unfilled["state"], &unfilled["refunded_micros"]), (&json!("unfilled"), &json!(166_666)));
    assert_eq!(grid.credits(key_id).await, 10 * USD, "every micro-unit back");

    // A node that bid and then went silent past the node timeout is passed over.
    let silent = provider(&grid, "0xs", 1).await;
    let order_id = id(&place(&grid, &key, order(USD, 600)).await);
    assert_eq!(bid(&grid, &silent, &order_id, 1_000).await.0, StatusCode::OK);
    grid.advance_ms(20_000);
    duties(&grid).await;
    let unfilled = get(&grid, &key, &format!("/v1/market/orders/{order_id}")).await;
    assert_eq!(unfilled["state"], "unfilled", "{unfilled}");
    assert_eq!(unfilled["bids"][0]["lost_reason"], json!({"reason": "node_ineligible"}));
    assert_eq!(grid.credits(key_id).await, 10 * USD);
    let (_, list) = grid.call("GET", "/v1/market/orders", &[("X-API-Key", &key)], None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn refusals_are_clear_4xx_and_change_nothing() {
    let grid = Grid::new().await;
    let (key_id, key) = grid.api_key(1.0).await;
    let auth = [("X-API-Key", key.as_str())];
    let refused = |body: Value| grid.call("POST", "/v1/market/orders", &auth, Some(body));
    for (field, value, param) in [
        ("bid_window_secs", json!(0), "bid_window_secs"),
        ("bid_window_secs", json!(61), "bid_window_secs"),
        ("duration_secs", json!(0), "duration_secs"),
        ("max_price_per_hour_micros", json!(0), "max_price_per_hour_micros"),
        ("resources", json!({"cpu_cores": 0, "memory_mb": 1}), "resources"),
        ("job_id", json!("cj_nope"), "job_id"),
    ] {
        let mut body = order(USD, 600);
        body[field] = value;
        let (status, error) = refused(body).await;
        assert_eq!((status, &error["error"]["param"]), (StatusCode::BAD_REQUEST, &json!(param)), "{error}");
    }
    assert_error(refused(order(100 * USD, 3_600)).await, StatusCode::PAYMENT_REQUIRED, "insufficient_credits");
    assert_error(
        grid.call("POST", "/v1/market/orders", &[], Some(order(USD, 60))).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    );
    assert_eq!(grid.credits(key_id).await, USD, "nothing held by a refused order");

    let node = provider(&grid, "0xn", 1).await;
    let order_id = id(&place(&grid, &key, order(USD, 60)).await);
    let (_, other_key) = grid.api_key(1.0).await;
    let other = [("X-API-Key", other_key.as_str())];
    assert_error(
        grid.call("GET", &format!("/v1/market/orders/{order_id}"), &other, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        grid.call("POST", &format!("/v1/market/orders/{order_id}/cancel"), &other, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, error) = bid(&grid, &node, &order_id, USD + 1).await;
    assert_eq!(
        (status, &error["error"]["param"]),
        (StatusCode::BAD_REQUEST, &json!("price_per_hour_micros")),
        "{error}"
    );
    assert_eq!(bid(&grid, &node, &order_id, 0).await.0, StatusCode::BAD_REQUEST);
    assert_error(bid(&grid, &node, "mo_nope", 1).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        grid.call(
            "POST",
            &format!("/grid/market/orders/{order_id}/bids"),
            &[],
            Some(json!({"price_per_hour_micros": 1})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_node_token",
    );
    let unattested = grid.unattested_node("0xu", 2).await;
    beat(&grid, &unattested).await;
    assert_error(bid(&grid, &unattested, &order_id, 1).await, StatusCode::FORBIDDEN, "invalid_request");
    let no_wasm = grid.node("0xw", 3).await;
    no_wasm.beat(&grid, &[]).await;
    let (status, error) = bid(&grid, &no_wasm, &order_id, 1).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("workloads"), "{error}");
    let big = id(&place(&grid, &key, json!({"class": "wasm", "resources": {"cpu_cores": 64, "memory_mb": 1}, "duration_secs": 60, "max_price_per_hour_micros": USD})).await);
    let (status, error) = bid(&grid, &node, &big, 1).await;
    assert!(
        status == StatusCode::FORBIDDEN && error["error"]["message"].as_str().unwrap().contains("64 cores"),
        "{error}"
    );
    let (_, open) = node.call(&grid, "GET", "/grid/market/orders", None).await;
    assert_eq!(open["data"].as_array().unwrap().len(), 1, "the 64-core order is not offered to a 2-core node: {open}");

    // The operator's own order: its key is bound to the node's wallet.
    let own = grid
        .admin(sgl_grid::admin::AdminCommand::ApiKeyCreate {
            credits_usd: 1.0,
            label: "op".into(),
            wallet: Some("0xN".into()),
        })
        .await;
    let own_order = id(&place(&grid, own["api_key"].as_str().unwrap(), order(USD, 60)).await);
    assert_error(bid(&grid, &node, &own_order, 1).await, StatusCode::FORBIDDEN, "invalid_request");

    assert_eq!(post(&grid, &key, &format!("/v1/market/orders/{big}/cancel")).await.0, StatusCode::OK);
    assert_error(post(&grid, &key, &format!("/v1/market/orders/{big}/cancel")).await, StatusCode::CONFLICT, "conflict");
    assert_eq!(bid(&grid, &node, &order_id, 1_000).await.0, StatusCode::OK);
    grid.advance_ms(5_000);
    assert_error(bid(&grid, &node, &order_id, 900).await, StatusCode::CONFLICT, "conflict");
    beat(&grid, &node).await;
    duties(&grid).await;
    let lease_id = id(&get(&grid, &key, &format!("/v1/market/orders/{order_id}")).await["lease"]);
    let stranger = provider(&grid, "0xz", 4).await;
    assert_error(
        stranger.call(&grid, "POST", &format!("/grid/market/leases/{lease_id}/complete"), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        grid.call("GET", &format!("/v1/market/leases/{lease_id}"), &other, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        post(&grid, &key, &format!("/v1/market/orders/{order_id}/cancel")).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_bound_job_runs_only_on_its_lease_node_and_its_end_completes_the_lease() {
    let grid = Grid::with_config("[compute]\ncanary_rate = 0.0\n").await;
    let requester = Requester::new(&grid).await;
    let module = requester.put_blob(&grid, "module").await;
    let (status, job) = requester.submit(&grid, &manifest(module, 1, 1)).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let job_id = id(&job);
    let (winner, other) = (provider(&grid, "0xw", 1).await, provider(&grid, "0xo", 2).await);
    let mut body = order(360_000, 600);
    body["job_id"] = json!(job_id);
    let order_id = id(&place(&grid, &requester.key, body).await);
    assert!(lease_class(&grid, &other, "wasm", 1).await.is_empty(), "no node runs it while the order is open");
    assert_eq!(bid(&grid, &winner, &order_id, 180_000).await.0, StatusCode::OK);
    assert_eq!(bid(&grid, &other, &order_id, 200_000).await.0, StatusCode::OK);
    let matched = match_after_window(&grid, &requester.key, &order_id, &[&winner, &other]).await;
    let lease_id = id(&matched["lease"]);
    assert_eq!(matched["lease"]["job_id"], json!(job_id));
    assert!(lease_class(&grid, &other, "wasm", 1).await.is_empty(), "only the lease's node runs it");
    assert_eq!(lease_class(&grid, &winner, "wasm", 1).await.len(), 1);
    grid.advance_ms(20_000);
    let (status, _) = grid.call("DELETE", &format!("/v1/jobs/{job_id}"), &requester.auth(), None).await;
    assert_eq!(status, StatusCode::OK);
    grid.advance_ms(7_000);
    duties(&grid).await;
    let lease = get(&grid, &requester.key, &format!("/v1/market/leases/{lease_id}")).await;
    assert_eq!(
        (&lease["state"], &lease["paid_micros"]),
        (&json!("completed"), &json!(1_000)),
        "20 s at 50 a second, until the job ended: {lease}"
    );
    grid.assert_ledger_balanced().await;
}
