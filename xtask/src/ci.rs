//! `cargo xtask ci` and `cargo xtask tidy`.

use crate::command::{cargo, run as exec};

/// Every gate, in order, stopping at the first failure.
pub(crate) fn run() -> anyhow::Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    exec(&mut fmt)?;
    // The fuzz crate is a workspace of its own, which `--all` does not reach.
    let mut fmt_fuzz = cargo();
    fmt_fuzz.args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--check"]);
    exec(&mut fmt_fuzz)?;

    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]);
    exec(&mut clippy)?;

    tidy()?;

    let mut tests = cargo();
    if has_nextest() {
        tests.args(["nextest", "run", "--workspace", "--locked", "--profile", "ci"]);
    } else {
        tests.args(["test", "--workspace", "--locked"]);
    }
    exec(&mut tests)?;

    let mut docs = cargo();
    docs.args(["doc", "--workspace", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings");
    exec(&mut docs)
}

/// The house rules, which are ordinary tests in this crate.
pub(crate) fn tidy() -> anyhow::Result<()> {
    let mut tests = cargo();
    tests.args(["test", "--package", "xtask", "--locked", "--quiet", "--", "tidy::"]);
    exec(&mut tests)
}

fn has_nextest() -> bool {
    let mut probe = cargo();
    probe.args(["nextest", "--version"]);
    crate::command::output(&mut probe).is_ok()
}
