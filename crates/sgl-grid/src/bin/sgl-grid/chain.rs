//! `sgl-grid up --chain`: a local chain under the grid. anvil (npm `@foundry-rs/anvil`) with its
//! state in the data directory, the contracts deployed once (`chain/contracts.json`), the grid's
//! signer (anvil's first development account: a local chain only), every local operator staked
//! and bonded on the chain from its own key, and a payer holding test USDC for x402 clients.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sgl_chain::anvil::{LocalChain, LocalChainOptions, find_binary};
use sgl_chain::deploy::{DeployOptions, deploy};
use sgl_chain::{Address, B256, Chain, Contracts, PrivateKeySigner, U256};
use sgl_grid::chain::read_signer;
use sgl_grid::config::{ChainConfig, Config};
use sgl_protocol::keyfile::write_private_file;

/// The smallest bond of the local registry, micro-SGL (1,000 SGL).
const MIN_BOND: u64 = 1_000_000_000;
/// What the payer starts with, micro-USDC ($100).
const PAYER_USDC: u64 = 100_000_000;
/// What the grid holds at least, micro-USDC ($1,000): it funds lease streams and pays payouts
/// from it. On a real chain the grid holds what x402 payers paid it; a local grid's requesters
/// hold credits the admin granted, which no USDC backs, so the faucet stands in.
const GRID_USDC: u64 = 1_000_000_000;

/// The running local chain, and what `up` prints about it.
pub(crate) struct LocalChainUp {
    /// anvil; stopped (and its state written) when dropped.
    _anvil: LocalChain,
    /// The ready line's `chain` object.
    pub(crate) ready: serde_json::Value,
}

/// Starts anvil in `data_dir/chain`, deploys the contracts unless they are there already, and
/// points `config` at them.
pub(crate) async fn start(config: &mut Config, data_dir: &Path, anvil: Option<&Path>) -> anyhow::Result<LocalChainUp> {
    let dir = data_dir.join("chain");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let binary = match anvil {
        Some(path) => path.to_owned(),
        None => find_binary(Some(Path::new("."))).context(
            "no anvil: set SGL_ANVIL or pass --anvil (cd contracts && npm ci installs it under node_modules/@foundry-rs)",
        )?,
    };
    let options = LocalChainOptions { binary, port: None, state: Some(dir.join("anvil-state.json")) };
    let anvil = LocalChain::start(options).await?;
    let rpc_url = anvil.endpoint();
    let grid_key = dir.join("grid.key");
    let grid = anvil.signer(0).context("anvil's first account")?;
    write_private_file(&grid_key, format!("{}\n", hex(&grid.to_bytes().0)).as_bytes())?;
    let contracts_file = dir.join("contracts.json");
    let contracts = contracts(&rpc_url, grid.clone(), &contracts_file, anvil.addresses()[9]).await?;
    let payer_key = dir.join("payer.key");
    let payer = payer(&rpc_url, &contracts, &payer_key, grid.clone()).await?;
    float(&rpc_url, &contracts, grid.clone()).await?;
    let min_stake = config.min_stake_sgl.saturating_mul(1_000_000);
    config.chain = Some(ChainConfig {
        rpc_url: rpc_url.clone(),
        contracts: contracts_file.clone(),
        signer_key_file: grid_key,
        poll: Duration::from_secs(1),
    });
    let ready = serde_json::json!({
        "rpc_url": rpc_url,
        "contracts": contracts,
        "contracts_file": contracts_file,
        "payer_key_file": payer_key,
        "payer": payer,
        "grid": grid.address(),
        "grid_usdc": GRID_USDC,
        "min_stake": min_stake,
        "min_bond": MIN_BOND,
    });
    Ok(LocalChainUp { _anvil: anvil, ready })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The contracts of `file` if they are on this chain, else freshly deployed and written there.
async fn contracts(rpc_url: &str, grid: PrivateKeySigner, file: &Path, treasury: Address) -> anyhow::Result<Contracts> {
    if file.exists() {
        let contracts = Contracts::load(file)?;
        let chain = Chain::connect(rpc_url, grid.clone(), contracts)?;
        if chain.check().await.is_ok() {
            return Ok(contracts);
        }
        eprintln!("sgl-grid up: the chain has lost the contracts of {}; deploying them again", file.display());
    }
    let options = DeployOptions { treasury, min_bond: U256::from(MIN_BOND) };
    let contracts = deploy(rpc_url, grid, options).await.context("deploying the contracts")?;
    contracts.save(file)?;
    eprintln!("sgl-grid up: contracts deployed on the local chain ({})", file.display());
    Ok(contracts)
}

/// A payer with test USDC for x402 clients, its key kept 0600 in `path`. Returns its address.
async fn payer(rpc_url: &str, contracts: &Contracts, path: &Path, grid: PrivateKeySigner) -> anyhow::Result<Address> {
    let payer = if path.exists() {
        read_signer(path)?
    } else {
        let key = PrivateKeySigner::random();
        write_private_file(path, format!("{}\n", hex(&key.to_bytes().0)).as_bytes())?;
        key
    };
    let chain = Chain::connect(rpc_url, grid, *contracts)?;
    if chain.usdc_balance(payer.address()).await? == U256::ZERO {
        chain.mint_usdc(payer.address(), U256::from(PAYER_USDC)).await?;
    }
    Ok(payer.address())
}

/// Tops the grid's USDC up to [`GRID_USDC`] from the local faucet.
async fn float(rpc_url: &str, contracts: &Contracts, grid: PrivateKeySigner) -> anyhow::Result<()> {
    let chain = Chain::connect(rpc_url, grid, *contracts)?;
    let held = chain.usdc_balance(chain.address()).await?;
    let float = U256::from(GRID_USDC);
    if held < float {
        chain.mint_usdc(chain.address(), float - held).await?;
    }
    Ok(())
}

/// Gives the operator whose key is in `key_file` what it needs to stake and bond itself on the
/// local chain (the faucet of a local chain): gas money and the stake tokens it lacks of
/// `min_stake` and the registry's minimum bond. Returns whether it still has to stake or bond.
pub(crate) async fn fund(config: &ChainConfig, key_file: &Path, min_stake: u64) -> anyhow::Result<bool> {
    let contracts = Contracts::load(&config.contracts)?;
    let grid = Chain::connect(&config.rpc_url, read_signer(&config.signer_key_file)?, contracts)?;
    let address = read_signer(key_file)?.address();
    let need_stake = U256::from(min_stake).saturating_sub(grid.stake_of(address).await?.active);
    let need_bond = if grid.bond_of(address).await?.registered { U256::ZERO } else { U256::from(MIN_BOND) };
    let need = need_stake + need_bond;
    if need.is_zero() {
        return Ok(false);
    }
    grid.send_coin(address, U256::from(10u64).pow(U256::from(18))).await?;
    let held = grid.stake_token_balance(address).await?;
    if held < need {
        grid.mint_stake_token(address, need - held).await?;
    }
    Ok(true)
}

/// Stakes and bonds the operator whose key is in `key_file` as the operator itself, with
/// `sgl stake deposit` (the node binary) against the grid at `base_url`, as an operator would.
pub(crate) async fn deposit(sgl: &Path, base_url: &str, wallet: &str, key_file: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(sgl)
        .args(["--orchestrator-url", base_url, "stake", "deposit", "--wallet", wallet, "--json", "--wallet-key"])
        .arg(key_file)
        .output()
        .await
        .with_context(|| format!("running {} stake deposit", sgl.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "sgl stake deposit for {wallet} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    eprintln!("sgl-grid up: operator {wallet} staked and bonded on the local chain (sgl stake deposit)");
    Ok(())
}

/// Stakes and bonds the operator whose key is in `key_file` directly (a grid without nodes,
/// hence without the `sgl` binary).
pub(crate) async fn stake_and_bond(config: &ChainConfig, key_file: &Path, min_stake: u64) -> anyhow::Result<()> {
    if !fund(config, key_file, min_stake).await? {
        return Ok(());
    }
    let contracts = Contracts::load(&config.contracts)?;
    let operator = Chain::connect(&config.rpc_url, read_signer(key_file)?, contracts)?;
    let address = operator.address();
    let lacking = U256::from(min_stake).saturating_sub(operator.stake_of(address).await?.active);
    if !lacking.is_zero() {
        operator.stake(lacking).await.context("staking on chain")?;
    }
    if !operator.bond_of(address).await?.registered {
        let metadata = B256::from(alloy_primitives::keccak256(address.as_slice()));
        operator.register(U256::from(MIN_BOND), metadata).await.context("bonding on chain")?;
    }
    eprintln!("sgl-grid up: operator {address} staked and bonded on the local chain");
    Ok(())
}
