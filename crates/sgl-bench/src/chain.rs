//! `sgl-bench chain`: x402 settlements per second on a local chain. A release
//! `sgl-grid up --chain --nodes 0` (anvil from npm, the contracts deployed) sells credits by
//! x402 (`POST /compute/credits/topup`); each payment is the whole round a client makes: the
//! 402 with its requirements, an EIP-3009 authorization signed by the local payer
//! (`sgl_pay::payer`), and the paid request, which the grid settles with
//! `transferWithAuthorization` on the chain, waits for it to be mined, and records with the
//! payer's credit. Run one at a time, then several in flight (the grid's signer sends one
//! transaction at a time, so they queue there).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::stats::Summary;
use crate::up::LocalGrid;
use alloy_primitives::{B256, U256};
use anyhow::{Context, bail};
use rand_core::RngCore;
use serde_json::{Value, json};
use sgl_pay::payer::Payer;

/// Arguments of `sgl-bench chain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The `sgl-grid` binary.
    #[arg(long)]
    grid_bin: PathBuf,
    /// Payments in each round.
    #[arg(long, default_value_t = 60)]
    payments: u32,
    /// Payments in flight in the concurrent round.
    #[arg(long, default_value_t = 8)]
    in_flight: u32,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Value> {
    tokio::runtime::Runtime::new()?.block_on(measure(args))
}

async fn measure(args: &Args) -> anyhow::Result<Value> {
    let up: Vec<std::ffi::OsString> = vec!["--nodes".into(), "0".into(), "--chain".into()];
    let local = LocalGrid::start(&args.grid_bin, &up, &[]).await?;
    let grid = Arc::new(Grid::of(&local)?);
    let chain = Chain::of(&local.ready)?;
    grid.pay().await.context("a first payment")?;
    let start_balance = chain.payer_balance().await?;
    let (sequential, latencies) = one_at_a_time(&grid, args.payments).await?;
    eprintln!("chain: {sequential:.1} settlements/s one at a time");
    let concurrent = in_flight(&grid, args.payments, args.in_flight).await?;
    eprintln!("chain: {concurrent:.1} settlements/s with {} in flight", args.in_flight);
    // Every payment moved on the chain: $0.01 (10,000 units) each, twice `payments` of them.
    let moved = start_balance - chain.payer_balance().await?;
    anyhow::ensure!(
        moved == u128::from(args.payments) * 2 * 10_000,
        "the payer's USDC fell by {moved} units on the chain, not by every payment"
    );
    local.stop().await;
    Ok(json!({
        "payments": args.payments,
        "usdc_moved_units": moved,
        "in_flight": args.in_flight,
        "sequential_per_second": sequential,
        "concurrent_per_second": concurrent,
        "payment_ms": Summary::of(&latencies),
    }))
}

/// `payments` payments one after another: settlements per second, and each one's milliseconds.
async fn one_at_a_time(grid: &Grid, payments: u32) -> anyhow::Result<(f64, Vec<f64>)> {
    let mut latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..payments {
        let one = Instant::now();
        grid.pay().await?;
        latencies.push(one.elapsed().as_secs_f64() * 1e3);
    }
    Ok((f64::from(payments) / started.elapsed().as_secs_f64(), latencies))
}

/// `payments` payments, `in_flight` at a time: settlements per second.
async fn in_flight(grid: &Arc<Grid>, payments: u32, in_flight: u32) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..in_flight {
        let (grid, share) = (grid.clone(), payments / in_flight + u32::from(worker < payments % in_flight));
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                grid.pay().await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(f64::from(payments) / started.elapsed().as_secs_f64())
}

/// The local chain, read over JSON-RPC: what the payer holds is the proof each payment settled.
struct Chain {
    rpc_url: String,
    usdc: String,
    payer: String,
    http: reqwest::Client,
}

impl Chain {
    /// The chain `sgl-grid up --chain`'s ready line names.
    fn of(ready: &Value) -> anyhow::Result<Self> {
        let text = |v: &Value, what: &str| v.as_str().map(str::to_owned).with_context(|| format!("the chain's {what}"));
        Ok(Self {
            rpc_url: text(&ready["chain"]["rpc_url"], "RPC URL")?,
            usdc: text(&ready["chain"]["contracts"]["usdc"], "USDC")?,
            payer: text(&ready["chain"]["payer"], "payer")?,
            http: reqwest::Client::new(),
        })
    }

    /// The payer's USDC (`balanceOf`, selector `0x70a08231`), in token units.
    async fn payer_balance(&self) -> anyhow::Result<u128> {
        let data = format!("0x70a08231{:0>64}", self.payer.trim_start_matches("0x").to_lowercase());
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"to": self.usdc, "data": data}, "latest"]});
        let answer: Value = self.http.post(&self.rpc_url).json(&call).send().await?.json().await?;
        let hex = answer["result"].as_str().with_context(|| format!("eth_call: {answer}"))?;
        let digits = hex.trim_start_matches("0x").trim_start_matches('0');
        if digits.is_empty() {
            return Ok(0);
        }
        u128::from_str_radix(digits, 16).with_context(|| format!("a balance: {hex}"))
    }
}

struct Grid {
    base_url: String,
    api_key: String,
    payer: Payer,
    http: reqwest::Client,
}

impl Grid {
    /// The grid of `local`, paying as its local chain's payer (`chain.payer_key_file`).
    fn of(local: &LocalGrid) -> anyhow::Result<Self> {
        let key_file = local.ready["chain"]["payer_key_file"].as_str().context("the payer's key file")?;
        let key = alloy_primitives::hex::decode(std::fs::read_to_string(key_file)?.trim())?;
        let signing = k256::ecdsa::SigningKey::from_slice(&key).context("the payer's key")?;
        Ok(Self {
            base_url: local.field("base_url")?,
            api_key: local.field("api_key")?,
            payer: Payer::new(signing, U256::from(1_000_000u64)),
            http: reqwest::Client::new(),
        })
    }

    /// One x402 top-up of $0.01: the 402, the signature, the paid request.
    async fn pay(&self) -> anyhow::Result<()> {
        let url = format!("{}/compute/credits/topup", self.base_url);
        let body = json!({"amount_usd": 0.01});
        let asked = self.http.post(&url).bearer_auth(&self.api_key).json(&body).send().await?;
        if asked.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
            bail!("the top-up was not priced: {} {}", asked.status(), asked.text().await?);
        }
        let required = asked
            .headers()
            .get("payment-required")
            .and_then(|v| v.to_str().ok())
            .context("no PAYMENT-REQUIRED header")?
            .to_owned();
        let mut nonce = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut nonce);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let (name, value) = self.payer.pay_header(&required, now, B256::from(nonce))?;
        let paid = self.http.post(&url).bearer_auth(&self.api_key).header(name, value).json(&body).send().await?;
        if !paid.status().is_success() {
            bail!("the payment was refused: {} {}", paid.status(), paid.text().await?);
        }
        Ok(())
    }
}
