//! The `sgl-cloud` binary against a real `sgl-grid` (in process, on 127.0.0.1) and, for chat,
//! a real `sgl` node process serving the real test model, driven as a user would.
//! The harness is a copy of `sgl-client`'s test harness (no shared test crate yet).

mod classes;
mod jobs;
mod live;
mod result;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub(crate) use sgl_test_support::{Grid, NodeProcess as Node, target_binary, test_model as model_path};

pub(crate) async fn grid() -> Grid {
    Grid::start().await
}

/// A new API key with `usd` of credits.
pub(crate) async fn api_key(grid: &Grid, usd: f64) -> String {
    grid.api_key(usd).await.1
}

/// The `sgl` node binary built next to this test.
pub(crate) fn node_binary() -> Option<PathBuf> {
    target_binary("sgl")
}

/// Registers, attests and starts a node serving `gemma`, and waits until the grid lists it.
pub(crate) async fn start_node(grid: &Grid, binary: &Path, model: &Path, dir: &Path) -> Node {
    Node::start(grid, binary, model, dir, &[]).await
}

/// Runs `sgl-cloud` against `grid_url` with `args`, with `stdin` piped in (empty when `None`).
pub(crate) async fn cloud(grid_url: &str, key: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
    cloud_with_env(grid_url, key, args, stdin, &[]).await
}

/// Like [`cloud`], with these environment variables set too.
pub(crate) async fn cloud_with_env(
    grid_url: &str,
    key: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sgl-cloud"));
    command.env_remove("COMPUTE_API_KEY").env_remove("SGL_CLOUD_KEY").env("SGL_GRID_URL", grid_url).args(args);
    command.envs(env.iter().copied());
    if let Some(key) = key {
        command.env("COMPUTE_API_KEY", key);
    }
    let stdin = stdin.unwrap_or_default().to_owned();
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// Stdout parsed as exactly one JSON object.
pub(crate) fn one_json(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.trim().lines().count(), 1, "expected one JSON line: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_missing_api_key_says_which_flag_or_variable_to_set() {
    let grid = grid().await;
    let output = cloud(&grid.url, None, &["chat", "--model", "gemma", "hi"], None).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr(&output);
    assert!(stderr.contains("--api-key") && stderr.contains("COMPUTE_API_KEY"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let output = cloud(&grid.url, None, &["chat", "--json", "--model", "gemma", "hi"], None).await;
    assert_eq!(output.status.code(), Some(2));
    let printed = one_json(&output);
    assert_eq!(printed["verified"], false);
    assert!(printed["error"].as_str().unwrap().contains("COMPUTE_API_KEY"));
    let output = cloud(&grid.url, None, &["credits", "balance"], None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(crate::stderr(&output).contains("COMPUTE_API_KEY"));
}

#[tokio::test]
async fn discovery_and_refusals_print_json_or_one_line() {
    let grid = grid().await;
    let output = cloud(&grid.url, None, &["models", "--json"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(one_json(&output), serde_json::json!({"object": "list", "data": []}));
    let output = cloud(&grid.url, None, &["capacity", "--json"], None).await;
    assert_eq!(one_json(&output)["total_nodes"], 0);
    // No model served: `chat` cannot pick a default and says why, in one line.
    let key = api_key(&grid, 1.0).await;
    let output = cloud(&grid.url, Some(&key), &["chat", "hi"], None).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = crate::stderr(&output);
    assert!(stderr.contains("no models") && stderr.lines().count() == 1, "{stderr}");
    // An unknown model is the grid's typed refusal.
    let output = cloud(&grid.url, Some(&key), &["chat", "--model", "nope", "hi"], None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(crate::stderr(&output).contains("404"), "{}", crate::stderr(&output));
    // An unreachable grid: one line, exit 2, no backtrace.
    let output = cloud("http://127.0.0.1:9", None, &["models"], None).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = crate::stderr(&output);
    assert!(stderr.contains("cannot reach the grid") && stderr.lines().count() == 1, "{stderr}");
}

#[tokio::test]
async fn credits_and_keys_commands_manage_the_account() {
    let grid = grid().await;
    let key = api_key(&grid, 3.0).await;
    let output = cloud(&grid.url, Some(&key), &["credits", "balance", "--json"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(one_json(&output)["balance_micros"], 3_000_000);
    let output =
        cloud(&grid.url, Some(&key), &["keys", "create", "--label", "laptop", "--credits-usd", "1", "--json"], None)
            .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let created = one_json(&output);
    assert_eq!((created["label"].as_str(), created["credits_micros"].as_i64()), (Some("laptop"), Some(1_000_000)));
    let new_key = created["api_key"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap().to_string();
    let output = cloud(&grid.url, Some(&new_key), &["credits", "balance", "--json"], None).await;
    assert_eq!(one_json(&output)["balance_micros"], 1_000_000);
    let output = cloud(&grid.url, Some(&key), &["keys", "list", "--json"], None).await;
    let listed = one_json(&output);
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let output = cloud(&grid.url, Some(&key), &["keys", "list"], None).await;
    assert!(String::from_utf8_lossy(&output.stdout).contains("laptop"));
    let output = cloud(&grid.url, Some(&key), &["keys", "revoke", &id, "--json"], None).await;
    assert_eq!(one_json(&output)["revoked"], true);
    let output = cloud(&grid.url, Some(&new_key), &["credits", "balance"], None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("401"), "{}", stderr(&output));
}

/// A grid that hands out a node's identity with the coordinator's own X25519 key (seed
/// weakness S1): the keybind cannot verify, so nothing may be sealed to it.
async fn substituting_grid() -> String {
    use axum::routing::post;
    use sgl_protocol::identity::NodeIdentity;
    use sgl_protocol::ids::NodeId;
    use sgl_protocol::keybind::sign_keybind;

    let node = NodeIdentity::from_seed(&[0x31; 32]);
    let node_id = NodeId::random();
    let genuine = node.encryption_secret().public_key();
    let coordinator = NodeIdentity::from_seed(&[0x32; 32]).encryption_secret().public_key();
    let reservation = serde_json::json!({
        "reservation_token": "rsv_x",
        "node_id": node_id,
        "node_x25519_pubkey": coordinator.to_b58(),
        "node_ed25519_pubkey": node.public_key().to_b58(),
        "expires_in_ms": 60000,
        "encryption_public_key_signature": sign_keybind(&node, &node_id, &genuine, 1),
        "key_version": 1,
    });
    let router = axum::Router::new().route("/v1/reserve", post(move || async move { axum::Json(reservation) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

#[tokio::test]
async fn a_node_whose_keybind_fails_is_refused_with_exit_1() {
    let url = substituting_grid().await;
    let output = cloud(&url, Some("x402c_k"), &["chat", "--model", "gemma", "hi"], None).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr(&output);
    assert!(stderr.contains("verification failed") && stderr.contains("key binding"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let output = cloud(&url, Some("x402c_k"), &["chat", "--json", "--model", "gemma", "hi"], None).await;
    assert_eq!(output.status.code(), Some(1));
    let printed = one_json(&output);
    assert_eq!(printed["verified"], false);
    assert!(printed["error"].as_str().unwrap().contains("key binding"), "{printed}");
}
