//! Embeds the dashboard (`dashboard/static` at the workspace root) in the binary: every file
//! under it becomes one entry of `ASSETS` in `$OUT_DIR/dashboard_assets.rs`, a path and its bytes
//! through `include_bytes!`, sorted by path. No Node is involved: the vendored modules are
//! committed files (`cargo xtask dashboard` writes them). The jobs page's training form also
//! gets the mnist-train guest `sgl-cloud train` runs (`examples/wasm/mnist-train/train.wasm`),
//! as `wasm/mnist-train.wasm`.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../../dashboard/static");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let guest = manifest.join("../../examples/wasm/mnist-train/train.wasm");
    println!("cargo::rerun-if-changed={}", guest.display());
    files.push(("wasm/mnist-train.wasm".to_owned(), guest.canonicalize().unwrap_or(guest)));
    files.sort();
    let mut table = String::from(
        "/// Every dashboard file: its path under `/dashboard/` and its bytes.\npub(crate) static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (relative, absolute) in &files {
        table.push_str(&format!("    ({relative:?}, include_bytes!({:?})),\n", absolute.display().to_string()));
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("dashboard_assets.rs"), table).expect("writing the asset table");
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
