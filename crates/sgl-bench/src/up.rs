//! A release `sgl-grid up` for the parts that drive one: started in a temporary directory with
//! `--listen 127.0.0.1:0 --json` and the part's own arguments, its ready line read, stopped with
//! SIGTERM.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// A running `sgl-grid up`.
pub(crate) struct LocalGrid {
    child: Child,
    /// The ready line.
    pub(crate) ready: Value,
    /// Kept open: the grid must not write into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

impl LocalGrid {
    /// Starts `grid_bin --data-dir TMP/data up ARGS --listen 127.0.0.1:0 --json` with `envs`
    /// (and `RUST_LOG=warn`), and waits up to five minutes for its ready line.
    pub(crate) async fn start(grid_bin: &Path, args: &[OsString], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let log_path = dir.path().join("grid.log");
        eprintln!("starting sgl-grid up (log: {})", log_path.display());
        let mut child = Command::new(grid_bin)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("up")
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--json"])
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", grid_bin.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("the grid's stdout")?);
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(300), stdout.read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            bail!("sgl-grid up did not get ready:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
        }
        let ready = serde_json::from_str(&line).context("parsing sgl-grid up's ready line")?;
        Ok(Self { child, ready, _stdout: stdout, _dir: dir })
    }

    /// A string field of the ready line.
    pub(crate) fn field(&self, name: &str) -> anyhow::Result<String> {
        self.ready[name].as_str().map(str::to_owned).with_context(|| format!("the ready line's {name}"))
    }

    /// Stops it: SIGTERM, then a kill after 30 s.
    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}
