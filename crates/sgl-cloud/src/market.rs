//! `sgl-cloud market …`: orders for work that lasts on the grid's order book, paid from the API
//! key's credits by the second of the lease.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use sgl_client::Client;
use sgl_protocol::api::market::{BidView, LeaseView, OrderRequest, OrderState, OrderView, Resources};
use sgl_protocol::compute::JobClass;

use crate::{micros_to_usd, output};

pub(crate) const ABOUT: &str = "Order work that lasts from the grid's order book: nodes bid on your order for a few \
seconds, the cheapest eligible node wins (at one price the one of higher reputation), and its lease is paid by the \
second from a deposit. Your maximum price over the whole duration is held from your credits when you order; the \
excess over the winning bid comes back at the match, and what the lease did not stream comes back when it ends.";

pub(crate) const EXAMPLE: &str = "Examples:
  sgl-cloud market order --class wasm --cpu-cores 1 --memory-mb 1024 --duration-secs 600 --max-usd-per-hour 0.50 --wait
  sgl-cloud market orders
  sgl-cloud market show mo_…
  sgl-cloud market lease show ml_…
  sgl-cloud market lease complete ml_…";

#[derive(Debug, Subcommand)]
pub(crate) enum MarketCommand {
    /// Place an order (its maximum over the duration is held from your credits).
    Order(OrderArgs),
    /// Your orders, newest first.
    Orders,
    /// One order with its bids and lease.
    Show {
        /// The order's id (`mo_…`).
        id: String,
    },
    /// Cancel an order still taking bids; its hold comes back whole.
    Cancel {
        /// The order's id.
        id: String,
    },
    /// A lease: show it, or end it (what streamed is paid, the rest refunded).
    Lease {
        #[command(subcommand)]
        command: LeaseCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum LeaseCommand {
    /// The lease with what it streamed so far.
    Show {
        /// The lease's id (`ml_…`).
        id: String,
    },
    /// End it as done.
    Complete {
        /// The lease's id.
        id: String,
    },
    /// Cancel it.
    Cancel {
        /// The lease's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct OrderArgs {
    /// The class of work: wasm, llm, train, image or render.
    #[arg(long)]
    class: JobClass,
    /// CPU cores the provider must offer.
    #[arg(long, default_value_t = 1)]
    cpu_cores: u32,
    /// Memory the provider must offer, MiB.
    #[arg(long, default_value_t = 512)]
    memory_mb: u32,
    /// GPUs the provider must offer.
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// How long the lease lasts, seconds (at most 30 days).
    #[arg(long)]
    duration_secs: u64,
    /// The most you pay per hour, in USD (at most six decimals).
    #[arg(long, value_name = "USD")]
    max_usd_per_hour: String,
    /// How long nodes may bid, seconds (1 to 60) [default: the grid's, 5].
    #[arg(long)]
    bid_window_secs: Option<u32>,
    /// Run this compute job (of yours, redundancy 1) only on the lease's node; its end
    /// completes the lease.
    #[arg(long, value_name = "JOB_ID")]
    job: Option<String>,
    /// Wait until the order is matched (or found unfilled) and print its lease.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds (the order stands).
    #[arg(long, default_value_t = 120)]
    wait_timeout: u64,
}

/// USD with at most six decimals (`0.5`, `12`, `.000001`), as micro-USD, exactly.
fn usd_to_micros(text: &str) -> anyhow::Result<i64> {
    let trimmed = text.trim();
    let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) || fraction.len() > 6 {
        bail!("{text:?} is not an amount in USD with at most six decimals");
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().context("too large")? };
    let fraction: i64 = format!("{fraction:0<6}").parse().unwrap_or(0);
    whole.checked_mul(1_000_000).and_then(|w| w.checked_add(fraction)).context("the amount is too large")
}

pub(crate) async fn run(client: &Client, command: MarketCommand, json: bool) -> anyhow::Result<()> {
    match command {
        MarketCommand::Order(args) => order(client, args, json).await,
        MarketCommand::Orders => {
            let list = client.orders().await?;
            output(json, &list, || list.data.iter().map(summary).collect::<Vec<_>>().join("\n"))
        }
        MarketCommand::Show { id } => {
            let order = client.order(&id).await?;
            output(json, &order, || details(&order))
        }
        MarketCommand::Cancel { id } => {
            let order = client.cancel_order(&id).await?;
            output(json, &order, || summary(&order))
        }
        MarketCommand::Lease { command } => {
            let lease = match command {
                LeaseCommand::Show { id } => client.lease(&id).await?,
                LeaseCommand::Complete { id } => client.complete_lease(&id).await?,
                LeaseCommand::Cancel { id } => client.cancel_lease(&id).await?,
            };
            output(json, &lease, || lease_line(&lease))
        }
    }
}

async fn order(client: &Client, args: OrderArgs, json: bool) -> anyhow::Result<()> {
    let request = OrderRequest {
        class: args.class,
        resources: Resources { cpu_cores: args.cpu_cores, memory_mb: args.memory_mb, gpus: args.gpus },
        duration_secs: args.duration_secs,
        max_price_per_hour_micros: usd_to_micros(&args.max_usd_per_hour)?,
        bid_window_secs: args.bid_window_secs,
        job_id: args.job.as_deref().map(str::parse).transpose().context("--job is not a job id")?,
    };
    let placed = client.place_order(&request).await?;
    if !args.wait {
        return output(json, &placed, || {
            format!("{}\nfollow it with: sgl-cloud market show {}", summary(&placed), placed.id)
        });
    }
    if !json {
        eprintln!(
            "{}: ${:.6} held; bids close in {} s…",
            placed.id,
            micros_to_usd(placed.held_micros),
            placed.bid_window_secs
        );
    }
    let decided = wait_until_decided(client, &placed.id, Duration::from_secs(args.wait_timeout)).await?;
    output(json, &decided, || details(&decided))
}

async fn wait_until_decided(client: &Client, id: &str, timeout: Duration) -> anyhow::Result<OrderView> {
    let deadline = Instant::now() + timeout;
    loop {
        let order = client.order(id).await?;
        if order.state != OrderState::Open {
            return Ok(order);
        }
        if Instant::now() >= deadline {
            bail!(
                "{id} is still taking bids or waiting for its match after {} s (sgl-cloud market show {id})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn summary(order: &OrderView) -> String {
    let lease =
        order.lease.as_ref().map_or(String::new(), |lease| format!("  lease {} ({})", lease.id, lease.state.as_str()));
    format!(
        "{}  {:<9} {:<6} {} s  max ${}/h  held ${:.6}{lease}",
        order.id,
        order.state.as_str(),
        order.class.as_str(),
        order.duration_secs,
        micros_to_usd(order.max_price_per_hour_micros),
        micros_to_usd(order.held_micros)
    )
}

fn details(order: &OrderView) -> String {
    let mut lines = vec![summary(order)];
    if order.state == OrderState::Unfilled {
        lines.push(format!("no node could take it: ${:.6} refunded", micros_to_usd(order.refunded_micros)));
    }
    lines.extend(order.bids.iter().map(bid_line));
    lines.extend(order.lease.iter().map(lease_line));
    lines.join("\n")
}

fn bid_line(bid: &BidView) -> String {
    let reason = bid.lost_reason.map_or(String::new(), |reason| format!(" ({})", reason.as_str()));
    format!("  bid {}  ${}/h  {}{reason}", bid.node_id, micros_to_usd(bid.price_per_hour_micros), bid.state.as_str())
}

fn lease_line(lease: &LeaseView) -> String {
    format!(
        "lease {} on node {} (operator {}): ${}/h, deposit ${:.6}, streamed ${:.6}, paid ${:.6}, refunded ${:.6}, {}",
        lease.id,
        lease.node_id,
        lease.operator_wallet,
        micros_to_usd(lease.price_per_hour_micros),
        micros_to_usd(lease.deposit_micros),
        micros_to_usd(lease.streamed_micros),
        micros_to_usd(lease.paid_micros),
        micros_to_usd(lease.refunded_micros),
        lease.state.as_str()
    )
}

#[cfg(test)]
mod tests {
    //! Amounts typed in USD become micro-USD exactly.

    use super::usd_to_micros;

    #[test]
    fn usd_amounts_parse_exactly() {
        assert_eq!(usd_to_micros("0.5").unwrap(), 500_000);
        assert_eq!(usd_to_micros("12").unwrap(), 12_000_000);
        assert_eq!(usd_to_micros(".000001").unwrap(), 1);
        assert_eq!(usd_to_micros("0.123456").unwrap(), 123_456);
        for bad in ["", ".", "1.0000001", "-1", "1e3", "abc", "99999999999999999999"] {
            assert!(usd_to_micros(bad).is_err(), "{bad}");
        }
    }
}
