//! `cargo xtask dashboard [--check]`: vendors the dashboard's third-party ES modules into
//! `dashboard/static/vendor/`, where `sgl-grid` embeds them with the rest of the pages.
//!
//! The packages are pinned in `dashboard/package-lock.json`; `npm ci` runs only when
//! `node_modules` is missing or was installed from another lockfile. From each entry module in
//! [`ENTRIES`] the copy follows its relative imports, so exactly the modules a page can load are
//! vendored, each byte for byte except its `sourceMappingURL` comment (the maps are not
//! shipped), beside the package's licence. A bare import (another package) fails the task: the
//! browser loads no import map, so every import must be relative. `cargo build` never needs
//! any of this: the vendored files are committed.
//!
//! `--check` (CI) also fails, naming the files, when `dashboard/static/vendor` differs from
//! what git has committed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::command::{output, run as exec, workspace_root};

/// The modules pages import, as (package, module inside it).
const ENTRIES: &[(&str, &str)] = &[("@noble/ciphers", "chacha.js")];

/// A copy of the lockfile `node_modules` was installed from (see `contracts`).
const INSTALLED_LOCK: &str = "node_modules/.sgl-installed-package-lock.json";

/// Parses `[--check]`, then installs, copies and (with `--check`) compares.
pub(crate) fn dashboard(args: &[&str]) -> anyhow::Result<()> {
    let check = match args {
        [] => false,
        ["--check"] => true,
        _ => bail!("usage: cargo xtask dashboard [--check]"),
    };
    let dir = workspace_root().join("dashboard");
    install(&dir)?;
    let vendor = dir.join("static/vendor");
    if vendor.exists() {
        fs::remove_dir_all(&vendor).context("emptying dashboard/static/vendor")?;
    }
    for (package, entry) in ENTRIES {
        let source = dir.join("node_modules").join(package);
        let target = vendor.join(package.trim_start_matches('@').replace('/', "-"));
        for module in reachable(&source, entry)? {
            let text = fs::read_to_string(source.join(&module))
                .with_context(|| format!("reading {package}/{}", module.display()))?;
            write(&target.join(&module), &without_source_map(&text))?;
        }
        let licence = fs::read_to_string(source.join("LICENSE")).with_context(|| format!("{package}'s LICENSE"))?;
        write(&target.join("LICENSE"), &licence)?;
    }
    eprintln!(
        "vendored {} into dashboard/static/vendor",
        ENTRIES.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
    );
    if check {
        compare_with_git(&dir)?;
    }
    Ok(())
}

/// `npm ci` unless `node_modules` was installed from exactly this lockfile.
fn install(dir: &Path) -> anyhow::Result<()> {
    let lock = fs::read(dir.join("package-lock.json")).context("reading dashboard/package-lock.json")?;
    if fs::read(dir.join(INSTALLED_LOCK)).ok().as_deref() == Some(lock.as_slice()) {
        return Ok(());
    }
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir);
    exec(&mut npm).context("installing the dashboard's vendored packages (needs node and npm)")?;
    fs::write(dir.join(INSTALLED_LOCK), &lock).context("recording the installed lockfile")?;
    Ok(())
}

/// `entry` and every module it imports, directly or not, as paths inside `package_dir`.
fn reachable(package_dir: &Path, entry: &str) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![PathBuf::from(entry)];
    while let Some(module) = todo.pop() {
        if !seen.insert(module.clone()) {
            continue;
        }
        let text = fs::read_to_string(package_dir.join(&module))
            .with_context(|| format!("reading {}", package_dir.join(&module).display()))?;
        for specifier in imports(&text) {
            ensure!(
                specifier.starts_with("./") || specifier.starts_with("../"),
                "{} imports {specifier:?}: only relative imports can be vendored",
                module.display()
            );
            let parent = module.parent().unwrap_or(Path::new(""));
            todo.push(normalise(&parent.join(&specifier)));
        }
    }
    Ok(seen)
}

/// The specifiers of a module's static `import … from "…"`, `import "…"` and `export … from
/// "…"` statements (each starting a line, as compiled modules write them; examples inside
/// comments start with `*` and are skipped).
pub(crate) fn imports(text: &str) -> Vec<String> {
    let mut specifiers = Vec::new();
    let mut statement: Option<String> = None;
    for line in text.lines() {
        let starts = line.starts_with("import ") || line.starts_with("import{") || line.starts_with("export ");
        if statement.is_none() && !starts {
            continue;
        }
        let mut text = statement.take().unwrap_or_default();
        text.push_str(line);
        text.push(' ');
        if let Some(specifier) = quoted_after(&text, " from ").or_else(|| quoted_after(&text, "import ")) {
            specifiers.push(specifier);
        } else if !line.trim_end().ends_with(';')
            && (text.starts_with("import") || text.starts_with("export {") || text.starts_with("export *"))
        {
            // A statement over several lines: read on.
            statement = Some(text);
        }
    }
    specifiers
}

/// The quoted string right after `marker` (spaces allowed between).
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let rest = text[text.find(marker)? + marker.len()..].trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let end = rest[1..].find(quote)?;
    Some(rest[1..=end].to_owned())
}

/// `a/./b/../c.js` → `a/c.js`.
fn normalise(path: &Path) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop();
            }
            other => parts.push(other.as_os_str()),
        }
    }
    parts.iter().collect()
}

/// The module without its `//# sourceMappingURL=` line.
pub(crate) fn without_source_map(text: &str) -> String {
    let mut kept: String =
        text.lines().filter(|line| !line.starts_with("//# sourceMappingURL=")).collect::<Vec<_>>().join("\n");
    kept.push('\n');
    kept
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::create_dir_all(path.parent().context("a vendored file has a folder")?)?;
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Fails, naming the files, when `static/vendor` is not what git has committed.
fn compare_with_git(dir: &Path) -> anyhow::Result<()> {
    let mut git = Command::new("git");
    git.args(["status", "--porcelain", "--untracked-files=all", "--", "static/vendor"]).current_dir(dir);
    let changed = output(&mut git).context("comparing dashboard/static/vendor with git")?;
    if !changed.trim().is_empty() {
        bail!(
            "dashboard/static/vendor differs from what is committed; run `cargo xtask dashboard` and commit the result:\n{}",
            changed.trim_end()
        );
    }
    eprintln!("dashboard/static/vendor matches the commit");
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Import scanning and the source-map strip, on text shaped like the compiled modules.

    use super::*;

    #[test]
    fn imports_are_read_from_statements_not_from_comments() {
        let module = "/**\n * import { x } from '@noble/ciphers/chacha.js';\n */\nimport { a } from \"./_arx.js\";\n\
                      import {\n  b,\n  c,\n} from './utils.js';\nimport \"./side.js\";\nexport * from \"./more.js\";\n\
                      export function f() {}\n";
        assert_eq!(imports(module), ["./_arx.js", "./utils.js", "./side.js", "./more.js"]);
    }

    #[test]
    fn paths_are_normalised_and_source_maps_dropped() {
        assert_eq!(normalise(Path::new("abstract/./../utils.js")), PathBuf::from("utils.js"));
        assert_eq!(without_source_map("a();\n//# sourceMappingURL=chacha.js.map"), "a();\n");
    }
}
