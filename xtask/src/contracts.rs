//! `cargo xtask contracts [--check]`: builds the Solidity contracts in `contracts/` and rewrites
//! `contracts/abi/<Name>.json`, the ABI and bytecode the Rust side compiles in with alloy's `sol!`.
//!
//! The tools come from npm, pinned in `contracts/package-lock.json`: forge from `@foundry-rs/forge`
//! compiling through solc-js (`contracts/tools/solc`), OpenZeppelin from `@openzeppelin/contracts`.
//! `npm ci` runs only when `node_modules` is missing or was installed from another lockfile.
//! `cargo build` never needs any of this: the extracted files are committed.
//!
//! `--check` (CI) also checks `forge fmt`, rebuilds from scratch, runs the forge tests, and fails,
//! naming the files, when the rewritten `contracts/abi` differs from what git has committed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use serde_json::{Map, Value, json};

use crate::command::{output, run as exec, workspace_root};

/// The deployable contracts, each in `contracts/src/<Name>.sol`.
const CONTRACTS: &[&str] = &["TestToken", "Staking", "ProviderRegistry", "Escrow"];

/// A copy of the lockfile `node_modules` was installed from, inside `node_modules` so that
/// removing the folder removes it too.
const INSTALLED_LOCK: &str = "node_modules/.sgl-installed-package-lock.json";

/// Parses `[--check]`, then builds, extracts and (with `--check`) tests and compares.
pub(crate) fn contracts(args: &[&str]) -> anyhow::Result<()> {
    let check = match args {
        [] => false,
        ["--check"] => true,
        _ => bail!("usage: cargo xtask contracts [--check]"),
    };
    let dir = workspace_root().join("contracts");
    install(&dir)?;
    let forge = tool(&dir, "forge")?;
    if check {
        exec(forge_command(&forge, &dir).args(["fmt", "--check"]))?;
        // From scratch: a stale forge cache must neither hide a test nor pass a build that a
        // fresh clone would not reproduce byte for byte.
        exec(forge_command(&forge, &dir).args(["build", "--force"]))?;
        exec(forge_command(&forge, &dir).args(["test"]))?;
    } else {
        exec(forge_command(&forge, &dir).arg("build"))?;
    }
    write_abis(&dir)?;
    if check {
        compare_with_git(&dir)?;
    }
    Ok(())
}

/// `npm ci` unless `node_modules` was installed from exactly this lockfile.
fn install(dir: &Path) -> anyhow::Result<()> {
    let lock = fs::read(dir.join("package-lock.json")).context("reading contracts/package-lock.json")?;
    let installed = fs::read(dir.join(INSTALLED_LOCK)).ok();
    if installed.as_deref() == Some(lock.as_slice()) && tool(dir, "forge").is_ok() {
        return Ok(());
    }
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
    exec(&mut npm).context("installing the contracts' tools (needs node and npm)")?;
    fs::write(dir.join(INSTALLED_LOCK), &lock).context("recording the installed lockfile")?;
    Ok(())
}

/// The platform binary of a foundry tool (`forge`, `anvil`, `cast`) that npm installed, run
/// directly rather than through its node shim.
fn tool(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let path = dir.join(format!("node_modules/@foundry-rs/{name}-{os}-{arch}/bin/{name}"));
    ensure!(path.is_file(), "{} is missing", path.display());
    Ok(path)
}

fn forge_command(forge: &Path, dir: &Path) -> Command {
    let mut command = Command::new(forge);
    command.current_dir(dir);
    command
}

/// Rewrites `contracts/abi/<Name>.json` from forge's artifacts and removes any other file there.
fn write_abis(dir: &Path) -> anyhow::Result<()> {
    let abi_dir = dir.join("abi");
    fs::create_dir_all(&abi_dir)?;
    for name in CONTRACTS {
        let artifact = dir.join(format!("out/{name}.sol/{name}.json"));
        let text = fs::read_to_string(&artifact).with_context(|| format!("reading {}", artifact.display()))?;
        let artifact: Value = serde_json::from_str(&text).with_context(|| format!("parsing {name}'s artifact"))?;
        let file = abi_dir.join(format!("{name}.json"));
        let extracted = abi_file(&artifact).with_context(|| format!("extracting {name}"))?;
        if fs::read_to_string(&file).ok().as_deref() != Some(extracted.as_str()) {
            fs::write(&file, extracted)?;
            eprintln!("wrote contracts/abi/{name}.json");
        }
    }
    for entry in fs::read_dir(&abi_dir)? {
        let path = entry?.path();
        let known = path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| CONTRACTS.contains(&s));
        if !known || path.extension().is_none_or(|e| e != "json") {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            eprintln!("removed {}", path.display());
        }
    }
    Ok(())
}

/// The committed form of a forge artifact: `{"abi", "bytecode": {"object"}, "deployedBytecode":
/// {"object"}}` (what `sol!` reads), keys sorted, pretty-printed, with a trailing newline. The
/// rest of the artifact (metadata, the build's source ids) can change with unrelated files.
fn abi_file(artifact: &Value) -> anyhow::Result<String> {
    let abi = artifact.get("abi").filter(|a| a.is_array()).context("no abi array")?;
    let object = |key: &str| -> anyhow::Result<&str> {
        let code = artifact.pointer(&format!("/{key}/object")).and_then(Value::as_str);
        code.filter(|c| c.starts_with("0x") && c.len() > 2).with_context(|| format!("no {key}.object"))
    };
    let document = json!({
        "abi": abi,
        "bytecode": { "object": object("bytecode")? },
        "deployedBytecode": { "object": object("deployedBytecode")? },
    });
    let mut text = serde_json::to_string_pretty(&sorted(&document))?;
    text.push('\n');
    Ok(text)
}

/// `value` with every object's keys inserted in sorted order, so that the text is the same
/// whether or not serde_json's `preserve_order` feature is on in this build.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Fails, naming them, when files under `contracts/abi` differ from the commit checked out.
fn compare_with_git(dir: &Path) -> anyhow::Result<()> {
    let mut git = Command::new("git");
    git.args(["status", "--porcelain", "--untracked-files=all", "--", "abi"]).current_dir(dir);
    let changed = output(&mut git).context("comparing contracts/abi with git")?;
    if !changed.trim().is_empty() {
        bail!(
            "contracts/abi differs from what is committed; run `cargo xtask contracts` and commit the result:\n{}",
            changed.trim_end()
        );
    }
    eprintln!("contracts/abi matches the commit");
    Ok(())
}

#[cfg(test)]
mod tests;
