//! Crate dependency rules (DESIGN.md §2), read from `cargo tree` per crate: each workspace crate has a
//! row saying which crates must never appear in its normal (non-dev) dependency tree.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::command::{cargo, output};

/// Crates every product crate must avoid: test-only support never ships.
const TEST_ONLY: &[&str] = &["sgl-test-support", "sgl-e2e", "sgl-provider-doubles"];

/// `(crate, crates that must not be in its normal dependency tree)`. A new crate needs a row.
const RULES: &[(&str, &[&str])] = &[
    (
        "sgl-protocol",
        &[
            "tokio",
            "axum",
            "reqwest",
            "sqlx",
            "hyper",
            "clap",
            "tracing-subscriber",
            "sgl-engine",
            "sgl-node",
            "sgl-grid-store",
            "sgl-pay",
            "sgl-grid",
            "sgl-client",
            "sgl-cloud",
        ],
    ),
    ("sgl-engine", &["axum", "sqlx", "sgl-node", "sgl-grid-store", "sgl-pay", "sgl-grid", "sgl-client", "sgl-cloud"]),
    ("sgl-node", &["axum", "sqlx", "sgl-grid", "sgl-grid-store", "sgl-pay", "sgl-cloud"]),
    ("sgl-grid-store", &["axum", "reqwest", "sgl-grid", "sgl-node", "sgl-engine", "sgl-client", "sgl-cloud"]),
    ("sgl-pay", &["axum", "sqlx", "sgl-grid", "sgl-node", "sgl-engine", "sgl-client", "sgl-cloud"]),
    // The chain client: no grid, node or store; the grid and the node's CLI use it.
    ("sgl-chain", &["axum", "sqlx", "sgl-grid", "sgl-grid-store", "sgl-node", "sgl-engine", "sgl-cloud"]),
    ("sgl-grid", &["sgl-node", "sgl-engine", "sgl-cloud"]),
    ("sgl-client", &["axum", "sqlx", "sgl-grid", "sgl-grid-store", "sgl-node", "sgl-engine", "sgl-cloud"]),
    ("sgl-cloud", &["axum", "sqlx", "sgl-grid", "sgl-grid-store", "sgl-node", "sgl-engine"]),
    (
        "sgl-sandbox",
        &[
            "axum",
            "sqlx",
            "reqwest",
            "hyper",
            "sgl-protocol",
            "sgl-engine",
            "sgl-node",
            "sgl-grid-store",
            "sgl-pay",
            "sgl-grid",
            "sgl-client",
            "sgl-cloud",
        ],
    ),
    // The image worker is its own small binary: no engine but ONNX Runtime (opened at run
    // time), so neither llama.cpp (ggml) nor wasmtime, and nothing of the grid or the node.
    (
        "sgl-image",
        &[
            "llama-cpp-2",
            "llama-cpp-sys-2",
            "wasmtime",
            "wasmtime-wasi",
            "tokio",
            "axum",
            "sqlx",
            "reqwest",
            "hyper",
            "sgl-protocol",
            "sgl-engine",
            "sgl-node",
            "sgl-grid-store",
            "sgl-pay",
            "sgl-grid",
            "sgl-client",
            "sgl-cloud",
            "sgl-sandbox",
        ],
    ),
    // The render class's pure pieces: no sandbox (the node runs Blender in it), no Wasm engine,
    // no I/O runtime.
    (
        "sgl-media",
        &[
            "wasmtime",
            "tokio",
            "axum",
            "sqlx",
            "reqwest",
            "hyper",
            "sgl-sandbox",
            "sgl-protocol",
            "sgl-engine",
            "sgl-node",
            "sgl-grid-store",
            "sgl-pay",
            "sgl-grid",
            "sgl-client",
            "sgl-cloud",
        ],
    ),
    // Machines: the price and lifecycle core, and (to come) the backends it drives; the grid
    // depends on it, never the other way.
    (
        "sgl-machines",
        &["axum", "sqlx", "sgl-grid", "sgl-grid-store", "sgl-pay", "sgl-node", "sgl-engine", "sgl-client", "sgl-cloud"],
    ),
    ("sgl-test-support", &[]),
    // Test doubles of cloud APIs (Vultr, DigitalOcean): usable from any crate's tests and from an
    // end-to-end test process, so they depend on no crate of the workspace.
    (
        "sgl-provider-doubles",
        &[
            "sgl-protocol",
            "sgl-engine",
            "sgl-node",
            "sgl-grid-store",
            "sgl-pay",
            "sgl-grid",
            "sgl-client",
            "sgl-cloud",
            "sgl-sandbox",
            "sgl-image",
            "sgl-media",
            "sgl-machines",
            "sgl-test-support",
            "sgl-e2e",
            "sgl-bench",
        ],
    ),
    ("sgl-e2e", &[]),
    // The benchmarks drive the grid from outside, as callers do; `sgl-pay` only for its x402
    // payer (`sgl_pay::payer`), which is what a Rust caller pays a 402 with.
    ("sgl-bench", &["axum", "sqlx", "sgl-grid", "sgl-grid-store", "sgl-node", "sgl-cloud"]),
    (
        "xtask",
        &[
            "sgl-protocol",
            "sgl-engine",
            "sgl-node",
            "sgl-grid-store",
            "sgl-pay",
            "sgl-grid",
            "sgl-client",
            "sgl-cloud",
            "sgl-sandbox",
            "sgl-image",
        ],
    ),
];

/// Each workspace crate's name with the names of every crate in its normal dependency tree.
fn normal_dependency_trees() -> BTreeMap<String, BTreeSet<String>> {
    let mut command = cargo();
    command.args(["metadata", "--format-version", "1", "--locked", "--no-deps"]);
    let metadata: Value =
        serde_json::from_str(&output(&mut command).expect("cargo metadata runs")).expect("valid JSON");
    let members: Vec<String> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();
    // `cargo tree` per crate, not the metadata's resolve graph: that graph unifies features
    // across the workspace, so an optional dependency one crate turns on would appear to be a
    // dependency of every crate sharing the library.
    members
        .into_iter()
        .map(|member| {
            let mut command = cargo();
            command.args([
                "tree",
                "--locked",
                "-p",
                &member,
                "-e",
                "normal,build",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ]);
            let text = output(&mut command).expect("cargo tree runs");
            let tree = text
                .lines()
                .filter_map(|line| line.split_whitespace().next())
                .filter(|name| *name != member)
                .map(str::to_owned)
                .collect();
            (member, tree)
        })
        .collect()
}

#[test]
fn tidy_every_crate_has_a_dependency_rule_and_keeps_it() {
    let trees = normal_dependency_trees();
    let rules: BTreeMap<&str, &[&str]> = RULES.iter().copied().collect();
    let mut problems = Vec::new();
    for (krate, tree) in &trees {
        let Some(forbidden) = rules.get(krate.as_str()) else {
            problems.push(format!("{krate}: no dependency rule; add a row to xtask/src/tidy/deps.rs"));
            continue;
        };
        let test_only: &[&str] = if TEST_ONLY.contains(&krate.as_str()) { &[] } else { TEST_ONLY };
        for bad in forbidden.iter().chain(test_only) {
            if tree.contains(*bad) {
                problems.push(format!("{krate} must not depend on {bad} (directly or through another crate)"));
            }
        }
    }
    assert!(problems.is_empty(), "dependency rules broken:\n{}", problems.join("\n"));
}

#[test]
fn tidy_dependency_walk_sees_transitive_crates() {
    // Guards the rule above against silently checking nothing: sgl-protocol reaches
    // `curve25519-dalek` only through `ed25519-dalek` and `x25519-dalek`.
    let trees = normal_dependency_trees();
    let protocol = &trees["sgl-protocol"];
    assert!(protocol.contains("ed25519-dalek"));
    assert!(protocol.contains("curve25519-dalek"));
    assert!(!protocol.contains("proptest"), "dev-dependencies must not count");
}
