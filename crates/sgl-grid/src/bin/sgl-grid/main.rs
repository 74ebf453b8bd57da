//! `sgl-grid`: the coordinator binary. `serve` runs the grid; `admin` works on its store; `up`
//! runs a whole local grid with nodes; `openapi` prints the API's OpenAPI document.

mod chain;
mod machines;
mod up;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sgl_grid::admin::{self, AdminCommand};
use sgl_grid::chain::GridChain;
use sgl_grid::config::{CliOverrides, Config};
use sgl_grid::data_dir::open_store;
use sgl_grid::state::{AppState, Clock, SystemClock};

/// The SGL grid coordinator: nodes join it, callers send OpenAI-compatible requests to it.
#[derive(Debug, Parser)]
#[command(name = "sgl-grid", version, about, long_about = None)]
struct Cli {
    /// TOML configuration file (see config.example.toml).
    #[arg(long, global = true, env = "SGL_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and other state [default: ~/.local/share/sgl-grid].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH?mode=rwc or postgres://USER:PASSWORD@HOST/DB [default: SQLite in the data dir].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the node API, the caller API, /healthz and /metrics until interrupted.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Log as text or as JSON lines.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
        /// Settle x402 payments through this facilitator (`/verify`, `/settle`, `/supported`)
        /// instead of the grid's own ledger [env: SGL_FACILITATOR_URL].
        #[arg(long, value_name = "URL")]
        facilitator_url: Option<String>,
        /// The grid's receiving address for x402 payments [env: SGL_X402_PAY_TO].
        #[arg(long, value_name = "0xADDRESS")]
        x402_pay_to: Option<String>,
    },
    /// Operator commands that work directly on the store.
    Admin(AdminArgs),
    /// A whole local grid: the coordinator on SQLite in --data-dir, a staked local operator,
    /// --nodes `sgl` nodes serving --model, and an API key with credits.
    Up(Box<up::UpArgs>),
    /// Print the OpenAPI 3.1 document of every route (the grid also serves it at /openapi.json).
    Openapi,
    /// The grid's chain (`[chain]`).
    #[command(subcommand)]
    Chain(ChainSub),
}

#[derive(Debug, Subcommand)]
enum ChainSub {
    /// Compare the ledger with the chain: every operator's stake, unstaking stake and bond as
    /// booked and as the contracts hold them, and every payment settled on the chain. Exits 1
    /// and names each difference when they disagree.
    Audit {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct AdminArgs {
    /// Print one JSON value instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminSub,
}

#[derive(Debug, Subcommand)]
enum AdminSub {
    /// Callers' API keys.
    #[command(subcommand)]
    ApiKey(ApiKeySub),
    /// Callers' prepaid credits.
    #[command(subcommand)]
    Credits(CreditsSub),
    /// Record a stake deposit (SGL) for an operator wallet.
    Stake {
        /// The operator's wallet.
        #[arg(long)]
        wallet: String,
        /// SGL to add.
        #[arg(long)]
        amount: u64,
    },
    /// Issue a single-use registration code bound to a wallet (for `sgl login --code`).
    RegistrationCode {
        /// The operator's wallet.
        #[arg(long)]
        wallet: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = 600)]
        ttl_secs: u64,
    },
    /// Approve a device login (`sgl login`) as the grid operator, for a wallet.
    ApproveDevice {
        /// The code the node printed, e.g. ABCD-EFGH.
        #[arg(long)]
        user_code: String,
        /// The operator's wallet.
        #[arg(long)]
        wallet: String,
    },
    /// Allow a node binary by the sha256 of its file.
    AllowBinary {
        /// 64 hex characters.
        sha256: String,
    },
    /// The ledger.
    #[command(subcommand)]
    Ledger(LedgerSub),
    /// Fund an EVM address with test USDC in the local x402 facilitator (Base Sepolia).
    Faucet {
        /// The address, `0x…`.
        #[arg(long)]
        address: String,
        /// USDC to add.
        #[arg(long)]
        usdc: f64,
    },
}

#[derive(Debug, Subcommand)]
enum LedgerSub {
    /// Prove every transaction balances per asset and no balance that must stay non-negative
    /// is below zero; exits 1 when anything is wrong.
    Check,
}

#[derive(Debug, Subcommand)]
enum ApiKeySub {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        /// Starting credits in USD.
        #[arg(long, default_value_t = 0.0)]
        credits_usd: f64,
        /// A label for listings.
        #[arg(long, default_value = "")]
        label: String,
        /// Bind the key to a wallet.
        #[arg(long)]
        wallet: Option<String>,
    },
    /// List keys with their credits.
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key's id.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum CreditsSub {
    /// Grant credits to a key.
    Add {
        /// The key's id.
        #[arg(long)]
        key_id: i64,
        /// USD to add.
        #[arg(long)]
        usd: f64,
    },
    /// Show a key's credits.
    Balance {
        /// The key's id.
        #[arg(long)]
        key_id: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sgl-grid: starting the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sgl-grid: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = match &cli.command {
        Command::Serve { listen, facilitator_url, x402_pay_to, .. } => CliOverrides {
            listen: listen.clone(),
            facilitator_url: facilitator_url.clone(),
            x402_pay_to: x402_pay_to.clone(),
            ..CliOverrides::default()
        },
        Command::Admin(_) | Command::Up(_) | Command::Chain(_) => CliOverrides::default(),
        Command::Openapi => {
            print!("{}", sgl_grid::routes::openapi::document_json());
            return Ok(());
        }
    };
    let config = load_config(&cli, overrides)?;
    match cli.command {
        Command::Serve { log_format, .. } => serve(config, &log_format).await,
        Command::Up(args) => up::up(config, *args).await,
        Command::Admin(args) => {
            let store = open_store(&config).await?;
            let output = admin::run(&store, admin_command(args.command), SystemClock.now_ms()).await?;
            store.close().await;
            if args.json {
                println!("{}", serde_json::to_string(&output.json)?);
            } else {
                println!("{}", output.text);
            }
            if output.json["sound"] == false {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Chain(ChainSub::Audit { json }) => chain_audit(&config, json).await,
        Command::Openapi => unreachable!("answered before the configuration is loaded"),
    }
}

/// `sgl-grid chain audit`.
async fn chain_audit(config: &Config, json: bool) -> anyhow::Result<()> {
    let chain = config.chain.clone().context("this grid has no [chain] (or SGL_CHAIN_RPC_URL) to audit against")?;
    let grid = GridChain::open(chain).await.context("opening the chain")?;
    let store = open_store(config).await?;
    let audit = sgl_grid::chain::audit::audit(&store, &grid).await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string(&audit)?);
    } else {
        println!(
            "{} wallet(s), {} on-chain payment(s), {} payout batch(es) and {} lease stream(s) checked",
            audit.wallets, audit.settlements, audit.payout_batches, audit.streams
        );
        for difference in &audit.differences {
            println!("difference: {difference}");
        }
        if audit.differences.is_empty() {
            println!("the ledger and the chain agree");
        }
    }
    if !audit.differences.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

fn load_config(cli: &Cli, overrides: CliOverrides) -> anyhow::Result<Config> {
    let file_text = match &cli.config {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let overrides =
        CliOverrides { data_dir: cli.data_dir.clone(), database_url: cli.database_url.clone(), ..overrides };
    Ok(Config::from_sources(file_text.as_deref(), &env, &overrides)?)
}

fn admin_command(sub: AdminSub) -> AdminCommand {
    match sub {
        AdminSub::ApiKey(ApiKeySub::Create { credits_usd, label, wallet }) => {
            AdminCommand::ApiKeyCreate { credits_usd, label, wallet }
        }
        AdminSub::ApiKey(ApiKeySub::List) => AdminCommand::ApiKeyList,
        AdminSub::ApiKey(ApiKeySub::Revoke { id }) => AdminCommand::ApiKeyRevoke { id },
        AdminSub::Credits(CreditsSub::Add { key_id, usd }) => AdminCommand::CreditsAdd { key_id, usd },
        AdminSub::Credits(CreditsSub::Balance { key_id }) => AdminCommand::CreditsBalance { key_id },
        AdminSub::Stake { wallet, amount } => AdminCommand::Stake { wallet, amount_sgl: amount },
        AdminSub::RegistrationCode { wallet, ttl_secs } => AdminCommand::RegistrationCode { wallet, ttl_secs },
        AdminSub::ApproveDevice { user_code, wallet } => AdminCommand::ApproveDevice { user_code, wallet },
        AdminSub::AllowBinary { sha256 } => AdminCommand::AllowBinary { sha256 },
        AdminSub::Ledger(LedgerSub::Check) => AdminCommand::LedgerCheck,
        AdminSub::Faucet { address, usdc } => AdminCommand::Faucet { address, usdc },
    }
}

/// Logs to stderr, as text or JSON lines, filtered by `RUST_LOG`.
pub(crate) fn init_logs(log_format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("sgl=info,sgl_grid=info,tower_http=warn"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    if log_format == "json" {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
}

async fn serve(config: Config, log_format: &str) -> anyhow::Result<()> {
    init_logs(log_format);
    let store = open_store(&config).await?;
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, backend = ?store.backend(), "sgl-grid listening");
    let data_dir = config.data_dir.clone();
    let chain = match config.chain.clone() {
        Some(chain) => Some(GridChain::open(chain).await.context("opening the chain ([chain])")?),
        None => None,
    };
    let state = AppState::on_chain(store.clone(), config, std::sync::Arc::new(SystemClock), chain);
    machines::install(&state, &data_dir, None).await;
    let orphans = sgl_grid::jobs::release_orphans(&state).await?;
    if orphans > 0 {
        tracing::warn!(n_jobs = orphans, "released the escrow of jobs left running by the previous process");
    }
    let uncredited = sgl_grid::payments::reconcile(&state).await?;
    if uncredited > 0 {
        tracing::warn!(n_payments = uncredited, "credited payments settled before the previous process stopped");
    }
    let replica = sgl_grid::cluster::join(&state).await?;
    let reaper = sgl_grid::jobs::spawn_reaper(state.clone(), std::time::Duration::from_secs(5));
    let follower = sgl_grid::chain::follow::spawn(state.clone());
    let served = sgl_grid::server::serve_grid(listener, state.clone(), shutdown_signal()).await;
    reaper.abort();
    follower.into_iter().for_each(|task| task.abort());
    state.machines().shutdown().await;
    sgl_grid::cluster::leave(&state).await;
    replica.into_iter().for_each(|task| task.abort());
    served?;
    store.close().await;
    tracing::info!("sgl-grid stopped");
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
