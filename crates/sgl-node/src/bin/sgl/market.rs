//! The order book from the operator's side: `sgl price policy show|set|unset|edit` (what this
//! node bids, kept in `price-policy.toml` in its config directory, read by the running node at
//! every round of bids) and `sgl bids` (the bids it placed, won and lost, and why).

use std::path::Path;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use sgl_node::detect;
use sgl_node::micros::{format_micros, parse_micros};
use sgl_node::node::LocalNode;
use sgl_node::price_policy::{ClassPrice, PricePolicy, policy_path};
use sgl_protocol::api::market::{BidState, BidView, LostReason, Resources};
use sgl_protocol::compute::JobClass;

/// `sgl price policy …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Print the policy: the resources this node offers and its price per class.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Price a class (`--class wasm --usd-per-hour 0.12`), set the resources this node offers
    /// (`--cpu-cores 4 --memory-mb 8192 --gpus 0`), or both. A running node bids by the new
    /// policy from its next round (every 2 s).
    Set(Box<SetPolicyArgs>),
    /// Stop bidding on a class.
    Unset {
        /// The class.
        #[arg(long)]
        class: JobClass,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open the policy in $VISUAL or $EDITOR; it is checked when the editor exits, and a policy
    /// that does not parse is not kept.
    Edit,
}

/// `sgl price policy set`.
#[derive(Debug, Args)]
pub(crate) struct SetPolicyArgs {
    /// The job class to price: wasm, llm, train, image or render.
    #[arg(long, requires = "usd_per_hour")]
    class: Option<JobClass>,
    /// Its price per hour in USD, at most six decimals (0.12). The node never bids above an
    /// order's maximum: an order that pays less is skipped.
    #[arg(long, requires = "class", value_name = "USD")]
    usd_per_hour: Option<String>,
    /// Bid only on leases of at least this many seconds.
    #[arg(long, requires = "class", value_name = "SECS")]
    min_duration_secs: Option<u64>,
    /// Bid only on leases of at most this many seconds.
    #[arg(long, requires = "class", value_name = "SECS")]
    max_duration_secs: Option<u64>,
    /// CPU cores offered [default: what the machine has].
    #[arg(long)]
    cpu_cores: Option<u32>,
    /// Memory offered, MiB [default: what the machine has].
    #[arg(long)]
    memory_mb: Option<u32>,
    /// GPUs offered [default: what the machine has].
    #[arg(long)]
    gpus: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What the machine has: the resources a policy without `[resources]` offers.
fn machine() -> Resources {
    let hardware = detect::detect();
    Resources {
        cpu_cores: hardware.cpu_cores,
        memory_mb: (hardware.memory_gb * 1024.0).floor() as u32,
        gpus: u32::try_from(hardware.gpus.len()).unwrap_or(u32::MAX),
    }
}

/// `sgl price policy …`.
pub(crate) fn policy(config_dir: &Path, command: &PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Show { json } => show(config_dir, &load(config_dir)?, *json),
        PolicyCommand::Set(args) => set(config_dir, args),
        PolicyCommand::Unset { class, json } => {
            let mut policy = load(config_dir)?;
            if policy.classes.remove(class).is_none() {
                bail!("the policy has no price for {class}");
            }
            policy.save(config_dir)?;
            show(config_dir, &policy, *json)
        }
        PolicyCommand::Edit => edit(config_dir),
    }
}

fn load(config_dir: &Path) -> anyhow::Result<PricePolicy> {
    Ok(PricePolicy::load(config_dir)?.unwrap_or_default())
}

fn set(config_dir: &Path, args: &SetPolicyArgs) -> anyhow::Result<()> {
    let sets_resources = args.cpu_cores.is_some() || args.memory_mb.is_some() || args.gpus.is_some();
    if args.class.is_none() && !sets_resources {
        bail!("nothing to set: give --class and --usd-per-hour, or --cpu-cores, --memory-mb or --gpus");
    }
    let mut policy = load(config_dir)?;
    if let (Some(class), Some(usd)) = (args.class, &args.usd_per_hour) {
        let micros = parse_micros(usd).with_context(|| format!("--usd-per-hour {usd}"))?;
        if let (Some(min), Some(max)) = (args.min_duration_secs, args.max_duration_secs)
            && min > max
        {
            bail!("--min-duration-secs {min} is above --max-duration-secs {max}");
        }
        let price = ClassPrice {
            price_per_hour_micros: micros,
            min_duration_secs: args.min_duration_secs,
            max_duration_secs: args.max_duration_secs,
        };
        policy.classes.insert(class, price);
    }
    if sets_resources {
        let base = policy.resources.unwrap_or_else(machine);
        let resources = Resources {
            cpu_cores: args.cpu_cores.unwrap_or(base.cpu_cores),
            memory_mb: args.memory_mb.unwrap_or(base.memory_mb),
            gpus: args.gpus.unwrap_or(base.gpus),
        };
        if resources.cpu_cores == 0 || resources.memory_mb == 0 {
            bail!("offer at least 1 CPU core and 1 MiB of memory");
        }
        policy.resources = Some(resources);
    }
    policy.save(config_dir)?;
    show(config_dir, &policy, args.json)
}

fn edit(config_dir: &Path) -> anyhow::Result<()> {
    let path = policy_path(config_dir);
    let before = load(config_dir)?;
    let original = std::fs::read_to_string(&path).unwrap_or_else(|_| before.to_toml());
    let scratch = tempfile::Builder::new().prefix("price-policy-").suffix(".toml").tempfile_in(config_dir)?;
    std::fs::write(scratch.path(), &original)?;
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_owned());
    // The editor may carry arguments (`code --wait`), as shells run it.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(scratch.path())
        .status()
        .with_context(|| format!("running the editor {editor:?}"))?;
    if !status.success() {
        bail!("the editor {editor:?} failed ({status}); the policy is unchanged");
    }
    let edited = std::fs::read_to_string(scratch.path())?;
    let policy = PricePolicy::parse(&edited).context("the policy is unchanged")?;
    std::fs::write(&path, edited).with_context(|| format!("writing {}", path.display()))?;
    show(config_dir, &policy, false)
}

fn show(config_dir: &Path, policy: &PricePolicy, json: bool) -> anyhow::Result<()> {
    let path = policy_path(config_dir);
    if json {
        let classes: serde_json::Map<String, serde_json::Value> = policy
            .classes
            .iter()
            .map(|(class, price)| {
                let value = json!({
                    "price_per_hour_micros": price.price_per_hour_micros,
                    "min_duration_secs": price.min_duration_secs, "max_duration_secs": price.max_duration_secs,
                });
                (class.as_str().to_owned(), value)
            })
            .collect();
        println!("{}", json!({"path": path, "resources": policy.resources, "classes": classes}));
        return Ok(());
    }
    println!("Policy        {}", path.display());
    let offered = policy.resources.unwrap_or_else(machine);
    let whose = if policy.resources.is_some() { "" } else { " (what the machine has)" };
    println!("Offers        {} cores, {} MiB, {} GPU(s){whose}", offered.cpu_cores, offered.memory_mb, offered.gpus);
    if policy.classes.is_empty() {
        println!(
            "Classes       none priced: the node bids on nothing (sgl price policy set --class wasm --usd-per-hour 0.12)"
        );
    }
    for (class, price) in &policy.classes {
        let durations = match (price.min_duration_secs, price.max_duration_secs) {
            (None, None) => String::new(),
            (Some(min), None) => format!(", leases of at least {min} s"),
            (None, Some(max)) => format!(", leases of at most {max} s"),
            (Some(min), Some(max)) => format!(", leases of {min} to {max} s"),
        };
        println!("  {:<8} ${} per hour{durations}", class.as_str(), format_micros(price.price_per_hour_micros));
    }
    Ok(())
}

/// `sgl bids`: this node's bids, the last placed first.
pub(crate) async fn bids(config_dir: &Path, grid_url: Option<&str>, limit: u32, json: bool) -> anyhow::Result<()> {
    let node = LocalNode::load(config_dir, grid_url)?;
    let list = node.client.bids(&node.file.auth_token, limit.clamp(1, 500)).await?;
    if json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    if list.data.is_empty() {
        println!("no bids yet: the node bids on open orders its price policy prices (sgl price policy show)");
    }
    for bid in &list.data {
        println!("{}", describe(bid));
    }
    Ok(())
}

/// One line per bid: the order, its class and duration, the price, and what became of it.
fn describe(bid: &BidView) -> String {
    let outcome = match (bid.state, bid.lost_reason) {
        (BidState::Pending, _) => "pending: the order's window is open".to_owned(),
        (BidState::Won, _) => format!("won: lease {}", bid.lease_id.as_deref().unwrap_or("?")),
        (BidState::Lost, Some(reason)) => format!("lost: {}", why(reason)),
        (BidState::Lost, None) => "lost".to_owned(),
    };
    format!(
        "{}  {:<6} {:>7} s  ${}/h  {outcome}",
        bid.order_id,
        bid.class.as_str(),
        bid.duration_secs,
        format_micros(bid.price_per_hour_micros)
    )
}

fn why(reason: LostReason) -> String {
    match reason {
        LostReason::Outbid { winning_price_micros } => {
            format!("outbid, a bid of ${}/h won", format_micros(winning_price_micros))
        }
        LostReason::LowerReputation => "a node of higher reputation bid the same price".to_owned(),
        LostReason::LaterBid => "a node of the same reputation bid the same price first".to_owned(),
        LostReason::OrderCancelled => "the requester cancelled the order".to_owned(),
        LostReason::NodeIneligible => {
            "the node could not take work when bids closed (offline, off-grid, below stake or not attested)".to_owned()
        }
    }
}
