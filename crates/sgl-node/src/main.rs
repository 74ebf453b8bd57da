//! `sgl`: the node agent's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sgl_node::attest::attest;
use sgl_node::detect;
use sgl_node::init::{InitOptions, init};

/// The seed's default grid.
const DEFAULT_GRID: &str = "https://grid.x402compute.cc";

/// The SGL node agent: turn this machine into a node of a compute grid.
#[derive(Debug, Parser)]
#[command(name = "sgl", version, about, long_about = None)]
struct Cli {
    /// The grid [default: the one this node registered with; for a new node
    /// `https://grid.x402compute.cc`]. Its URL is stored at registration and used from then on.
    #[arg(long, global = true, env = "SGL_ORCHESTRATOR_URL")]
    orchestrator_url: Option<String>,
    /// Where keypair.json and node.json live [default: ~/.config/sgl-node].
    #[arg(long, global = true, env = "SGL_CONFIG_DIR", value_name = "DIR")]
    config_dir: Option<PathBuf>,
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
    /// Create this node's keys and register it with the grid under a staked wallet.
    Init {
        /// The operator's staked wallet.
        #[arg(long)]
        wallet: String,
        /// A single-use registration code (`sgl-grid admin registration-code`).
        #[arg(long)]
        code: Option<String>,
        /// The tier to declare [default: detected].
        #[arg(long)]
        tee_type: Option<String>,
        /// Models this node will serve, comma-separated.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Prove this node's identity and report its hardware and binary to the grid.
    Attest {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Register headlessly with a code the wallet owner obtained (`--code` and `--wallet`).
    Login {
        /// The single-use registration code.
        #[arg(long, requires = "wallet")]
        code: String,
        /// The wallet the code is bound to.
        #[arg(long)]
        wallet: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sgl: starting the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sgl: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// `$XDG_CONFIG_HOME/sgl-node`, else `~/.config/sgl-node`.
fn config_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &cli.config_dir {
        return Ok(dir.clone());
    }
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("sgl-node"));
    }
    let home = std::env::var_os("HOME").context("neither --config-dir, XDG_CONFIG_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".config/sgl-node"))
}

async fn register(
    cli: &Cli,
    wallet: &str,
    code: Option<&str>,
    tee_type: Option<&str>,
    models: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let options = InitOptions {
        grid_url: cli.orchestrator_url.clone().unwrap_or_else(|| DEFAULT_GRID.to_owned()),
        config_dir: config_dir(cli)?,
        wallet: wallet.to_owned(),
        registration_code: code.map(str::to_owned),
        tee_type: tee_type.map(str::to_owned),
        models: models.to_vec(),
    };
    let registered = init(options).await?;
    if json {
        let value = serde_json::json!({
            "node_id": registered.node_id, "public_key": registered.public_key, "node_file": registered.node_file,
        });
        println!("{value}");
    } else {
        println!("registered node {} (key {})", registered.node_id, registered.public_key);
        println!("saved {}; next: sgl attest, then sgl start --model-path MODEL.gguf", registered.node_file.display());
    }
    Ok(())
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Detect { json } => {
            let hardware = detect::detect();
            if *json {
                println!("{}", serde_json::to_string(&hardware)?);
            } else {
                print_hardware(&hardware);
            }
        }
        Command::Init { wallet, code, tee_type, models, json } => {
            register(cli, wallet, code.as_deref(), tee_type.as_deref(), models, *json).await?;
        }
        Command::Login { code, wallet, json } => register(cli, wallet, Some(code), None, &[], *json).await?,
        Command::Attest { json } => {
            let verdict = attest(&config_dir(cli)?, cli.orchestrator_url.as_deref()).await?;
            if *json {
                println!("{}", serde_json::to_string(&verdict)?);
            } else {
                println!("attestation: {}", verdict.status);
            }
            if !verdict.verified {
                anyhow::bail!("the grid did not verify this node: {}", verdict.status);
            }
        }
        Command::Version { json } => {
            let sha256 = detect::binary_sha256()?;
            let version = env!("CARGO_PKG_VERSION");
            if *json {
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
