//! `sgl-cloud`, the caller CLI: sealed and verified chat (streaming by default), plain chat,
//! discovery, API keys and credits, general compute (job bundles and jobs) and rented machines,
//! all through `sgl-client`.
//!
//! Every command takes `--json` and then prints exactly one JSON object on stdout (interactive
//! chat prints one per turn, `jobs logs --follow` one per event). Errors are one line on
//! stderr; the exit code is 1 when something failed verification (a node's answer, a bundle, a
//! blob or a job's receipts) and 2 for every other failure (clap's usage errors are 2 too).

mod bundle;
mod bundle_dir;
mod chat;
mod classes;
mod jobs;
mod machines;
mod market;
mod requester_key;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;
use sgl_client::{ApiKey, Client};

/// Default grid, a local `sgl-grid`.
const DEFAULT_GRID_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Parser)]
#[command(
    name = "sgl-cloud",
    version,
    about = "Call an SGL grid: sealed, verified chat, discovery, keys and credits, and jobs"
)]
struct Cli {
    /// The grid's base URL.
    #[arg(long, global = true, env = "SGL_GRID_URL", default_value = DEFAULT_GRID_URL)]
    grid_url: String,
    /// Your API key (`x402c_…`).
    #[arg(long, global = true, env = "COMPUTE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Chat with a model: sealed to a verified node and streamed, unless told otherwise.
    Chat(chat::ChatArgs),
    /// The models live nodes serve.
    Models,
    /// The nodes serving a model, cheapest first.
    Providers {
        /// The model (default: the first listed).
        #[arg(long)]
        model: Option<String>,
    },
    /// Node counts, overall and per tier.
    Capacity,
    /// Reference prices per model.
    Pricing,
    /// Your account's API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Your credits.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// Make, sign and check job bundles.
    #[command(long_about = bundle::ABOUT, after_help = bundle::EXAMPLE)]
    Bundle {
        #[command(subcommand)]
        command: bundle::BundleCommand,
    },
    /// Run bundles on the grid: submit, follow, inspect, download, cancel.
    #[command(long_about = jobs::ABOUT, after_help = jobs::EXAMPLE)]
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Train a small MNIST classifier on the grid, one slice per epoch.
    #[command(long_about = classes::train::ABOUT, after_help = classes::train::EXAMPLE)]
    Train(classes::train::TrainArgs),
    /// Generate images on the grid with an sgl-image pipeline.
    #[command(long_about = classes::image::ABOUT, after_help = classes::image::EXAMPLE)]
    Image(classes::image::ImageArgs),
    /// Render frames of a Blender scene on the grid, whole or in bands of rows.
    #[command(long_about = classes::render::ABOUT, after_help = classes::render::EXAMPLE)]
    Render(classes::render::RenderArgs),
    /// Rent whole machines by the hour: plans, provision, SSH, extend, resize, destroy.
    #[command(long_about = machines::ABOUT, after_help = machines::EXAMPLE)]
    Machines {
        #[command(subcommand)]
        command: machines::MachinesCommand,
    },
    /// Order work that lasts: nodes bid, the cheapest wins, its lease is paid by the second.
    #[command(long_about = market::ABOUT, after_help = market::EXAMPLE)]
    Market {
        #[command(subcommand)]
        command: market::MarketCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key in your account, optionally moving some of your credits to it.
    Create {
        /// A label to recognise it by.
        #[arg(long)]
        label: Option<String>,
        /// Credits to move to it, in USD.
        #[arg(long)]
        credits_usd: Option<f64>,
    },
    /// List your account's keys.
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key's id (from `keys list`).
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum CreditsCommand {
    /// The calling key's balance.
    Balance,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let json = cli.json;
    let says_verified =
        matches!(cli.command, Command::Chat(_) | Command::Bundle { command: bundle::BundleCommand::Verify { .. } });
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let (message, code) = describe(&error);
            eprintln!("error: {message}");
            if json {
                let mut body = serde_json::json!({"error": message});
                if says_verified {
                    body["verified"] = false.into();
                }
                if let Some(ended) = error.downcast_ref::<jobs::JobEnded>() {
                    body["job"] = serde_json::to_value(&ended.job).unwrap_or_default();
                }
                println!("{body}");
            }
            ExitCode::from(code)
        }
    }
}

/// Where the requester key lives by default, from the environment (read here only).
fn key_defaults() -> requester_key::KeyLookup {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    requester_key::KeyLookup { explicit: None, xdg_config_home: var("XDG_CONFIG_HOME"), home: var("HOME") }
}

/// One line describing the failure, and the exit code: 1 for verification failures, else 2.
fn describe(error: &anyhow::Error) -> (String, u8) {
    let client_error = error.chain().find_map(|cause| cause.downcast_ref::<sgl_client::Error>());
    let message = match client_error {
        Some(sgl_client::Error::MissingApiKey) => "no API key: pass --api-key <KEY> or set COMPUTE_API_KEY".to_owned(),
        // reqwest's chain repeats itself; the URL and the root cause say it all.
        Some(sgl_client::Error::Transport(transport)) => {
            let mut root: &dyn std::error::Error = transport;
            while let Some(source) = root.source() {
                root = source;
            }
            let url = transport.url().map_or_else(String::new, |u| format!(" at {u}"));
            format!("cannot reach the grid{url}: {root}")
        }
        // Our errors' messages already include their sources.
        Some(client_error) => client_error.to_string(),
        None => format!("{error:#}"),
    };
    let bundle_problem = error.chain().any(|cause| cause.is::<bundle_dir::BundleProblem>());
    let code = if bundle_problem || client_error.is_some_and(sgl_client::Error::is_verification) { 1 } else { 2 };
    (message.replace(['\n', '\r'], " "), code)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    // Bundles are local: no grid, no API key.
    if let Command::Bundle { command } = cli.command {
        return bundle::run(command, &key_defaults(), json);
    }
    let api_key = cli.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(ApiKey::new);
    let client = Client::new(&cli.grid_url, api_key)?;
    match cli.command {
        Command::Chat(args) => chat::run(&client, args, json).await,
        Command::Models => {
            let models = client.models().await?;
            output(json, &models, || models.data.iter().map(|m| m.id.clone()).collect::<Vec<_>>().join("\n"))
        }
        Command::Providers { model } => {
            let model = match model {
                Some(model) => model,
                None => chat::default_model(&client).await?,
            };
            let providers = client.providers(&model).await?;
            output(json, &providers, || {
                let mut lines = vec![format!("{} provider(s) for {}", providers.count, providers.model)];
                lines.extend(providers.providers.iter().map(|p| {
                    format!(
                        "{}  in ${:.4}/M  out ${:.4}/M  load {:.0}%  {}",
                        p.node_id,
                        p.input_per_m,
                        p.output_per_m,
                        p.load.unwrap_or(0.0) * 100.0,
                        p.tee_type.as_deref().unwrap_or("-")
                    )
                }));
                lines.join("\n")
            })
        }
        Command::Capacity => {
            let capacity = client.capacity().await?;
            output(json, &capacity, || {
                let mut lines = vec![format!(
                    "{} nodes, {} active, {} available",
                    capacity.total_nodes, capacity.active_nodes, capacity.available_nodes
                )];
                lines.extend(capacity.by_tee_type.iter().map(|t| {
                    format!(
                        "  {}: {} nodes, {} active, {} available",
                        t.tee_type, t.total_nodes, t.active_nodes, t.available_nodes
                    )
                }));
                lines.join("\n")
            })
        }
        Command::Pricing => {
            let pricing = client.pricing().await?;
            output(json, &pricing, || {
                let lines = pricing.pricing.iter().map(|p| {
                    format!(
                        "{}  in ${}/1k  out ${}/1k",
                        p.model, p.price_per_1k_input_tokens_usd, p.price_per_1k_output_tokens_usd
                    )
                });
                lines.collect::<Vec<_>>().join("\n")
            })
        }
        Command::Keys { command } => keys(&client, command, json).await,
        Command::Jobs { command } => jobs::run(&client, command, &key_defaults(), json).await,
        Command::Train(args) => classes::train::run(&client, &args, &key_defaults(), json).await,
        Command::Image(args) => classes::image::run(&client, &args, &key_defaults(), json).await,
        Command::Render(args) => classes::render::run(&client, &args, &key_defaults(), json).await,
        Command::Machines { command } => machines::run(&client, command, json).await,
        Command::Market { command } => market::run(&client, command, json).await,
        Command::Bundle { .. } => unreachable!("handled above"),
        Command::Credits { command: CreditsCommand::Balance } => {
            let balance = client.credits_balance().await?;
            output(json, &balance, || format!("${:.6} (key {})", balance.balance_usd, balance.api_key_id))
        }
    }
}

async fn keys(client: &Client, command: KeysCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { label, credits_usd } => {
            let created = client.keys_create(label.as_deref(), credits_usd).await?;
            output(json, &created, || {
                format!(
                    "{}\n(key {} \"{}\", ${:.6} of credits; store it now, it is not shown again)",
                    created.api_key.expose_secret(),
                    created.id,
                    created.label,
                    micros_to_usd(created.credits_micros)
                )
            })
        }
        KeysCommand::List => {
            let list = client.keys_list().await?;
            output(json, &list, || {
                let rows = list.data.iter().map(|k| {
                    let state = if k.revoked { "revoked" } else { "live" };
                    format!(
                        "{:>5}  {:<14} {:<8} ${:<12.6} {}  {}",
                        k.id,
                        k.prefix,
                        state,
                        micros_to_usd(k.credits_micros),
                        k.created_at,
                        k.label
                    )
                });
                rows.collect::<Vec<_>>().join("\n")
            })
        }
        KeysCommand::Revoke { id } => {
            let revoked = client.keys_revoke(id).await?;
            output(json, &revoked, || format!("key {} revoked", revoked.id))
        }
    }
}

/// Prints `value` as JSON, or the text `render` makes.
pub(crate) fn output<T: Serialize>(json: bool, value: &T, render: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value).context("cannot print the answer as JSON")?);
    } else {
        let text = render();
        if !text.is_empty() {
            println!("{text}");
        }
    }
    Ok(())
}

pub(crate) fn micros_to_usd(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    //! Exit codes and messages: verification failures are 1, everything else 2, one line each.

    use super::*;

    #[test]
    fn verification_failures_exit_1_and_everything_else_2() {
        let verification = anyhow::Error::from(sgl_client::Error::from(sgl_client::VerifyError::BadSignature));
        let (message, code) = describe(&verification);
        assert_eq!(code, 1);
        assert!(message.starts_with("verification failed: "), "{message}");
        let missing = anyhow::Error::from(sgl_client::Error::MissingApiKey);
        assert_eq!(describe(&missing), ("no API key: pass --api-key <KEY> or set COMPUTE_API_KEY".to_owned(), 2));
        let problem = anyhow::Error::from(bundle_dir::BundleProblem::Unlisted("x".into())).context("refused");
        assert_eq!(describe(&problem).1, 1, "a bundle that does not verify, under context");
        let job_check = sgl_client::JobVerifyError::NoReceipts(0);
        assert_eq!(describe(&anyhow::Error::from(sgl_client::Error::from(job_check))).1, 1);
        let other = anyhow::anyhow!("first line\nsecond line");
        assert_eq!(describe(&other), ("first line second line".to_owned(), 2));
    }

    #[test]
    fn the_command_line_parses_global_flags_after_the_subcommand() {
        let cli = Cli::try_parse_from(["sgl-cloud", "chat", "--json", "--no-stream", "--model", "m", "hello", "there"])
            .unwrap();
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Chat(_)));
        assert!(Cli::try_parse_from(["sgl-cloud", "keys", "revoke"]).is_err(), "an id is required");
    }
}
