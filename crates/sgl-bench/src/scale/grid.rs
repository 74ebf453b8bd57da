//! The grid under test, as a child process: `sgl-grid serve` on a free loopback port with a
//! temporary data directory, on SQLite or on a fresh PostgreSQL database (created with `psql`
//! and dropped afterwards). Codeless registration and no minimum stake, so synthetic nodes
//! can join as `sgl init` does; one API key with credits for the callers; quiet logs.
//!
//! Every synthetic node and caller connects from 127.0.0.1, so the grid's per-address and
//! total connection caps are set to the run's own budget ([`connection_budget`]), and the
//! connections it refused anyway (its open-file limit can lower the total cap) are read back
//! from its `/metrics` for the report.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the grid may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Credits of the callers' key: far more than any run spends.
const CREDITS_USD: &str = "100000";

/// Connections the load generator may hold open at once for `nodes` nodes and `callers`
/// callers, all from 127.0.0.1: a WebSocket and up to one HTTP request per node (heartbeat,
/// job answer), one request per caller, doubled for connections a pool is still closing, plus
/// room for registration bursts and the benchmark's own probes.
pub(super) fn connection_budget(nodes: usize, callers: usize) -> usize {
    nodes.saturating_add(callers).saturating_mul(2).saturating_add(1_024)
}

/// Which database the grid runs on.
#[derive(Debug, Clone)]
pub(super) enum Backend {
    /// SQLite in the temporary data directory.
    Sqlite,
    /// A fresh database on this PostgreSQL server (any database URL of it).
    Postgres(String),
}

impl Backend {
    /// The name used in the report.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// A fresh PostgreSQL database, dropped when this is dropped.
#[derive(Debug)]
pub(crate) struct PgDatabase {
    server_url: String,
    name: String,
}

impl PgDatabase {
    pub(crate) fn create(server_url: &str, name: &str) -> anyhow::Result<Self> {
        psql(server_url, &format!("CREATE DATABASE {name}"))?;
        Ok(Self { server_url: server_url.to_owned(), name: name.to_owned() })
    }

    pub(crate) fn url(&self) -> anyhow::Result<String> {
        with_database(&self.server_url, &self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Err(error) = psql(&self.server_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("scale: could not drop database {}: {error:#}", self.name);
        }
    }
}

fn psql(server_url: &str, sql: &str) -> anyhow::Result<()> {
    let output = Command::new("psql")
        .args([server_url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .stdin(Stdio::null())
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !output.status.success() {
        bail!("psql -c {sql:?}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// `url` with its database (the path) replaced by `database`, query string kept.
pub(super) fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url.split_once("://").context("a postgres:// URL")?;
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    Ok(format!("{scheme}://{authority}/{database}{query}"))
}

/// A running grid; killed (and its database dropped) when dropped.
#[derive(Debug)]
pub(super) struct Grid {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(super) base_url: String,
    /// The callers' API key.
    pub(super) api_key: String,
    // Dropped after the child is killed (fields drop in order, after `Drop::drop`).
    _database: Option<PgDatabase>,
    data_dir: tempfile::TempDir,
}

impl Grid {
    /// Starts `grid_bin serve` on `backend` (then [`Self::wait_ready`]), taking up to
    /// `max_connections` from 127.0.0.1; `tag` makes the PostgreSQL database name unique.
    pub(super) fn start(
        grid_bin: &Path,
        backend: &Backend,
        tag: usize,
        max_connections: usize,
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir().context("a temporary data directory")?;
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres(server_url) => {
                Some(PgDatabase::create(server_url, &format!("sglbench_{}_{tag}", std::process::id()))?)
            }
        };
        let database_url = database.as_ref().map(PgDatabase::url).transpose()?;
        let command = |args: &[&str]| {
            let mut command = Command::new(grid_bin);
            command.arg("--data-dir").arg(data_dir.path());
            if let Some(url) = &database_url {
                command.args(["--database-url", url]);
            }
            command
                .args(args)
                .env("SGL_ALLOW_CODELESS_REGISTRATION", "true")
                .env("SGL_MIN_STAKE_SGL", "0")
                .env("RUST_LOG", "warn")
                .env_remove("SGL_CONFIG")
                .env_remove("SGL_DATABASE_URL")
                .env_remove("SGL_DATA_DIR")
                .stdin(Stdio::null());
            command
        };
        let api_key = create_api_key(command(&["admin", "--json", "api-key", "create", "--credits-usd", CREDITS_USD]))?;
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(data_dir.path().join("grid.log")).context("the grid's log file")?;
        let child = command(&["serve", "--listen", &listen])
            .env("SGL_MAX_CONNECTIONS", max_connections.to_string())
            .env("SGL_MAX_CONNECTIONS_PER_ADDRESS", max_connections.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", grid_bin.display()))?;
        Ok(Self { child, base_url: format!("http://{listen}"), api_key, _database: database, data_dir })
    }

    /// The grid's process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The grid's log file (stderr, warnings and errors only).
    fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("grid.log")
    }

    /// The last lines of the grid's log, for error messages (the file goes with the grid).
    pub(super) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join("\n");
        if tail.is_empty() {
            "the grid logged nothing".to_owned()
        } else {
            format!("the grid's last log lines:\n{tail}")
        }
    }

    /// Waits until the grid answers `/healthz`.
    pub(super) async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{}/healthz", self.base_url);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        loop {
            if let Some(status) = self.child.try_wait().context("watching the grid")? {
                bail!("the grid exited at start ({status}): {}", self.log_tail());
            }
            if http.get(&url).send().await.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("the grid did not answer {url} within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Grid {
    /// Connections the grid has refused over its caps so far (`sgl_connections_refused_total`).
    pub(super) async fn connections_refused(&self) -> anyhow::Result<u64> {
        let url = format!("{}/metrics", self.base_url);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let text = http.get(&url).send().await?.error_for_status()?.text().await?;
        Ok(refused_in(&text))
    }
}

/// The sum of `sgl_connections_refused_total` over its reasons in a metrics exposition.
fn refused_in(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("sgl_connections_refused_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

impl Drop for Grid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn create_api_key(mut command: Command) -> anyhow::Result<String> {
    let output = command.output().context("running sgl-grid admin api-key create")?;
    if !output.status.success() {
        bail!("sgl-grid admin api-key create: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("sgl-grid admin --json api-key create printed no JSON")?;
    Ok(json["api_key"].as_str().context("no api_key in the admin's answer")?.to_owned())
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("the free port")?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_swapped_and_the_query_kept() {
        let url = "postgres://postgres:postgres@127.0.0.1:5432/postgres";
        assert_eq!(with_database(url, "b1").unwrap(), "postgres://postgres:postgres@127.0.0.1:5432/b1");
        let url = "postgres://u@h/db?sslmode=disable";
        assert_eq!(with_database(url, "b2").unwrap(), "postgres://u@h/b2?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "b3").unwrap(), "postgres://u@h/b3");
    }

    #[test]
    fn refused_connections_are_summed_over_reasons() {
        let metrics = "# TYPE sgl_connections_refused_total counter\n\
                       sgl_connections_refused_total{reason=\"per_address\"} 7\n\
                       sgl_connections_refused_total{reason=\"total\"} 5\nsgl_connections_open 3\n";
        assert_eq!(refused_in(metrics), 12);
        assert_eq!(refused_in("sgl_connections_open 3\n"), 0);
    }

    #[test]
    fn the_connection_budget_covers_ten_thousand_nodes_above_the_grids_default_caps() {
        let budget = connection_budget(10_000, 64);
        assert!(budget >= 2 * 10_000 + 64, "{budget}");
        // The grid's defaults (8,192 in total, 256 per address) would refuse most of the fleet.
        assert!(budget > 8_192);
    }
}
