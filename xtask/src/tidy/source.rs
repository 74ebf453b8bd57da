//! Source rules: a `//!` header on every module, no untyped errors or printing in library code,
//! no file over 800 lines of non-test code, no `#[should_panic]`, no bare `#[ignore]`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::command::workspace_root;

/// Most non-test lines a source file may have.
const MAX_NON_TEST_LINES: usize = 800;

/// Attribute spellings, split so that this file does not trip its own check.
const SHOULD_PANIC: &str = concat!("#[should", "_panic");
const IGNORE: &str = concat!("#[ig", "nore");

/// Files allowed over the limit, each with its reason. Keep this empty if at all possible.
const SIZE_ALLOWLIST: &[(&str, &str)] = &[];

/// Every `.rs` file under `crates/`, `xtask/` and `fuzz/` (its own workspace, held to the same
/// rules), skipping build output and npm's `node_modules` (`contracts/` is outside the walk, but a
/// stray `npm install` elsewhere must not make tidy read thousands of third-party files).
fn rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    let mut stack = vec![root.join("crates"), root.join("xtask"), root.join("fuzz")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "target" && n != "node_modules") {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Test-only files: sibling `tests.rs` modules, `tests/`, `benches/`, and `xtask/src/tidy/`.
fn is_test_file(path: &Path) -> bool {
    let text = path.to_string_lossy();
    path.file_name().is_some_and(|n| n == "tests.rs")
        || text.contains("/tests/")
        || text.contains("/benches/")
        || text.contains("/sgl-test-support/")
        || text.contains("xtask/src/tidy")
}

/// Library code: under a crate that has `src/lib.rs`, and not a binary entry point.
fn is_library_file(path: &Path) -> bool {
    let Some(src) = path.ancestors().find(|a| a.file_name().is_some_and(|n| n == "src")) else { return false };
    let is_binary = path.file_name().is_some_and(|n| n == "main.rs") || path.starts_with(src.join("bin"));
    src.join("lib.rs").exists() && !is_binary && !is_test_file(path)
}

/// Lines before the first `#[cfg(test)]` at column 0: the file's non-test code.
fn non_test_lines(text: &str) -> usize {
    text.lines().take_while(|line| !line.starts_with("#[cfg(test)]")).count()
}

/// Problems with a file's header, attributes and (for library code) error types and printing.
fn check_text(text: &str, is_library: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if !text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!")) {
        problems.push("does not start with a `//!` module header".to_owned());
    }
    let lines: Vec<&str> = text.lines().collect();
    for (idx, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let at = idx + 1;
        if code.contains(SHOULD_PANIC) {
            problems.push(format!("line {at}: {SHOULD_PANIC}]; assert on the error instead"));
        }
        let previous = idx.checked_sub(1).map_or("", |p| lines[p]);
        if code.contains(IGNORE) && !line.contains("FIXME") && !previous.contains("FIXME") {
            problems.push(format!("line {at}: {IGNORE}] without a FIXME saying why"));
        }
        if !is_library {
            continue;
        }
        if code.contains("Result<") && code.contains(", String>") {
            problems.push(format!("line {at}: Result<_, String>; use a typed error"));
        }
        if code.contains("Box<dyn Error") || code.contains("Box<dyn std::error::Error") {
            problems.push(format!("line {at}: Box<dyn Error>; use a typed error"));
        }
        if ["println!", "eprintln!", "print!(", "eprint!(", "dbg!"].iter().any(|m| code.contains(m)) {
            problems.push(format!("line {at}: printing in library code; return data or use tracing"));
        }
    }
    problems
}

#[test]
fn tidy_source_files_follow_the_house_rules() {
    let root = workspace_root();
    let mut problems = Vec::new();
    let files = rust_files();
    assert!(files.len() > 10, "the walk found only {} files", files.len());
    for path in files {
        let text = fs::read_to_string(&path).expect("readable source");
        let shown = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        for problem in check_text(&text, is_library_file(&path)) {
            problems.push(format!("{shown}: {problem}"));
        }
        let allowed = SIZE_ALLOWLIST.iter().any(|(file, _)| shown == *file);
        let n_lines = non_test_lines(&text);
        if !is_test_file(&path) && !allowed && n_lines > MAX_NON_TEST_LINES {
            problems.push(format!("{shown}: {n_lines} non-test lines (limit {MAX_NON_TEST_LINES}); split it"));
        }
    }
    assert!(problems.is_empty(), "house rules broken:\n{}", problems.join("\n"));
}

#[test]
fn tidy_checker_catches_each_rule() {
    let bad_library = format!(
        "use std::fmt;\nfn f() -> Result<(), String> {{ todo() }}\nfn g() -> Box<dyn Error> {{}}\n\
         fn h() {{ println!(\"x\") }}\n{SHOULD_PANIC}]\nfn t() {{}}\n{IGNORE}]\nfn u() {{}}\n"
    );
    let problems = check_text(&bad_library, true);
    assert_eq!(problems.len(), 6, "{problems:#?}");
    let explained = format!("//! ok\n// FIXME: flaky on CI\n{IGNORE}]\nfn u() {{}}\n");
    assert_eq!(check_text(&explained, true), Vec::<String>::new());
    // Binaries may print and use anyhow-style errors.
    assert_eq!(check_text("//! bin\nfn main() { println!(\"hi\") }\n", false), Vec::<String>::new());
    assert_eq!(non_test_lines("a\nb\n#[cfg(test)]\nmod tests;\n"), 2);
}
