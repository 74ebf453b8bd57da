//! The chain table: `sgl-bench chain`, x402 settlements per second through a release
//! `sgl-grid up --chain --nodes 0` on anvil (npm `@foundry-rs/anvil`, `SGL_ANVIL` or
//! `contracts/node_modules`).

use serde_json::Value;

use super::{Driver, f64_at, update_section};

/// Runs the chain benchmark and updates its section of BENCHMARKS.md.
pub(crate) fn run(driver: &Driver) -> anyhow::Result<()> {
    let args: Vec<String> = vec!["chain".into(), "--grid-bin".into(), driver.binary("sgl-grid")];
    let report = driver.sgl_bench(&args)?;
    let table = table(&report);
    eprint!("{table}");
    let section = format!(
        "Command: `cargo xtask bench chain`. A release `sgl-grid up --chain --nodes 0` on anvil (automine: a \
         block per transaction) sells credits by x402; each payment is a client's whole round: \
         `POST /compute/credits/topup` answered 402, an EIP-3009 authorization signed by the local payer, and \
         the paid request, which the grid settles with `transferWithAuthorization` on the chain, waits for it \
         to be mined and records with the payer's credit in one database transaction. {} payments one at a \
         time, then {} payments with {} in flight (the grid's signer sends one transaction at a time, so \
         they queue there).\n{}\n\n{table}",
        report["payments"],
        report["payments"],
        report["in_flight"],
        super::machine()?,
    );
    update_section("chain", &section)
}

fn table(report: &Value) -> String {
    let at = |path: &str| f64_at(report, path).unwrap_or(f64::NAN);
    let mut table = String::from(
        "| x402 on anvil | settlements/s | p50 (ms) | mean (ms) | max (ms) |\n|---|---:|---:|---:|---:|\n",
    );
    table.push_str(&format!(
        "| one at a time | {:.1} | {:.1} | {:.1} | {:.1} |\n",
        at("/sequential_per_second"),
        at("/payment_ms/p50"),
        at("/payment_ms/mean"),
        at("/payment_ms/max"),
    ));
    table.push_str(&format!("| {} in flight | {:.1} | | | |\n", report["in_flight"], at("/concurrent_per_second")));
    table
}
