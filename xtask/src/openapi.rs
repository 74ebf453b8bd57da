//! `cargo xtask openapi`: rewrites `docs/openapi.json` with what `sgl-grid openapi` prints, the
//! document the grid serves at `/openapi.json`. A unit test in `sgl-grid` fails when the checked-in
//! file and the routes disagree.

use crate::command::{cargo, output, workspace_root};

/// Regenerates the checked-in document.
pub(crate) fn write() -> anyhow::Result<()> {
    let document = output(cargo().args(["run", "--quiet", "-p", "sgl-grid", "--bin", "sgl-grid", "--", "openapi"]))?;
    let path = workspace_root().join("docs/openapi.json");
    std::fs::write(&path, document)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
