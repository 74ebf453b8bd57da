//! One local grid: `sgl-grid up --json` in a temporary directory, its stderr captured to a
//! file, its nodes' pids read from their `state.json`, its SQLite database read read-only.
//! Stopped with SIGTERM (the grid then stops its nodes), also when a test fails half-way.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::Value;
use sgl_client::{ApiKey, Client};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::{DEADLINE, TestEnv};

/// How a grid is started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GridOptions {
    /// Local nodes.
    pub(crate) nodes: u32,
    /// `RUST_LOG` of the grid and (inherited) of its nodes.
    pub(crate) rust_log: &'static str,
    /// The nodes also serve the embedding test model (`SGL_TEST_EMBEDDING_MODEL`).
    pub(crate) embeddings: bool,
}

impl GridOptions {
    pub(crate) fn nodes(nodes: u32) -> Self {
        Self { nodes, rust_log: "info", embeddings: false }
    }
}

/// A row of the grid's `jobs` table.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct JobRow {
    pub(crate) id: String,
    pub(crate) node_id: String,
    pub(crate) status: String,
    pub(crate) billed_micros: Option<i64>,
    pub(crate) prompt_tokens: Option<i64>,
    pub(crate) completion_tokens: Option<i64>,
}

/// The `sgl-grid up` process; dropping it stops the grid and, failing that, its nodes.
#[derive(Debug)]
struct GridProcess {
    child: Child,
    data_dir: PathBuf,
    stopped: bool,
}

/// Sends a signal by name (`STOP`, `KILL`, `TERM`, `CONT`) with kill(1): the workspace denies
/// `unsafe`, so no libc.
pub(crate) fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{name} {pid} failed");
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

impl GridProcess {
    /// Node agents of this grid still alive: their `state.json` pid whose command line names
    /// this grid's data directory (so a reused pid is never touched).
    fn live_nodes(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(self.data_dir.join("nodes")) else { return Vec::new() };
        let needle = self.data_dir.display().to_string();
        entries
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path().join("state.json")).ok())
            .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
            .filter_map(|state| state["pid"].as_u64().and_then(|pid| u32::try_from(pid).ok()))
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
                    && is_running(*pid)
            })
            .collect()
    }

    /// Last resort after the grid is gone: a node it could not stop (say, SIGSTOPped).
    fn kill_stray_nodes(&self) {
        for pid in self.live_nodes() {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }

    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            signal(pid, "TERM");
        }
        if tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
        self.kill_stray_nodes();
        self.stopped = true;
    }
}

impl Drop for GridProcess {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.start_kill();
        }
        self.kill_stray_nodes();
    }
}

/// A running local grid.
#[derive(Debug)]
pub(crate) struct LocalGrid {
    process: GridProcess,
    _stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    /// The caller key `up` created.
    pub(crate) api_key: String,
    /// The nodes, in `node-I` order.
    pub(crate) node_ids: Vec<String>,
    /// Each node's operator wallet, in `node-I` order.
    pub(crate) operators: Vec<String>,
    /// The admin token `up` made (the dashboard's admin page).
    pub(crate) admin_token: Option<String>,
    /// The served model's id, from `/v1/models`.
    pub(crate) model: String,
    http: reqwest::Client,
    root: tempfile::TempDir,
    grid_binary: PathBuf,
    env: TestEnv,
    options: GridOptions,
    launches: u32,
}

/// `--embedding-model` and the test model's path, when `options` asks for it.
fn embedding_args(options: GridOptions) -> anyhow::Result<Vec<std::ffi::OsString>> {
    if !options.embeddings {
        return Ok(Vec::new());
    }
    let path =
        std::env::var_os("SGL_TEST_EMBEDDING_MODEL").context("SGL_TEST_EMBEDDING_MODEL (.ci/run installs it)")?;
    Ok(vec!["--embedding-model".into(), path])
}

/// Starts `sgl-grid up` on `data_dir` and waits for its JSON line (every node serving the
/// model): the process, its stdout (kept open) and the line.
async fn launch(
    env: &TestEnv,
    options: GridOptions,
    data_dir: &Path,
    stderr_path: &Path,
) -> anyhow::Result<(GridProcess, BufReader<ChildStdout>, Value)> {
    let stderr = std::fs::File::create(stderr_path)?;
    let mut child = Command::new(&env.grid_binary)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("up")
        .arg("--model")
        .arg(&env.model)
        .args(embedding_args(options)?)
        .args(["--nodes", &options.nodes.to_string(), "--listen", "127.0.0.1:0", "--json", "--no-machines", "--sgl"])
        .arg(&env.node_binary)
        .env("RUST_LOG", options.rust_log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context("starting sgl-grid up")?;
    let stdout = child.stdout.take().context("the grid's stdout")?;
    let process = GridProcess { child, data_dir: data_dir.to_owned(), stopped: false };
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    let read = tokio::time::timeout(DEADLINE, stdout.read_line(&mut line)).await;
    let log = std::fs::read_to_string(stderr_path).unwrap_or_default();
    match read {
        Ok(Ok(n)) if n > 0 => {}
        Ok(_) => bail!("sgl-grid up exited before it was ready:\n{log}"),
        Err(_) => bail!("sgl-grid up was not ready within {DEADLINE:?}:\n{log}"),
    }
    let ready: Value = serde_json::from_str(line.trim()).with_context(|| format!("the ready line {line:?}"))?;
    Ok((process, stdout, ready))
}

impl LocalGrid {
    /// Starts `sgl-grid up` and waits for its JSON line (every node serving the model).
    pub(crate) async fn start(env: &TestEnv, options: GridOptions) -> anyhow::Result<Self> {
        let root = tempfile::tempdir()?;
        let data_dir = root.path().join("data");
        let (process, stdout, ready) = launch(env, options, &data_dir, &root.path().join("grid.stderr.log")).await?;
        let node_ids = ready["node_ids"]
            .as_array()
            .context("node_ids")?
            .iter()
            .map(|id| id.as_str().map(str::to_owned).context("a node id"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let text = |key: &str| ready[key].as_str().map(str::to_owned).with_context(|| format!("{key} in {ready}"));
        let mut grid = Self {
            process,
            _stdout: stdout,
            base_url: text("base_url")?,
            api_key: text("api_key")?,
            node_ids,
            operators: ready["operators"]
                .as_array()
                .map(|wallets| wallets.iter().filter_map(|w| w.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            admin_token: ready["admin_token"].as_str().map(str::to_owned),
            model: String::new(),
            http: reqwest::Client::new(),
            root,
            grid_binary: env.grid_binary.clone(),
            env: env.clone(),
            options,
            launches: 1,
        };
        // The chat model (`/v1/models` lists embedding models too).
        let models: Value = grid.get("/grid/models").await?;
        grid.model = models["models"][0]["id"].as_str().context("a model in /grid/models")?.to_owned();
        Ok(grid)
    }

    /// Kills `sgl-grid up` with SIGKILL (its nodes die with it), waits until every node process
    /// is gone, and starts it again on the same data directory, as an operator would after a
    /// crash. The grid listens on a new port; the key and the nodes' identities are the same.
    pub(crate) async fn kill_and_restart(&mut self) -> anyhow::Result<()> {
        let pid = self.process.child.id().context("the grid is running")?;
        signal(pid, "KILL");
        let _ = self.process.child.wait().await;
        super::wait_for("the nodes to die with the grid", || async {
            self.process.live_nodes().is_empty().then_some(())
        })
        .await;
        self.process.stopped = true;
        self.launches += 1;
        let log = self.root.path().join(format!("grid.{}.stderr.log", self.launches));
        let data_dir = self.process.data_dir.clone();
        let (process, stdout, ready) = launch(&self.env, self.options, &data_dir, &log).await?;
        self.process = process;
        self._stdout = stdout;
        self.base_url = ready["base_url"].as_str().context("base_url")?.to_owned();
        Ok(())
    }

    /// Stops the grid (SIGTERM; it drains and stops its nodes) and waits for it.
    pub(crate) async fn stop(&mut self) {
        self.process.stop().await;
    }

    /// The `sgl-grid up` process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.process.child.id().expect("sgl-grid up is running")
    }

    /// The temporary directory holding the data directory and the grid's log.
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// The grid's data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.process.data_dir
    }

    /// The grid's captured stderr.
    pub(crate) fn grid_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("grid.stderr.log")).unwrap_or_default()
    }

    /// Node `index`'s config directory (`state.json`, `sgl.log`, `stderr.log`).
    pub(crate) fn node_dir(&self, index: usize) -> PathBuf {
        self.data_dir().join("nodes").join(format!("node-{index}"))
    }

    /// Node `index`'s process id, from its `state.json`.
    pub(crate) fn node_pid(&self, index: usize) -> u32 {
        let path = self.node_dir(index).join("state.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let state: Value = serde_json::from_str(&text).expect("state.json is JSON");
        let pid = state["pid"].as_u64().and_then(|pid| u32::try_from(pid).ok()).expect("a pid in state.json");
        assert!(is_running(pid), "node-{index} (pid {pid}) is not running");
        pid
    }

    /// Node `index`'s process has exited.
    pub(crate) fn node_gone(&self, pid: u32) -> bool {
        !is_running(pid)
    }

    /// A verifying SDK client with the grid's key.
    pub(crate) fn client(&self) -> Client {
        self.client_at(&self.base_url)
    }

    /// A verifying SDK client with the grid's key, talking to `base_url` (a proxy, say).
    pub(crate) fn client_at(&self, base_url: &str) -> Client {
        Client::new(base_url, Some(ApiKey::new(self.api_key.clone()))).expect("a client")
    }

    /// GET with the grid's key, as JSON.
    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.http.get(format!("{}{path}", self.base_url)).bearer_auth(&self.api_key).send().await?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// POST `/v1/chat/completions` with the grid's key; the response as it comes.
    pub(crate) async fn post_chat(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/chat/completions", self.base_url))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .expect("the grid answers")
    }

    /// Sends a plain chat in the background: (status, JSON body).
    pub(crate) fn send_plain(&self, body: &Value) -> JoinHandle<(StatusCode, Value)> {
        let request = self.http.post(format!("{}/v1/chat/completions", self.base_url)).bearer_auth(&self.api_key);
        let request = request.json(body);
        tokio::spawn(async move {
            let response = request.send().await.expect("the grid answers");
            let status = response.status();
            (status, response.json().await.expect("a JSON body"))
        })
    }

    /// Waits for row number `index` of the `jobs` table: the grid records a job as it
    /// dispatches it, so this says which node a request went to.
    pub(crate) async fn job_row(&self, index: usize) -> JobRow {
        super::wait_for("the grid to dispatch the request", || async { self.jobs().await.get(index).cloned() }).await
    }

    /// The key's credits, micro-dollars.
    pub(crate) async fn balance_micros(&self) -> i64 {
        let balance = self.get("/compute/credits/balance").await.expect("the balance");
        balance["balance_micros"].as_i64().expect("balance_micros")
    }

    /// The prices of the served model, micro-dollars per token: (input, output).
    pub(crate) async fn prices_per_token(&self) -> (f64, f64) {
        let pricing = self.get("/grid/pricing").await.expect("the pricing");
        let row = pricing["pricing"]
            .as_array()
            .and_then(|rows| rows.iter().find(|row| row["model"] == self.model.as_str()))
            .expect("a price for the model");
        let per_token = |key: &str| row[key].as_f64().expect("a price") * 1e6 / 1e3;
        (per_token("price_per_1k_input_tokens_usd"), per_token("price_per_1k_output_tokens_usd"))
    }

    /// Runs `sgl-grid admin --json ARGS` on this grid's data directory while it serves.
    pub(crate) async fn admin(&self, args: &[&str]) -> Value {
        let output = Command::new(&self.grid_binary)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["admin", "--json"])
            .args(args)
            .output()
            .await
            .expect("sgl-grid admin runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "sgl-grid admin {args:?}: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("admin {args:?} printed JSON ({e}): {stdout}"))
    }

    /// An address's test-token balance in the local facilitator, atomic units.
    pub(crate) async fn x402_balance(&self, address: &str, asset: &str) -> i64 {
        let options = SqliteConnectOptions::new().filename(self.data_dir().join("grid.db")).read_only(true);
        let mut connection = SqliteConnection::connect_with(&options).await.expect("opening grid.db read-only");
        let balance: Option<i64> =
            sqlx::query_scalar("SELECT balance FROM x402_balances WHERE address = $1 AND asset = $2")
                .bind(address)
                .bind(asset)
                .fetch_optional(&mut connection)
                .await
                .expect("reading x402_balances");
        let _ = connection.close().await;
        balance.unwrap_or(0)
    }

    /// Every row of the grid's `jobs` table, oldest first, read through a read-only
    /// connection while the grid runs.
    pub(crate) async fn jobs(&self) -> Vec<JobRow> {
        let options = SqliteConnectOptions::new().filename(self.data_dir().join("grid.db")).read_only(true);
        let mut connection = SqliteConnection::connect_with(&options).await.expect("opening grid.db read-only");
        let rows: Vec<JobRow> = sqlx::query_as(
            "SELECT id, node_id, status, billed_micros, prompt_tokens, completion_tokens FROM jobs ORDER BY created_at, rowid",
        )
        .fetch_all(&mut connection)
        .await
        .expect("reading the jobs table");
        let _ = connection.close().await;
        rows
    }

    /// Waits until no job is still dispatched (every escrow settled or released).
    pub(crate) async fn wait_jobs_finished(&self) -> Vec<JobRow> {
        super::wait_for("every job to finish", || async {
            let jobs = self.jobs().await;
            jobs.iter().all(|job| job.status != "dispatched").then_some(jobs)
        })
        .await
    }

    /// Every file under the grid's temporary directory (database, WAL, logs, node state).
    pub(crate) fn all_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(self.root(), &mut files);
        files
    }
}
