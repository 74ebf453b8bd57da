//! A grid selling machines: `sgl-grid up --nodes 0` with the local backend (systemd-nspawn, root
//! and the image of `.ci/install-machine-image` needed) and the Vultr backend pointed at the
//! Vultr test double in this process (a stand-in for an API outside this machine), its clock
//! moved through a file (`--test-clock-file`); driven with the real `sgl-cloud` binary and `ssh`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use serde_json::Value;
use sgl_provider_doubles::VultrDouble;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::{DEADLINE, in_ci};

/// What the machines scenario needs beyond the binaries; `None` (skip, with a note) outside CI.
pub(crate) fn machine_image() -> Option<PathBuf> {
    let image = std::env::var_os("SGL_TEST_MACHINE_IMAGE").map(PathBuf::from);
    let root = rustix::process::geteuid().is_root();
    match image {
        Some(image) if root && image.is_dir() => Some(image),
        _ => {
            assert!(!in_ci(), "CI=true but no machine image or not root (.ci/run runs .ci/install-machine-image)");
            eprintln!("note: skipping the machines scenario: it needs root and SGL_TEST_MACHINE_IMAGE");
            None
        }
    }
}

/// The running grid, the double behind its Vultr backend, and where things are.
pub(crate) struct MachineGrid {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub(crate) root: tempfile::TempDir,
    pub(crate) base_url: String,
    pub(crate) api_key: String,
    pub(crate) vultr: VultrDouble,
    grid_binary: PathBuf,
    cloud_binary: PathBuf,
}

impl MachineGrid {
    pub(crate) async fn start(grid_binary: &Path, image: &Path) -> anyhow::Result<Self> {
        let root = tempfile::tempdir()?;
        let vultr = VultrDouble::start().await?;
        std::fs::write(root.path().join("clock-offset-ms"), "0")?;
        let stderr = std::fs::File::create(root.path().join("grid.stderr.log"))?;
        let mut child = Command::new(grid_binary)
            .arg("--data-dir")
            .arg(root.path().join("data"))
            .args(["up", "--nodes", "0", "--listen", "127.0.0.1:0", "--json", "--machines-image"])
            .arg(image)
            .arg("--test-clock-file")
            .arg(root.path().join("clock-offset-ms"))
            .env("SGL_MACHINES_BACKENDS", "local,vultr")
            .env("SGL_MACHINES_VULTR_API_URL", vultr.base_url())
            .env("SGL_MACHINES_VULTR_API_KEY", "vultr-test-double-token")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .context("starting sgl-grid up")?;
        let mut stdout = BufReader::new(child.stdout.take().context("the grid's stdout")?);
        let mut line = String::new();
        let read = tokio::time::timeout(DEADLINE, stdout.read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            let log = std::fs::read_to_string(root.path().join("grid.stderr.log")).unwrap_or_default();
            bail!("sgl-grid up was not ready:\n{log}");
        }
        let ready: Value = serde_json::from_str(line.trim())?;
        let text = |key: &str| ready[key].as_str().map(str::to_owned).with_context(|| format!("{key} in {ready}"));
        let cloud_binary = grid_binary.with_file_name("sgl-cloud");
        Ok(Self {
            child,
            _stdout: stdout,
            base_url: text("base_url")?,
            api_key: text("api_key")?,
            root,
            vultr,
            grid_binary: grid_binary.to_owned(),
            cloud_binary,
        })
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The grid's clock runs `ms` ahead of the system's from now on.
    pub(crate) fn set_clock_offset(&self, ms: i64) {
        std::fs::write(self.root.path().join("clock-offset-ms"), ms.to_string()).expect("the clock file");
    }

    /// `sgl-cloud --json ARGS` as `api_key`: its exit status and the JSON it printed.
    pub(crate) async fn cloud(&self, api_key: &str, args: &[&str]) -> (bool, Value) {
        let output = Command::new(&self.cloud_binary)
            .args(["--grid-url", &self.base_url, "--api-key", api_key, "--json"])
            .args(args)
            .output()
            .await
            .expect("sgl-cloud runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("sgl-cloud {args:?} printed JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&output.stderr))
        });
        (output.status.success(), value)
    }

    /// `sgl-grid admin --json ARGS` on the grid's data directory.
    pub(crate) async fn admin(&self, args: &[&str]) -> Value {
        let output = Command::new(&self.grid_binary)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["admin", "--json"])
            .args(args)
            .output()
            .await
            .expect("sgl-grid admin runs");
        assert!(output.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("admin printed JSON")
    }

    /// `GET path` as `api_key`: the status and the body.
    pub(crate) async fn get(&self, api_key: &str, path: &str) -> (u16, Value) {
        self.call(api_key, reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn call(
        &self,
        api_key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", self.base_url)).bearer_auth(api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the grid answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("grid.stderr.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait.
    pub(crate) async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let _ = tokio::time::timeout(DEADLINE, self.child.wait()).await;
    }
}
