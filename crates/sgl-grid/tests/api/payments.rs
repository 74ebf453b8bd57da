//! Paying per request without a key: a wallet pays a chat completion's 402 with a signed
//! EIP-3009 authorization (x402 v2) settled in the grid's own ledger, and the same through a
//! second grid serving its ledger as a remote facilitator over real HTTP. The payment is
//! credited to the wallet's account, the node's signed usage is billed from it, and replayed,
//! underpaid and wrongly addressed payments are refused with the spec's reasons.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, U256};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};
use sgl_grid::admin::AdminCommand;
use sgl_grid_store::Store;
use sgl_grid_store::ledger::Account;
use sgl_pay::ledger::{AccountKey, PaymentLedger};
use sgl_pay::network::NetworkConfig;
use sgl_pay::payer::Payer;
use sgl_protocol::api::inference::Usage;

use crate::harness::{Grid, Node, call_full};

fn request() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16})
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn decode(header: &str) -> Value {
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(header).unwrap()).unwrap()
}

fn payer() -> Payer {
    Payer::new(k256::ecdsa::SigningKey::random(&mut rand_core::OsRng), U256::from(1_000_000u64))
}

async fn usdc(store: &Store, address: Address) -> U256 {
    let network = NetworkConfig::BASE_SEPOLIA;
    let account = AccountKey { network: network.caip2.to_string(), asset: network.asset, address };
    PaymentLedger::balance(store, &account).await.unwrap()
}

async fn fund(grid: &Grid, address: Address) {
    grid.admin(AdminCommand::Faucet { address: format!("{address:#x}"), usdc: 1.0 }).await;
}

/// Sends the paid chat from a task of its own, lets `node` answer, and returns the answer.
async fn paid_chat(grid: &Grid, node: &Node, payment: (&str, &str)) -> (StatusCode, HeaderMap, Value) {
    let router = grid.router.clone();
    let (name, value) = (payment.0.to_owned(), payment.1.to_owned());
    let call = tokio::spawn(async move {
        call_full(router, "POST", "/v1/chat/completions", &[(&name, &value)], Some(request())).await
    });
    let job = node.open(&node.wait_job(grid, "m").await);
    assert_eq!(node.complete(grid, &job, "hi!", Usage::new(10, 5)).await.0, StatusCode::OK);
    call.await.unwrap()
}

fn reason(headers: &HeaderMap) -> String {
    let settle = decode(headers.get("payment-response").expect("a PAYMENT-RESPONSE").to_str().unwrap());
    assert_eq!(settle["success"], false, "{settle}");
    settle["errorReason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_wallet_pays_per_request_in_the_grids_own_ledger() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 51).await;
    node.beat(&grid, &["m"]).await;
    let payer = payer();
    fund(&grid, payer.address()).await;

    let (status, headers, body) = grid.call_full("POST", "/v1/chat/completions", &[], Some(request())).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let required = headers.get("payment-required").unwrap().to_str().unwrap().to_owned();
    let quote = decode(&required)["accepts"][0]["amount"].as_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(quote, 16, "the reference price of the prompt bound and 16 tokens");
    let challenge = headers.get("www-authenticate").expect("an MPP challenge").to_str().unwrap();
    assert!(challenge.starts_with("Payment ") && challenge.contains("method=\"evm\""), "{challenge}");

    let (name, value) = payer.pay_header(&required, now_secs(), B256::repeat_byte(1)).unwrap();
    let (status, headers, body) = paid_chat(&grid, &node, (name, &value)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "hi!");
    let settle = decode(headers.get("payment-response").unwrap().to_str().unwrap());
    assert_eq!(settle["success"], true, "{settle}");
    assert_eq!(settle["payer"].as_str().map(str::to_lowercase), Some(format!("{:#x}", payer.address())));
    assert_eq!(usdc(&grid.store, payer.address()).await, U256::from(1_000_000 - quote));
    // 10 input and 5 output tokens at 0.10 / 0.40 per 1M cost 3 micro-dollars (rounded up); the
    // rest of the quote stays as the wallet's credit.
    let wallet_key = grid.store.wallet_account_id(&format!("{:#x}", payer.address())).await.unwrap().unwrap();
    assert_eq!(grid.credits(wallet_key).await, 16 - 3);

    // The same payment again: refused, nothing dispatched, nothing moved.
    let (status, headers, _) = grid.call_full("POST", "/v1/chat/completions", &[(name, &value)], Some(request())).await;
    assert_eq!(
        (status, reason(&headers).as_str()),
        (StatusCode::PAYMENT_REQUIRED, "invalid_exact_evm_nonce_already_used")
    );
    assert_eq!(usdc(&grid.store, payer.address()).await, U256::from(1_000_000 - quote));

    // A payment for less than the quote, or to someone else, is refused with the spec's reason.
    for (field, forged, expected) in [
        ("amount", json!("15"), "invalid_exact_evm_payload_authorization_value_mismatch"),
        ("payTo", json!(format!("{:#x}", Address::repeat_byte(9))), "invalid_exact_evm_payload_recipient_mismatch"),
    ] {
        let mut altered = decode(&required);
        altered["accepts"][0][field] = forged;
        let altered = base64::engine::general_purpose::STANDARD.encode(altered.to_string());
        let (name, value) = payer.pay_header(&altered, now_secs(), B256::repeat_byte(2)).unwrap();
        let (status, headers, _) =
            grid.call_full("POST", "/v1/chat/completions", &[(name, &value)], Some(request())).await;
        assert_eq!((status, reason(&headers).as_str()), (StatusCode::PAYMENT_REQUIRED, expected), "{field}");
    }
    assert_eq!(usdc(&grid.store, payer.address()).await, U256::from(1_000_000 - quote));
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_grid_settles_through_a_remote_facilitator_over_http() {
    // Grid B serves its ledger as a facilitator on a real port; grid A settles against it.
    let ledger = Grid::with_config("[x402]\nserve_facilitator = true\n").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = ledger.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let pay_to = Address::repeat_byte(0x42);
    let grid = Grid::with_config(&format!(
        "[x402]\nfacilitator_url = \"http://{address}/x402/facilitator\"\npay_to = \"{pay_to:#x}\"\n"
    ))
    .await;
    let node = grid.node("0xop", 52).await;
    node.beat(&grid, &["m"]).await;
    let payer = payer();
    fund(&ledger, payer.address()).await;

    let (status, headers, _) = grid.call_full("POST", "/v1/chat/completions", &[], Some(request())).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(headers.get("www-authenticate").is_none(), "no MPP without the grid's own ledger");
    let required = headers.get("payment-required").unwrap().to_str().unwrap().to_owned();
    let (name, value) = payer.pay_header(&required, now_secs(), B256::repeat_byte(3)).unwrap();
    let (status, _, body) = paid_chat(&grid, &node, (name, &value)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The money moved in the facilitator's ledger, to grid A's address; A credited the wallet.
    assert_eq!(usdc(&ledger.store, payer.address()).await, U256::from(1_000_000 - 16u64));
    assert_eq!(usdc(&ledger.store, pay_to).await, U256::from(16u64));
    let wallet_key = grid.store.wallet_account_id(&format!("{:#x}", payer.address())).await.unwrap().unwrap();
    assert_eq!(grid.credits(wallet_key).await, 16 - 3);
    assert_eq!(
        grid.store
            .balance(&Account::External { source: "x402".into(), asset: sgl_grid_store::ledger::Asset::Usd })
            .await
            .unwrap(),
        -16
    );

    // A replay is refused by the facilitator's verification.
    let (status, headers, _) = grid.call_full("POST", "/v1/chat/completions", &[(name, &value)], Some(request())).await;
    assert_eq!(
        (status, reason(&headers).as_str()),
        (StatusCode::PAYMENT_REQUIRED, "invalid_exact_evm_nonce_already_used")
    );
    // The facilitator routes are off unless asked for.
    let (status, _, _) = grid.call_full("GET", "/x402/facilitator/supported", &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, supported) = ledger.call_full("GET", "/x402/facilitator/supported", &[], None).await;
    assert_eq!((status, supported["kinds"][0]["network"].as_str()), (StatusCode::OK, Some("eip155:84532")));
}

#[tokio::test]
async fn a_sealed_request_pays_for_itself_on_a_keyless_reservation() {
    use sgl_protocol::api::caller::{ReserveResponse, SealedChatResponse};
    use sgl_protocol::api::inference::{InferenceRequest, JobResult};
    use sgl_protocol::api::openai::ChatMessage;
    use sgl_protocol::identity::EncryptionPublicKey;
    use sgl_protocol::seal::{SealVersion, seal_request};

    let grid = Grid::new().await;
    let node = grid.node("0xop", 53).await;
    node.beat(&grid, &["m"]).await;
    let payer = payer();
    fund(&grid, payer.address()).await;
    let (status, reservation) = grid.call("POST", "/v1/reserve", &[], Some(json!({"model": "m"}))).await;
    assert_eq!(status, StatusCode::OK, "a reservation without a key: {reservation}");
    let reservation: ReserveResponse = serde_json::from_value(reservation).unwrap();
    let node_key = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let prompt = InferenceRequest {
        messages: Some(vec![ChatMessage::text("user", "sealed and paid")]),
        max_tokens: Some(8),
        ..InferenceRequest::default()
    };
    let (enc, opener) =
        seal_request(&node_key, SealVersion::V2, &serde_json::to_vec(&prompt).unwrap(), &mut rand_core::OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "max_tokens": 8, "enc": enc});

    // The quote is bound to the cleartext max_tokens, which the node is then held to.
    let (status, headers, _) = grid.call_full("POST", "/v1/chat/completions", &[], Some(body.clone())).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let required = headers.get("payment-required").unwrap().to_str().unwrap().to_owned();
    let quote = decode(&required)["accepts"][0]["amount"].as_str().unwrap().parse::<u64>().unwrap();
    let mut uncapped = body.clone();
    uncapped.as_object_mut().unwrap().remove("max_tokens");
    let (_, headers, _) = grid.call_full("POST", "/v1/chat/completions", &[], Some(uncapped)).await;
    let uncapped_quote = decode(headers.get("payment-required").unwrap().to_str().unwrap())["accepts"][0]["amount"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!(quote < 20 && uncapped_quote > 3_000, "8 tokens quoted {quote}, no cap quoted {uncapped_quote}");

    let (name, value) = payer.pay_header(&required, now_secs(), B256::repeat_byte(4)).unwrap();
    let router = grid.router.clone();
    let (name, value) = (name.to_owned(), value.clone());
    let call =
        tokio::spawn(
            async move { call_full(router, "POST", "/v1/chat/completions", &[(&name, &value)], Some(body)).await },
        );
    let pending = node.wait_job(&grid, "m").await;
    assert_eq!(pending.input_payload.as_ref().unwrap()["max_tokens"], 8);
    let job = node.open(&pending);
    assert_eq!(node.complete(&grid, &job, "sealed reply", Usage::new(12, 8)).await.0, StatusCode::OK);
    let (status, headers, response) = call.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{response}");
    assert!(headers.contains_key("payment-response"));
    let response: SealedChatResponse = serde_json::from_value(response).unwrap();
    let answer: JobResult = serde_json::from_slice(&opener.open(&response.sealed_result).unwrap()).unwrap();
    assert_eq!(answer.content, "sealed reply");
    assert_eq!(usdc(&grid.store, payer.address()).await, U256::from(1_000_000 - quote));
    let wallet_key = grid.store.wallet_account_id(&format!("{:#x}", payer.address())).await.unwrap().unwrap();
    // 12 prompt and 8 completion tokens cost 5 micro-dollars; the rest of the quote is credit.
    assert_eq!(grid.credits(wallet_key).await, i64::try_from(quote).unwrap() - 5);

    // A key's reservation cannot be used by a request paying for itself.
    let (_, api_key) = grid.api_key(1.0).await;
    let (_, keyed) = grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "m"}))).await;
    let body = json!({"reservation_token": keyed["reservation_token"], "max_tokens": 8, "enc": enc});
    let (status, _, refused) = grid.call_full("POST", "/v1/chat/completions", &[], Some(body)).await;
    assert_eq!((status, refused["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("reservation_token")));
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn payments_settled_but_never_credited_are_credited_at_start() {
    use sgl_pay::ledger::{LedgerTransfer, NonceKey};

    let grid = Grid::new().await;
    let node = grid.node("0xop", 54).await;
    node.beat(&grid, &["m"]).await;
    let payer = payer();
    fund(&grid, payer.address()).await;
    // A payment taken and credited the normal way.
    let (_, headers, _) = grid.call_full("POST", "/v1/chat/completions", &[], Some(request())).await;
    let required = headers.get("payment-required").unwrap().to_str().unwrap().to_owned();
    let (name, value) = payer.pay_header(&required, now_secs(), B256::repeat_byte(5)).unwrap();
    assert_eq!(paid_chat(&grid, &node, (name, &value)).await.0, StatusCode::OK);
    let wallet = format!("{:#x}", payer.address());
    let key = grid.store.wallet_account_id(&wallet).await.unwrap().unwrap();
    assert_eq!(grid.credits(key).await, 13);
    assert_eq!(sgl_grid::payments::reconcile(grid.state()).await.unwrap(), 0, "nothing was left out");

    // A settlement in the ledger whose credit never happened (the grid stopped in between).
    let network = NetworkConfig::BASE_SEPOLIA;
    let lost = LedgerTransfer {
        nonce: NonceKey {
            chain_id: network.chain_id,
            asset: network.asset,
            from: payer.address(),
            nonce: B256::repeat_byte(6),
        },
        network: network.caip2.to_string(),
        from: payer.address(),
        to: sgl_grid::config::LOCAL_TREASURY,
        value: U256::from(250u64),
        tx_hash: B256::repeat_byte(7),
    };
    PaymentLedger::settle(&grid.store, &lost).await.unwrap();
    assert_eq!(sgl_grid::payments::reconcile(grid.state()).await.unwrap(), 1);
    assert_eq!(grid.credits(key).await, 13 + 250);
    assert_eq!(sgl_grid::payments::reconcile(grid.state()).await.unwrap(), 0, "credited once");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_top_up_takes_the_seeds_amount_and_network_and_names_the_supported_networks() {
    let grid = Grid::new().await;
    let payer = payer();
    fund(&grid, payer.address()).await;
    let seed_body = json!({"amount": 0.25, "network": "base-sepolia"});
    let (status, headers, body) = grid.call_full("POST", "/compute/credits/topup", &[], Some(seed_body.clone())).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let required = headers.get("payment-required").unwrap().to_str().unwrap().to_owned();
    assert_eq!(decode(&required)["accepts"][0]["amount"], "250000");
    let (name, value) = payer.pay_header(&required, now_secs(), B256::repeat_byte(7)).unwrap();
    let (status, _, body) = grid.call_full("POST", "/compute/credits/topup", &[(name, &value)], Some(seed_body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["credited_micros"], 250_000);
    assert_eq!(usdc(&grid.store, payer.address()).await, U256::from(1_000_000 - 250_000));

    let (status, body) =
        grid.call("POST", "/compute/credits/topup", &[], Some(json!({"amount": 1, "network": "solana"}))).await;
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("network")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("base-sepolia") && message.contains("eip155:84532"), "{message}");
    let (status, body) = grid.call("POST", "/compute/credits/topup", &[], Some(json!({"amount": -1}))).await;
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("amount")), "{body}");
    let (status, body) = grid.call("POST", "/compute/credits/topup", &[], Some(json!({}))).await;
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("amount_usd")), "{body}");
    // Found by schemathesis: a bad `amount` beside a good `amount_usd` was ignored, and a
    // positive amount under a micro-dollar was a top-up of nothing.
    let both = json!({"amount_usd": 1.0, "amount": -2.8e16});
    let (status, body) = grid.call("POST", "/compute/credits/topup", &[], Some(both)).await;
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("amount")), "{body}");
    let (status, body) = grid.call("POST", "/compute/credits/topup", &[], Some(json!({"amount_usd": 1e-7}))).await;
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("amount_usd")), "{body}");
    grid.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_refused_mpp_credential_keeps_its_problem_details_body() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 52).await;
    node.beat(&grid, &["m"]).await;
    let garbage = [("Authorization", "Payment not-a-credential")];
    let (status, headers, body) = grid.call_full("POST", "/v1/chat/completions", &garbage, Some(request())).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(body["type"].as_str().is_some_and(|t| !t.is_empty()), "RFC 9457 keeps its type: {body}");
    assert!(body.get("error").is_none(), "not rewritten into an OpenAI error: {body}");
}
