//! A local grid of compute-only nodes (`sgl-grid up --workloads wasm`), each node its own
//! operator, some made to lie with the test-only fault, driven by the requester CLI
//! (`sgl-cloud bundle ...`, `sgl-cloud jobs ...`) as a requester would.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::grid::signal;
use super::{DEADLINE, TestEnv};

/// A running `sgl-grid up --workloads wasm`.
#[derive(Debug)]
pub(crate) struct ComputeGrid {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub(crate) base_url: String,
    pub(crate) api_key: String,
    pub(crate) node_ids: Vec<String>,
    /// Each node's operator wallet, by node index.
    pub(crate) operators: Vec<String>,
    /// The whole ready line.
    pub(crate) ready: Value,
    root: tempfile::TempDir,
    env: TestEnv,
    cloud: PathBuf,
    http: reqwest::Client,
}

impl ComputeGrid {
    /// `nodes` nodes of as many operators; `liars` lie (`SGL_TEST_FAULT=wrong-output`); canaries
    /// at `canary_rate`.
    pub(crate) async fn start(env: &TestEnv, nodes: u32, liars: &[u32], canary_rate: f64) -> Self {
        Self::start_running(env, nodes, liars, canary_rate, "wasm").await
    }

    /// [`ComputeGrid::start`] with other `--workloads` (the test model is served when they
    /// include chat or llm).
    pub(crate) async fn start_running(
        env: &TestEnv,
        nodes: u32,
        liars: &[u32],
        canary_rate: f64,
        workloads: &str,
    ) -> Self {
        Self::start_with(env, nodes, liars, canary_rate, workloads, &[]).await
    }

    /// [`ComputeGrid::start_running`] with more flags for `up` (e.g. `--chain`).
    pub(crate) async fn start_with(
        env: &TestEnv,
        nodes: u32,
        liars: &[u32],
        canary_rate: f64,
        workloads: &str,
        extra: &[&str],
    ) -> Self {
        Self::start_with_env(env, (nodes, liars, canary_rate), workloads, extra, &[]).await
    }

    /// [`ComputeGrid::start_with`] with more environment for `up` (e.g. a compute price).
    pub(crate) async fn start_with_env(
        env: &TestEnv,
        (nodes, liars, canary_rate): (u32, &[u32], f64),
        workloads: &str,
        extra: &[&str],
        vars: &[(&str, &str)],
    ) -> Self {
        let cloud = sgl_test_support::target_binary("sgl-cloud").expect("target/debug/sgl-cloud");
        let root = tempfile::tempdir().expect("a temporary directory");
        let mut command = Command::new(&env.grid_binary);
        command.arg("--data-dir").arg(root.path().join("data")).args(["up", "--no-machines"]);
        command.args(["--workloads", workloads, "--nodes", &nodes.to_string(), "--operators", &nodes.to_string()]);
        if workloads.split(',').any(|w| w == "chat" || w == "llm") {
            command.arg("--model").arg(&env.model);
        }
        for liar in liars {
            command.arg("--test-fault").arg(format!("{liar}=wrong-output"));
        }
        command.args(extra);
        let stderr = std::fs::File::create(root.path().join("grid.stderr.log")).expect("the grid's log");
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--json", "--sgl"])
            .arg(&env.node_binary)
            .env("SGL_COMPUTE_CANARY_RATE", canary_rate.to_string())
            .envs(vars.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("sgl-grid up starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("its stdout"));
        let mut line = String::new();
        let read = tokio::time::timeout(DEADLINE, stdout.read_line(&mut line)).await;
        let log = std::fs::read_to_string(root.path().join("grid.stderr.log")).unwrap_or_default();
        assert!(matches!(read, Ok(Ok(n)) if n > 0), "sgl-grid up was not ready:\n{log}");
        let ready: Value = serde_json::from_str(line.trim()).expect("the ready line");
        let strings = |key: &str| -> Vec<String> {
            ready[key].as_array().expect(key).iter().map(|v| v.as_str().expect(key).to_owned()).collect()
        };
        Self {
            base_url: ready["base_url"].as_str().expect("base_url").to_owned(),
            api_key: ready["api_key"].as_str().expect("api_key").to_owned(),
            node_ids: strings("node_ids"),
            operators: strings("operators"),
            ready,
            child,
            _stdout: stdout,
            root,
            env: env.clone(),
            cloud,
            http: reqwest::Client::new(),
        }
    }

    /// A directory under the grid's temporary root.
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Runs `sgl-cloud ARGS` as the grid's caller (its own requester key); (exit code, stdout).
    pub(crate) async fn cloud(&self, args: &[&str]) -> (i32, String) {
        let run = Command::new(&self.cloud)
            .args(["--grid-url", &self.base_url])
            .args(args)
            .env("COMPUTE_API_KEY", &self.api_key)
            .env("SGL_CLOUD_KEY", self.root.path().join("requester.json"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(DEADLINE, run).await.expect("sgl-cloud finishes").expect("sgl-cloud runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("sgl-cloud {args:?}: {stderr}");
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `sgl-cloud ARGS --json`, which must succeed: its one JSON object.
    pub(crate) async fn cloud_json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let (code, stdout) = self.cloud(&with_json).await;
        assert_eq!(code, 0, "sgl-cloud {args:?} failed: {stdout}");
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("sgl-cloud {args:?} printed JSON ({e}): {stdout}"))
    }

    /// A signed bundle of the example prime sieve, one slice per `(lo, hi)`.
    pub(crate) async fn primes_bundle(&self, name: &str, ranges: &[(u32, u32)], redundancy: u32) -> PathBuf {
        let dir = self.dir(name);
        let dir_text = dir.display().to_string();
        let slices = ranges.len().to_string();
        let redundancy = redundancy.to_string();
        let args =
            ["bundle", "init", &dir_text, "--entry", "primes.wasm", "--slices", &slices, "--redundancy", &redundancy];
        assert_eq!(self.cloud(&args).await.0, 0);
        let module = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wasm/primes/primes.wasm");
        std::fs::copy(module, dir.join("primes.wasm")).expect("the example module");
        let path = dir.join("manifest.json");
        let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).expect("manifest.json")).expect("JSON");
        for (slice, (lo, hi)) in manifest["slices"].as_array_mut().expect("slices").iter_mut().zip(ranges) {
            slice["args"] = serde_json::json!([lo.to_string(), hi.to_string()]);
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest).expect("JSON")).expect("manifest.json");
        assert_eq!(self.cloud(&["bundle", "sign", &dir_text]).await.0, 0);
        dir
    }

    /// GET a public grid path as JSON.
    pub(crate) async fn get(&self, path: &str, node_token: Option<&str>) -> Value {
        let mut request = self.http.get(format!("{}{path}", self.base_url)).bearer_auth(&self.api_key);
        if let Some(token) = node_token {
            request = request.header("X-Node-Auth", token);
        }
        let response = request.send().await.expect("the grid answers");
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.expect("JSON")
    }

    /// The `sgl-grid` binary.
    pub(crate) fn grid_binary(&self) -> &Path {
        &self.env.grid_binary
    }

    /// The grid's data directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Node `index`'s config directory.
    pub(crate) fn node_dir(&self, index: usize) -> PathBuf {
        self.root.path().join("data").join("nodes").join(format!("node-{index}"))
    }

    /// Node `index`'s token, from its `node.json`.
    pub(crate) fn node_token(&self, index: usize) -> String {
        let file: Value =
            serde_json::from_slice(&std::fs::read(self.node_dir(index).join("node.json")).expect("node.json"))
                .expect("JSON");
        file["auth_token"].as_str().expect("auth_token").to_owned()
    }

    /// Node `index`'s process id, from its `state.json`.
    pub(crate) fn node_pid(&self, index: usize) -> u32 {
        let state: Value =
            serde_json::from_slice(&std::fs::read(self.node_dir(index).join("state.json")).expect("state.json"))
                .expect("JSON");
        u32::try_from(state["pid"].as_u64().expect("pid")).expect("a pid")
    }

    /// `sgl-grid admin --json ARGS` on the grid's database.
    pub(crate) async fn admin(&self, args: &[&str]) -> Value {
        let output = Command::new(&self.env.grid_binary)
            .arg("--data-dir")
            .arg(self.root.path().join("data"))
            .args(["admin", "--json"])
            .args(args)
            .output()
            .await
            .expect("sgl-grid admin runs");
        assert!(output.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("admin prints JSON")
    }

    /// Stops the grid (SIGTERM; it stops its nodes).
    pub(crate) async fn stop(mut self) {
        signal(self.child.id().expect("a pid"), "TERM");
        if tokio::time::timeout(std::time::Duration::from_secs(60), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// The grid's captured stderr.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("grid.stderr.log")).unwrap_or_default()
    }
}

/// `primes lo hi`'s `/out/primes.txt`, computed here by trial division.
pub(crate) fn expected_primes(lo: u32, hi: u32) -> String {
    let is_prime = |n: u32| {
        n >= 2 && (2u32..).take_while(|d| u64::from(*d) * u64::from(*d) <= u64::from(n)).all(|d| !n.is_multiple_of(d))
    };
    (lo..hi).filter(|n| is_prime(*n)).map(|n| format!("{n}\n")).collect()
}

/// The file `sgl-cloud jobs result` wrote for `slice`.
pub(crate) fn result_file(dir: &Path, slice: usize) -> String {
    std::fs::read_to_string(dir.join(format!("slice-{slice}")).join("primes.txt")).expect("a downloaded output")
}
