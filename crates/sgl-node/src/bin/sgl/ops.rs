//! Operator commands that talk to the grid about this node: `status`, `off-grid`/`on-grid`,
//! `price`, and the device-flow `login`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use sgl_node::agent::state::read_state;
use sgl_node::client::GridClient;
use sgl_node::init::{InitOptions, NODE_FILE, init};
use sgl_node::node::LocalNode;
use sgl_protocol::api::node::{DevicePollStatus, SetPriceRequest};

/// `sgl status`.
pub(crate) async fn status(config_dir: &Path, grid_url: Option<&str>, json: bool) -> anyhow::Result<()> {
    let node = LocalNode::load(config_dir, grid_url)?;
    let local = read_state(config_dir);
    let running = local.as_ref().is_some_and(|s| Path::new(&format!("/proc/{}", s.pid)).exists());
    let grid = node.client.node_status(&node.file.node_id, &node.file.auth_token).await;
    let payout = node.payout_address();
    if json {
        let grid = match &grid {
            Ok(status) => serde_json::to_value(status)?,
            Err(error) => json!({"error": error.to_string()}),
        };
        let value = json!({
            "node_id": node.file.node_id, "wallet": node.file.wallet_address, "tee_type": node.file.tee_type,
            "public_key": node.identity.public_key().to_b58(), "config_dir": config_dir, "grid_url": node.client.base(),
            "payout_address": payout, "running": running, "local": local, "grid": grid,
        });
        println!("{value}");
        return Ok(());
    }
    println!("Node          {}", node.file.node_id);
    println!("Wallet        {}", node.file.wallet_address);
    println!("Public key    {}", node.identity.public_key().to_b58());
    println!("TEE type      {}", node.file.tee_type);
    println!("Payout        {}", payout.as_deref().unwrap_or("none (no payout key in the config directory)"));
    println!("Config        {}", config_dir.display());
    println!("Grid          {}", node.client.base());
    print_local(local.as_ref(), running);
    match grid {
        Ok(status) => {
            println!("Grid status   {}", status.status);
            println!("Attested      {}", if status.attestation_verified { "yes" } else { "no" });
            println!("Reputation    {:.1}", status.reputation_score);
            println!("Jobs          {} done, {} failed", status.jobs_completed, status.jobs_failed);
            if let Some(stake) = status.stake_state {
                println!("Stake         {stake} ({} SGL)", status.stake_sgl.unwrap_or(0));
            }
            match status.not_serving.as_deref() {
                Some([]) => println!("Work          eligible"),
                Some(reasons) => {
                    println!("Work          none: the grid gives this node no jobs because");
                    for reason in reasons {
                        println!("              - {}", reason.advice());
                    }
                }
                None => {}
            }
        }
        Err(error) => println!("Grid status   unavailable: {error}"),
    }
    Ok(())
}

/// `sgl earnings`: what the operator wallet has earned, and where it is paid out.
pub(crate) async fn earnings(config_dir: &Path, grid_url: Option<&str>, json: bool) -> anyhow::Result<()> {
    let node = LocalNode::load(config_dir, grid_url)?;
    let earned = node.client.earnings(&node.file.node_id, &node.file.auth_token).await?;
    let payout = node.payout_address();
    if json {
        let mut value = serde_json::to_value(&earned)?;
        value["payout_address"] = json!(payout);
        println!("{value}");
    } else {
        println!("Wallet        {}", earned.wallet);
        println!(
            "Earned        ${:.6} ({} micro-dollars, 80% of what callers paid)",
            earned.earnings_usd, earned.earnings_micros
        );
        println!("This node     {} jobs completed", earned.jobs_completed);
        println!("Payout        {}", payout.as_deref().unwrap_or("no payout key in the config directory"));
    }
    Ok(())
}

/// `sgl off-grid` / `sgl on-grid`.
pub(crate) async fn set_off_grid(
    config_dir: &Path,
    grid_url: Option<&str>,
    off_grid: bool,
    json: bool,
) -> anyhow::Result<()> {
    let node = LocalNode::load(config_dir, grid_url)?;
    node.client.set_off_grid(&node.file.node_id, &node.file.auth_token, off_grid).await?;
    if json {
        println!("{}", json!({"node_id": node.file.node_id, "off_grid": off_grid}));
    } else if off_grid {
        println!("off-grid: the grid sends this node no work and counts no downtime; `sgl on-grid` to return");
    } else {
        println!("on-grid: the node takes work again");
    }
    Ok(())
}

/// What `sgl price` does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PriceAction {
    /// Print the prices.
    Show,
    /// Set a custom price.
    Set { model: String, input_per_m: f64, output_per_m: f64 },
    /// Back to the reference price.
    Reset { model: String },
}

/// `sgl price show|set|reset`.
pub(crate) async fn price(
    config_dir: &Path,
    grid_url: Option<&str>,
    action: PriceAction,
    json: bool,
) -> anyhow::Result<()> {
    let node = LocalNode::load(config_dir, grid_url)?;
    let request = match action {
        PriceAction::Show => None,
        PriceAction::Set { model, input_per_m, output_per_m } => {
            if !(input_per_m.is_finite() && output_per_m.is_finite() && input_per_m >= 0.0 && output_per_m >= 0.0) {
                bail!("prices must be finite and not negative (USD per million tokens)");
            }
            Some(SetPriceRequest::Set { model, input_per_m, output_per_m })
        }
        PriceAction::Reset { model } => Some(SetPriceRequest::Reset { model }),
    };
    if let Some(request) = &request {
        node.client.set_price(&node.file.node_id, &node.file.auth_token, request).await?;
    }
    let prices = node.client.prices(&node.file.node_id).await?;
    if json {
        println!("{}", serde_json::to_string(&prices)?);
        return Ok(());
    }
    if prices.prices.is_empty() {
        println!("no models priced yet: start the node with a model first");
    }
    for entry in &prices.prices {
        let custom = entry
            .custom
            .map_or_else(|| "none".to_owned(), |c| format!("${:.4} in / ${:.4} out", c.input_per_m, c.output_per_m));
        println!("{}", entry.model);
        println!(
            "  effective  ${:.4} in / ${:.4} out per 1M tokens",
            entry.effective.input_per_m, entry.effective.output_per_m
        );
        println!("  reference  ${:.4} in / ${:.4} out", entry.reference.input_per_m, entry.reference.output_per_m);
        println!("  custom     {custom}");
        if let Some(band) = entry.band {
            println!(
                "  allowed    ${:.4}–${:.4} in, ${:.4}–${:.4} out",
                band.min.input_per_m, band.max.input_per_m, band.min.output_per_m, band.max.output_per_m
            );
        }
    }
    println!("You earn 80% of what you charge.");
    Ok(())
}

/// `sgl login` without flags: the device flow. The operator approves in a browser with the
/// staked wallet; this command prints where and the code, and polls. It opens nothing itself
/// (the seed opened whatever URL the grid sent, S10).
pub(crate) async fn device_login(grid_url: &str, config_dir: &Path, json: bool) -> anyhow::Result<()> {
    let node_file = config_dir.join(NODE_FILE);
    if node_file.exists() {
        bail!(
            "{} already exists: this machine is registered (use another --config-dir for a second node)",
            node_file.display()
        );
    }
    let client = GridClient::new(grid_url)?;
    let start = client.device_start().await.context("starting the device login")?;
    if json {
        println!(
            "{}",
            json!({"verify_url": start.verify_url, "user_code": start.user_code, "expires_in": start.expires_in})
        );
    } else {
        println!("To approve this node, open {} and enter the code {}", start.verify_url, start.user_code);
        println!("Waiting for approval with the staked wallet...");
    }
    let interval = start.interval.max(2);
    let polls = if start.expires_in > 0 { start.expires_in / interval + 2 } else { 200 };
    for _ in 0..polls {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        match client.device_poll(&start.device_code).await {
            Ok(poll) if poll.status == DevicePollStatus::Approved => {
                let code =
                    poll.registration_code.context("the grid approved the login but sent no registration code")?;
                let wallet = poll.wallet_address.unwrap_or_default();
                let registered = init(InitOptions {
                    grid_url: grid_url.to_owned(),
                    config_dir: config_dir.to_owned(),
                    wallet,
                    registration_code: Some(code.expose_secret().to_owned()),
                    tee_type: None,
                    models: Vec::new(),
                    wallet_key: None,
                })
                .await?;
                if json {
                    println!("{}", json!({"node_id": registered.node_id, "public_key": registered.public_key}));
                } else {
                    println!(
                        "registered node {}; next: sgl attest, then sgl start --model-path MODEL.gguf",
                        registered.node_id
                    );
                }
                return Ok(());
            }
            Ok(poll) if poll.status == DevicePollStatus::Expired => {
                bail!("the login session expired; run sgl login again")
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "device poll failed; polling on"),
        }
    }
    bail!("no approval arrived in time; run sgl login again")
}

/// The local state lines of `sgl status`: the state file's view, and the compute counts.
fn print_local(local: Option<&sgl_node::agent::state::StateSnapshot>, running: bool) {
    match local {
        Some(state) if running => println!(
            "Local state   {} ({}), {} of {} slots busy, {} jobs finished, pid {}",
            state.state.as_str(),
            state.reason,
            state.active_jobs,
            state.slots,
            state.jobs_finished,
            state.pid
        ),
        Some(state) => println!("Local state   not running (last: {})", state.state.as_str()),
        None => println!("Local state   not running (never started)"),
    }
    if let Some(state) = local.filter(|s| s.compute_reported + s.compute_failed + u64::from(s.compute_running) > 0) {
        println!(
            "Compute       {} slices reported, {} failed, {} running",
            state.compute_reported, state.compute_failed, state.compute_running
        );
    }
}
