//! `sgl stake deposit`: an operator stakes and bonds on the grid's chain from its own wallet
//! key. The grid names its chain and contracts (`GET /grid/chain`); the transactions go straight
//! to the chain, signed here, and the grid reads their events.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::json;
use sgl_chain::{Address, B256, Chain, Contracts, PrivateKeySigner, U256};
use sgl_node::client::ClientError;
use sgl_node::micros::{format_micros, parse_micros};
use sgl_node::wallet_key::WALLET_KEY_ENV;
use sgl_protocol::api::chain::ChainInfo;

use crate::stake::{Target, WalletArg, grid_error};

/// `sgl stake deposit`.
#[derive(Debug, Args)]
pub(crate) struct DepositArgs {
    /// Stake to add, in SGL [default: what the wallet lacks of the grid's minimum].
    #[arg(long, value_name = "SGL", value_parser = parse_micros)]
    amount: Option<i64>,
    /// Bond to register with, in SGL [default: the registry's minimum when not registered yet].
    #[arg(long, value_name = "SGL", value_parser = parse_micros)]
    bond: Option<i64>,
    /// The operator wallet's EVM key file (64 hex digits); it signs and pays the gas here and is
    /// never sent or printed.
    #[arg(long, value_name = "FILE", env = WALLET_KEY_ENV)]
    wallet_key: PathBuf,
    #[command(flatten)]
    wallet: WalletArg,
    /// Print one JSON object: the transactions sent.
    #[arg(long)]
    json: bool,
}

/// Runs `sgl stake deposit`.
pub(crate) async fn run(config_dir: &Path, grid_url: Option<&str>, args: &DepositArgs) -> anyhow::Result<()> {
    let target = Target::resolve(config_dir, grid_url, &args.wallet)?;
    let info = match target.client.chain_info().await {
        Err(ClientError::Api { status: 404, .. }) => anyhow::bail!(
            "this grid keeps stake in its own ledger, not on a chain: its operator records it (sgl-grid admin stake)"
        ),
        other => other.map_err(grid_error)?,
    };
    let text =
        std::fs::read_to_string(&args.wallet_key).with_context(|| format!("reading {}", args.wallet_key.display()))?;
    let signer: PrivateKeySigner = text.trim().parse().map_err(|_| {
        anyhow::anyhow!("{}: staking on a chain needs an EVM key (64 hex digits)", args.wallet_key.display())
    })?;
    let wallet: Address = target.wallet.parse().context("the wallet is not an EVM address")?;
    anyhow::ensure!(signer.address() == wallet, "the key is {}'s, not {}'s", signer.address(), target.wallet);
    let chain = Chain::connect(&info.rpc_url, signer, contracts(&info)?)?;
    chain.check().await.context("the grid's chain")?;
    let staked = chain.stake_of(wallet).await?.active;
    let lacking = U256::from(info.min_stake_micros.max(0).unsigned_abs()).saturating_sub(staked);
    let amount = args.amount.map_or(lacking, |a| U256::from(a.max(0).unsigned_abs()));
    let mut sent = Vec::new();
    if !amount.is_zero() {
        let mined = chain.stake(amount).await.context("staking")?;
        sent.push(
            json!({"action": "stake", "amount_micros": amount.to_string(), "tx": mined.tx_hash, "gas": mined.gas_used}),
        );
    }
    let bond = chain.bond_of(wallet).await?;
    let bond_amount = match (args.bond, bond.registered) {
        (Some(_), true) => anyhow::bail!(
            "the wallet is bonded already ({} SGL)",
            format_micros(i64::try_from(bond.amount).unwrap_or(i64::MAX))
        ),
        (Some(b), false) => U256::from(b.max(0).unsigned_abs()),
        (None, false) => U256::from(info.min_bond_micros.max(0).unsigned_abs()),
        (None, true) => U256::ZERO,
    };
    if !bond_amount.is_zero() {
        let metadata = B256::from(sgl_chain::keccak256(wallet.as_slice()));
        let mined = chain.register(bond_amount, metadata).await.context("bonding")?;
        sent.push(json!({"action": "bond", "amount_micros": bond_amount.to_string(), "tx": mined.tx_hash, "gas": mined.gas_used}));
    }
    if args.json {
        println!("{}", json!({"wallet": target.wallet, "chain_id": info.chain_id, "sent": sent}));
    } else if sent.is_empty() {
        println!("{} is staked and bonded already; nothing sent", target.wallet);
    } else {
        for tx in &sent {
            println!(
                "{} {} SGL: transaction {} ({} gas)",
                tx["action"].as_str().unwrap_or(""),
                tx["amount_micros"],
                tx["tx"],
                tx["gas"]
            );
        }
        println!("the grid admits {}'s nodes once it has read these (sgl stake show)", target.wallet);
    }
    Ok(())
}

/// The contracts `info` names.
fn contracts(info: &ChainInfo) -> anyhow::Result<Contracts> {
    let c = &info.contracts;
    let address =
        |name: &str, text: &str| text.parse::<Address>().with_context(|| format!("the grid's {name} address"));
    Ok(Contracts {
        chain_id: info.chain_id,
        usdc: address("usdc", &c.usdc)?,
        stake_token: address("stake_token", &c.stake_token)?,
        staking: address("staking", &c.staking)?,
        registry: address("registry", &c.registry)?,
        escrow: address("escrow", &c.escrow)?,
        treasury: address("treasury", &c.treasury)?,
        deployed_block: c.deployed_block,
    })
}
