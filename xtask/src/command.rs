//! Running child commands with their output streamed, failing with the command line on error.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root (the parent of the xtask crate).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_owned()
}

/// `cargo` as invoked by the user (rustup's proxy honours rust-toolchain.toml).
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// Runs `command`, printing it first, and fails unless it exits successfully.
pub(crate) fn run(command: &mut Command) -> anyhow::Result<()> {
    let line = format!("{command:?}").replace('"', "");
    eprintln!("$ {line}");
    let status = command.status().with_context(|| format!("starting {line}"))?;
    if !status.success() {
        bail!("{line} failed with {status}");
    }
    Ok(())
}

/// Runs `command` and returns its stdout, failing unless it exits successfully.
pub(crate) fn output(command: &mut Command) -> anyhow::Result<String> {
    let line = format!("{command:?}").replace('"', "");
    let output = command.output().with_context(|| format!("starting {line}"))?;
    if !output.status.success() {
        bail!("{line} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    String::from_utf8(output.stdout).with_context(|| format!("{line} printed non-UTF-8"))
}
