//! Interop with the real Python clients. `x402` (PyPI `x402[evm]`, tested with 2.25.0) reads
//! our dual 402 answer, signs with a key made here, and our codec and verifier must accept
//! its `PAYMENT-SIGNATURE` (v2) and `X-PAYMENT` (v1) headers and recover that key's address.
//! `pympp` (PyPI `pympp[evm]`, tested with 0.16.0) pays an MPP `evm/charge` route: see [`mpp`].
//!
//! Needs `python3 -m pip install "x402[evm]==2.25.0" "eth-account==0.14.0" "pympp[evm]==0.16.0"`.
//! Without them the tests print a skip notice, except under `CI=true`, where they fail.
//! `SGL_TEST_PYTHON` overrides the interpreter. No network access is needed: signing is
//! offline and the MPP server listens on loopback.

mod mpp;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, U256, address};
use k256::ecdsa::SigningKey;
use rand_core::OsRng;
use serde_json::{Value, json};
use sgl_pay::exact_evm::verify_exact_evm;
use sgl_pay::facilitator::{Facilitator, LocalFacilitator, SystemClock};
use sgl_pay::header::{IncomingPayment, PAYMENT_REQUIRED, PAYMENT_SIGNATURE, X_PAYMENT};
use sgl_pay::ledger::{AccountKey, MemoryLedger, PaymentLedger};
use sgl_pay::network::NetworkConfig;
use sgl_pay::quote::PaymentQuote;
use sgl_pay::wire::ResourceInfo;

const SELLER: Address = address!("0x1111111111111111111111111111111111111111");

fn python() -> String {
    std::env::var("SGL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether the Python x402 client is installed; panics under `CI=true` when it is not.
fn python_client_available() -> bool {
    python_modules_available("x402, eth_account", "\"x402[evm]==2.25.0\" \"eth-account==0.14.0\"")
}

/// Whether Python can import `modules` (comma-separated); panics under `CI=true` when it
/// cannot, naming the `pip install` arguments that fix it.
fn python_modules_available(modules: &str, pip_arguments: &str) -> bool {
    let imports = Command::new(python()).args(["-c", &format!("import {modules}")]).output();
    if imports.as_ref().is_ok_and(|output| output.status.success()) {
        return true;
    }
    let detail = match imports {
        Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
        Err(error) => error.to_string(),
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but Python cannot import {modules} ({detail}); install with: python3 -m pip install {pip_arguments}"
    );
    eprintln!("skipping Python interop: cannot import {modules} ({})", detail.trim());
    false
}

/// A $0.01 quote on Base Sepolia USDC: within the client's default spend controls.
fn quote() -> PaymentQuote {
    PaymentQuote {
        amount: U256::from(10_000),
        pay_to: SELLER,
        network: NetworkConfig::BASE_SEPOLIA,
        resource: ResourceInfo {
            url: "http://127.0.0.1:9/v1/chat/completions".to_owned(),
            description: Some("Chat completion".to_owned()),
            mime_type: Some("application/json".to_owned()),
        },
        max_timeout_seconds: 120,
    }
}

/// Runs the Python client on a 402 answer; returns the payment header's `(name, value)`.
fn python_pays(key: &SigningKey, answer: &Value) -> (String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sign_payment.py");
    let private_key = format!("0x{}", alloy_primitives::hex::encode(key.to_bytes()));
    let mut child = Command::new(python())
        .args([script, &private_key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child.stdin.take().expect("stdin").write_all(answer.to_string().as_bytes()).expect("answer written");
    let output = child.wait_with_output().expect("python finishes");
    assert!(output.status.success(), "sign_payment.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let header: Value = serde_json::from_slice(&output.stdout).expect("script prints JSON");
    (header["name"].as_str().expect("name").to_owned(), header["value"].as_str().expect("value").to_owned())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// Pays the dual 402 as a client that reads `answer` and checks the result end to end.
async fn check_payment(answer: Value, expected_header: &str, expected_version: u8) {
    let quote = quote();
    let key = SigningKey::random(&mut OsRng);
    let payer = Address::from_private_key(&key);
    let (name, value) = python_pays(&key, &answer);
    assert_eq!(name, expected_header);

    let (signature, x_payment) =
        if name == PAYMENT_SIGNATURE { (Some(value.as_str()), None) } else { (None, Some(value.as_str())) };
    let payment = IncomingPayment::from_headers(signature, x_payment).expect("header parses").expect("payment");
    assert_eq!(payment.x402_version(), expected_version);
    assert!(quote.matches(&payment), "the client's payment matches our quote: {payment:?}");
    let request = quote.facilitator_request(payment).expect("request");

    let verified = verify_exact_evm(&request, &quote.network, now()).expect("our verifier accepts it");
    assert_eq!(verified.payer, payer);
    assert_eq!(verified.to, SELLER);
    assert_eq!(verified.value, quote.amount);

    let ledger = MemoryLedger::new();
    let account =
        |address| AccountKey { network: quote.network.caip2.to_string(), asset: quote.network.asset, address };
    ledger.credit(account(payer), U256::from(1_000_000));
    let facilitator = LocalFacilitator::new(ledger, vec![NetworkConfig::BASE_SEPOLIA], SystemClock);
    let settle = facilitator.settle(&request).await.expect("ledger works");
    assert!(settle.success, "{settle:?}");
    assert_eq!(settle.transaction, verified.digest.to_string());
    assert_eq!(facilitator.ledger().balance(&account(SELLER)).await.expect("ledger"), quote.amount);
    let replay = facilitator.verify(&request).await.expect("ledger works");
    assert_eq!(replay.invalid_reason.as_deref(), Some("invalid_exact_evm_nonce_already_used"));
}

#[tokio::test]
async fn python_client_pays_the_v2_header_of_our_dual_402() {
    if !python_client_available() {
        return;
    }
    let dual = quote().dual_402(None).expect("402 builds");
    let answer = json!({"headers": {PAYMENT_REQUIRED: dual.payment_required}, "body": dual.body});
    check_payment(answer, PAYMENT_SIGNATURE, 2).await;
}

#[tokio::test]
async fn python_client_pays_the_v1_body_of_our_dual_402() {
    if !python_client_available() {
        return;
    }
    let dual = quote().dual_402(None).expect("402 builds");
    check_payment(json!({"headers": {}, "body": dual.body}), X_PAYMENT, 1).await;
}
