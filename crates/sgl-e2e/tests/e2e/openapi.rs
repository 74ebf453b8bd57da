//! Scenario: the OpenAPI document against the live grid. `GET /openapi.json` is the checked-in
//! `docs/openapi.json`, and `schemathesis` (PyPI) finds no operation that answers differently
//! from it: every check on (`--checks all`: no 5xx, documented statuses, content types and
//! headers, response bodies matching their schemas, schema-violating requests refused,
//! schema-valid ones accepted except where `schemathesis/schemathesis.toml` says why not), a
//! bounded number of examples per operation, authenticated as a caller with credits and as the
//! grid's real node.

use std::process::Stdio;

use serde_json::Value;

use crate::support::grid::{GridOptions, LocalGrid};
use crate::support::{DEADLINE, exclusive, in_ci, test_env};

/// Examples per operation and phase: about a minute in all on two cores.
const MAX_EXAMPLES: &str = "25";

/// Whether the `schemathesis` command runs; outside CI a missing one skips with a note.
fn schemathesis_cli() -> bool {
    let ok = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !ok {
        assert!(!in_ci(), "CI=true but there is no schemathesis command (python3 -m pip install schemathesis)");
        eprintln!("note: skipping the schemathesis run: no schemathesis command (python3 -m pip install schemathesis)");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_operation_that_departs_from_the_openapi_document() {
    let Some(env) = test_env() else { return };
    if !schemathesis_cli() {
        return;
    }
    let _turn = exclusive().await;
    let grid = LocalGrid::start(&env, GridOptions::nodes(1)).await.expect("a local grid");

    let served = reqwest::get(format!("{}/openapi.json", grid.base_url)).await.expect("GET /openapi.json");
    assert_eq!(served.status(), reqwest::StatusCode::OK);
    let served = served.text().await.expect("a body");
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json"))
        .expect("docs/openapi.json");
    assert!(served == checked_in, "the grid serves another document than docs/openapi.json");

    let node_file: Value =
        serde_json::from_slice(&std::fs::read(grid.node_dir(0).join("node.json")).expect("the node's node.json"))
            .expect("node.json is JSON");
    let node_token = node_file["auth_token"].as_str().expect("the node's token");
    let run = tokio::process::Command::new("schemathesis")
        .arg("--config-file")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis/schemathesis.toml"))
        .args(["--no-color", "run", &format!("{}/openapi.json", grid.base_url)])
        .args(["--checks", "all", "--max-examples", MAX_EXAMPLES, "--seed", "5317"])
        .args(["-H", &format!("Authorization: Bearer {}", grid.api_key)])
        .args(["-H", &format!("X-Node-Auth: {node_token}")])
        // Hypothesis keeps its example database in the working directory.
        .current_dir(grid.root())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("schemathesis finishes").expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "a summary of passed cases: {stdout}");
    assert!(!grid.grid_log().contains("panicked"), "the grid panicked:\n{}", grid.grid_log());
}
