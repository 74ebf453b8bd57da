//! Configuration: flags over `SGL_` environment variables over a TOML file over defaults.
//!
//! [`Config::from_sources`] is a pure function of the file text, an environment map and the
//! command-line overrides, so every precedence rule is unit-tested; only `main` reads the real
//! environment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::Address;
use serde::Deserialize;
use sgl_pay::network::NetworkConfig;

use crate::server::ConnectionLimits;
use crate::service::billing::Shares;

/// The configuration could not be built. Lists every problem found, not just the first.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// A model's reference price in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferencePrice {
    /// Input tokens.
    pub input_per_m: f64,
    /// Output tokens.
    pub output_per_m: f64,
}

/// The TOML file as written: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    min_stake_sgl: Option<u64>,
    allow_codeless_registration: Option<bool>,
    token_ttl_secs: Option<u64>,
    node_timeout_secs: Option<u64>,
    reservation_ttl_secs: Option<u64>,
    job_timeout_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<u64>,
    max_connections_per_address: Option<u64>,
    proxy_protocol_from: Option<Vec<String>>,
    cors_origins: Option<Vec<String>>,
    admin_token: Option<String>,
    default_price: Option<ReferencePrice>,
    #[serde(default)]
    prices: BTreeMap<String, ReferencePrice>,
    unstake_cooldown_secs: Option<u64>,
    slash_basis_points: Option<u32>,
    settlement: Option<SharesFile>,
    #[serde(default)]
    x402: X402File,
    #[serde(default)]
    admission: AdmissionFile,
    compute: Option<compute::ComputeFile>,
    machines: Option<machines::MachinesFile>,
    chain: Option<chain::ChainFile>,
}

/// The `[admission]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdmissionFile {
    wait_secs: Option<u64>,
    max_waiting_per_model: Option<usize>,
    ack_timeout_secs: Option<u64>,
}

/// How requests wait when every node that could serve them is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// How long a request waits for a slot before a 503 (0: no waiting).
    pub wait_secs: u64,
    /// Requests that may wait per model; past it, a 503 at once.
    pub max_waiting_per_model: usize,
    /// A node handed a job must show it has it (list it in a heartbeat, or post for it) within
    /// this period, checked once a period; one that holds it unacknowledged at two checks running
    /// loses it, and its reputation drops. Longer than the nodes' heartbeat interval (5 s).
    pub ack_timeout_secs: u64,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self { wait_secs: 30, max_waiting_per_model: 1024, ack_timeout_secs: 10 }
    }
}

impl AdmissionLimits {
    /// [`AdmissionLimits::wait_secs`] in milliseconds.
    pub fn wait_ms(&self) -> i64 {
        secs_to_ms(self.wait_secs)
    }

    fn from_file(file: &AdmissionFile) -> Self {
        let defaults = Self::default();
        Self {
            wait_secs: file.wait_secs.unwrap_or(defaults.wait_secs).min(3600),
            max_waiting_per_model: file.max_waiting_per_model.unwrap_or(defaults.max_waiting_per_model),
            ack_timeout_secs: file.ack_timeout_secs.unwrap_or(defaults.ack_timeout_secs).clamp(1, 3600),
        }
    }
}

/// The `[settlement]` section as written: each share in basis points, the burn taking the rest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharesFile {
    operator_bps: u32,
    platform_bps: u32,
    stakers_bps: u32,
}

/// The `[x402]` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct X402File {
    enabled: Option<bool>,
    pay_to: Option<String>,
    network: Option<String>,
    facilitator_url: Option<String>,
    max_timeout_seconds: Option<u64>,
    serve_facilitator: Option<bool>,
}

/// How callers pay per request (x402 and MPP) and where the money goes.
#[derive(Debug, Clone, PartialEq)]
pub struct X402Config {
    /// The grid's receiving address.
    pub pay_to: Address,
    /// Network and asset payments are made in (6-decimal USD stablecoins: one atomic unit is
    /// one micro-dollar of credit).
    pub network: NetworkConfig,
    /// A remote facilitator's base URL; `None` settles in the grid's own ledger (the local
    /// facilitator, funded by `sgl-grid admin faucet`).
    pub facilitator_url: Option<String>,
    /// How long a client's signed authorization lives.
    pub max_timeout_seconds: u64,
    /// Serve the grid's own ledger as an x402 facilitator at `/x402/facilitator/*`.
    pub serve_facilitator: bool,
}

/// Where a local grid's payments land when no `pay_to` is configured: an address nobody holds
/// the key of, which is harmless in the local ledger. A grid with a real facilitator must name
/// its own.
pub const LOCAL_TREASURY: Address = alloy_primitives::address!("0x5317000000000000000000000000000000005317");

/// Values given on the command line, which win over everything else.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--facilitator-url`.
    pub facilitator_url: Option<String>,
    /// `--x402-pay-to`.
    pub x402_pay_to: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Where the SQLite database and other state live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Stake an operator wallet needs before its nodes may register or receive work, in SGL.
    pub min_stake_sgl: u64,
    /// Whether `sgl init`-style registration without a code is accepted (off: S7).
    pub allow_codeless_registration: bool,
    /// How long a node token lives, in seconds; it rotates in its last quarter.
    pub token_ttl_secs: u64,
    /// A node not heard from for this long is offline.
    pub node_timeout_secs: u64,
    /// How long a reservation may wait for its sealed request.
    pub reservation_ttl_secs: u64,
    /// A job not finished after this long is failed and its escrow released (the reaper).
    pub job_timeout_secs: u64,
    /// Largest request body accepted on any route.
    pub max_body_bytes: usize,
    /// Connection timeouts and caps (`header_read_timeout_secs`, `idle_timeout_secs`,
    /// `max_connections`, `max_connections_per_address`).
    pub connections: ConnectionLimits,
    /// Load balancers whose connections open with a PROXY v2 header naming the client
    /// (`proxy_protocol_from`; HAProxy's `send-proxy-v2`). Empty: none.
    pub proxy_protocol_from: Vec<std::net::IpAddr>,
    /// The admission queue (`[admission]`).
    pub admission: AdmissionLimits,
    /// Origins whose pages may call the caller API (`*`: any; empty: CORS off).
    pub cors_origins: Vec<String>,
    /// The SHA-256 (hex) of the admin token that opens `/grid/admin/*` and the dashboard's
    /// admin page (`admin_token` or `SGL_ADMIN_TOKEN`); `None`: those routes answer 404.
    pub admin_token_hash: Option<String>,
    /// Reference price of models without their own entry.
    pub default_price: ReferencePrice,
    /// Reference prices by model.
    pub prices: BTreeMap<String, ReferencePrice>,
    /// How long an operator's stake stays locked after asking to unstake (7 days).
    pub unstake_cooldown_secs: u64,
    /// The share of an operator's stake taken for a forged or unverifiable result, in basis
    /// points (500 = 5 %).
    pub slash_basis_points: u32,
    /// How a settled job's cost is shared (`[settlement]`); the burn takes the rest.
    pub shares: Shares,
    /// Paying per request; `None` when turned off (`[x402] enabled = false`).
    pub x402: Option<X402Config>,
    /// General compute.
    pub compute: ComputeConfig,
    /// Machines rented by the hour (`[machines]`).
    pub machines: MachinesConfig,
    /// The chain the grid's money lives on (`[chain]`); `None`: the grid's own ledger only.
    pub chain: Option<ChainConfig>,
}

impl Config {
    /// Builds the configuration: CLI > `SGL_*` environment > file > default.
    pub fn from_sources(
        file_text: Option<&str>,
        env: &BTreeMap<String, String>,
        cli: &CliOverrides,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let file: ConfigFile = match file_text.map(toml::from_str).transpose() {
            Ok(file) => file.unwrap_or_default(),
            Err(error) => {
                problems.push(format!("config file: {}", error.message()));
                ConfigFile::default()
            }
        };
        let connections = connection_limits(&file, env, &mut problems);
        let env_value = |name: &str| env.get(name).cloned();
        let mut parsed = |name: &str, text: Option<String>| -> Option<u64> {
            let text = text?;
            text.parse().map_err(|_| problems.push(format!("{name}: {text:?} is not a whole number"))).ok()
        };
        let min_stake_sgl = parsed("SGL_MIN_STAKE_SGL", env_value("SGL_MIN_STAKE_SGL")).or(file.min_stake_sgl);
        let token_ttl_secs = parsed("SGL_TOKEN_TTL_SECS", env_value("SGL_TOKEN_TTL_SECS")).or(file.token_ttl_secs);
        let node_timeout_secs =
            parsed("SGL_NODE_TIMEOUT_SECS", env_value("SGL_NODE_TIMEOUT_SECS")).or(file.node_timeout_secs);
        let unstake_cooldown_secs =
            parsed("SGL_UNSTAKE_COOLDOWN_SECS", env_value("SGL_UNSTAKE_COOLDOWN_SECS")).or(file.unstake_cooldown_secs);
        let allow_codeless_registration = codeless_registration(env, file.allow_codeless_registration, &mut problems);
        let (data_dir, database_url, listen) =
            locations(cli, env, (file.data_dir, file.database_url, file.listen), &mut problems);
        let default_price = file.default_price.unwrap_or(ReferencePrice { input_per_m: 0.10, output_per_m: 0.40 });
        check_prices(&default_price, &file.prices, &mut problems);
        let x402 = x402_config(file.x402, env, cli, &mut problems);
        let cors_origins = cors_origins(env, file.cors_origins, &mut problems);
        let admin_token_hash = admin_token_hash(env_value("SGL_ADMIN_TOKEN").or(file.admin_token), &mut problems);
        let shares = settlement_shares(file.settlement.as_ref(), &mut problems);
        let compute = ComputeConfig::from_sources(file.compute, env, &mut problems);
        let machines = MachinesConfig::from_sources(file.machines, env, &mut problems);
        let chain = ChainConfig::from_sources(file.chain, env, &mut problems);
        let proxy_protocol_from = balancers(file.proxy_protocol_from.unwrap_or_default(), &mut problems);
        let (Some(listen), true) = (listen, problems.is_empty()) else {
            return Err(ConfigError { problems });
        };
        Ok(Self {
            listen,
            data_dir,
            database_url,
            min_stake_sgl: min_stake_sgl.unwrap_or(50_000),
            allow_codeless_registration: allow_codeless_registration.unwrap_or(false),
            token_ttl_secs: token_ttl_secs.unwrap_or(24 * 3600).max(60),
            node_timeout_secs: node_timeout_secs.unwrap_or(15).max(1),
            reservation_ttl_secs: file.reservation_ttl_secs.unwrap_or(60).max(1),
            job_timeout_secs: file.job_timeout_secs.unwrap_or(360).max(1),
            max_body_bytes: file.max_body_bytes.unwrap_or(2 * 1024 * 1024),
            connections,
            proxy_protocol_from,
            admission: AdmissionLimits::from_file(&file.admission),
            cors_origins,
            admin_token_hash,
            default_price,
            prices: file.prices,
            unstake_cooldown_secs: unstake_cooldown_secs.unwrap_or(7 * 24 * 3600),
            slash_basis_points: file.slash_basis_points.unwrap_or(500).min(10_000),
            shares,
            x402,
            compute,
            machines,
            chain,
        })
    }

    /// [`Config::node_timeout_secs`] in milliseconds.
    pub fn node_timeout_ms(&self) -> i64 {
        secs_to_ms(self.node_timeout_secs)
    }

    /// [`Config::token_ttl_secs`] in milliseconds.
    pub fn token_ttl_ms(&self) -> i64 {
        secs_to_ms(self.token_ttl_secs)
    }

    /// [`Config::job_timeout_secs`] in milliseconds.
    pub fn job_timeout_ms(&self) -> i64 {
        secs_to_ms(self.job_timeout_secs)
    }

    /// [`Config::reservation_ttl_secs`] in milliseconds.
    pub fn reservation_ttl_ms(&self) -> i64 {
        secs_to_ms(self.reservation_ttl_secs)
    }

    /// The reference price of `model`.
    pub fn reference_price(&self, model: &str) -> ReferencePrice {
        self.prices.get(model).copied().unwrap_or(self.default_price)
    }

    /// [`Config::unstake_cooldown_secs`] in milliseconds.
    pub fn unstake_cooldown_ms(&self) -> i64 {
        secs_to_ms(self.unstake_cooldown_secs)
    }
}

/// The x402 settings: CLI > `SGL_X402_*` / `SGL_FACILITATOR_URL` > the `[x402]` section.
fn x402_config(
    file: X402File,
    env: &BTreeMap<String, String>,
    cli: &CliOverrides,
    problems: &mut Vec<String>,
) -> Option<X402Config> {
    let enabled = match env.get("SGL_X402_ENABLED").map(String::as_str) {
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            problems.push(format!("SGL_X402_ENABLED: {other:?} is not true or false"));
            true
        }
        None => file.enabled.unwrap_or(true),
    };
    let facilitator_url =
        cli.facilitator_url.clone().or_else(|| env.get("SGL_FACILITATOR_URL").cloned()).or(file.facilitator_url);
    if let Some(url) = &facilitator_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        problems.push(format!("facilitator_url: {url:?} is not an http(s) URL"));
    }
    let pay_to_text = cli.x402_pay_to.clone().or_else(|| env.get("SGL_X402_PAY_TO").cloned()).or(file.pay_to);
    let pay_to = match &pay_to_text {
        Some(text) => text
            .parse::<Address>()
            .map_err(|_| problems.push(format!("x402 pay_to: {text:?} is not an EVM address (0x and 40 hex digits)")))
            .ok(),
        None if facilitator_url.is_some() => {
            problems.push("x402: a real facilitator needs pay_to, the grid's own receiving address".into());
            None
        }
        None => Some(LOCAL_TREASURY),
    };
    let network_name = env.get("SGL_X402_NETWORK").cloned().or(file.network).unwrap_or_else(|| "base-sepolia".into());
    let network = [NetworkConfig::BASE_SEPOLIA, NetworkConfig::BASE]
        .into_iter()
        .find(|n| n.is_named(&network_name))
        .or_else(|| {
            problems.push(format!(
                "x402 network: {network_name:?} is not one of base-sepolia (eip155:84532) or base (eip155:8453)"
            ));
            None
        });
    let max_timeout_seconds = file.max_timeout_seconds.unwrap_or(300);
    if max_timeout_seconds < 60 {
        problems.push("x402 max_timeout_seconds: must be at least 60 (settlement needs time)".into());
    }
    let serve_facilitator = file.serve_facilitator.unwrap_or(false);
    if serve_facilitator && facilitator_url.is_some() {
        problems.push("x402: serve_facilitator needs the grid's own ledger, not a facilitator_url".into());
    }
    if let Some(url) = &facilitator_url
        && let Err(error) = sgl_pay::http_facilitator::HttpFacilitator::new(url)
    {
        problems.push(format!("facilitator_url: {error}"));
    }
    Some(X402Config { pay_to: pay_to?, network: network?, facilitator_url, max_timeout_seconds, serve_facilitator })
        .filter(|_| enabled)
}

/// The connection limits: `SGL_*` > file > [`ConnectionLimits::default`]. Counts are at
/// least 1; timeouts from 1 s to a day.
fn connection_limits(
    file: &ConfigFile,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> ConnectionLimits {
    const DAY_SECS: u64 = 86_400;
    let defaults = ConnectionLimits::default();
    let mut setting = |key: &str, file_value: Option<u64>, default: u64, max: u64| -> u64 {
        let name = format!("SGL_{}", key.to_uppercase());
        let value = match env.get(&name) {
            Some(text) => {
                text.parse().map_err(|_| problems.push(format!("{name}: {text:?} is not a whole number"))).ok()
            }
            None => file_value,
        };
        match value {
            Some(n) if n == 0 || n > max => {
                problems.push(format!("{key} ({name}): {n} is not between 1 and {max}"));
                default
            }
            value => value.unwrap_or(default),
        }
    };
    let timeout = |secs: u64| Duration::from_secs(secs);
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let (header_read, idle) = (defaults.header_read_timeout.as_secs(), defaults.idle_timeout.as_secs());
    let (total, per_address) = (defaults.max_connections as u64, defaults.max_connections_per_address as u64);
    ConnectionLimits {
        header_read_timeout: timeout(setting(
            "header_read_timeout_secs",
            file.header_read_timeout_secs,
            header_read,
            DAY_SECS,
        )),
        idle_timeout: timeout(setting("idle_timeout_secs", file.idle_timeout_secs, idle, DAY_SECS)),
        max_connections: count(setting("max_connections", file.max_connections, total, u64::MAX)),
        max_connections_per_address: count(setting(
            "max_connections_per_address",
            file.max_connections_per_address,
            per_address,
            u64::MAX,
        )),
    }
}

/// Where the grid keeps its data, its database URL and its listening address: flags over
/// environment over the file's `(data_dir, database_url, listen)` over defaults. The address
/// is `None` (with a problem noted) when it does not parse.
fn locations(
    cli: &CliOverrides,
    env: &BTreeMap<String, String>,
    file: (Option<PathBuf>, Option<String>, Option<String>),
    problems: &mut Vec<String>,
) -> (PathBuf, String, Option<SocketAddr>) {
    let env_value = |name: &str| env.get(name).cloned();
    let (file_data_dir, file_database_url, file_listen) = file;
    let data_dir = cli
        .data_dir
        .clone()
        .or_else(|| env_value("SGL_DATA_DIR").map(PathBuf::from))
        .or(file_data_dir)
        .unwrap_or_else(|| default_data_dir(env));
    let database_url = cli
        .database_url
        .clone()
        .or_else(|| env_value("SGL_DATABASE_URL"))
        .or(file_database_url)
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("grid.db").display()));
    let listen_text = cli
        .listen
        .clone()
        .or_else(|| env_value("SGL_LISTEN"))
        .or(file_listen)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = listen_text
        .parse()
        .map_err(|_| problems.push(format!("listen: {listen_text:?} is not an address like 127.0.0.1:8080")))
        .ok();
    (data_dir, database_url, listen)
}

/// The balancers' addresses, each an IP address.
fn balancers(texts: Vec<String>, problems: &mut Vec<String>) -> Vec<std::net::IpAddr> {
    let parse = |text: String| {
        let parsed = text.parse();
        parsed.map_err(|_| problems.push(format!("proxy_protocol_from: {text:?} is not an IP address"))).ok()
    };
    texts.into_iter().filter_map(parse).collect()
}

/// `SGL_ALLOW_CODELESS_REGISTRATION` over the file's setting.
fn codeless_registration(
    env: &BTreeMap<String, String>,
    file: Option<bool>,
    problems: &mut Vec<String>,
) -> Option<bool> {
    match env.get("SGL_ALLOW_CODELESS_REGISTRATION").map(String::as_str) {
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(other) => {
            problems.push(format!("SGL_ALLOW_CODELESS_REGISTRATION: {other:?} is not true or false"));
            None
        }
        None => file,
    }
}

/// Every reference price must be finite and not negative.
fn check_prices(default: &ReferencePrice, prices: &BTreeMap<String, ReferencePrice>, problems: &mut Vec<String>) {
    for (model, price) in std::iter::once(("default_price", default)).chain(prices.iter().map(|(m, p)| (m.as_str(), p)))
    {
        let valid = |v: f64| v.is_finite() && v >= 0.0;
        if !valid(price.input_per_m) || !valid(price.output_per_m) {
            problems.push(format!("price of {model}: prices must be finite and not negative"));
        }
    }
}

/// `SGL_CORS_ORIGINS` (comma-separated) over the file's list, `*` by default; each must be an
/// origin.
/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// The admin token's SHA-256 hex; a token shorter than [`MIN_ADMIN_TOKEN_CHARS`] is refused.
fn admin_token_hash(token: Option<String>, problems: &mut Vec<String>) -> Option<String> {
    let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())?;
    if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
        problems.push(format!("admin_token: at least {MIN_ADMIN_TOKEN_CHARS} characters"));
        return None;
    }
    Some(crate::service::secrets::hash(&token))
}

fn cors_origins(env: &BTreeMap<String, String>, file: Option<Vec<String>>, problems: &mut Vec<String>) -> Vec<String> {
    let origins: Vec<String> = env
        .get("SGL_CORS_ORIGINS")
        .map(|list| list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect())
        .or(file)
        .unwrap_or_else(|| vec!["*".to_owned()]);
    for origin in origins.iter().filter(|o| *o != "*") {
        if !(origin.starts_with("https://") || origin.starts_with("http://"))
            || axum::http::HeaderValue::from_str(origin).is_err()
        {
            problems.push(format!("cors_origins: {origin:?} is not an origin like https://app.example"));
        }
    }
    origins
}

/// The `settlement` shares, the default when absent.
fn settlement_shares(file: Option<&SharesFile>, problems: &mut Vec<String>) -> Shares {
    match file {
        None => Shares::default(),
        Some(&SharesFile { operator_bps, platform_bps, stakers_bps }) => {
            Shares::new(operator_bps, platform_bps, stakers_bps).unwrap_or_else(|error| {
                problems.push(format!("settlement: {error}; the three shares must leave the burn its part"));
                Shares::default()
            })
        }
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
}

/// `$XDG_DATA_HOME/sgl-grid`, else `$HOME/.local/share/sgl-grid`, else `./sgl-grid-data`.
fn default_data_dir(env: &BTreeMap<String, String>) -> PathBuf {
    if let Some(xdg) = env.get("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("sgl-grid");
    }
    env.get("HOME")
        .map_or_else(|| PathBuf::from("sgl-grid-data"), |home| PathBuf::from(home).join(".local/share/sgl-grid"))
}

mod chain;
mod compute;
mod machines;

pub use chain::ChainConfig;
pub use compute::ComputeConfig;
pub use machines::{CloudMachines, LocalMachines, MachinesConfig};

#[cfg(test)]
mod tests;
