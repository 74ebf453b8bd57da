//! The operator's money: `sgl stake show|unstake|withdraw` and `sgl withdraw` (earnings out).
//! Reading the stake is public; everything else is signed by the operator wallet's own key
//! (`--wallet-key FILE` or `SGL_WALLET_KEY_FILE`), checked against the wallet acted for before
//! anything is sent, and never printed.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Args, Subcommand};
use sgl_node::client::{ClientError, GridClient};
use sgl_node::micros::{format_micros, format_usd, parse_micros};
use sgl_node::node::{LocalNode, NodeError};
use sgl_node::wallet_key::{WALLET_KEY_ENV, WalletKey};
use sgl_protocol::api::operator::{OperatorAction, OperatorActionResponse, PayoutStatus, StakeState, StakeStatus};

/// `sgl stake …`.
#[derive(Debug, Subcommand)]
pub(crate) enum StakeCommand {
    /// Show the operator wallet's stake: state, staked and unbonding SGL, when unbonded stake
    /// can be withdrawn, the grid's minimum and cooldown, unpaid earnings and slashes.
    Show {
        #[command(flatten)]
        wallet: WalletArg,
        /// Print one JSON object: the grid's answer as sent.
        #[arg(long)]
        json: bool,
    },
    /// Start unbonding stake (all of it unless --amount). The wallet's nodes get no work from
    /// then until the unbonded stake is withdrawn; withdraw it with `sgl stake withdraw` once
    /// the grid's cooldown has passed.
    Unstake {
        /// How much to unstake, in SGL (e.g. 1500 or 0.5) [default: all of it].
        #[arg(long, value_name = "SGL", value_parser = parse_micros)]
        amount: Option<i64>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Take out the unbonded stake once its cooldown has passed.
    Withdraw {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// On a grid that runs on a chain: stake and bond in its contracts from the operator
    /// wallet's own key (it pays the gas and holds the stake tokens). The grid admits the
    /// wallet's nodes once it has read the events, within seconds.
    Deposit(Box<crate::deposit::DepositArgs>),
}

/// Which wallet to act for.
#[derive(Debug, Args)]
pub(crate) struct WalletArg {
    /// The operator wallet [default: the wallet this node registered with, from node.json].
    #[arg(long)]
    pub(crate) wallet: Option<String>,
}

/// What a signed command needs.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// The operator wallet's key file: 64 hex digits (an EVM secret, like payout.key or
    /// sgl-grid's operator.key) or a Solana keypair (a JSON array of 64 numbers, as
    /// solana-keygen writes). It must be the key of the wallet acted for; it signs the request
    /// locally and is never sent or printed.
    #[arg(long, value_name = "FILE", env = WALLET_KEY_ENV)]
    wallet_key: PathBuf,
    #[command(flatten)]
    wallet: WalletArg,
    /// Print one JSON object: the grid's answer as sent.
    #[arg(long)]
    json: bool,
}

/// `sgl withdraw`.
#[derive(Debug, Args)]
pub(crate) struct WithdrawArgs {
    /// How much to pay out, in US dollars (e.g. 12.50) [default: all unpaid earnings].
    #[arg(long, value_name = "USD", value_parser = parse_micros)]
    amount: Option<i64>,
    /// The EVM address receiving USDC [default: this node's payout address, from payout.key].
    #[arg(long, value_name = "0x…")]
    to: Option<String>,
    #[command(flatten)]
    key: KeyArgs,
}

/// The grid and the wallet a command is about, and the node when this machine is one.
pub(crate) struct Target {
    pub(crate) client: GridClient,
    pub(crate) wallet: String,
    node: Option<LocalNode>,
}

impl Target {
    /// This node's wallet and grid; `--wallet` overrides the wallet, and with it no node is
    /// needed (the grid is then `--orchestrator-url` or the default).
    pub(crate) fn resolve(config_dir: &Path, grid_url: Option<&str>, wallet: &WalletArg) -> anyhow::Result<Self> {
        match (LocalNode::load(config_dir, grid_url), &wallet.wallet) {
            (Ok(node), wallet) => {
                let wallet = wallet.clone().unwrap_or_else(|| node.file.wallet_address.clone());
                Ok(Self { client: node.client.clone(), wallet, node: Some(node) })
            }
            (Err(NodeError::NotRegistered(_)), Some(wallet)) => {
                let client = GridClient::new(grid_url.unwrap_or(crate::DEFAULT_GRID))?;
                Ok(Self { client, wallet: wallet.clone(), node: None })
            }
            (Err(error @ NodeError::NotRegistered(_)), None) => {
                Err(anyhow::Error::new(error).context("no wallet to act for (pass --wallet)"))
            }
            (Err(error), _) => Err(error.into()),
        }
    }

    /// Loads the key (warning about loose permissions), signs `action` for the wallet (refused
    /// locally if the key is another wallet's) and sends it.
    async fn act(&self, key_file: &Path, action: OperatorAction) -> anyhow::Result<OperatorActionResponse> {
        let loaded = WalletKey::load(key_file)?;
        if let Some(mode) = loaded.loose_mode {
            eprintln!("warning: other users can access {} (mode {mode:o}); chmod 600 it", key_file.display());
        }
        let request = loaded.key.sign_action(&self.wallet, action)?;
        self.client.operator_action(&self.wallet, &request).await.map_err(grid_error)
    }
}

/// A grid error as one line, with a hint when the grid predates the operator API.
pub(crate) fn grid_error(error: ClientError) -> anyhow::Error {
    match &error {
        ClientError::Api { status: 404 | 405, message } if message.trim().is_empty() => {
            anyhow::anyhow!("{error}this grid has no operator API (/grid/operators); it may be an older sgl-grid")
        }
        _ => error.into(),
    }
}

/// `sgl stake show|unstake|withdraw`.
pub(crate) async fn stake(config_dir: &Path, grid_url: Option<&str>, command: &StakeCommand) -> anyhow::Result<()> {
    match command {
        StakeCommand::Show { wallet, json } => {
            let target = Target::resolve(config_dir, grid_url, wallet)?;
            let status = target.client.stake(&target.wallet).await.map_err(grid_error)?;
            if *json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                print_stake(&status);
            }
        }
        StakeCommand::Unstake { amount, key } => {
            let target = Target::resolve(config_dir, grid_url, &key.wallet)?;
            let response = target.act(&key.wallet_key, OperatorAction::Unstake { amount_micros: *amount }).await?;
            eprintln!("warning: this wallet's nodes get no work while stake is unstaking, until it is withdrawn");
            if key.json {
                println!("{}", serde_json::to_string(&response)?);
                return Ok(());
            }
            let stake = &response.stake;
            let (unbonding, staked) = (format_micros(stake.unbonding_micros), format_micros(stake.staked_micros));
            println!("{}: {unbonding} SGL unbonding, {staked} SGL still staked", state_name(stake.state));
            match &stake.unbonding_available_at {
                Some(at) => println!("withdrawable {}: then run sgl stake withdraw", when(at)),
                None => println!("withdrawable after the grid's cooldown ({})", duration(stake.cooldown_secs)),
            }
        }
        StakeCommand::Withdraw { key } => {
            let target = Target::resolve(config_dir, grid_url, &key.wallet)?;
            let response = target.act(&key.wallet_key, OperatorAction::WithdrawStake).await?;
            if key.json {
                println!("{}", serde_json::to_string(&response)?);
                return Ok(());
            }
            println!("withdrew {} SGL of stake", format_micros(response.withdrawn_micros.unwrap_or(0)));
            let stake = &response.stake;
            println!("now {}: {} SGL staked", state_name(stake.state), format_micros(stake.staked_micros));
        }
        StakeCommand::Deposit(args) => crate::deposit::run(config_dir, grid_url, args).await?,
    }
    Ok(())
}

/// `sgl withdraw`: pays earnings out to `--to` or the node's payout address.
pub(crate) async fn withdraw(config_dir: &Path, grid_url: Option<&str>, args: &WithdrawArgs) -> anyhow::Result<()> {
    let target = Target::resolve(config_dir, grid_url, &args.key.wallet)?;
    let to = match &args.to {
        Some(to) => to.trim().to_owned(),
        None => match &target.node {
            Some(node) => node.payout_address().context("this node has no payout.key: pass --to 0x…")?,
            None => anyhow::bail!("no node here to take a payout address from: pass --to 0x…"),
        },
    };
    to.parse::<sgl_protocol::payout::EvmAddress>().context("--to")?;
    let action = OperatorAction::Payout { amount_micros: args.amount, to };
    let response = target.act(&args.key.wallet_key, action).await?;
    if args.key.json {
        println!("{}", serde_json::to_string(&response)?);
        return Ok(());
    }
    match &response.payout {
        Some(receipt) if receipt.status == PayoutStatus::Paid => {
            println!("paid {} to {}", format_usd(receipt.paid_micros), receipt.to);
            println!("network       {}", receipt.network);
            println!("transaction   {}", receipt.transaction.as_deref().unwrap_or("-"));
        }
        Some(receipt) => {
            println!("queued {} for {} on {}", format_usd(receipt.paid_micros), receipt.to, receipt.network);
            println!("the grid pays it with its next batch on the chain (GET /grid/operators/{{wallet}}/payouts)");
            println!("payout        {}", receipt.id);
        }
        None => println!("the grid paid nothing out"),
    }
    println!("unpaid now    {}", format_usd(response.stake.earnings_micros));
    Ok(())
}

fn state_name(state: StakeState) -> &'static str {
    match state {
        StakeState::Staked => "staked",
        StakeState::BelowMinimum => "below minimum",
        StakeState::Unstaking => "unstaking",
        StakeState::NotBonded => "not bonded",
    }
}

fn print_stake(status: &StakeStatus) {
    let work = match status.state {
        StakeState::Staked => "its nodes receive work",
        StakeState::BelowMinimum => "its nodes get no work until it is topped up",
        StakeState::Unstaking => "its nodes get no work until the unbonding stake is withdrawn",
        StakeState::NotBonded => {
            "its nodes get no work until it bonds in the grid's ProviderRegistry (sgl stake deposit --bond)"
        }
    };
    println!("Wallet        {}", status.wallet);
    println!("State         {} ({work})", state_name(status.state));
    println!("Staked        {} SGL (minimum {} SGL)", format_micros(status.staked_micros), status.min_stake_sgl);
    let unbonding = format_micros(status.unbonding_micros);
    match (&status.unbonding_available_at, status.withdrawable) {
        _ if status.unbonding_micros == 0 => println!("Unbonding     0 SGL"),
        (_, true) => println!("Unbonding     {unbonding} SGL, withdrawable now (sgl stake withdraw)"),
        (Some(at), false) => println!("Unbonding     {unbonding} SGL, withdrawable {}", when(at)),
        (None, false) => println!("Unbonding     {unbonding} SGL"),
    }
    println!("Cooldown      {}", duration(status.cooldown_secs));
    println!("Unpaid        {} (sgl withdraw pays it out)", format_usd(status.earnings_micros));
    if status.slashes.is_empty() {
        println!("Slashes       none");
        return;
    }
    println!("Slashes       {}", status.slashes.len());
    for slash in &status.slashes {
        let job = slash.job_id.as_deref().map(|job| format!(", job {job}")).unwrap_or_default();
        let node = slash.node_id.as_deref().map(|node| format!(", node {node}")).unwrap_or_default();
        println!("  {}  {} SGL  {}{job}{node}", slash.at, format_micros(slash.amount_micros), slash.reason);
    }
}

/// `at` (RFC 3339) with how far away it is, when it parses.
fn when(at: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    match unix_from_rfc3339(at).map(|t| t - i64::try_from(now).unwrap_or(i64::MAX)) {
        Some(ahead) if ahead > 0 => format!("at {at} (in {})", duration(ahead.unsigned_abs())),
        Some(_) => format!("at {at} (now)"),
        None => format!("at {at}"),
    }
}

/// Seconds as `7d`, `6d 23h`, `2h 5m`, `45s`: the two largest units.
fn duration(secs: u64) -> String {
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |left, (size, name)| {
            let n = *left / size;
            *left %= size;
            Some((n, name))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n}{name}"))
        .collect();
    if parts.is_empty() { "0s".to_owned() } else { parts.join(" ") }
}

/// Unix seconds of an RFC 3339 time (fractions ignored), through [`sgl_protocol::rfc3339`].
fn unix_from_rfc3339(text: &str) -> Option<i64> {
    sgl_protocol::rfc3339::parse(text.trim()).and_then(|secs| i64::try_from(secs).ok())
}

#[cfg(test)]
mod tests {
    //! Times and durations as the commands print them.

    use super::*;

    #[test]
    fn rfc3339_times_and_durations() {
        assert_eq!(unix_from_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_from_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(unix_from_rfc3339("2026-11-21T23:49:50.999Z"), Some(1_795_304_990));
        assert_eq!(unix_from_rfc3339("2026-11-21T23:49:50+00:00"), Some(1_795_304_990));
        assert_eq!(unix_from_rfc3339("yesterday"), None);
        assert_eq!(duration(604_800), "7d");
        assert_eq!(duration(604_799), "6d 23h");
        assert_eq!(duration(7_500), "2h 5m");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(0), "0s");
        assert_eq!(when("2000-01-01T00:00:00Z"), "at 2000-01-01T00:00:00Z (now)");
        assert_eq!(when("soon"), "at soon");
    }
}
