//! `sgl-client` against a real `sgl-grid` (in process, on 127.0.0.1) and, where a node is
//! needed, a real `sgl` node process serving the real test model; plus a scripted grid for the
//! failure modes a real grid does not produce on demand (retries, aborted and truncated streams,
//! blobs and results that do not verify).

mod fake;
mod jobs;
mod live;

use std::path::{Path, PathBuf};

use sgl_client::{ApiKey, Client, Error};
use sgl_protocol::api::error::ErrorCode;

pub(crate) use sgl_test_support::{Grid, NodeProcess as Node, target_binary, test_model as model_path};

pub(crate) async fn grid() -> Grid {
    Grid::start().await
}

/// A new API key with `usd` of credits.
pub(crate) async fn api_key(grid: &Grid, usd: f64) -> String {
    grid.api_key(usd).await.1
}

/// A client of `grid`, with `key` if given.
pub(crate) fn client(grid: &Grid, key: Option<&str>) -> Client {
    Client::new(&grid.url, key.map(ApiKey::new)).unwrap()
}

/// The `sgl` node binary built next to this test.
pub(crate) fn node_binary() -> Option<PathBuf> {
    target_binary("sgl")
}

/// Registers, attests and starts a node serving `gemma`, and waits until the grid lists it.
pub(crate) async fn start_node(grid: &Grid, binary: &Path, model: &Path, dir: &Path) -> Node {
    Node::start(grid, binary, model, dir, &[]).await
}

#[tokio::test]
async fn calls_that_need_a_key_fail_locally_without_one() {
    let grid = grid().await;
    let client = client(&grid, None);
    assert!(matches!(client.reserve("gemma").await, Err(Error::MissingApiKey)));
    assert!(matches!(client.credits_balance().await, Err(Error::MissingApiKey)));
    assert!(matches!(client.keys_list().await, Err(Error::MissingApiKey)));
    // Discovery is public.
    assert!(client.models().await.unwrap().data.is_empty());
    assert_eq!(client.capacity().await.unwrap().total_nodes, 0);
}

#[tokio::test]
async fn grid_refusals_arrive_typed() {
    let grid = grid().await;
    let key = api_key(&grid, 1.0).await;
    let error = client(&grid, Some(&key)).reserve("no-such-model").await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(404), Some(ErrorCode::ModelNotFound)), "{error}");
    let error = client(&grid, Some("x402c_not_a_key")).credits_balance().await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(401), Some(ErrorCode::InvalidApiKey)), "{error}");
    assert!(!error.is_verification());
    let unreachable = Client::new("http://127.0.0.1:9", None).unwrap();
    assert!(matches!(unreachable.models().await, Err(Error::Transport(_))));
    assert!(matches!(Client::new("ftp://grid", None), Err(Error::InvalidRequest(_))));
}

#[tokio::test]
async fn credits_and_keys_round_trip() {
    let grid = grid().await;
    let key = api_key(&grid, 2.0).await;
    let client = client(&grid, Some(&key));
    let balance = client.credits_balance().await.unwrap();
    assert_eq!(balance.balance_micros, 2_000_000);
    let created = client.keys_create(Some("ci"), Some(0.5)).await.unwrap();
    assert_eq!((created.label.as_str(), created.credits_micros), ("ci", 500_000));
    assert_eq!(client.credits_balance().await.unwrap().balance_micros, 1_500_000);
    // The new key works, and sees the account's keys.
    let child = crate::client(&grid, Some(created.api_key.expose_secret()));
    assert_eq!(child.credits_balance().await.unwrap().balance_micros, 500_000);
    let listed = client.keys_list().await.unwrap();
    assert_eq!(listed.data.len(), 2);
    assert!(listed.data.iter().any(|k| k.id == created.id && !k.revoked));
    let revoked = client.keys_revoke(created.id).await.unwrap();
    assert!(revoked.revoked);
    let refused = child.credits_balance().await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::InvalidApiKey));
    assert!(client.keys_list().await.unwrap().data.iter().any(|k| k.id == created.id && k.revoked));
}

#[tokio::test]
async fn an_order_round_trips_and_is_refunded_whole_when_cancelled() {
    use sgl_protocol::api::market::{OrderRequest, OrderState, Resources};
    let grid = grid().await;
    let key = api_key(&grid, 1.0).await;
    let client = client(&grid, Some(&key));
    let request = OrderRequest {
        class: sgl_protocol::compute::JobClass::Wasm,
        resources: Resources { cpu_cores: 1, memory_mb: 512, gpus: 0 },
        duration_secs: 3_600,
        max_price_per_hour_micros: 250_000,
        bid_window_secs: Some(30),
        job_id: None,
    };
    let placed = client.place_order(&request).await.unwrap();
    assert_eq!((placed.state, placed.held_micros, placed.bid_window_secs), (OrderState::Open, 250_000, 30));
    assert_eq!(client.credits_balance().await.unwrap().balance_micros, 750_000);
    assert_eq!(client.orders().await.unwrap().data[0].id, placed.id);
    assert!(client.order(&placed.id).await.unwrap().bids.is_empty());
    let cancelled = client.cancel_order(&placed.id).await.unwrap();
    assert_eq!((cancelled.state, cancelled.refunded_micros), (OrderState::Cancelled, 250_000));
    assert_eq!(client.credits_balance().await.unwrap().balance_micros, 1_000_000);
    let again = client.cancel_order(&placed.id).await.unwrap_err();
    assert_eq!((again.status(), again.code()), (Some(409), Some(ErrorCode::Conflict)), "{again}");
    let missing = client.lease("ml_none").await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing}");
}
