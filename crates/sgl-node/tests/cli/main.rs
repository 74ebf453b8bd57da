//! The `sgl` binary against a real grid: an in-process `sgl-grid` on 127.0.0.1 (test-only
//! dependency), driven through the command line as an operator would.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use sgl_grid::admin::{AdminCommand, run};
use sgl_test_support::Grid;

async fn grid() -> Grid {
    Grid::start().await
}

async fn sgl(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new(env!("CARGO_BIN_EXE_sgl")).args(args).output().unwrap())
        .await
        .unwrap()
}

fn args(grid: &Grid, config_dir: &Path, rest: &[&str]) -> Vec<String> {
    let mut all = vec![
        "--orchestrator-url".to_owned(),
        grid.url.clone(),
        "--config-dir".into(),
        config_dir.display().to_string(),
    ];
    all.extend(rest.iter().map(|s| (*s).to_owned()));
    all
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_registers_with_a_code_and_keeps_keys_private() {
    let grid = grid().await;
    let code = grid.registration_code("0xop").await;
    let config = tempfile::tempdir().unwrap();
    let node_dir = config.path().join("node");
    let output =
        sgl(args(&grid, &node_dir, &["init", "--wallet", "0xop", "--code", &code, "--models", "gemma", "--json"]))
            .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let node_id = printed["node_id"].as_str().unwrap();
    // The grid has the node, with a verified capability manifest.
    let record = grid.store.node(node_id).await.unwrap().expect("registered");
    assert_eq!(record.public_key, printed["public_key"].as_str().unwrap());
    // Keys at rest: 0700 directory, 0600 files, the grid URL stored with the registration.
    assert_eq!(mode(&node_dir), 0o700);
    assert_eq!(mode(&node_dir.join("keypair.json")), 0o600);
    assert_eq!(mode(&node_dir.join("node.json")), 0o600);
    let (node, _) = sgl_protocol::keyfile::load_node_file(&node_dir.join("node.json")).unwrap();
    assert_eq!((node.node_id.to_string(), node.orchestrator_url), (node_id.to_owned(), grid.url.clone()));
    let (identity, _) = sgl_protocol::keyfile::load_keypair(&node_dir.join("keypair.json")).unwrap();
    assert_eq!(identity.public_key().to_b58(), record.public_key);
    // `version` names the binary's hash and the stored grid.
    let version =
        sgl(vec!["--config-dir".into(), node_dir.display().to_string(), "version".into(), "--json".into()]).await;
    let version: serde_json::Value = serde_json::from_slice(&version.stdout).unwrap();
    assert_eq!(version["grid_url"].as_str(), Some(grid.url.as_str()));
    assert_eq!(version["binary_sha256"].as_str().unwrap().len(), 64);
    // Attestation answers the grid's challenge with the registered key, to the stored grid URL.
    let attested =
        sgl(vec!["--config-dir".into(), node_dir.display().to_string(), "attest".into(), "--json".into()]).await;
    assert!(attested.status.success(), "{}", String::from_utf8_lossy(&attested.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&attested.stdout).unwrap();
    assert_eq!(verdict, serde_json::json!({"verified": true, "status": "attested"}));
    assert!(grid.store.node(node_id).await.unwrap().unwrap().attested);
    // With an allowlist that does not name this binary, the grid says no and `sgl` exits 2.
    run(&grid.store, AdminCommand::AllowBinary { sha256: "ab".repeat(32) }, 0).await.unwrap();
    let refused = sgl(vec!["--config-dir".into(), node_dir.display().to_string(), "attest".into()]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a recognized SGL build"), "{refused:?}");
    assert!(!grid.store.node(node_id).await.unwrap().unwrap().attested);
    // A second init on the same directory refuses, in one line.
    let again = sgl(args(&grid, &node_dir, &["init", "--wallet", "0xop"])).await;
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists") && stderr.lines().count() == 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_one_clear_line() {
    let grid = grid().await;
    let config = tempfile::tempdir().unwrap();
    // No stake, no valid code: the grid's reason is shown.
    let refused = sgl(args(&grid, config.path(), &["login", "--code", "nope", "--wallet", "0xpoor"])).await;
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the grid refused (403)") && stderr.contains("SGL staked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Plain HTTP to another machine would expose the token.
    let insecure = sgl(vec![
        "--orchestrator-url".into(),
        "http://grid.example".into(),
        "--config-dir".into(),
        config.path().join("x").display().to_string(),
        "init".into(),
        "--wallet".into(),
        "0xop".into(),
    ])
    .await;
    assert!(String::from_utf8_lossy(&insecure.stderr).contains("https://"), "{insecure:?}");
    // Attesting an unregistered directory says what to do.
    let unregistered = sgl(args(&grid, &config.path().join("empty"), &["attest"])).await;
    assert!(String::from_utf8_lossy(&unregistered.stderr).contains("run sgl init first"), "{unregistered:?}");
    // `login` needs both flags.
    let half = sgl(args(&grid, config.path(), &["login", "--code", "c"])).await;
    assert!(!half.status.success());
}

mod login;
mod serve;
mod single_instance;
mod stake;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_replaces_only_with_an_allowlisted_binary() {
    let grid = grid().await;
    let code = grid.registration_code("0xop").await;
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("node");
    assert!(sgl(args(&grid, &dir, &["init", "--wallet", "0xop", "--code", &code])).await.status.success());
    let target = config.path().join("installed-sgl");
    std::fs::write(&target, b"old build").unwrap();
    let candidate = config.path().join("new-sgl");
    std::fs::write(&candidate, b"new build").unwrap();
    let update = |extra: &[&str]| {
        let mut all = vec!["update", "--binary", candidate.to_str().unwrap(), "--target", target.to_str().unwrap()];
        all.extend_from_slice(extra);
        args(&grid, &dir, &all)
    };
    // No allowlist at all: nothing can be verified, nothing changes.
    let refused = sgl(update(&[])).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"old build");
    // An allowlist without the candidate: refused, named by its hash.
    run(&grid.store, AdminCommand::AllowBinary { sha256: "ab".repeat(32) }, 0).await.unwrap();
    let refused = sgl(update(&[])).await;
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let new_hash = sgl_engine::model_file::sha256_file(&candidate).unwrap();
    assert!(stderr.contains(&new_hash) && stderr.lines().count() == 1, "{stderr}");
    assert_eq!(std::fs::read(&target).unwrap(), b"old build");
    // Allowlisted (in upper case): replaced atomically, executable.
    run(&grid.store, AdminCommand::AllowBinary { sha256: new_hash.to_uppercase() }, 0).await.unwrap();
    let updated = sgl(update(&["--json"])).await;
    assert!(updated.status.success(), "{}", String::from_utf8_lossy(&updated.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&updated.stdout).unwrap();
    assert_eq!((printed["updated"].as_bool(), printed["sha256"].as_str()), (Some(true), Some(new_hash.as_str())));
    assert_eq!(std::fs::read(&target).unwrap(), b"new build");
    assert_eq!(mode(&target) & 0o111, 0o111);
    // Again: already up to date.
    let again = sgl(update(&["--json"])).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&again.stdout).unwrap()["updated"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_install_print_shows_a_hardened_unit_with_the_start_flags() {
    let grid = grid().await;
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("node");
    let output = sgl(args(
        &grid,
        &dir,
        &["service", "install", "--print", "--json", "--model-path", "/models/gemma.gguf", "--max-jobs", "2"],
    ))
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let unit = plan["contents"].as_str().unwrap();
    for expected in [
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "Restart=on-failure",
        "--resource-percent 50",
        "--max-jobs 2",
        "--model-path /models/gemma.gguf",
        "ReadOnlyPaths=-/models/gemma.gguf",
        &format!("--orchestrator-url {}", grid.url),
    ] {
        assert!(unit.contains(expected), "{expected} missing from:\n{unit}");
    }
    // Nothing was written by --print.
    assert!(!dir.exists());
}
