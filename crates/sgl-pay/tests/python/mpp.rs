//! MPP interop: the real Python client (`pympp[evm]` 0.16.0) pays an `evm/charge` route served
//! here on loopback by `sgl_pay::mpp` over a funded in-memory ledger, and a replay of its
//! credential is refused.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, U256, address};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k256::ecdsa::SigningKey;
use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_pay::ledger::{AccountKey, MemoryLedger, PaymentLedger};
use sgl_pay::mpp::{
    self, MppConfig, MppSettlement, NonceDerivation, ProblemDetails, VerifiedMppPayment, parse_authorization,
    settle_payment, verify_credential,
};
use sgl_pay::network::NetworkConfig;
use tokio::io::AsyncWriteExt as _;

use super::{python, python_modules_available};

const SELLER: Address = address!("0x2222222222222222222222222222222222222222");
/// $0.01 in USDC's atomic units.
const PRICE: u64 = 10_000;
const FUNDS: u64 = 1_000_000;
const DESCRIPTION: &str = "One GPU hour — \"H100\" × 1";

/// The route's state: the MPP configuration, the ledger, and what was settled.
struct Shop {
    config: MppConfig,
    ledger: MemoryLedger,
    settled: Mutex<Vec<VerifiedMppPayment>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

fn account(address: Address) -> AccountKey {
    let network = NetworkConfig::BASE_SEPOLIA;
    AccountKey { network: network.caip2.to_string(), asset: network.asset, address }
}

/// `GET /paid`: 402 with a challenge, or verify, settle and answer 200 with a receipt.
async fn paid(State(shop): State<Arc<Shop>>, headers: HeaderMap) -> Response {
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return refuse(&shop, ProblemDetails::payment_required(shop.config.realm()));
    };
    let Ok(authorization) = authorization.to_str() else {
        return refuse(&shop, ProblemDetails::payment_required(shop.config.realm()));
    };
    let now = now();
    let verified = parse_authorization(authorization)
        .and_then(|credential| verify_credential(&shop.config, &credential, U256::from(PRICE), now));
    let payment = match verified {
        Ok(payment) => payment,
        Err(error) => return refuse(&shop, error.problem()),
    };
    let settlement = settle_payment(&shop.ledger, &payment, now).await.expect("the memory ledger cannot fail");
    let MppSettlement::Settled(receipt) = &settlement else {
        return refuse(&shop, settlement.problem().expect("a refused settlement has a problem"));
    };
    shop.settled.lock().expect("not poisoned").push(payment);
    ([(mpp::PAYMENT_RECEIPT, receipt.header_value())], axum::Json(json!({"gpu": "yours"}))).into_response()
}

/// The problem's status with a fresh challenge, as the spec asks of every failure.
fn refuse(shop: &Shop, problem: ProblemDetails) -> Response {
    let challenge = shop.config.issue_challenge(U256::from(PRICE), Some(DESCRIPTION), now());
    let status = StatusCode::from_u16(problem.status).expect("problem statuses are valid");
    let body = serde_json::to_string(&problem.with_challenge_id(challenge.id())).expect("problem serializes");
    let headers = [
        (header::WWW_AUTHENTICATE.as_str(), challenge.www_authenticate()),
        (header::CONTENT_TYPE.as_str(), mpp::PROBLEM_CONTENT_TYPE.to_owned()),
    ];
    (status, headers, body).into_response()
}

/// Runs `pay_mpp.py` against `url` with `key`; returns its JSON report.
async fn python_pays(url: &str, key: &SigningKey) -> Value {
    let network = NetworkConfig::BASE_SEPOLIA;
    let input = json!({
        "url": url,
        "private_key": format!("0x{}", alloy_primitives::hex::encode(key.to_bytes())),
        "currency": network.asset.to_checksum(None),
        "chain_id": network.chain_id,
        "decimals": network.decimals,
        "name": network.domain_name,
        "version": network.domain_version,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/pay_mpp.py");
    let mut command = tokio::process::Command::new(python());
    // httpx would route even loopback requests through a proxy named in the environment.
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        command.env_remove(proxy);
    }
    let mut child = command
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.to_string().as_bytes()).await.expect("input written");
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("pay_mpp.py finishes within two minutes")
        .expect("python runs");
    assert!(output.status.success(), "pay_mpp.py failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("pay_mpp.py prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pympp_pays_an_evm_charge_and_its_replay_is_refused() {
    if !python_modules_available("mpp.methods.evm.client, eth_account, httpx", "\"pympp[evm]==0.16.0\"") {
        return;
    }
    let key = SigningKey::random(&mut OsRng);
    let payer = Address::from_private_key(&key);
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut secret);
    let config = MppConfig::new("sgl-pay interop", secret, NetworkConfig::BASE_SEPOLIA, SELLER).expect("config");
    let shop = Arc::new(Shop { config, ledger: MemoryLedger::new(), settled: Mutex::new(Vec::new()) });
    shop.ledger.credit(account(payer), U256::from(FUNDS));

    let app = Router::new().route("/paid", get(paid)).with_state(Arc::clone(&shop));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("http://{}/paid", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.expect("server runs") });

    let report = python_pays(&url, &key).await;
    server.abort();

    assert_eq!(report["status"], 200, "{report:#}");
    assert_eq!(report["credentials"], 1, "one credential, no automatic second payment: {report:#}");
    assert_eq!(report["payer"], payer.to_checksum(None));
    let settled = shop.settled.lock().expect("not poisoned").clone();
    let [payment] = settled.as_slice() else { panic!("one settlement, got {settled:?}") };
    assert_eq!(payment.payer, payer);
    assert_eq!(payment.value, U256::from(PRICE));
    assert_eq!(payment.nonce_derivation, NonceDerivation::JsonArray, "pympp hashes [id, realm] as JSON");

    let receipt = &report["receipt"];
    assert_eq!(receipt["status"], "success", "{report:#}");
    assert_eq!(receipt["method"], "evm");
    assert_eq!(receipt["reference"], payment.digest.to_string());

    assert_eq!(shop.ledger.balance(&account(payer)).await.expect("ledger"), U256::from(FUNDS - PRICE));
    assert_eq!(shop.ledger.balance(&account(SELLER)).await.expect("ledger"), U256::from(PRICE));

    assert_eq!(report["replay_status"], 402, "{report:#}");
    assert_eq!(report["replay_problem"]["type"], "https://paymentauth.org/problems/verification-failed");
    assert!(report["replay_challenge"].as_str().is_some_and(|value| value.starts_with("Payment ")), "{report:#}");
    assert_eq!(shop.ledger.balance(&account(SELLER)).await.expect("ledger"), U256::from(PRICE), "moved once");
}
