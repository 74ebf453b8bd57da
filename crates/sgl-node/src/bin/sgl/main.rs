//! `sgl`: the node agent's command line.

mod deposit;
mod maint;
mod market;
mod ops;
mod serve;
mod stake;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sgl_node::attest::attest;
use sgl_node::detect;
use sgl_node::init::{InitOptions, init};
use sgl_node::wallet_key::WalletKey;

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
        /// Where the native classes' engines are.
        #[command(flatten)]
        engines: serve::EngineArgs,
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
        /// Prove the wallet instead of a code: its key file (a 0x hex EVM secret or a Solana
        /// keypair JSON), which signs this node's registration.
        #[arg(long, env = sgl_node::wallet_key::WALLET_KEY_ENV, value_name = "FILE", conflicts_with = "code")]
        wallet_key: Option<PathBuf>,
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
    /// Register this machine: with no flags, through a device login approved in a browser by
    /// the staked wallet; headless with `--code` and `--wallet` together.
    Login {
        /// The single-use registration code.
        #[arg(long, requires = "wallet")]
        code: Option<String>,
        /// The wallet the code is bound to.
        #[arg(long, requires = "code")]
        wallet: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve jobs from the grid until stopped (Ctrl-C or SIGTERM drains running jobs first).
    Start(Box<serve::StartArgs>),
    /// Show this node's identity, local state and the grid's view of it.
    Status {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// What the operator wallet has earned from this grid.
    Earnings {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Stop receiving work for maintenance, without an offline penalty.
    OffGrid {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Receive work again after `off-grid`.
    OnGrid {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show or set this node's prices: per model for inference (USD per million tokens,
    /// within the grid's band), and its price policy for the order book (`sgl price policy`).
    Price {
        #[command(subcommand)]
        action: PriceCommand,
    },
    /// This node's bids on the grid's order book, the last placed first: pending, won (with
    /// its lease) or lost, and why.
    Bids {
        /// How many to show (1 to 500).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The operator wallet's stake: show it, unstake it, withdraw it once unbonded.
    Stake {
        #[command(subcommand)]
        action: stake::StakeCommand,
    },
    /// Pay the operator wallet's unpaid earnings out in USDC, signed with the wallet's key.
    Withdraw(Box<stake::WithdrawArgs>),
    /// Run the node as a service.
    Service {
        #[command(subcommand)]
        action: ServiceCommand,
    },
    /// Replace this binary with a new build, only if its sha256 is on the grid's allowlist.
    Update {
        /// The new binary, already on this machine.
        #[arg(long, value_name = "FILE", conflicts_with = "url")]
        binary: Option<PathBuf>,
        /// Download the new binary from this https:// URL.
        #[arg(long)]
        url: Option<String>,
        /// The file to replace [default: this executable].
        #[arg(long, value_name = "FILE", hide = true)]
        target: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Install and start the node as a user service (systemd --user on Linux, launchd on
    /// macOS), hardened, restarted on failure, with every `start` flag kept.
    Install(Box<maint::InstallArgs>),
    /// Show whether the service is installed and running.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the service and remove it.
    Uninstall {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PriceCommand {
    /// Effective, reference and custom prices, and the allowed band.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a custom price for a model.
    Set {
        /// The model.
        #[arg(long)]
        model: String,
        /// USD per million input tokens.
        #[arg(long)]
        input_per_m: f64,
        /// USD per million output tokens.
        #[arg(long)]
        output_per_m: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Go back to the grid's reference price.
    Reset {
        /// The model.
        #[arg(long)]
        model: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The price policy this node bids by on the grid's order book (orders for work that
    /// lasts): per job class a price per hour in USD and the lease durations it takes, and the
    /// resources it offers; kept in price-policy.toml in the config directory.
    Policy {
        #[command(subcommand)]
        action: market::PolicyCommand,
    },
}

fn main() -> ExitCode {
    // Before anything else, for every command: no core dumps, no debugger attach.
    let hardening = sgl_node::harden::harden_process();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sgl: starting the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(Cli::parse(), hardening)) {
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

/// How the wallet consents to a registration.
enum Consent<'a> {
    /// A single-use code (or none, for a grid that allows codeless registration).
    Code(Option<&'a str>),
    /// The wallet's key signs it.
    WalletKey(&'a Path),
}

async fn register(
    cli: &Cli,
    wallet: &str,
    consent: Consent<'_>,
    tee_type: Option<&str>,
    models: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let (code, wallet_key) = match consent {
        Consent::Code(code) => (code.map(str::to_owned), None),
        Consent::WalletKey(path) => {
            let loaded = WalletKey::load(path)?;
            if let Some(mode) = loaded.loose_mode {
                eprintln!("warning: other users can access {} (mode {mode:o}); chmod 600 it", path.display());
            }
            (None, Some(loaded.key))
        }
    };
    let options = InitOptions {
        grid_url: cli.orchestrator_url.clone().unwrap_or_else(|| DEFAULT_GRID.to_owned()),
        config_dir: config_dir(cli)?,
        wallet: wallet.to_owned(),
        registration_code: code,
        tee_type: tee_type.map(str::to_owned),
        models: models.to_vec(),
        wallet_key,
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

fn grid_url(cli: &Cli) -> anyhow::Result<String> {
    Ok(cli.orchestrator_url.clone().unwrap_or_else(|| DEFAULT_GRID.to_owned()))
}

async fn run(cli: Cli, hardening: sgl_node::harden::HardeningReport) -> anyhow::Result<()> {
    let cli = &cli;
    let dir = config_dir(cli)?;
    let url = cli.orchestrator_url.as_deref();
    match &cli.command {
        Command::Start(args) => serve::start(&dir, url, (**args).clone(), &hardening).await?,
        Command::Service { action } => match action {
            ServiceCommand::Install(args) => maint::install(&dir, url, args)?,
            ServiceCommand::Status { json } => maint::status(*json)?,
            ServiceCommand::Uninstall { json } => maint::uninstall(*json)?,
        },
        Command::Update { binary, url: from, target, json } => {
            maint::update(&dir, url, binary.as_deref(), from.as_deref(), target.as_deref(), *json).await?;
        }
        Command::Status { json } => ops::status(&dir, url, *json).await?,
        Command::Earnings { json } => ops::earnings(&dir, url, *json).await?,
        Command::Stake { action } => stake::stake(&dir, url, action).await?,
        Command::Withdraw(args) => stake::withdraw(&dir, url, args).await?,
        Command::OffGrid { json } => ops::set_off_grid(&dir, url, true, *json).await?,
        Command::OnGrid { json } => ops::set_off_grid(&dir, url, false, *json).await?,
        Command::Bids { limit, json } => market::bids(&dir, url, *limit, *json).await?,
        Command::Price { action } => {
            let (action, json) = match action {
                PriceCommand::Show { json } => (ops::PriceAction::Show, *json),
                PriceCommand::Set { model, input_per_m, output_per_m, json } => (
                    ops::PriceAction::Set {
                        model: model.clone(),
                        input_per_m: *input_per_m,
                        output_per_m: *output_per_m,
                    },
                    *json,
                ),
                PriceCommand::Reset { model, json } => (ops::PriceAction::Reset { model: model.clone() }, *json),
                PriceCommand::Policy { action } => return market::policy(&dir, action),
            };
            ops::price(&dir, url, action, json).await?;
        }
        Command::Detect { json, engines } => detect_command(*json, engines)?,
        Command::Init { wallet, code, wallet_key, tee_type, models, json } => {
            let consent = match (code, wallet_key) {
                (_, Some(path)) => Consent::WalletKey(path),
                (code, None) => Consent::Code(code.as_deref()),
            };
            register(cli, wallet, consent, tee_type.as_deref(), models, *json).await?;
        }
        Command::Login { code: Some(code), wallet: Some(wallet), json } => {
            register(cli, wallet, Consent::Code(Some(code)), None, &[], *json).await?;
        }
        Command::Login { json, .. } => ops::device_login(&grid_url(cli)?, &dir, *json).await?,
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
            let stored = sgl_protocol::keyfile::load_node_file(&dir.join(sgl_node::init::NODE_FILE)).ok();
            let grid = url.map(str::to_owned).or(stored.map(|(node, _)| node.orchestrator_url));
            if *json {
                let value = serde_json::json!({"version": version, "binary_sha256": sha256, "config_dir": dir, "grid_url": grid});
                println!("{value}");
            } else {
                println!("sgl {version}\nbinary sha256 {sha256}\nconfig        {}", dir.display());
                println!("grid          {}", grid.as_deref().unwrap_or("none (not registered)"));
            }
        }
    }
    Ok(())
}

/// `sgl detect`: the hardware and the job classes this machine can serve.
fn detect_command(json: bool, engines: &serve::EngineArgs) -> anyhow::Result<()> {
    let hardware = detect::detect();
    let (_, classes) = sgl_node::agent::compute::engines::detect(&engines.paths(true));
    if json {
        let mut value = serde_json::to_value(&hardware)?;
        value["classes"] = serde_json::to_value(&classes)?;
        println!("{value}");
    } else {
        print_hardware(&hardware);
        print_classes(&classes);
    }
    Ok(())
}

/// Which job classes this machine can serve, and why not.
fn print_classes(classes: &[sgl_node::agent::compute::engines::ClassReport]) {
    println!("Job classes  (llm also needs --model-path when starting)");
    for class in classes {
        let class_name = class.class.as_str();
        match (&class.engine, &class.unavailable) {
            (_, Some(why)) => println!("  {class_name:<7} no: {why}"),
            (Some(engine), None) => println!("  {class_name:<7} yes ({engine})"),
            (None, None) => println!("  {class_name:<7} yes"),
        }
    }
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

#[cfg(test)]
mod tests {
    //! The command line parses what the service files write.

    use std::path::Path;

    use clap::Parser;
    use sgl_node::service::StartOptions;

    use super::{Cli, Command};

    #[test]
    fn a_service_unit_s_start_arguments_parse_as_sgl_start() {
        let home = Path::new("/home/op");
        let mut options = StartOptions::new(home.join("cfg"), home.join("log/sgl.log"));
        options.model_path = Some(home.join("models/gemma 3.gguf"));
        options.model_name = Some("gemma".into());
        options.threads = Some(2);
        options.gpu_layers = Some(0);
        options.context_size = Some(2048);
        options.max_jobs = Some(2);
        options.batch_size = Some(256);
        options.inference_port = Some(8081);
        options.heartbeat_interval = Some(5);
        options.engine = Some("llama-server".into());
        options.llama_server = Some(home.join("bin/llama-server"));
        options.chat_template = Some("gemma".into());
        options.orchestrator_url = Some("https://grid.example".into());
        options.no_websocket = true;
        options.log_json = true;
        options.workloads = Some("chat,wasm".into());
        options.compute_slots = Some(2);
        let argv = std::iter::once("sgl".to_owned()).chain(options.to_args());
        let cli = Cli::try_parse_from(argv).expect("service arguments parse");
        let Command::Start(args) = cli.command else { panic!("expected start") };
        assert_eq!(args.resource_percent, Some(50));
        assert_eq!(args.engine, sgl_node::start::EngineKind::LlamaServer);
        assert_eq!(args.llama_server.as_deref(), Some(home.join("bin/llama-server").as_path()));
        assert_eq!(args.log_file.as_deref(), Some(home.join("log/sgl.log").as_path()));
        assert!(args.no_websocket && args.log_json);
        assert_eq!(args.workloads, [crate::serve::Workload::Chat, crate::serve::Workload::Wasm]);
        assert_eq!(args.compute_slots, 2);
        assert_eq!(cli.config_dir.as_deref(), Some(home.join("cfg").as_path()));
    }
}
