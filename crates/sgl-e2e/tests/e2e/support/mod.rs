//! Shared helpers: what the suite needs from the machine (binaries, model, Python's `openai`),
//! one grid at a time, and waiting with a deadline.

pub(crate) mod compute;
pub(crate) mod grid;
pub(crate) mod machines;
pub(crate) mod proxy;
pub(crate) mod replicas;
pub(crate) mod sse;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Generous: the machine is small and shared, so nothing here is a timing assertion.
pub(crate) const DEADLINE: Duration = Duration::from_secs(180);

/// What every scenario needs: the two binaries and the model.
#[derive(Debug, Clone)]
pub(crate) struct TestEnv {
    /// `target/debug/sgl-grid`.
    pub(crate) grid_binary: PathBuf,
    /// `target/debug/sgl`.
    pub(crate) node_binary: PathBuf,
    /// The GGUF the nodes serve.
    pub(crate) model: PathBuf,
}

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The binaries beside the test executable and the model; `None` (skip, with a note) when
/// something is missing outside CI.
pub(crate) fn test_env() -> Option<TestEnv> {
    let grid_binary = sgl_test_support::target_binary("sgl-grid")?;
    let node_binary = sgl_test_support::target_binary("sgl")?;
    let model = sgl_test_support::test_model()?;
    Some(TestEnv { grid_binary, node_binary, model })
}

/// Whether `python3` can `import openai`; outside CI a missing package skips with a note.
pub(crate) fn python_openai() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !ok {
        assert!(!in_ci(), "CI=true but python3 cannot import openai (python3 -m pip install openai)");
        eprintln!("note: skipping the openai SDK test: python3 cannot import openai (python3 -m pip install openai)");
    }
    ok
}

/// Whether `python3` can import the `x402` client and `eth_account`; outside CI a missing
/// package skips with a note.
pub(crate) fn python_x402() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import x402, eth_account, requests, mpp.methods.evm.client"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !ok {
        let install =
            "python3 -m pip install \"x402[evm,requests]==2.25.0\" \"eth-account==0.14.0\" \"pympp[evm]==0.16.0\"";
        assert!(!in_ci(), "CI=true but python3 cannot import x402 ({install})");
        eprintln!("note: skipping the x402 client test: python3 cannot import x402 ({install})");
    }
    ok
}

/// A turn on the machine: an exclusive lock on a file in the temporary directory, held until
/// dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    _lock: std::fs::File,
}

/// Two cores run llama.cpp for every node: the scenarios take turns instead of competing. A
/// file lock, so that turns hold across processes too (nextest runs each test in its own).
pub(crate) async fn exclusive() -> Turn {
    let path = std::env::temp_dir().join("sgl-e2e.lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        file.lock().unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
        Turn { _lock: file }
    })
    .await
    .expect("the lock task")
}

/// Polls `check` every 200 ms until it yields a value, failing after [`DEADLINE`].
pub(crate) async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting for {what} after {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A random canary, `canary-` and 16 hex digits.
pub(crate) fn canary() -> String {
    let mut bytes = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!("canary-{}", hex::encode(bytes))
}

/// Runs `python/openai_compat.py` (the official `openai` package: models, a chat, a stream with
/// usage, each asserted in Python) against `base_url` and returns its JSON summary line.
pub(crate) async fn openai_compat_script(base_url: &str, api_key: &str, model: &str) -> serde_json::Value {
    openai_script("openai_compat.py", base_url, api_key, &[("SGL_E2E_MODEL", model)]).await
}

/// Runs `python/{script}` (a caller on the official `openai` package, which asserts on what it
/// gets) against `base_url` with `env`, and returns its last stdout line, a JSON summary.
pub(crate) async fn openai_script(
    script: &str,
    base_url: &str,
    api_key: &str,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join(script);
    let run = tokio::process::Command::new("python3")
        .arg(&path)
        .env("OPENAI_BASE_URL", format!("{base_url}/v1"))
        .env("OPENAI_API_KEY", api_key)
        .envs(env.iter().copied())
        .env_remove("OPENAI_ORG_ID")
        .env_remove("OPENAI_PROJECT_ID")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("the script finishes").expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{script} failed ({}):\n{stderr}\n{stdout}", output.status);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("one JSON summary line ({e}): {stdout}"))
}
