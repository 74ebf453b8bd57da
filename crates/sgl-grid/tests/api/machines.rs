//! Machines rented by the hour through the real router, on the Vultr client against the Vultr
//! test double (a stand-in for an API outside this machine) over real HTTP, with a loopback
//! listener that answers SSH: the hold, the capture only once the machine answers SSH, full
//! refunds when the provider fails or the deadline passes, exact extensions and resizes, the
//! one-time password, expiry (warnings, stop, destroy after the grace period), x402 and wallet
//! signatures, and no access for anyone else.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{B256, U256};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sgl_grid::admin::AdminCommand;
use sgl_machines::retry::RetryPolicy;
use sgl_machines::secret::ProviderToken;
use sgl_machines::vultr::{VultrClient, VultrConfig};
use sgl_protocol::api::machines::{machine_action, machine_message};
use sgl_protocol::payout::PayoutKey;
use sgl_protocol::wallet::personal_sign;
use sgl_provider_doubles::{Op, VultrDouble};
use tokio::io::AsyncWriteExt;

use crate::harness::{Grid, START_MS, assert_error};

const HOUR: i64 = 3_600_000;
/// `vc2-1c-1gb` costs $5 a month at Vultr; with the default 10 % markup, per hour of 672:
/// ceil(5,000,000 × 1.1 / 672) = 8,185 micro-USD.
const RATE: i64 = 8_185;
/// `vc2-2c-4gb`: ceil(20,000,000 × 1.1 / 672) = 32,739.
const BIG_RATE: i64 = 32_739;
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILR/5UCoZ0aNkeJKDc08SPQUBSrG1DSl+AyBgYx2GcLN renter@laptop";

/// A loopback port that greets every connection as an SSH server does.
async fn ssh_banner() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            });
        }
    });
    port
}

/// A grid selling Vultr's plans from the double, machines answering SSH on loopback.
async fn grid(toml: &str) -> (Grid, VultrDouble) {
    let grid = Grid::with_config(&format!("[x402]\nserve_facilitator = true\n{toml}")).await;
    let double = VultrDouble::start().await.unwrap();
    double.set_main_ip("127.0.0.1");
    let mut config = VultrConfig::new(ProviderToken::new("vultr-test-token".into()).unwrap());
    config.api_url = double.base_url();
    config.ssh_port = ssh_banner().await;
    config.retry = RetryPolicy { base: Duration::from_millis(5), ..RetryPolicy::default() };
    grid.state().machines().install(Arc::new(VultrClient::new(config).unwrap()));
    grid.state().machines().set_poll(Duration::from_millis(20));
    (grid, double)
}

fn provision_body(plan: &str, hours: u32, key: Option<&str>) -> Value {
    let mut body = json!({"plan": plan, "region": "ewr", "prepaid_hours": hours, "label": "box"});
    if let Some(key) = key {
        body["ssh_public_key"] = json!(key);
    }
    body
}

/// Polls the machine (as `api_key`) until `done` holds, for at most ten seconds.
async fn wait_for(grid: &Grid, api_key: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        let (status, machine) =
            grid.call("GET", &format!("/compute/instances/{id}"), &[("X-API-Key", api_key)], None).await;
        assert_eq!(status, StatusCode::OK, "{machine}");
        if done(&machine) {
            return machine;
        }
        last = machine;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("machine {id} never got there: {last}");
}

async fn provision(grid: &Grid, api_key: &str, body: Value) -> Value {
    let (status, machine) = grid.call("POST", "/compute/provision", &[("X-API-Key", api_key)], Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{machine}");
    assert_eq!(machine["state"], "pending");
    let id = machine["id"].as_str().unwrap().to_owned();
    wait_for(grid, api_key, &id, |m| m["state"] != "pending" || !m["end_reason"].is_null()).await
}

fn kinds(machine: &Value) -> Vec<&str> {
    machine["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_machine_is_paid_when_it_answers_ssh_and_extends_and_resizes_exactly() {
    let (grid, double) = grid("").await;
    let (key_id, key) = grid.api_key(5.0).await;
    let (status, plans) = grid.call("GET", "/compute/plans", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    let small = plans["plans"].as_array().unwrap().iter().find(|p| p["id"] == "vc2-1c-1gb").unwrap();
    assert_eq!((small["hourly_micros"].as_i64(), small["monthly_micros"].as_i64()), (Some(RATE), Some(RATE * 720)));
    assert_eq!((small["kind"].as_str(), small["can_downgrade"].as_bool()), (Some("vps"), Some(false)));

    let machine = provision(&grid, &key, provision_body("vc2-1c-1gb", 3, Some(KEY))).await;
    assert_eq!(machine["state"], "expiring", "3 h is less than a day: {machine}");
    let id = machine["id"].as_str().unwrap();
    assert_eq!(machine["expires_at_ms"].as_i64(), Some(START_MS + 3 * HOUR), "time runs from SSH");
    assert!(machine["ssh_command"].as_str().unwrap().ends_with("root@127.0.0.1"), "{machine}");
    assert_eq!(kinds(&machine), ["requested", "created", "active"]);
    assert_eq!(grid.credits(key_id).await, 5_000_000 - 3 * RATE, "exactly 3 h at the plan's rate");
    let at_vultr = double.instances();
    assert_eq!((at_vultr.len(), at_vultr[0].tags.clone()), (1, vec![format!("sgl-machine:{id}")]));
    assert!(double.ssh_keys().is_empty(), "the renter's key is removed from the provider account");

    grid.advance_ms(HOUR);
    let path = format!("/compute/instances/{id}");
    let auth = [("X-API-Key", key.as_str())];
    let (status, extended) =
        grid.call("POST", &format!("{path}/extend"), &auth, Some(json!({"extend_hours": 2}))).await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    assert_eq!(extended["expires_at_ms"].as_i64(), Some(START_MS + 5 * HOUR));
    assert_eq!(grid.credits(key_id).await, 5_000_000 - 5 * RATE);

    // Vultr cannot downgrade; the upgrade keeps the value left: 4 h at 8,185 is 32,740 micro-USD,
    // at 32,739 an hour that is floor(4 h × 8,185 / 32,739) ms.
    let (status, body) =
        grid.call("POST", &format!("{path}/resize"), &auth, Some(json!({"plan": "vc2-1c-0.5gb"}))).await;
    assert_eq!((status, body["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("plan")), "{body}");
    let (status, resized) =
        grid.call("POST", &format!("{path}/resize"), &auth, Some(json!({"plan": "vc2-2c-4gb"}))).await;
    assert_eq!(status, StatusCode::OK, "{resized}");
    let now = START_MS + HOUR;
    let left = (4 * HOUR) * RATE / BIG_RATE;
    assert_eq!(resized["expires_at_ms"].as_i64(), Some(now + left));
    assert!(BIG_RATE * left <= 4 * HOUR * RATE && 4 * HOUR * RATE < BIG_RATE * (left + 1));
    assert_eq!((resized["plan"].as_str(), resized["hourly_micros"].as_i64()), (Some("vc2-2c-4gb"), Some(BIG_RATE)));
    assert_eq!(grid.credits(key_id).await, 5_000_000 - 5 * RATE, "a resize is free");
    assert_eq!(double.instances()[0].plan, "vc2-2c-4gb");
    let (_, shown) = grid.call("GET", &path, &auth, None).await;
    let event = shown["events"].as_array().unwrap().iter().find(|e| e["kind"] == "resized").unwrap();
    assert_eq!(
        (event["plan_before"].as_str(), event["expires_at_before_ms"].as_i64()),
        (Some("vc2-1c-1gb"), Some(START_MS + 5 * HOUR))
    );

    let (status, gone) = grid.call("DELETE", &path, &auth, None).await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!((gone["state"].as_str(), gone["end_reason"].as_str()), (Some("destroyed"), Some("destroyed_by_user")));
    assert!(double.instances().is_empty(), "nothing left at the provider");
    assert_error(grid.call("DELETE", &path, &auth, None).await, StatusCode::CONFLICT, "conflict");
    assert_error(
        grid.call("POST", &format!("{path}/extend"), &auth, Some(json!({"extend_hours": 1}))).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_machine_that_never_serves_costs_nothing() {
    let (grid, double) = grid("[machines]\nready_deadline_secs = 600\n").await;
    let (key_id, key) = grid.api_key(1.0).await;
    double.fail_next(Op::Create, 500, json!({"error": "Internal error.", "status": 500}));
    let failed = provision(&grid, &key, provision_body("vc2-1c-1gb", 2, Some(KEY))).await;
    assert_eq!(
        (failed["end_reason"].as_str(), failed["refunded_micros"].as_i64()),
        (Some("provider_failed"), Some(2 * RATE)),
        "{failed}"
    );
    assert_eq!(grid.credits(key_id).await, 1_000_000, "every micro-unit back");
    let id = failed["id"].as_str().unwrap();
    let failed = wait_for(&grid, &key, id, |m| m["state"] == "destroyed").await;
    assert_eq!(kinds(&failed), ["requested", "provision_failed", "refunded", "destroyed"]);

    double.fail_next(Op::Create, 400, json!({"error": "Invalid plan chosen.", "status": 400}));
    let rejected = provision(&grid, &key, provision_body("vc2-1c-1gb", 2, Some(KEY))).await;
    assert_eq!(rejected["end_reason"], "provider_rejected", "{rejected}");

    // Made, but never reachable: at the deadline the leader destroys it and refunds.
    double.ready_after(u32::MAX);
    let (status, pending) = grid
        .call("POST", "/compute/provision", &[("X-API-Key", &key)], Some(provision_body("vc2-1c-1gb", 4, Some(KEY))))
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = pending["id"].as_str().unwrap();
    assert_eq!(grid.credits(key_id).await, 1_000_000 - 4 * RATE, "held while it is made");
    wait_for(&grid, &key, id, |m| kinds(m).contains(&"created")).await;
    grid.advance_ms(600_001);
    grid.state().machines().duties().await.unwrap();
    let late = wait_for(&grid, &key, id, |m| m["state"] == "destroyed").await;
    assert_eq!(late["end_reason"], "not_reachable", "{late}");
    assert_eq!(grid.credits(key_id).await, 1_000_000);
    assert!(double.instances().is_empty(), "the unreachable machine is removed at the provider");
    assert_eq!(grid.store.balance(&sgl_grid_store::ledger::Account::Platform).await.unwrap(), 0);
    grid.assert_ledger_balanced().await;
}

/// A loopback endpoint that records every JSON body POSTed to it.
async fn webhook_receiver() -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let record = Arc::clone(&record);
            async move { record.lock().unwrap().push(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn expiry_warns_stops_and_destroys_after_the_grace_period() {
    let (grid, double) = grid("[machines]\ngrace_hours = 2\nwebhook_allow_private = true\n").await;
    let (_, key) = grid.api_key(1.0).await;
    let (hook, notices) = webhook_receiver().await;
    let mut body = provision_body("vc2-1c-1gb", 30, Some(KEY));
    body["webhook_url"] = json!(hook);
    let machine = provision(&grid, &key, body).await;
    let id = machine["id"].as_str().unwrap();
    let expires = machine["expires_at_ms"].as_i64().unwrap();
    let duties = || async { grid.state().machines().duties().await.unwrap() };

    grid.advance_ms(expires - START_MS - 24 * HOUR + 1);
    duties().await;
    duties().await;
    grid.advance_ms(23 * HOUR);
    duties().await;
    let (_, warned) = grid.call("GET", &format!("/compute/instances/{id}"), &[("X-API-Key", &key)], None).await;
    assert_eq!(warned["state"], "expiring");
    assert_eq!(kinds(&warned)[3..], ["warning_24h", "warning_1h"], "each warning once");

    grid.advance_ms(HOUR);
    duties().await;
    let (_, stopped) = grid.call("GET", &format!("/compute/instances/{id}"), &[("X-API-Key", &key)], None).await;
    assert_eq!(
        (stopped["state"].as_str(), stopped["destroy_at_ms"].as_i64()),
        (Some("expired"), Some(expires + 2 * HOUR))
    );
    assert!(stopped["ssh"].is_null());
    assert!(!double.instances()[0].powered_on, "stopped first, its disk kept");

    grid.advance_ms(2 * HOUR);
    duties().await;
    let (_, ended) = grid.call("GET", &format!("/compute/instances/{id}"), &[("X-API-Key", &key)], None).await;
    assert_eq!(
        (ended["state"].as_str(), ended["end_reason"].as_str()),
        (Some("destroyed"), Some("expired")),
        "{ended}"
    );
    assert!(double.instances().is_empty());
    // The renter's webhook heard each warning and the end, once each (each POST is its own task,
    // so their arrival order is not promised).
    for _ in 0..200 {
        if notices.lock().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let notices = notices.lock().unwrap().clone();
    let mut kinds: Vec<&str> = notices.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["destroyed", "stopped", "warning_1h", "warning_24h"], "{notices:?}");
    assert!(notices.iter().all(|n| n["machine_id"] == id && n["expires_at_ms"] == expires), "{notices:?}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_machine_without_a_key_shows_its_password_once() {
    let (grid, double) = grid("").await;
    let (_, key) = grid.api_key(1.0).await;
    let machine = provision(&grid, &key, provision_body("vc2-1c-1gb", 1, None)).await;
    assert_eq!(machine["password_available"], true, "{machine}");
    let path = format!("/compute/instances/{}/password", machine["id"].as_str().unwrap());
    let (status, shown) = grid.call("GET", &path, &[("X-API-Key", &key)], None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let provider_id = &double.instances()[0].id;
    assert_eq!(shown["password"].as_str(), double.issued_password(provider_id).as_deref());
    assert_error(grid.call("GET", &path, &[("X-API-Key", &key)], None).await, StatusCode::CONFLICT, "conflict");
    // Bad requests name their parameter and hold nothing.
    for (body, param) in [
        (json!({"plan": "vc2-9c-1tb", "region": "ewr", "prepaid_hours": 1}), "plan"),
        (json!({"plan": "vc2-1c-1gb", "region": "xyz", "prepaid_hours": 1}), "region"),
        (json!({"plan": "vc2-1c-1gb", "region": "ewr"}), "prepaid_hours"),
        (json!({"plan": "vc2-1c-1gb", "region": "ewr", "prepaid_hours": 1, "prepaid_days": 1}), "prepaid_hours"),
        (
            json!({"plan": "vc2-1c-1gb", "region": "ewr", "prepaid_hours": 1, "ssh_public_key": "ssh-rsa AAAA"}),
            "ssh_public_key",
        ),
        (json!({"plan": "vc2-1c-1gb", "region": "ewr", "prepaid_hours": 1, "label": "a\u{7}b"}), "label"),
        (
            json!({"plan": "vc2-1c-1gb", "region": "ewr", "prepaid_hours": 1, "webhook_url": "http://example.com/h"}),
            "webhook_url",
        ),
        (
            json!({"plan": "vc2-1c-1gb", "region": "ewr", "prepaid_hours": 1, "webhook_url": "https://10.0.0.1/h"}),
            "webhook_url",
        ),
    ] {
        let (status, error) = grid.call("POST", "/compute/provision", &[("X-API-Key", &key)], Some(body)).await;
        assert_eq!((status, error["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some(param)), "{error}");
    }
    let (_, list) = grid.call("GET", "/compute/instances", &[("X-API-Key", &key)], None).await;
    assert_eq!(list["instances"].as_array().unwrap().len(), 1);
}

/// The wallet headers signing one request at the grid's clock.
fn wallet_headers(key: &PayoutKey, method: &str, path: &str, body: &[u8], nonce: &str) -> Vec<(String, String)> {
    let wallet = key.address().to_checksummed().to_lowercase();
    let signed_at = u64::try_from(START_MS / 1000).unwrap();
    let message = machine_message(&wallet, &machine_action(method, path, body), nonce, signed_at);
    vec![
        ("x-wallet".into(), wallet),
        ("x-wallet-nonce".into(), nonce.into()),
        ("x-wallet-signed-at".into(), signed_at.to_string()),
        ("x-wallet-signature".into(), personal_sign(key, message.as_bytes())),
    ]
}

#[tokio::test]
async fn x402_pays_a_provision_and_only_its_owner_sees_it() {
    let (grid, _double) = grid("").await;
    let secret = [7u8; 32];
    let wallet_key = PayoutKey::from_bytes(&secret).unwrap();
    let payer = sgl_pay::payer::Payer::new(
        k256::ecdsa::SigningKey::from_bytes(&secret.into()).unwrap(),
        U256::from(1_000_000u64),
    );
    grid.admin(AdminCommand::Faucet { address: format!("{:#x}", payer.address()), usdc: 1.0 }).await;
    let body = json!({"plan": "vc2-1c-1gb", "region": "ewr", "prepaid_hours": 2, "ssh_public_key": KEY});
    let (status, headers, quote) = grid.call_full("POST", "/compute/provision", &[], Some(body.clone())).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{quote}");
    let required = headers.get("payment-required").unwrap().to_str().unwrap().to_owned();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (name, value) = payer.pay_header(&required, now, B256::repeat_byte(9)).unwrap();
    let (status, headers, paid) = grid.call_full("POST", "/compute/provision", &[(name, &value)], Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert!(headers.get("payment-response").is_some());
    let management = paid["management_api_key"].as_str().expect("a management key, shown once").to_owned();
    let id = paid["id"].as_str().unwrap().to_owned();
    let machine = wait_for(&grid, &management, &id, |m| m["state"] == "expiring").await;
    assert_eq!(machine["paid_micros"].as_i64(), Some(2 * RATE));

    // The paying wallet manages it by signature, and a replayed signature is refused.
    let path = format!("/compute/instances/{id}");
    let signed = wallet_headers(&wallet_key, "GET", &path, b"", "n-1");
    let signed: Vec<(&str, &str)> = signed.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (status, seen) = grid.call("GET", &path, &signed, None).await;
    assert_eq!((status, seen["id"].as_str()), (StatusCode::OK, Some(id.as_str())), "{seen}");
    assert_error(grid.call("GET", &path, &signed, None).await, StatusCode::CONFLICT, "conflict");
    // A signature over another request does not fit this one.
    let other = wallet_headers(&wallet_key, "GET", "/compute/instances", b"", "n-2");
    let other: Vec<(&str, &str)> = other.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_error(grid.call("DELETE", &path, &other, None).await, StatusCode::BAD_REQUEST, "invalid_signature");
    let (_, still) = grid.call("GET", &path, &[("X-API-Key", &management)], None).await;
    assert_eq!(still["state"], "expiring", "nothing changed");

    // Another account, and an unrelated wallet, find nothing on any route.
    let (_, stranger) = grid.api_key(1.0).await;
    let stranger_wallet = PayoutKey::from_bytes(&[8u8; 32]).unwrap();
    for (method, suffix, body) in [
        ("GET", "", None),
        ("GET", "/password", None),
        ("POST", "/extend", Some(json!({"extend_hours": 1}))),
        ("POST", "/resize", Some(json!({"plan": "vc2-2c-4gb"}))),
        ("DELETE", "", None),
    ] {
        let route = format!("{path}{suffix}");
        let (status, error) = grid.call(method, &route, &[("X-API-Key", &stranger)], body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {route}: {error}");
        let raw = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        let headers = wallet_headers(&stranger_wallet, method, &route, raw.as_bytes(), &format!("s{suffix}{method}"));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let (status, error) = grid.call(method, &route, &headers, body.map(|b| Value::String(b.to_string()))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "wallet {method} {route}: {error}");
    }
    let (_, list) = grid.call("GET", "/compute/instances", &[("X-API-Key", &stranger)], None).await;
    assert_eq!(list["instances"], json!([]));
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn digitalocean_needs_a_key_and_a_confirmed_disk_growth() {
    use sgl_machines::digitalocean::{DigitalOceanClient, DigitalOceanConfig};
    let grid = Grid::new().await;
    let double = sgl_provider_doubles::DigitalOceanDouble::start().await.unwrap();
    double.set_main_ip("127.0.0.1");
    let mut config = DigitalOceanConfig::new(ProviderToken::new("do-test-token".into()).unwrap());
    config.api_url = double.base_url();
    config.ssh_port = ssh_banner().await;
    config.action_poll = Duration::from_millis(2);
    config.retry = RetryPolicy { base: Duration::from_millis(5), ..RetryPolicy::default() };
    grid.state().machines().install(Arc::new(DigitalOceanClient::new(config).unwrap()));
    grid.state().machines().set_poll(Duration::from_millis(20));
    let (key_id, key) = grid.api_key(1.0).await;
    let (_, plans) = grid.call("GET", "/compute/plans", &[], None).await;
    let small = plans["plans"].as_array().unwrap().iter().find(|p| p["id"] == "do:s-1vcpu-1gb").unwrap().clone();
    assert_eq!(
        (small["disk_growth_permanent"].as_bool(), small["password_login"].as_bool()),
        (Some(true), Some(false))
    );
    let region = small["regions"][0].as_str().unwrap().to_owned();
    let body = |ssh: Option<&str>| {
        let mut body = json!({"plan": "do:s-1vcpu-1gb", "region": region, "prepaid_hours": 2});
        if let Some(ssh) = ssh {
            body["ssh_public_key"] = json!(ssh);
        }
        body
    };
    let (status, error) = grid.call("POST", "/compute/provision", &[("X-API-Key", &key)], Some(body(None))).await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("ssh_public_key")),
        "{error}"
    );
    assert_eq!(grid.credits(key_id).await, 1_000_000, "nothing held for a refused provision");

    let machine = provision(&grid, &key, body(Some(KEY))).await;
    assert_eq!(machine["state"], "expiring", "{machine}");
    let path = format!("/compute/instances/{}/resize", machine["id"].as_str().unwrap());
    let auth = [("X-API-Key", key.as_str())];
    let grow = json!({"plan": "do:s-1vcpu-2gb"});
    let (status, error) = grid.call("POST", &path, &auth, Some(grow)).await;
    assert_eq!(
        (status, error["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("confirm_disk_resize")),
        "{error}"
    );
    assert_eq!(double.instances()[0].plan, "s-1vcpu-1gb", "nothing changed at the provider");
    let (status, resized) =
        grid.call("POST", &path, &auth, Some(json!({"plan": "do:s-1vcpu-2gb", "confirm_disk_resize": true}))).await;
    assert_eq!((status, resized["plan"].as_str()), (StatusCode::OK, Some("do:s-1vcpu-2gb")), "{resized}");
    let actions: Vec<(String, bool)> = double.actions().into_iter().map(|(kind, _, disk)| (kind, disk)).collect();
    let expected = [("power_off", false), ("resize", true), ("power_on", false)].map(|(k, d)| (k.to_owned(), d));
    assert_eq!(actions, expected, "resized powered off, the disk grown as confirmed");
    assert_eq!(grid.credits(key_id).await, 1_000_000 - machine["paid_micros"].as_i64().unwrap(), "a resize is free");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_solana_wallet_manages_its_machines_by_ed25519_signature() {
    use sgl_grid_store::api_keys::NewApiKey;
    use sgl_protocol::identity::NodeIdentity;
    let (grid, _double) = grid("").await;
    // A wallet account for an ed25519 (Solana-style) wallet, with a key of its own.
    let identity = NodeIdentity::from_seed(&[42; 32]);
    let wallet = identity.public_key().to_b58();
    let raw = "x402c_SolanaWalletAccountKeyForMachines0000000000";
    let hash = sgl_grid::service::secrets::hash(raw);
    let new_key = NewApiKey {
        key_hash: &hash,
        prefix: "x402c_Sola",
        label: "solana",
        wallet: None,
        account_id: None,
        expires_at: None,
    };
    let root = grid.store.wallet_account_key(&wallet, &new_key, START_MS).await.unwrap();
    grid.admin(AdminCommand::CreditsAdd { key_id: root.id, usd: 1.0 }).await;
    let machine = provision(&grid, raw, provision_body("vc2-1c-1gb", 2, Some(KEY))).await;
    let id = machine["id"].as_str().unwrap();

    let signed_at = u64::try_from(START_MS / 1000).unwrap();
    let headers = |method: &str, path: &str, body: &[u8], nonce: &str, signer: &NodeIdentity| {
        let message = machine_message(&wallet, &machine_action(method, path, body), nonce, signed_at);
        vec![
            ("x-wallet".to_owned(), wallet.clone()),
            ("x-wallet-nonce".to_owned(), nonce.to_owned()),
            ("x-wallet-signed-at".to_owned(), signed_at.to_string()),
            ("x-wallet-signature".to_owned(), signer.sign_b58(message.as_bytes())),
        ]
    };
    let list = headers("GET", "/compute/instances", b"", "sol-1", &identity);
    let list: Vec<(&str, &str)> = list.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (status, mine) = grid.call("GET", "/compute/instances", &list, None).await;
    assert_eq!((status, mine["instances"][0]["id"].as_str()), (StatusCode::OK, Some(id)), "{mine}");

    // Extended by signature, paid from the wallet account's credits when it says so (a signed
    // request pays per request by default, as one without a key does).
    let path = format!("/compute/instances/{id}/extend");
    let unpaid = json!({"extend_hours": 1}).to_string();
    let quote = headers("POST", &path, unpaid.as_bytes(), "sol-0", &identity);
    let quote: Vec<(&str, &str)> = quote.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (status, _) = grid.call("POST", &path, &quote, Some(Value::String(unpaid))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let body = json!({"extend_hours": 1, "use_credits": true}).to_string();
    let extend = headers("POST", &path, body.as_bytes(), "sol-2", &identity);
    let extend: Vec<(&str, &str)> = extend.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (status, extended) = grid.call("POST", &path, &extend, Some(Value::String(body.clone()))).await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    assert_eq!(extended["expires_at_ms"].as_i64(), Some(machine["expires_at_ms"].as_i64().unwrap() + HOUR));
    assert_eq!(grid.credits(root.id).await, 1_000_000 - 3 * RATE);

    // Another key signing as this wallet is refused and changes nothing.
    let forger = NodeIdentity::from_seed(&[43; 32]);
    let forged = headers("POST", &path, body.as_bytes(), "sol-3", &forger);
    let forged: Vec<(&str, &str)> = forged.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_error(
        grid.call("POST", &path, &forged, Some(Value::String(body))).await,
        StatusCode::BAD_REQUEST,
        "invalid_signature",
    );
    assert_eq!(grid.credits(root.id).await, 1_000_000 - 3 * RATE);
    grid.assert_ledger_balanced().await;
}
