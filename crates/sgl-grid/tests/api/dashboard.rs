//! What the dashboard reads and serves: usage per day, key and model from real jobs; keys
//! relabelled and credits moved within an account only; an operator's nodes with the
//! scheduler's reasons; the admin overview behind its token; the live views; the pages with
//! their security headers; requests from other sites' pages refused.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sgl_protocol::api::inference::Usage;

use crate::harness::{Grid, START_MS, assert_error};

const ADMIN_TOKEN: &str = "an-admin-token-of-some-length";

async fn admin_grid() -> Grid {
    Grid::with_config(&format!("admin_token = {ADMIN_TOKEN:?}")).await
}

/// One plain chat of `key` answered by `node` with `usage`.
async fn chat(grid: &Grid, node: &crate::harness::Node, key: &str, usage: Usage) {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16});
    let caller = grid.spawn_call("/v1/chat/completions", key, body);
    let job = node.open(&node.wait_job(grid, "m").await);
    node.complete(grid, &job, "hello", usage).await;
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn usage_is_reported_per_day_key_and_model_for_the_whole_account() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 21).await;
    node.beat(&grid, &["m"]).await;
    let (root_id, root) = grid.api_key(1.0).await;
    let auth = [("X-API-Key", root.as_str())];
    let (_, child) = grid.call("POST", "/v1/keys", &auth, Some(json!({"label": "c", "credits_usd": 0.5}))).await;
    let (child_id, child_key) = (child["id"].as_i64().unwrap(), child["api_key"].as_str().unwrap().to_owned());
    chat(&grid, &node, &root, Usage::new(12, 8)).await;
    // START_MS is 11:06 UTC: 13 hours later is the next day (and within the node's token).
    grid.advance_ms(13 * 3_600_000);
    node.beat(&grid, &["m"]).await;
    chat(&grid, &node, &child_key, Usage::new(5, 3)).await;
    chat(&grid, &node, &child_key, Usage::new(5, 3)).await;

    // The child's key sees the whole account: the root's day, then its own.
    let (status, report) = grid.call("GET", "/v1/usage?days=2", &[("X-API-Key", &child_key)], None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let day = |ms: i64| sgl_grid::service::rfc3339::format(ms)[..10].to_owned();
    assert_eq!(report["since"], day(START_MS));
    let rows = report["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report}");
    assert_eq!(
        (rows[0]["day"].as_str(), rows[0]["api_key_id"].as_i64(), rows[0]["jobs"].as_i64()),
        (Some(day(START_MS).as_str()), Some(root_id), Some(1))
    );
    assert_eq!(rows[1]["day"].as_str(), Some(day(START_MS + 13 * 3_600_000).as_str()));
    assert_ne!(rows[0]["day"], rows[1]["day"]);
    assert_eq!((rows[0]["prompt_tokens"].as_i64(), rows[0]["completion_tokens"].as_i64()), (Some(12), Some(8)));
    assert_eq!(rows[0]["billed_micros"], 5, "1.2 + 3.2 micro-dollars, rounded up");
    assert_eq!((rows[1]["api_key_id"].as_i64(), rows[1]["jobs"].as_i64()), (Some(child_id), Some(2)));
    assert_eq!((rows[1]["prompt_tokens"].as_i64(), rows[1]["completion_tokens"].as_i64()), (Some(10), Some(6)));
    let billed: i64 = rows.iter().map(|r| r["billed_micros"].as_i64().unwrap()).sum();
    assert_eq!(1_000_000 - grid.credits(root_id).await - grid.credits(child_id).await, billed, "the bills, exactly");
    // Only today: yesterday is outside.
    let (_, today) = grid.call("GET", "/v1/usage?days=1", &auth, None).await;
    assert_eq!(today["data"].as_array().unwrap().len(), 1, "{today}");
    // Another account sees none of it; days out of range are refused.
    let (_, stranger) = grid.api_key(1.0).await;
    let (_, theirs) = grid.call("GET", "/v1/usage", &[("X-API-Key", &stranger)], None).await;
    assert_eq!(theirs["data"], json!([]));
    assert_eq!(theirs["days"], 30);
    assert_error(grid.call("GET", "/v1/usage?days=0", &auth, None).await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(grid.call("GET", "/v1/usage?days=367", &auth, None).await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(grid.call("GET", "/v1/usage", &[], None).await, StatusCode::UNAUTHORIZED, "invalid_api_key");
}

#[tokio::test]
async fn keys_are_relabelled_and_credits_moved_within_the_account_only() {
    let grid = Grid::new().await;
    let (root_id, root) = grid.api_key(2.0).await;
    let auth = [("X-API-Key", root.as_str())];
    let (_, child) = grid.call("POST", "/v1/keys", &auth, Some(json!({"label": "old"}))).await;
    let child_id = child["id"].as_i64().unwrap();

    let (status, relabelled) =
        grid.call("PATCH", &format!("/v1/keys/{child_id}"), &auth, Some(json!({"label": "new name"}))).await;
    assert_eq!(status, StatusCode::OK, "{relabelled}");
    assert_eq!((relabelled["id"].as_i64(), relabelled["label"].as_str()), (Some(child_id), Some("new name")));
    let (_, listed) = grid.call("GET", "/v1/keys", &auth, None).await;
    assert_eq!(listed["data"][1]["label"], "new name");
    let bad = grid.call("PATCH", &format!("/v1/keys/{child_id}"), &auth, Some(json!({"label": "a\u{7}b"}))).await;
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_request");

    let transfer = |from: i64, to: i64, usd: f64| json!({"from_key_id": from, "to_key_id": to, "amount_usd": usd});
    let (status, moved) = grid.call("POST", "/v1/keys/transfer", &auth, Some(transfer(root_id, child_id, 0.75))).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved, json!({"moved_micros": 750_000, "from_credits_micros": 1_250_000, "to_credits_micros": 750_000}));
    assert_eq!((grid.credits(root_id).await, grid.credits(child_id).await), (1_250_000, 750_000));
    // And back, by any key of the account.
    let (status, _) = grid.call("POST", "/v1/keys/transfer", &auth, Some(transfer(child_id, root_id, 0.25))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((grid.credits(root_id).await, grid.credits(child_id).await), (1_500_000, 500_000));

    let refused = |body| grid.call("POST", "/v1/keys/transfer", &auth, Some(body));
    assert_error(refused(transfer(child_id, root_id, 9.0)).await, StatusCode::PAYMENT_REQUIRED, "insufficient_credits");
    assert_error(refused(transfer(root_id, root_id, 1.0)).await, StatusCode::BAD_REQUEST, "invalid_request");
    assert_error(refused(transfer(root_id, child_id, 0.0)).await, StatusCode::BAD_REQUEST, "invalid_request");
    let (stranger_id, stranger) = grid.api_key(1.0).await;
    assert_error(refused(transfer(root_id, stranger_id, 0.1)).await, StatusCode::NOT_FOUND, "not_found");
    let path = format!("/v1/keys/{child_id}");
    let theirs = grid.call("PATCH", &path, &[("X-API-Key", &stranger)], Some(json!({"label": "x"}))).await;
    assert_error(theirs, StatusCode::NOT_FOUND, "not_found");
    grid.call("DELETE", &format!("/v1/keys/{child_id}"), &auth, None).await;
    assert_error(refused(transfer(root_id, child_id, 0.1)).await, StatusCode::CONFLICT, "conflict");
    assert_eq!(
        (grid.credits(root_id).await, grid.credits(child_id).await),
        (1_500_000, 500_000),
        "refusals move nothing"
    );
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn an_operators_nodes_carry_the_schedulers_reasons() {
    let grid = Grid::new().await;
    let serving = grid.node("0xOp", 22).await;
    serving.beat(&grid, &["m"]).await;
    let unattested = grid.unattested_node("0xop", 23).await;
    unattested.beat(&grid, &["m"]).await;
    let silent = grid.unattested_node("0xop", 24).await;
    grid.node("0xother", 25).await;

    let (status, body) = grid.call("GET", "/grid/operators/0xop/nodes", &[], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nodes = body["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "the wallet's nodes, whatever the case of its address: {body}");
    let find = |id: &sgl_protocol::ids::NodeId| nodes.iter().find(|n| n["node_id"] == id.to_string()).unwrap().clone();
    let first = find(&serving.node_id);
    assert_eq!((first["status"].as_str(), first["not_serving"].clone()), (Some("active"), json!([])));
    assert_eq!(
        (first["models"].clone(), first["slots"].as_u64(), first["attested"].as_bool()),
        (json!(["m"]), Some(2), Some(true))
    );
    let second = find(&unattested.node_id);
    assert_eq!(second["not_serving"], json!(["not_attested"]), "{second}");
    assert_eq!(second["attested"], false);
    let third = find(&silent.node_id);
    assert_eq!(third["not_serving"], json!(["offline", "not_attested"]), "{third}");
    assert_eq!(third["status"], "offline");
    // The node's own view says the same, from the same function.
    let (_, own) = unattested.call(&grid, "GET", &format!("/grid/nodes/{}", unattested.node_id), None).await;
    assert_eq!(own["not_serving"], second["not_serving"]);

    // The serving node is alone for "m": first of one, at the reference price.
    assert_eq!(
        first["standing"],
        json!([{
            "model": "m", "position": 1, "of": 1, "price_per_m": 0.25, "reference_per_m": 0.25,
            "above_reference": false, "context_size": 4096, "prompts_too_long_24h": 0,
        }])
    );
    assert_eq!(second["standing"], json!([]), "an ineligible node is in no ranking");
    // Another operator's node, cheaper, comes first; a price above the reference is named.
    let cheap = grid.node("0xcheap", 27).await;
    cheap.beat(&grid, &["m"]).await;
    let path = format!("/grid/nodes/{}/prices", cheap.node_id);
    cheap.call(&grid, "POST", &path, Some(json!({"model": "m", "input_per_m": 0.05, "output_per_m": 0.2}))).await;
    let path = format!("/grid/nodes/{}/prices", serving.node_id);
    serving.call(&grid, "POST", &path, Some(json!({"model": "m", "input_per_m": 0.2, "output_per_m": 0.8}))).await;
    let (_, body) = grid.call("GET", "/grid/operators/0xop/nodes", &[], None).await;
    let standing = &body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == serving.node_id.to_string())
        .unwrap()["standing"][0];
    assert_eq!((standing["position"].as_u64(), standing["of"].as_u64()), (Some(2), Some(2)), "{standing}");
    assert_eq!((standing["price_per_m"].as_f64(), standing["above_reference"].as_bool()), (Some(0.5), Some(true)));

    // Unstaking stops every node of the wallet, and both views say why.
    grid.store.request_unstake("0xop", None, START_MS, START_MS + 1000).await.unwrap();
    let (_, body) = grid.call("GET", "/grid/operators/0xop/nodes", &[], None).await;
    assert!(
        body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["not_serving"].as_array().unwrap().contains(&json!("unstaking"))),
        "{body}"
    );
}

#[tokio::test]
async fn an_operators_earnings_are_reported_per_day() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 28).await;
    node.beat(&grid, &["m"]).await;
    let (_, key) = grid.api_key(1.0).await;
    chat(&grid, &node, &key, Usage::new(12, 8)).await;
    chat(&grid, &node, &key, Usage::new(12, 8)).await;
    let earned =
        grid.store.balance(&sgl_grid_store::ledger::Account::Earnings { wallet: "0xop".into() }).await.unwrap();
    assert!(earned > 0);
    let (status, body) = grid.call("GET", "/grid/operators/0xop/earnings?days=7", &[], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let today = sgl_grid::service::rfc3339::format(START_MS)[..10].to_owned();
    assert_eq!(body["data"], json!([{"day": today, "earned_micros": earned}]), "both jobs' shares, today");
    assert_eq!(body["days"], 7);
    let (_, nobody) = grid.call("GET", "/grid/operators/0xnobody/earnings", &[], None).await;
    assert_eq!((nobody["data"].clone(), nobody["days"].as_u64()), (json!([]), Some(30)));
    let bad = grid.call("GET", "/grid/operators/0xop/earnings?days=400", &[], None).await;
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn the_admin_overview_needs_its_token_and_reads_the_metrics_data() {
    let plain = Grid::new().await;
    assert_error(
        plain.call("GET", "/grid/admin/overview", &[("X-Admin-Token", ADMIN_TOKEN)], None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let grid = admin_grid().await;
    let node = grid.node("0xop", 26).await;
    node.beat(&grid, &["m"]).await;
    let (_, key) = grid.api_key(1.0).await;
    assert_error(
        grid.call("GET", "/grid/admin/overview", &[], None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    );
    let wrong = grid.call("GET", "/grid/admin/overview", &[("X-Admin-Token", "not-the-admin-token!")], None).await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_api_key");
    assert_error(
        grid.call("GET", "/grid/admin/overview", &[("X-API-Key", &key)], None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    );

    let (status, before) = grid.call("GET", "/grid/admin/overview", &[("X-Admin-Token", ADMIN_TOKEN)], None).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(
        before["capacity"]["models"],
        json!([{"model": "m", "nodes": 1, "slots": 2, "busy_slots": 0, "waiting": 0, "at_capacity": false}])
    );
    assert_eq!(before["ledger"]["sound"], true);
    assert_eq!(before["jobs"]["completed_total"], 0);
    chat(&grid, &node, &key, Usage::new(12, 8)).await;
    grid.advance_ms(10_000);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let (_, after) = grid.call("GET", "/grid/admin/overview", &[("Authorization", &bearer)], None).await;
    assert_eq!(after["jobs"]["completed_total"], 1, "{after}");
    assert_eq!(after["jobs"]["per_second_last_minute"], 0.1, "one job in the 10 s between the two samples");
    let latency = &after["latency"];
    assert!(latency["count"].as_u64().unwrap() >= 4, "{latency}");
    assert!(
        latency["p50_seconds"].as_f64().is_some() && latency["p99_seconds"].as_f64() >= latency["p50_seconds"].as_f64()
    );
    // The same counters /metrics shows.
    let (_, metrics) = grid.call("GET", "/metrics", &[], None).await;
    assert!(metrics.as_str().unwrap().contains("sgl_jobs_total{outcome=\"completed\"} 1"));
    // A page of another site may not read it, even with the token.
    let cross = [("X-Admin-Token", ADMIN_TOKEN), ("Sec-Fetch-Site", "cross-site")];
    assert_error(
        grid.call("GET", "/grid/admin/overview", &cross, None).await,
        StatusCode::FORBIDDEN,
        "invalid_request",
    );
    let same = [("X-Admin-Token", ADMIN_TOKEN), ("Sec-Fetch-Site", "same-origin")];
    assert_eq!(grid.call("GET", "/grid/admin/overview", &same, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn live_views_send_a_snapshot_as_sse() {
    let grid = admin_grid().await;
    let (_, key) = grid.api_key(1.0).await;
    for (path, headers) in [
        ("/v1/account/events", vec![("X-API-Key", key.as_str())]),
        ("/grid/operators/0xop/events", vec![]),
        ("/grid/admin/overview/events", vec![("X-Admin-Token", ADMIN_TOKEN)]),
        ("/compute/instances/events", vec![("X-API-Key", key.as_str())]),
    ] {
        let (name, data) = first_event(&grid, path, &headers).await;
        assert_eq!(name, "snapshot", "{path}");
        let snapshot: Value = serde_json::from_str(&data).unwrap();
        let wanted = match path {
            "/v1/account/events" => vec!["balance", "keys", "usage"],
            "/grid/operators/0xop/events" => vec!["stake", "nodes", "earnings"],
            "/compute/instances/events" => vec!["instances"],
            _ => vec!["capacity", "jobs", "latency", "ledger"],
        };
        for field in wanted {
            assert!(snapshot.get(field).is_some(), "{path}: {field} in {snapshot}");
        }
    }
    assert_error(grid.call("GET", "/v1/account/events", &[], None).await, StatusCode::UNAUTHORIZED, "invalid_api_key");
    assert_error(
        grid.call("GET", "/compute/instances/events", &[], None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    );
}

/// The first SSE event of a live view, read from the body as it streams.
async fn first_event(grid: &Grid, path: &str, headers: &[(&str, &str)]) -> (String, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = grid.router.clone().oneshot(request.body(axum::body::Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(response.headers()["content-type"], "text/event-stream", "{path}");
    let mut body = response.into_body();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let frame = body.frame().await.expect("a frame").expect("no error");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let events = crate::harness::sse_events(&text);
    events.into_iter().next().expect("an event")
}

#[tokio::test]
async fn pages_are_served_with_their_security_headers() {
    let grid = Grid::new().await;
    for path in [
        "/dashboard/",
        "/dashboard/account.html",
        "/dashboard/jobs.html",
        "/dashboard/machines.html",
        "/dashboard/js/seal.js",
        "/dashboard/css/dashboard.css",
    ] {
        let (status, headers, _) = grid.call_full("GET", path, &[], None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.get("set-cookie").is_none());
    }
    let (_, headers, _) = grid.call_full("GET", "/dashboard/js/seal.js", &[], None).await;
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    let (status, headers, _) = grid.call_full("GET", "/dashboard", &[], None).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (StatusCode::PERMANENT_REDIRECT, "/dashboard/"));
    let (status, headers, body) = grid.call_full("GET", "/dashboard/nope.js", &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(headers.contains_key("content-security-policy"), "errors carry the policy too");
    // Only GET: a cross-site POST is refused before routing, a same-origin one is a 405.
    let cross = grid.call("POST", "/dashboard/index.html", &[("Sec-Fetch-Site", "cross-site")], None).await;
    assert_error(cross, StatusCode::FORBIDDEN, "invalid_request");
    let (status, _) = grid.call("POST", "/dashboard/index.html", &[("Sec-Fetch-Site", "same-origin")], None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // A link from another site still opens a page.
    let navigation = [("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "navigate")];
    assert_eq!(grid.call("GET", "/dashboard/", &navigation, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_operator_sees_how_many_prompts_its_nodes_context_could_not_hold() {
    let grid = Grid::new().await;
    let serving = grid.node("0xop", 22).await;
    serving.beat(&grid, &["m"]).await;
    // Prompts of 4,096 tokens and more did not fit its 4,096-token context: "context too small"
    // counts them over the last day (a job recorded the day before is out).
    let (key_id, key) = grid.api_key(1.0).await;
    let day_before = START_MS - sgl_grid_store::reports::DAY_MS - 1;
    let old = sgl_grid_store::jobs::NewJob {
        id: "old-long-prompt",
        node_id: &serving.node_id.to_string(),
        api_key_id: key_id,
        model: "m",
        sealed_by_caller: false,
        stream: false,
        max_tokens: 16,
        held_micros: 0,
        replica: None,
    };
    grid.store.insert_job(&old, day_before).await.unwrap();
    let end = sgl_grid_store::jobs::JobEnd::Completed { prompt_tokens: 9_000, completion_tokens: 1, billed_micros: 0 };
    grid.store.finish_job(old.id, &end, day_before).await.unwrap();
    for prompt in [4_096, 5_000, 4_095] {
        chat(&grid, &serving, &key, Usage::new(prompt, 1)).await;
    }
    let (_, body) = grid.call("GET", "/grid/operators/0xop/nodes", &[], None).await;
    let first =
        &body["nodes"].as_array().unwrap().iter().find(|n| n["node_id"] == serving.node_id.to_string()).unwrap();
    assert_eq!(first["standing"][0]["prompts_too_long_24h"], 2, "{first}");
    assert_eq!(first["standing"][0]["context_size"], 4096);
    grid.assert_ledger_balanced().await;
}
