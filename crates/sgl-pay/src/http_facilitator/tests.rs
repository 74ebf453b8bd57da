//! The HTTP facilitator client against a real HTTP server on loopback that serves a
//! [`LocalFacilitator`] over the in-memory ledger: verify, settle, replay, refusals, error
//! answers, base URLs with a path, static headers and the `/supported` cache.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy_primitives::{Address, U256};
use axum::Router;
use axum::extract::{Json, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::*;
use crate::facilitator::{Clock, LocalFacilitator};
use crate::ledger::{AccountKey, MemoryLedger, PaymentLedger};
use crate::network::NetworkConfig;
use crate::test_payer::{NOW, SELLER, TestPayer, quote, v2_request};
use crate::wire::DecimalU256;

const TOKEN: &str = "Bearer s3cret-token";

struct FixedClock;

impl Clock for FixedClock {
    fn now_unix_seconds(&self) -> u64 {
        NOW
    }
}

/// What the test server shares between its handlers.
struct Served {
    facilitator: LocalFacilitator<MemoryLedger, FixedClock>,
    supported_hits: AtomicUsize,
}

/// A facilitator over HTTP on `127.0.0.1:0`, stopped on drop. Routes under `/facilitator`
/// require [`TOKEN`]; `/broken`, `/garbage` and `/huge` misbehave.
struct TestServer {
    addr: SocketAddr,
    served: Arc<Served>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    async fn start() -> Self {
        let facilitator = LocalFacilitator::new(MemoryLedger::new(), vec![NetworkConfig::BASE_SEPOLIA], FixedClock);
        let served = Arc::new(Served { facilitator, supported_hits: AtomicUsize::new(0) });
        let facilitator_routes = Router::new()
            .route("/verify", post(verify))
            .route("/settle", post(settle))
            .route("/supported", get(supported))
            .with_state(Arc::clone(&served));
        let app = Router::new()
            .nest("/facilitator", facilitator_routes)
            .route("/broken/verify", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(2000)) }))
            .route("/garbage/settle", post(|| async { "this is not JSON" }))
            .route("/huge/supported", get(|| async { "x".repeat(MAX_RESPONSE_BYTES + 1) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, served, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client of `/facilitator` that sends the token.
    fn client(&self) -> HttpFacilitator {
        HttpFacilitator::builder(&self.url("/facilitator")).header("Authorization", TOKEN).build().unwrap()
    }

    fn fund(&self, address: Address, amount: u64) {
        self.served.facilitator.ledger().credit(account(address), U256::from(amount));
    }

    async fn balance(&self, address: Address) -> U256 {
        self.served.facilitator.ledger().balance(&account(address)).await.unwrap()
    }
}

fn account(address: Address) -> AccountKey {
    let network = NetworkConfig::BASE_SEPOLIA;
    AccountKey { network: network.caip2.to_string(), asset: network.asset, address }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").is_some_and(|value| value == TOKEN)
}

async fn verify(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Json(request): Json<FacilitatorRequest>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(served.facilitator.verify(&request).await.unwrap()).into_response()
}

async fn settle(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Json(request): Json<FacilitatorRequest>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(served.facilitator.settle(&request).await.unwrap()).into_response()
}

async fn supported(State(served): State<Arc<Served>>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    served.supported_hits.fetch_add(1, Ordering::SeqCst);
    Json(served.facilitator.supported().await.unwrap()).into_response()
}

/// A v2 payment of the standard $0.01 quote by `payer`.
fn payment(payer: &TestPayer) -> FacilitatorRequest {
    let quote = quote();
    v2_request(&quote, &payer.sign(payer.authorization(&quote), &quote.network))
}

#[tokio::test]
async fn verify_then_settle_moves_the_ledger_once_over_http() {
    let server = TestServer::start().await;
    let client = server.client();
    let payer = TestPayer::random();
    server.fund(payer.address, 25_000);
    let request = payment(&payer);

    let verified = client.verify(&request).await.unwrap();
    assert!(verified.is_valid, "{verified:?}");
    assert_eq!(verified.payer, Some(payer.address.to_checksum(None)));
    assert_eq!(server.balance(payer.address).await, U256::from(25_000), "verify moves nothing");

    let settled = client.settle(&request).await.unwrap();
    assert!(settled.success, "{settled:?}");
    assert_eq!(settled.network, "eip155:84532");
    assert_eq!(settled.amount, Some(DecimalU256::from(10_000)));
    assert_eq!(settled.transaction.len(), 66);
    assert_eq!(server.balance(payer.address).await, U256::from(15_000));
    assert_eq!(server.balance(SELLER).await, U256::from(10_000));

    // The local facilitator's replay semantics come through unchanged: settling the same
    // authorization again reports the same transaction and moves nothing; verifying it again
    // says its nonce is used.
    let again = client.settle(&request).await.unwrap();
    assert!(again.success);
    assert_eq!(again.transaction, settled.transaction);
    assert_eq!(server.balance(SELLER).await, U256::from(10_000));
    let reverified = client.verify(&request).await.unwrap();
    assert_eq!(reverified.invalid_reason.as_deref(), Some("invalid_exact_evm_nonce_already_used"));
}

#[tokio::test]
async fn refusals_carry_the_reason_string() {
    let server = TestServer::start().await;
    let client = server.client();
    let payer = TestPayer::random();
    let request = payment(&payer);

    let verified = client.verify(&request).await.unwrap();
    assert!(!verified.is_valid);
    assert_eq!(verified.invalid_reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(verified.payer, Some(payer.address.to_checksum(None)));
    let settled = client.settle(&request).await.unwrap();
    assert!(!settled.success);
    assert_eq!(settled.error_reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(settled.transaction, "");

    server.fund(payer.address, 25_000);
    let mut cheaper = quote();
    cheaper.amount = U256::from(9_999);
    let underpaid = v2_request(&cheaper, &payer.sign(payer.authorization(&quote()), &cheaper.network));
    let verified = client.verify(&underpaid).await.unwrap();
    assert_eq!(verified.invalid_reason.as_deref(), Some("invalid_exact_evm_payload_authorization_value_mismatch"));
}

#[tokio::test]
async fn a_server_error_is_a_typed_error_with_a_bounded_snippet() {
    let server = TestServer::start().await;
    let request = payment(&TestPayer::random());

    let broken = HttpFacilitator::new(&server.url("/broken")).unwrap();
    match broken.verify(&request).await.unwrap_err() {
        HttpFacilitatorError::Status { endpoint, status, body } => {
            assert_eq!(endpoint, Endpoint::Verify);
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(body, "x".repeat(ERROR_SNIPPET_BYTES));
        }
        other => panic!("expected a status error, got {other:?}"),
    }

    let garbage = HttpFacilitator::new(&server.url("/garbage/")).unwrap();
    let error = garbage.settle(&request).await.unwrap_err();
    assert!(matches!(error, HttpFacilitatorError::Decode { endpoint: Endpoint::Settle, .. }), "{error:?}");

    let huge = HttpFacilitator::new(&server.url("/huge")).unwrap();
    let error = huge.supported().await.unwrap_err();
    assert!(matches!(error, HttpFacilitatorError::TooLarge { endpoint: Endpoint::Supported, .. }), "{error:?}");

    let closed = HttpFacilitator::builder("http://127.0.0.1:9/").timeout(Duration::from_secs(5)).build().unwrap();
    let error = closed.verify(&request).await.unwrap_err();
    assert!(matches!(error, HttpFacilitatorError::Transport { endpoint: Endpoint::Verify, .. }), "{error:?}");
}

#[tokio::test]
async fn headers_are_sent_and_never_shown() {
    let server = TestServer::start().await;
    let request = payment(&TestPayer::random());
    let anonymous = HttpFacilitator::new(&server.url("/facilitator")).unwrap();
    let error = anonymous.verify(&request).await.unwrap_err();
    assert!(matches!(error, HttpFacilitatorError::Status { status: StatusCode::UNAUTHORIZED, .. }), "{error:?}");

    let client = server.client();
    client.verify(&request).await.unwrap();
    let builder = HttpFacilitator::builder("https://user:password@x402.org/facilitator").header("Authorization", TOKEN);
    for shown in [format!("{client:?}"), format!("{builder:?}"), format!("{:?}", builder.build().unwrap())] {
        assert!(!shown.contains("s3cret") && !shown.contains("password"), "{shown}");
    }
    let refused = HttpFacilitator::builder("https://x402.org").header("Authorization", "Bearer a\nb").build();
    let error = refused.unwrap_err();
    assert!(matches!(error, HttpFacilitatorConfigError::HeaderValue(ref name) if name == "Authorization"));
    assert!(!error.to_string().contains("Bearer"), "{error}");
    let error = HttpFacilitator::builder("https://x402.org").header("bad name", "v").build().unwrap_err();
    assert!(matches!(error, HttpFacilitatorConfigError::HeaderName(_)), "{error:?}");
}

#[tokio::test]
async fn base_urls_with_a_path_join_with_or_without_a_trailing_slash() {
    let server = TestServer::start().await;
    for base in [server.url("/facilitator"), server.url("/facilitator/")] {
        let client = HttpFacilitator::builder(&base).header("Authorization", TOKEN).build().unwrap();
        assert_eq!(client.endpoint_url(Endpoint::Verify).as_str(), server.url("/facilitator/verify"));
        let supported = client.supported().await.unwrap();
        assert!(supported.kinds.iter().any(|kind| kind.network == "eip155:84532"), "{supported:?}");
    }
    let cases = [
        ("https://x402.org/facilitator", "https://x402.org/facilitator/settle"),
        ("https://x402.org/facilitator/", "https://x402.org/facilitator/settle"),
        ("https://api.cdp.coinbase.com/platform/v2/x402", "https://api.cdp.coinbase.com/platform/v2/x402/settle"),
        ("https://x402.org", "https://x402.org/settle"),
        ("https://x402.org/", "https://x402.org/settle"),
    ];
    for (base, settle) in cases {
        assert_eq!(HttpFacilitator::new(base).unwrap().endpoint_url(Endpoint::Settle).as_str(), settle, "{base}");
    }
    for bad in
        ["not a url", "ftp://x402.org/facilitator", "https://x402.org/f?x=1", "https://x402.org/f#x", "mailto:a@b"]
    {
        assert!(HttpFacilitator::new(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn supported_is_cached_for_its_ttl() {
    let server = TestServer::start().await;
    let hits = || server.served.supported_hits.load(Ordering::SeqCst);
    let cached = server.client();
    let first = cached.supported().await.unwrap();
    let second = cached.supported().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(hits(), 1, "the second call is served from the cache");

    let uncached = HttpFacilitator::builder(&server.url("/facilitator"))
        .header("Authorization", TOKEN)
        .supported_cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    uncached.supported().await.unwrap();
    uncached.supported().await.unwrap();
    assert_eq!(hits(), 3, "a zero TTL fetches every time");
}
