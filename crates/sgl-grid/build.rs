//! Embeds the dashboard (`dashboard/static` at the workspace root) in the binary: every file
//! under it becomes one entry of `ASSETS` in `$OUT_DIR/dashboard_assets.rs`, a path and its bytes
//! through `include_bytes!`, sorted by path. No Node is involved: the vendored modules are
//! committed files (`cargo xtask dashboard` writes them). The jobs page's training form also
//! gets the mnist-train guest `sgl-cloud train` runs (`examples/wasm/mnist-train/train.wasm`),
//! as `wasm/mnist-train.wasm`.
//!
//! A page's line `<!-- include: NAME -->` is replaced by `dashboard/partials/NAME`, indented as
//! the line was (the pages share their header so), and the page embedded from `$OUT_DIR`.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = manifest.join("../../dashboard/static");
    let partials = manifest.join("../../dashboard/partials");
    println!("cargo::rerun-if-changed={}", root.display());
    println!("cargo::rerun-if-changed={}", partials.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let guest = manifest.join("../../examples/wasm/mnist-train/train.wasm");
    println!("cargo::rerun-if-changed={}", guest.display());
    files.push(("wasm/mnist-train.wasm".to_owned(), guest.canonicalize().unwrap_or(guest)));
    for (relative, absolute) in files.iter_mut().filter(|(relative, _)| relative.ends_with(".html")) {
        let page = std::fs::read_to_string(&*absolute).expect("a dashboard page is UTF-8");
        if page.contains(INCLUDE) {
            let target = out.join("pages").join(&*relative);
            std::fs::create_dir_all(target.parent().expect("a parent")).expect("creating $OUT_DIR/pages");
            std::fs::write(&target, expand(&page, &partials, relative)).expect("writing an expanded page");
            *absolute = target;
        }
    }
    files.sort();
    let mut table = String::from(
        "/// Every dashboard file: its path under `/dashboard/` and its bytes.\npub(crate) static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (relative, absolute) in &files {
        table.push_str(&format!("    ({relative:?}, include_bytes!({:?})),\n", absolute.display().to_string()));
    }
    table.push_str("];\n");
    std::fs::write(out.join("dashboard_assets.rs"), table).expect("writing the asset table");
}

const INCLUDE: &str = "<!-- include: ";

/// `page` with each include line replaced by its partial, indented as the line was.
fn expand(page: &str, partials: &Path, name: &str) -> String {
    let mut expanded = String::new();
    for line in page.lines() {
        let trimmed = line.trim_start();
        let Some(partial) = trimmed.strip_prefix(INCLUDE).and_then(|rest| rest.strip_suffix(" -->")) else {
            expanded.push_str(line);
            expanded.push('\n');
            continue;
        };
        let path = partials.join(partial);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{name} includes {}: {error}", path.display()));
        let indent = &line[..line.len() - trimmed.len()];
        for included in text.lines() {
            expanded.push_str(indent);
            expanded.push_str(included);
            expanded.push('\n');
        }
    }
    expanded
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            let absolute = path.canonicalize().unwrap_or(path.clone());
            files.push((relative, absolute));
        }
    }
}
