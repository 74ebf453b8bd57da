//! Caller discovery and reservations, health, metrics and unknown routes.

use axum::http::StatusCode;
use serde_json::json;
use sgl_grid::admin::AdminCommand;
use sgl_protocol::identity::{EncryptionPublicKey, NodePublicKey};
use sgl_protocol::keybind::KeyBinding;

use crate::harness::{Grid, assert_error};

#[tokio::test]
async fn a_reservation_carries_keys_the_caller_can_check() {
    let grid = Grid::new().await;
    let (_, api_key) = grid.api_key(1.0).await;
    let node = grid.node("0xop", 1).await;
    node.beat(&grid, &["gemma"]).await;
    let (status, reservation) =
        grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "gemma"}))).await;
    assert_eq!(status, StatusCode::OK, "{reservation}");
    assert!(reservation["reservation_token"].as_str().unwrap().starts_with("rsv_"));
    assert_eq!(reservation["node_id"], node.node_id.to_string());
    assert_eq!(reservation["expires_in_ms"], 60_000);
    // What a caller does before sealing: check the keybind against the node identity.
    let identity_key = NodePublicKey::from_b58(reservation["node_ed25519_pubkey"].as_str().unwrap()).unwrap();
    let encryption_key = EncryptionPublicKey::from_b58(reservation["node_x25519_pubkey"].as_str().unwrap()).unwrap();
    let node_id = reservation["node_id"].as_str().unwrap().parse().unwrap();
    let binding = KeyBinding {
        node_id: &node_id,
        identity_key: &identity_key,
        encryption_key: &encryption_key,
        key_version: u32::try_from(reservation["key_version"].as_u64().unwrap()).unwrap(),
    };
    binding.verify(reservation["encryption_public_key_signature"].as_str().unwrap()).unwrap();
    assert_eq!(encryption_key, node.identity.encryption_secret().public_key());
}

#[tokio::test]
async fn reservations_explain_why_no_node_fits() {
    let grid = Grid::new().await;
    let (_, api_key) = grid.api_key(1.0).await;
    assert_error(
        grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "ghost"}))).await,
        StatusCode::NOT_FOUND,
        "model_not_found",
    );
    let node = grid.node("0xop", 2).await;
    node.beat(&grid, &["m"]).await;
    let capped = grid
        .call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "m", "max_price": 0.01})))
        .await;
    assert_error(capped, StatusCode::BAD_REQUEST, "price_cap_unmet");
    let elsewhere = json!({"model": "m", "node": sgl_protocol::ids::NodeId::random().to_string()});
    assert_error(
        grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(elsewhere)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": ""}))).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    // Without a key: a reservation for a request that pays for itself, unless the grid takes
    // no per-request payments.
    let anonymous = grid.call("POST", "/v1/reserve", &[], Some(json!({"model": "m"}))).await;
    assert_eq!(anonymous.0, StatusCode::OK, "{}", anonymous.1);
    let keyed_only = Grid::with_config("[x402]\nenabled = false\n").await;
    let only_node = keyed_only.node("0xop", 2).await;
    only_node.beat(&keyed_only, &["m"]).await;
    let anonymous = keyed_only.call("POST", "/v1/reserve", &[], Some(json!({"model": "m"}))).await;
    assert_error(anonymous, StatusCode::PAYMENT_REQUIRED, "payment_required");
    let pinned = grid
        .call(
            "POST",
            "/v1/reserve",
            &[("X-API-Key", &api_key)],
            Some(json!({"model": "m", "node": node.node_id.to_string()})),
        )
        .await;
    assert_eq!(pinned.0, StatusCode::OK);
}

#[tokio::test]
async fn a_served_model_is_retrieved_in_openais_shape() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 9).await;
    node.beat(&grid, &["m", "org/name"]).await;
    let (status, model) = grid.call("GET", "/v1/models/m", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(model, json!({"id": "m", "object": "model", "created": 0, "owned_by": "sgl-grid"}));
    assert_eq!(grid.call("GET", "/v1/models/org/name", &[], None).await.1["id"], "org/name");
    let (status, body) = grid.call("GET", "/v1/models/ghost", &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");
}

#[tokio::test]
async fn errors_from_the_http_stack_are_openai_shaped() {
    let grid = Grid::new().await;
    let (_, api_key) = grid.api_key(1.0).await;
    // A path parameter of the wrong type (axum answers it in plain text).
    let (status, body) = grid.call("DELETE", "/v1/keys/not-a-number", &[("X-API-Key", &api_key)], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("parse"), "{body}");
    // A body over the limit on a route that reads raw bytes.
    let huge = json!({"x": "a".repeat(3 << 20)});
    let (status, body) = grid.call("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    // A WebSocket route called without an upgrade.
    let node = grid.node("0xop", 10).await;
    let path = format!("/grid/nodes/{}/ws", node.node_id);
    let (status, body) = node.call(&grid, "GET", &path, None).await;
    assert!(status.is_client_error(), "{status}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn unstaked_operators_nodes_get_no_work() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 3).await;
    node.beat(&grid, &["m"]).await;
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"][0]["id"], "m");
    // Stake leaves the wallet (as an unstake will): the next heartbeat makes the node ineligible.
    let stake = sgl_grid_store::ledger::Account::Stake { wallet: "0xop".into() };
    let sink =
        sgl_grid_store::ledger::Account::External { source: "test".into(), asset: sgl_grid_store::ledger::Asset::Sgl };
    let out = sgl_grid_store::ledger::NewTransaction {
        idempotency_key: "unstake".into(),
        kind: sgl_grid_store::ledger::TransactionKind::CreditsGrant,
        memo: String::new(),
        postings: vec![
            sgl_grid_store::ledger::Posting { account: stake, amount: -50_000_000_000 },
            sgl_grid_store::ledger::Posting { account: sink, amount: 50_000_000_000 },
        ],
    };
    grid.store.post(&out, 0).await.unwrap();
    node.beat(&grid, &["m"]).await;
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"], json!([]));
}

#[tokio::test]
async fn providers_are_cheapest_first_and_capped() {
    let grid = Grid::new().await;
    let (_, api_key) = grid.api_key(1.0).await;
    let plain = grid.node("0xa", 4).await;
    let cheap = grid.node("0xb", 5).await;
    plain.beat(&grid, &["m"]).await;
    cheap.beat(&grid, &["m"]).await;
    let path = format!("/grid/nodes/{}/prices", cheap.node_id);
    cheap.call(&grid, "POST", &path, Some(json!({"model": "m", "input_per_m": 0.05, "output_per_m": 0.2}))).await;
    let (_, all) = grid.call("GET", "/v1/providers?model=m", &[], None).await;
    assert_eq!(all["count"], 2);
    assert_eq!(all["providers"][0]["node_id"], cheap.node_id.to_string());
    assert!((all["providers"][0]["blended_per_1k"].as_f64().unwrap() - 0.000125).abs() < 1e-12);
    let (_, capped) = grid.call("GET", "/v1/providers?model=m&max_price=0.2", &[], None).await;
    assert_eq!(capped["count"], 1);
    assert_error(grid.call("GET", "/v1/providers", &[], None).await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(
        grid.call("GET", "/v1/providers?model=m&max_price=-1", &[], None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    // The reservation goes to the cheapest node.
    let (_, reservation) =
        grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "m"}))).await;
    assert_eq!(reservation["node_id"], cheap.node_id.to_string());
}

#[tokio::test]
async fn capacity_pricing_and_grid_models() {
    let grid = Grid::with_config("[prices.m]\ninput_per_m = 1.0\noutput_per_m = 2.0\n").await;
    let online = grid.node("0xa", 6).await;
    let _silent = grid.node("0xb", 7).await;
    online.beat(&grid, &["m"]).await;
    let (_, capacity) = grid.call("GET", "/grid/capacity", &[], None).await;
    assert_eq!(
        (capacity["total_nodes"].as_u64(), capacity["active_nodes"].as_u64(), capacity["available_nodes"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(capacity["by_tee_type"][0]["tee_type"], "linux_se");
    let (_, pricing) = grid.call("GET", "/grid/pricing", &[], None).await;
    assert_eq!(
        pricing["pricing"],
        json!([{"model": "m", "price_per_1k_input_tokens_usd": 0.001, "price_per_1k_output_tokens_usd": 0.002}])
    );
    let (_, models) = grid.call("GET", "/grid/models", &[], None).await;
    assert_eq!(models["models"][0]["sgl_node_count"], 1);
    assert_eq!(models["models"][0]["sgl_tee_types"], json!(["linux_se"]));
}

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 8).await;
    node.beat(&grid, &["m"]).await;
    assert_eq!(grid.call("GET", "/healthz", &[], None).await.1, json!({"status": "ok", "backend": "sqlite"}));
    let (status, metrics) = grid.call("GET", "/metrics", &[], None).await;
    let text = metrics.as_str().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("sgl_nodes{state=\"online\"} 1"), "{text}");
    assert!(text.contains("sgl_heartbeats_total 1"), "{text}");
    assert!(text.contains("sgl_registrations_total 1"), "{text}");
    assert!(text.contains("sgl_http_request_seconds_count"), "{text}");
    assert!(text.contains("sgl_jobs_total{outcome=\"completed\"} 0"), "{text}");
    assert_error(grid.call("GET", "/nope", &[], None).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(grid.call("DELETE", "/v1/models", &[], None).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn admin_commands_manage_keys_credits_stake_and_codes() {
    let grid = Grid::new().await;
    let created = grid.admin(AdminCommand::ApiKeyCreate { credits_usd: 5.0, label: "ci".into(), wallet: None }).await;
    let key_id = created["id"].as_i64().unwrap();
    assert!(created["api_key"].as_str().unwrap().starts_with("x402c_"));
    let balance = grid.admin(AdminCommand::CreditsBalance { key_id }).await;
    assert_eq!(balance["credits_usd"], 5.0);
    let added = grid.admin(AdminCommand::CreditsAdd { key_id, usd: 2.5 }).await;
    assert_eq!(added["credits_usd"], 7.5);
    let listed = grid.admin(AdminCommand::ApiKeyList).await;
    assert_eq!(listed[0]["credits_usd"], 7.5);
    grid.admin(AdminCommand::ApiKeyRevoke { id: key_id }).await;
    let run = |command| sgl_grid::admin::run(&grid.store, command, 0);
    assert!(run(AdminCommand::CreditsAdd { key_id, usd: 1.0 }).await.is_err(), "revoked keys get no credits");
    assert!(run(AdminCommand::CreditsAdd { key_id: 99, usd: 1.0 }).await.is_err());
    assert!(run(AdminCommand::ApiKeyCreate { credits_usd: -1.0, label: String::new(), wallet: None }).await.is_err());
    assert!(run(AdminCommand::AllowBinary { sha256: "xyz".into() }).await.is_err());
    assert!(run(AdminCommand::Stake { wallet: String::new(), amount_sgl: 5 }).await.is_err());
    assert!(run(AdminCommand::Stake { wallet: "w".into(), amount_sgl: 0 }).await.is_err());
    let staked = grid.admin(AdminCommand::Stake { wallet: "w".into(), amount_sgl: 10 }).await;
    assert_eq!(staked["stake_sgl"], 10);
    for (asset, total) in grid.store.ledger_totals().await.unwrap() {
        assert_eq!(total, 0, "{asset} does not balance");
    }
}

#[tokio::test]
async fn browser_pages_may_call_the_caller_api_and_read_payment_headers() {
    let grid = Grid::with_config("cors_origins = [\"https://app.example\"]\n").await;
    let preflight = [
        ("Origin", "https://app.example"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type,x-api-key,payment-signature"),
    ];
    let (status, headers, _) = grid.call_full("OPTIONS", "/v1/chat/completions", &preflight, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], "https://app.example");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(allowed.contains("x-api-key") && allowed.contains("payment-signature"), "{allowed}");
    // A keyless chat is answered 402; the page may read the payment challenge.
    let origin = [("Origin", "https://app.example")];
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let node = grid.node("0xop", 11).await;
    node.beat(&grid, &["m"]).await;
    let (status, headers, _) = grid.call_full("POST", "/v1/chat/completions", &origin, Some(body)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(headers["access-control-allow-origin"], "https://app.example");
    let exposed = headers["access-control-expose-headers"].to_str().unwrap().to_lowercase();
    assert!(exposed.contains("payment-required") && exposed.contains("www-authenticate"), "{exposed}");
    // Another origin is not allowed, and the node API sends no CORS headers at all.
    let (_, headers, _) = grid.call_full("GET", "/v1/models", &[("Origin", "https://evil.example")], None).await;
    assert!(headers.get("access-control-allow-origin").is_none());
    let (_, headers, _) = grid.call_full("GET", "/healthz", &origin, None).await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_cluster_is_served_by_its_nodes_only_and_an_unknown_one_is_a_404() {
    let grid = Grid::new().await;
    let (_, api_key) = grid.api_key(1.0).await;
    let eu = grid.node("0xa", 12).await;
    let plain = grid.node("0xb", 13).await;
    let mut beat = eu.heartbeat_body(&["m"]);
    beat["cluster"] = json!("gpu-eu");
    assert_eq!(eu.heartbeat(&grid, beat).await.0, StatusCode::OK);
    plain.beat(&grid, &["m"]).await;
    let key = [("X-API-Key", api_key.as_str())];

    let (_, providers) = grid.call("GET", "/v1/providers?model=m&cluster=gpu-eu", &[], None).await;
    assert_eq!(providers["count"], 1, "{providers}");
    assert_eq!(providers["providers"][0]["node_id"], eu.node_id.to_string());
    assert_eq!(providers["cluster"], "gpu-eu");
    for _ in 0..4 {
        let (_, reservation) =
            grid.call("POST", "/v1/reserve", &key, Some(json!({"model": "m", "cluster": "gpu-eu"}))).await;
        assert_eq!(reservation["node_id"], eu.node_id.to_string(), "{reservation}");
    }
    assert_eq!(grid.call("GET", "/v1/providers?model=m", &[], None).await.1["count"], 2, "no cluster: any node");

    let (status, error) =
        grid.call("POST", "/v1/reserve", &key, Some(json!({"model": "m", "cluster": "gpu-us"}))).await;
    assert_eq!((status, &error["error"]["param"]), (StatusCode::NOT_FOUND, &json!("cluster")), "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("gpu-us"), "{error}");
    let (status, _) = grid.call("GET", "/v1/providers?model=m&cluster=gpu-us", &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, error) = grid.call("GET", "/v1/providers?model=m&cluster=Not%20A%20Slug", &[], None).await;
    assert_eq!((status, &error["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("cluster")), "{error}");
    // A node may not tag itself with something that is not a slug.
    let mut bad = eu.heartbeat_body(&["m"]);
    bad["cluster"] = json!("GPU EU");
    assert_eq!(eu.heartbeat(&grid, bad).await.0, StatusCode::BAD_REQUEST);
    // Once the cluster's only node leaves it, the cluster is unknown again (never widened).
    eu.beat(&grid, &["m"]).await;
    let (status, _) = grid.call("POST", "/v1/reserve", &key, Some(json!({"model": "m", "cluster": "gpu-eu"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn one_address_cannot_hold_every_keyless_reservation_or_flood_device_logins() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 14).await;
    node.beat(&grid, &["m"]).await;
    let flooder: std::net::SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let other: std::net::SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let body = json!({"model": "m"});
    for _ in 0..sgl_grid::service::reservations::MAX_OPEN_PER_ADDRESS {
        assert_eq!(grid.call_from(flooder, "POST", "/v1/reserve", &[], Some(body.clone())).await.0, StatusCode::OK);
    }
    let (status, headers, error) = grid.call_full_from(flooder, "POST", "/v1/reserve", &[], Some(body.clone())).await;
    assert_eq!((status, &error["error"]["code"]), (StatusCode::TOO_MANY_REQUESTS, &json!("rate_limited")), "{error}");
    assert_eq!(headers["retry-after"], "60");
    assert_eq!(
        grid.call_from(other, "POST", "/v1/reserve", &[], Some(body.clone())).await.0,
        StatusCode::OK,
        "another caller still reserves"
    );
    grid.advance_ms(61_000);
    node.beat(&grid, &["m"]).await;
    assert_eq!(
        grid.call_from(flooder, "POST", "/v1/reserve", &[], Some(body)).await.0,
        StatusCode::OK,
        "expired ones free the address"
    );

    for _ in 0..sgl_grid::state::DEVICE_STARTS_PER_MINUTE {
        assert_eq!(grid.call_from(flooder, "POST", "/grid/auth/device/start", &[], None).await.0, StatusCode::OK);
    }
    let (status, error) = grid.call_from(flooder, "POST", "/grid/auth/device/start", &[], None).await;
    assert_eq!(
        (status, &error["error"]["type"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("rate_limit_error")),
        "{error}"
    );
    assert_eq!(grid.call_from(other, "POST", "/grid/auth/device/start", &[], None).await.0, StatusCode::OK);
    // Expired logins are purged an hour after they expire, by the reaper.
    assert_eq!(grid.store.device_login_count().await.unwrap(), 11);
    grid.advance_ms(9 * 60_000);
    sgl_grid::jobs::reap(grid.state()).await.unwrap();
    assert_eq!(grid.store.device_login_count().await.unwrap(), 11, "not yet expired");
    grid.advance_ms(62 * 60_000);
    sgl_grid::jobs::reap(grid.state()).await.unwrap();
    assert_eq!(grid.store.device_login_count().await.unwrap(), 0, "an hour past expiry");
}
