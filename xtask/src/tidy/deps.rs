//! Crate dependency rules (DESIGN.md §2), read from `cargo metadata`: each workspace crate has a
//! row saying which crates must never appear in its normal (non-dev) dependency tree.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::command::{cargo, output};

/// Crates every product crate must avoid: test-only support never ships.
const TEST_ONLY: &[&str] = &["sgl-test-support", "sgl-e2e"];

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
    ("sgl-grid", &["sgl-node", "sgl-engine", "sgl-cloud"]),
    ("sgl-client", &["axum", "sqlx", "sgl-grid", "sgl-grid-store", "sgl-node", "sgl-engine", "sgl-cloud"]),
    ("sgl-cloud", &["axum", "sqlx", "sgl-grid", "sgl-grid-store", "sgl-node", "sgl-engine"]),
    ("sgl-test-support", &[]),
    ("sgl-e2e", &[]),
    (
        "xtask",
        &["sgl-protocol", "sgl-engine", "sgl-node", "sgl-grid-store", "sgl-pay", "sgl-grid", "sgl-client", "sgl-cloud"],
    ),
];

/// Each workspace crate's name with the names of every crate in its normal dependency tree.
fn normal_dependency_trees() -> BTreeMap<String, BTreeSet<String>> {
    let mut command = cargo();
    command.args(["metadata", "--format-version", "1", "--locked"]);
    let metadata: Value =
        serde_json::from_str(&output(&mut command).expect("cargo metadata runs")).expect("valid JSON");
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p["name"].as_str().expect("name")))
        .collect();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().expect("resolve graph") {
        let from = node["id"].as_str().expect("id");
        for dep in node["deps"].as_array().expect("deps") {
            let is_normal_or_build = dep["dep_kinds"].as_array().expect("dep_kinds").iter().any(|k| k["kind"] != "dev");
            if is_normal_or_build {
                edges.entry(from).or_default().push(dep["pkg"].as_str().expect("pkg"));
            }
        }
    }
    let members = metadata["workspace_members"].as_array().expect("workspace members");
    members
        .iter()
        .map(|member| {
            let root = member.as_str().expect("member id");
            let mut seen = BTreeSet::new();
            let mut stack = vec![root];
            while let Some(id) = stack.pop() {
                for &next in edges.get(id).map(Vec::as_slice).unwrap_or_default() {
                    if seen.insert(next) {
                        stack.push(next);
                    }
                }
            }
            (names[root].to_owned(), seen.into_iter().map(|id| names[id].to_owned()).collect())
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
