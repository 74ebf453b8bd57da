//! The machines table: `sgl-bench machines`, rented machines on the local backend of a release
//! `sgl-grid up --nodes 0` (root and the image of `.ci/install-machine-image` needed).

use serde_json::Value;

use super::{Driver, f64_at, update_section};

/// Runs the machines benchmark and updates its section of BENCHMARKS.md.
pub(crate) fn run(driver: &Driver) -> anyhow::Result<()> {
    let args: Vec<String> = vec!["machines".into(), "--grid-bin".into(), driver.binary("sgl-grid")];
    let report = driver.sgl_bench(&args)?;
    let table = table(&report);
    eprint!("{table}");
    let section = format!(
        "Command: `cargo xtask bench machines` (as root, after `.ci/install-machine-image`). A release \
         `sgl-grid up --nodes 0` sells systemd-nspawn machines from its own host; {} machines of plan `{}` are \
         provisioned one after another with credits and an SSH key, each timed from the moment the provision \
         is sent: until the grid reads its SSH banner (`active`: the rental's time starts and is charged), until \
         a real `ssh … true` login returns, and then its destroy (answered once nothing of it is left).\n{}\n\n\
         {table}",
        report["runs"],
        report["plan"].as_str().unwrap_or("?"),
        super::machine()?,
    );
    update_section("machines", &section)
}

fn row(report: &Value, what: &str, field: &str) -> String {
    let at = |stat: &str| f64_at(report, &format!("/{field}/{stat}")).unwrap_or(f64::NAN);
    format!("| {what} | {:.0} | {:.0} | {:.0} | {:.0} |\n", at("p50"), at("mean"), at("min"), at("max"))
}

fn table(report: &Value) -> String {
    let mut table = String::from(
        "| from the provision request to | p50 (ms) | mean (ms) | min (ms) | max (ms) |\n|---|---:|---:|---:|---:|\n",
    );
    table.push_str(&row(report, "SSH banner read by the grid (`active`)", "provision_to_ssh_ms"));
    table.push_str(&row(report, "`ssh … true` returned", "provision_to_login_ms"));
    table.push_str(&row(report, "(destroy request to nothing left)", "destroy_ms"));
    table
}
