//! The test grid: router, store, clock, and a scripted node that registers and heartbeats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sgl_grid::admin::{self, AdminCommand};
use sgl_grid::config::{CliOverrides, Config};
use sgl_grid::state::AppState;
use sgl_grid_store::Store;
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::NodeId;
use sgl_protocol::keybind::{KEY_VERSION_1, sign_keybind};
use tower::ServiceExt;

pub(crate) const START_MS: i64 = 1_795_000_000_000;

pub(crate) struct Grid {
    pub(crate) router: Router,
    pub(crate) store: Store,
    clock: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

impl Grid {
    pub(crate) async fn new() -> Self {
        Self::with_config("").await
    }

    pub(crate) async fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite_file(&dir.path().join("grid.db")).await.unwrap();
        let config = Config::from_sources(Some(toml), &BTreeMap::new(), &CliOverrides::default()).unwrap();
        let clock = Arc::new(AtomicI64::new(START_MS));
        let reader = Arc::clone(&clock);
        let state = AppState::new(store.clone(), config, Arc::new(move || reader.load(Ordering::SeqCst)));
        Self { router: sgl_grid::routes::router(state), store, clock, _dir: dir }
    }

    pub(crate) fn advance_ms(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sends a request; `body` is JSON unless it is a string (sent raw).
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(Value::String(raw)) => {
                builder = builder.header("content-type", "application/json");
                Body::from(raw)
            }
            Some(json) => {
                builder = builder.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let response = self.router.clone().oneshot(builder.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    pub(crate) async fn admin(&self, command: AdminCommand) -> Value {
        admin::run(&self.store, command, START_MS).await.unwrap().json
    }

    pub(crate) async fn stake(&self, wallet: &str, sgl: u64) {
        self.admin(AdminCommand::Stake { wallet: wallet.into(), amount_sgl: sgl }).await;
    }

    pub(crate) async fn code(&self, wallet: &str) -> String {
        let output = self.admin(AdminCommand::RegistrationCode { wallet: wallet.into(), ttl_secs: 600 }).await;
        output["registration_code"].as_str().unwrap().to_owned()
    }

    /// Stakes, issues a code and registers a fresh node for `wallet`.
    pub(crate) async fn node(&self, wallet: &str, seed: u8) -> Node {
        self.stake(wallet, 50_000).await;
        let code = self.code(wallet).await;
        let identity = NodeIdentity::from_seed(&[seed; 32]);
        let (status, body) =
            self.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, wallet, Some(&code)))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Node {
            node_id: body["node_id"].as_str().unwrap().parse().unwrap(),
            token: body["auth_token"].as_str().unwrap().to_owned(),
            identity,
        }
    }
}

pub(crate) fn register_body(identity: &NodeIdentity, wallet: &str, code: Option<&str>) -> Value {
    let mut body = json!({
        "wallet_address": wallet, "tee_type": "linux_se", "available_models": ["gemma-3-270m"],
        "public_key": identity.public_key().to_b58(), "cpu_cores": 2, "ram_gb": 24.0,
        "gpu_model": "none", "supported_runtimes": ["llama.cpp"]
    });
    if let Some(code) = code {
        body["registration_code"] = json!(code);
    }
    body
}

/// A scripted node.
pub(crate) struct Node {
    pub(crate) node_id: NodeId,
    pub(crate) token: String,
    pub(crate) identity: NodeIdentity,
}

impl Node {
    pub(crate) fn heartbeat_body(&self, models: &[&str]) -> Value {
        let encryption_key = self.identity.encryption_secret().public_key();
        json!({
            "current_load": 0.0,
            "available_models": models,
            "encryption_public_key": encryption_key.to_b58(),
            "encryption_public_key_signature": sign_keybind(&self.identity, &self.node_id, &encryption_key, KEY_VERSION_1),
            "key_version": KEY_VERSION_1,
            "capabilities": {"streaming": true, "context_size": 4096},
            "active_job_ids": [],
            "binary_hash": "ab".repeat(32),
            "max_concurrent_jobs": 2
        })
    }

    pub(crate) async fn heartbeat(&self, grid: &Grid, body: Value) -> (StatusCode, Value) {
        let id = self.node_id.to_string();
        grid.call("POST", "/grid/nodes/heartbeat", &[("X-Node-Auth", &self.token), ("X-Node-Id", &id)], Some(body))
            .await
    }

    pub(crate) async fn beat(&self, grid: &Grid, models: &[&str]) -> Value {
        let (status, body) = self.heartbeat(grid, self.heartbeat_body(models)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub(crate) async fn call(&self, grid: &Grid, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        grid.call(method, path, &[("X-Node-Auth", &self.token)], body).await
    }
}

/// Asserts an OpenAI-shaped error with this status and code.
pub(crate) fn assert_error(actual: (StatusCode, Value), status: StatusCode, code: &str) {
    let (actual_status, body) = actual;
    assert_eq!(actual_status, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
}
