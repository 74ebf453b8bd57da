//! `sgl`: the node agent's command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sgl_node::detect;

/// The SGL node agent: turn this machine into a node of a compute grid.
#[derive(Debug, Parser)]
#[command(name = "sgl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show this machine's CPU, memory, GPUs, TEE devices, lockdown state and OS.
    Detect {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show the version and the sha256 of this binary (what a grid's allowlist checks).
    Version {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(&Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sgl: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Detect { json } => {
            let hardware = detect::detect();
            if json {
                println!("{}", serde_json::to_string(&hardware)?);
            } else {
                print_hardware(&hardware);
            }
        }
        Command::Version { json } => {
            let sha256 = detect::binary_sha256()?;
            let version = env!("CARGO_PKG_VERSION");
            if json {
                println!("{}", serde_json::json!({"version": version, "binary_sha256": sha256}));
            } else {
                println!("sgl {version}\nbinary sha256 {sha256}");
            }
        }
    }
    Ok(())
}

fn print_hardware(hardware: &detect::Hardware) {
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    println!("CPU          {} ({} cores)", hardware.cpu_model, hardware.cpu_cores);
    println!("Memory       {:.1} GiB", hardware.memory_gb);
    if hardware.gpus.is_empty() {
        println!("GPUs         none");
    }
    for gpu in &hardware.gpus {
        println!("GPU          {} ({}, {} MiB)", gpu.name, gpu.backend, gpu.vram_mb);
    }
    let tee = &hardware.tee;
    println!(
        "TEE devices  TDX {}, SEV-SNP {}, SGX {}, Secure Enclave {}",
        yes_no(tee.tdx),
        yes_no(tee.sev_snp),
        yes_no(tee.sgx),
        yes_no(tee.secure_enclave)
    );
    println!("TEE type     {}", hardware.tee_type);
    println!("Lockdown     {}", hardware.lockdown.as_deref().unwrap_or("unknown"));
    println!("OS           {} (kernel {})", hardware.os, hardware.kernel);
}
