//! Three coordinator replicas on one PostgreSQL behind HAProxy (`deploy/haproxy.cfg` as it is),
//! with two real `sgl` nodes that reach the grid only through the balancer: replicas 2 and 3
//! are `sgl-grid serve`; replica 1 is `sgl-grid up --public-url <balancer>`, which also registers
//! and starts the nodes. Each process logs to its own file; the database is a fresh one on the
//! server of `SGL_TEST_DATABASE_URL`, dropped at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use serde_json::Value;
use sgl_client::{ApiKey, Client};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::grid::JobRow;
use super::{DEADLINE, TestEnv};

/// The address HAProxy connects to replicas from; they trust PROXY headers from it only.
const BALANCER_SOURCE: &str = "127.0.0.2";

/// The balancer, or `None` (skip, with a note; CI must have it).
pub(crate) fn haproxy() -> Option<PathBuf> {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy"].into_iter().map(PathBuf::from).find(|path| path.exists());
    if found.is_none() {
        assert!(!super::in_ci(), "CI=true but HAProxy is missing (apt-get install haproxy)");
        eprintln!("note: skipping the replicas scenario: no haproxy (apt-get install haproxy)");
    }
    found
}

/// The PostgreSQL server to make the grid's database on, or `None` (skip; CI must have it).
pub(crate) fn postgres_url() -> Option<String> {
    let url = std::env::var("SGL_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty());
    if url.is_none() {
        assert!(!super::in_ci(), "CI=true but SGL_TEST_DATABASE_URL is not set");
        eprintln!("note: skipping the replicas scenario: SGL_TEST_DATABASE_URL is not set");
    }
    url
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A job's row with the replica that dispatched it.
#[derive(sqlx::FromRow)]
struct DispatchedRow {
    #[sqlx(flatten)]
    job: JobRow,
    replica: Option<String>,
}

/// The whole set-up; dropping it kills every process (the nodes die with replica 1).
pub(crate) struct ReplicaGrid {
    root: tempfile::TempDir,
    env: TestEnv,
    server_url: String,
    database: String,
    database_url: String,
    /// Listen ports of replicas 1, 2, 3.
    ports: [u16; 3],
    /// Replica processes, by index 0..3 (`None` while killed).
    replicas: [Option<Child>; 3],
    up_stdout: Option<BufReader<ChildStdout>>,
    balancer: Child,
    starts: u32,
    /// The balancer's URL, which callers and nodes use.
    pub(crate) base_url: String,
    /// The caller key `up` made.
    pub(crate) api_key: String,
    /// The nodes.
    pub(crate) node_ids: Vec<String>,
    /// The served model.
    pub(crate) model: String,
}

impl Drop for ReplicaGrid {
    fn drop(&mut self) {
        for child in self.replicas.iter_mut().flatten().chain([&mut self.balancer]) {
            let _ = child.start_kill();
        }
    }
}

impl ReplicaGrid {
    /// Starts everything and waits until both nodes serve (as replica 1 sees them).
    pub(crate) async fn start(env: &TestEnv, haproxy: &Path, server_url: &str) -> anyhow::Result<Self> {
        let database = format!("sgl_e2e_replicas_{}", std::process::id());
        let mut admin = PgConnection::connect(server_url).await.context("connecting to SGL_TEST_DATABASE_URL")?;
        admin.execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str()).await?;
        admin.execute(format!("CREATE DATABASE {database}").as_str()).await?;
        let database_url = with_database(server_url, &database)?;
        let root = tempfile::tempdir()?;
        std::fs::write(root.path().join("grid.toml"), format!("proxy_protocol_from = [\"{BALANCER_SOURCE}\"]\n"))?;
        let ports = [free_port(), free_port(), free_port()];
        let lb_port = free_port();
        let base_url = format!("http://127.0.0.1:{lb_port}");
        let mut grid = Self {
            root,
            env: env.clone(),
            server_url: server_url.to_owned(),
            database,
            database_url,
            ports,
            replicas: [None, None, None],
            up_stdout: None,
            balancer: balancer(haproxy, lb_port, ports)?,
            starts: 0,
            base_url,
            api_key: String::new(),
            node_ids: Vec::new(),
            model: String::new(),
        };
        // The serving replicas first: the nodes register through the balancer.
        for index in [1, 2] {
            grid.start_replica(index)?;
        }
        grid.start_up().await?;
        let models: Value = reqwest::get(format!("{}/v1/models", grid.base_url)).await?.json().await?;
        grid.model = models["data"][0]["id"].as_str().context("a model in /v1/models")?.to_owned();
        Ok(grid)
    }

    fn grid_command(&self, index: usize) -> anyhow::Result<Command> {
        let mut command = Command::new(&self.env.grid_binary);
        command
            .arg("--config")
            .arg(self.root.path().join("grid.toml"))
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--data-dir")
            .arg(self.root.path().join(format!("replica-{}", index + 1)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        Ok(command)
    }

    fn log_file(&mut self, index: usize) -> anyhow::Result<std::fs::File> {
        self.starts += 1;
        let path = self.root.path().join(format!("replica-{}.{}.log", index + 1, self.starts));
        Ok(std::fs::File::create(path)?)
    }

    /// Starts `sgl-grid serve` as replica `index` (1 or 2).
    pub(crate) fn start_replica(&mut self, index: usize) -> anyhow::Result<()> {
        let log = self.log_file(index)?;
        let listen = format!("127.0.0.1:{}", self.ports[index]);
        let child =
            self.grid_command(index)?.args(["serve", "--listen", &listen]).stdout(Stdio::null()).stderr(log).spawn()?;
        self.replicas[index] = Some(child);
        Ok(())
    }

    /// Starts replica 1 as `sgl-grid up` with its two nodes, and reads its ready line.
    async fn start_up(&mut self) -> anyhow::Result<()> {
        let log = self.log_file(0)?;
        let listen = format!("127.0.0.1:{}", self.ports[0]);
        let mut child = self
            .grid_command(0)?
            .args(["up", "--no-machines"])
            .arg("--model")
            .arg(&self.env.model)
            .args(["--nodes", "2", "--max-jobs", "2", "--listen", &listen, "--public-url", &self.base_url, "--json"])
            .arg("--sgl")
            .arg(&self.env.node_binary)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().context("up's stdout")?);
        self.replicas[0] = Some(child);
        let mut line = String::new();
        match tokio::time::timeout(DEADLINE, stdout.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => bail!("sgl-grid up was not ready:\n{}", self.logs()),
        }
        self.up_stdout = Some(stdout);
        let ready: Value = serde_json::from_str(line.trim()).with_context(|| format!("the ready line {line:?}"))?;
        self.api_key = ready["api_key"].as_str().context("api_key")?.to_owned();
        self.node_ids = serde_json::from_value(ready["node_ids"].clone())?;
        Ok(())
    }

    /// Kills replica `index` (1 or 2) with SIGKILL.
    pub(crate) async fn kill(&mut self, index: usize) {
        let mut child = self.replicas[index].take().expect("the replica runs");
        super::grid::signal(child.id().expect("a pid"), "KILL");
        let _ = child.wait().await;
    }

    /// Which replica holds node `node_id`'s WebSocket now, from their logs.
    pub(crate) fn socket_holder(&self, node_id: &str) -> Option<usize> {
        let needle = format!("node_id={node_id}");
        (0..3).filter(|index| self.replicas[*index].is_some()).find(|index| {
            let log = self.replica_log(*index);
            let last = log.lines().rfind(|line| line.contains(&needle) && line.contains("websocket "));
            last.is_some_and(|line| line.contains("websocket connected"))
        })
    }

    /// The current log of replica `index`.
    pub(crate) fn replica_log(&self, index: usize) -> String {
        let prefix = format!("replica-{}.", index + 1);
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.root.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(&prefix)))
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        logs.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
        logs.last().and_then(|path| std::fs::read_to_string(path).ok()).unwrap_or_default()
    }

    /// Every replica's log, for a failure message.
    pub(crate) fn logs(&self) -> String {
        (0..3).map(|index| format!("--- replica {}\n{}", index + 1, self.replica_log(index))).collect()
    }

    /// A verifying SDK client talking to `base_url` (one replica directly, say).
    pub(crate) fn client_at(&self, base_url: &str) -> Client {
        Client::new(base_url, Some(ApiKey::new(self.api_key.clone()))).expect("a client")
    }

    /// Replica `index`'s own URL (not through the balancer).
    pub(crate) fn replica_url(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[index])
    }

    /// The key's credits, micro-dollars.
    pub(crate) async fn balance_micros(&self) -> i64 {
        let url = format!("{}/compute/credits/balance", self.base_url);
        let response = reqwest::Client::new().get(url).bearer_auth(&self.api_key).send().await.expect("the balance");
        let balance: Value = response.json().await.expect("a JSON balance");
        balance["balance_micros"].as_i64().expect("balance_micros")
    }

    /// Every row of the `jobs` table, oldest first, with the replica that dispatched it.
    pub(crate) async fn jobs(&self) -> Vec<(JobRow, Option<String>)> {
        let mut connection =
            PgConnection::connect(&self.database_url).await.expect("connecting to the grid's database");
        let rows: Vec<DispatchedRow> = sqlx::query_as(
            "SELECT id, node_id, status, billed_micros, prompt_tokens, completion_tokens, replica FROM jobs ORDER BY created_at, id",
        )
        .fetch_all(&mut connection)
        .await
        .expect("reading the jobs table");
        let _ = connection.close().await;
        rows.into_iter().map(|row| (row.job, row.replica)).collect()
    }

    /// Waits until no job is still dispatched.
    pub(crate) async fn wait_jobs_finished(&self) -> Vec<(JobRow, Option<String>)> {
        super::wait_for("every job to finish", || async {
            let jobs = self.jobs().await;
            jobs.iter().all(|(job, _)| job.status != "dispatched").then_some(jobs)
        })
        .await
    }

    /// `sgl-grid admin --json ARGS` on the shared database.
    pub(crate) async fn admin(&self, args: &[&str]) -> Value {
        let output = Command::new(&self.env.grid_binary)
            .arg("--database-url")
            .arg(&self.database_url)
            .args(["admin", "--json"])
            .args(args)
            .output()
            .await
            .expect("sgl-grid admin runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("admin {args:?} printed JSON ({e}): {stdout}"))
    }

    /// Stops every process (SIGTERM to `up`, which stops its nodes) and drops the database.
    pub(crate) async fn stop(mut self) {
        for index in [1, 2, 0] {
            if let Some(mut child) = self.replicas[index].take() {
                super::grid::signal(child.id().expect("a pid"), "TERM");
                if tokio::time::timeout(std::time::Duration::from_secs(60), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
        }
        let _ = self.balancer.kill().await;
        if let Ok(mut admin) = PgConnection::connect(&self.server_url).await {
            let _ = admin.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database).as_str()).await;
        }
    }
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let mut parsed = reqwest::Url::parse(url).context("SGL_TEST_DATABASE_URL is a URL")?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}

/// HAProxy with `deploy/haproxy.cfg`, listening on `lb_port`, in front of `ports`.
fn balancer(haproxy: &Path, lb_port: u16, ports: [u16; 3]) -> anyhow::Result<Child> {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/haproxy.cfg");
    let replica = |index: usize| format!("127.0.0.1:{}", ports[index]);
    Ok(Command::new(haproxy)
        .args(["-f", config, "-db"])
        .env("SGL_LB_BIND", format!("127.0.0.1:{lb_port}"))
        .env("SGL_LB_SOURCE", BALANCER_SOURCE)
        .env("SGL_REPLICA_1", replica(0))
        .env("SGL_REPLICA_2", replica(1))
        .env("SGL_REPLICA_3", replica(2))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}
