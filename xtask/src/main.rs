//! Project automation, run the same way locally and in CI: `cargo xtask ci`, `cargo xtask tidy`,
//! `cargo xtask fuzz [--seconds N] [TARGET…]`, `cargo xtask bench [engine|overhead|scale|replicas|crypto|classes|machines|dashboard|all]`,
//! `cargo xtask llama-server`, `cargo xtask openapi`, `cargo xtask contracts [--check]`,
//! `cargo xtask dashboard [--check]`.
//!
//! xtask depends on no product crate; it drives them through `cargo`.

mod bench;
mod ci;
mod command;
mod contracts;
mod dashboard;
mod fuzz;
mod llama_server;
mod openapi;
#[cfg(test)]
mod tidy;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci              fmt check, clippy -D warnings on all targets, tidy, every test, docs
  tidy            the house rules only (dependency edges, module headers, file sizes, error types)
  fuzz [--seconds N] [TARGET...]
                  build the cargo-fuzz targets in fuzz/ and run each for N seconds (default 10),
                  failing on any crash; installs cargo-fuzz when it is missing
  bench [PART]    run benchmarks and update BENCHMARKS.md; PART is engine, overhead, scale,
                  replicas (needs SGL_TEST_DATABASE_URL), crypto, classes (train, image and
                  render engines; SGL_TEST_MNIST, ORT_DYLIB_PATH, SGL_TEST_TERRAIN_ONNX, Blender),
                  machines (rented machines on the local backend; root and the machine image),
                  dashboard (page weight and server time of the web dashboard's pages and the
                  API routes they read) or all (default all; about 25 minutes on 2 cores,
                  classes 3 of them once built)
  llama-server    build llama-server and llama-bench (cached); prints the llama-server path last
  openapi         regenerate docs/openapi.json from the grid's routes and wire types
  contracts [--check]
                  build the Solidity contracts in contracts/ (npm ci when needed, forge build)
                  and rewrite contracts/abi/*.json; --check also runs forge fmt --check and
                  forge test, and fails if contracts/abi differs from the commit
  dashboard [--check]
                  vendor the dashboard's third-party ES modules (npm ci when needed) into
                  dashboard/static/vendor; --check fails if it differs from the commit
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["ci"] => ci::run(),
        ["tidy"] => ci::tidy(),
        ["fuzz", rest @ ..] => fuzz::fuzz(rest),
        ["llama-server"] => llama_server::build(),
        ["openapi"] => openapi::write(),
        ["contracts", rest @ ..] => contracts::contracts(rest),
        ["dashboard", rest @ ..] => dashboard::dashboard(rest),
        ["bench"] => bench::bench("all"),
        ["bench", part] if *part == "all" || bench::PARTS.contains(part) => bench::bench(part),
        ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}
