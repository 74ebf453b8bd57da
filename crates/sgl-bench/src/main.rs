//! `sgl-bench`: the measuring side of `cargo xtask bench`. Each part runs one benchmark and
//! prints its figures as one JSON object on stdout (progress goes to stderr); xtask turns them
//! into the tables of BENCHMARKS.md.
//!
//! - `engine`: the in-process engine measured the way `llama-bench` measures;
//! - `overhead`: the same requests straight to the engine and through a real grid and node;
//! - `scale`: the coordinator under many synthetic nodes and concurrent callers;
//! - `replicas`: 1, 2 and 3 replicas on PostgreSQL behind HAProxy;
//! - `machines`: a rented machine's provision-to-SSH, login and destroy times on the local backend;
//! - `chain`: x402 settlements per second on a local chain (anvil).

mod chain;
mod engine;
mod machines;
mod overhead;
mod replicas;
mod scale;
mod stats;
mod up;

use clap::{Parser, Subcommand};

/// Benchmark drivers; `cargo xtask bench` runs them and writes BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    part: Part,
}

#[derive(Debug, Subcommand)]
enum Part {
    /// Prompt and generation tokens/s of the in-process engine, llama-bench's way.
    Engine(engine::Args),
    /// Added latency of the grid: straight to the engine vs plain, sealed, sealed streaming.
    Overhead(overhead::Args),
    /// The coordinator under synthetic nodes and concurrent callers.
    Scale(scale::Args),
    /// Replicas on one PostgreSQL behind HAProxy, synthetic nodes and callers through it.
    Replicas(replicas::Args),
    /// Rented machines on the local backend: provision to SSH, login, destroy.
    Machines(machines::Args),
    /// x402 settlements per second on a local chain (`sgl-grid up --chain`).
    Chain(chain::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let report = match cli.part {
        Part::Engine(args) => engine::run(&args)?,
        Part::Overhead(args) => overhead::run(&args)?,
        Part::Scale(args) => scale::run(&args)?,
        Part::Replicas(args) => replicas::run(&args)?,
        Part::Machines(args) => machines::run(&args)?,
        Part::Chain(args) => chain::run(&args)?,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
