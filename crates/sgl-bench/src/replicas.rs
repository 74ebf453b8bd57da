//! `replicas`: 1, 2 and 3 `sgl-grid serve` replicas on one PostgreSQL database behind HAProxy
//! (`deploy/haproxy.cfg` as it is), synthetic nodes and callers reaching them only through the
//! balancer, so a job is often dispatched by another replica than the one holding its node's
//! socket, and its result forwarded between them. Per replica count: jobs/s, latency, failed
//! calls, and how many of the jobs crossed replicas.
//!
//! With fewer than three replicas, the balancer's other servers point at a closed port: HAProxy
//! marks them down (its checks) and redispatches the connections it tried there, as in
//! production while a replica is away.
//!
//! Output (one JSON object): `nodes`, `callers`, `seconds`, `warmup_secs`, `cores`, and
//! `runs`, one per replica count: `replicas`, `jobs_per_s`, `latency_ms` (`Summary`),
//! `failures`, `node_job_errors`, `grid_cpu_pct` (all replicas together, % of the machine),
//! `loadgen_cpu_pct`, or `error`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::scale::{PgDatabase, callers, create_api_key, fleet::Fleet, free_port, procfs::Proc, round};
use crate::stats::Summary;

/// The address HAProxy connects to the replicas from; they trust PROXY headers from it only.
const BALANCER_SOURCE: &str = "127.0.0.2";

/// Arguments of the replicas benchmark.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The `sgl-grid` binary to measure (e.g. target/release/sgl-grid).
    #[arg(long, value_name = "PATH")]
    grid_bin: PathBuf,
    /// Any database URL of the PostgreSQL server; a fresh database is made per run and dropped.
    #[arg(long, value_name = "URL")]
    postgres_url: String,
    /// HAProxy.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/haproxy")]
    haproxy: PathBuf,
    /// `deploy/haproxy.cfg`.
    #[arg(long, value_name = "PATH")]
    haproxy_config: PathBuf,
    /// Replica counts to measure (1 to 3: the config names three servers).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    replicas: Vec<usize>,
    /// Synthetic nodes.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Measured seconds of calls per run (after the warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up seconds of calls per run.
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// The model the nodes advertise.
    #[arg(long, default_value = "bench-model")]
    model: String,
}

/// Runs the benchmark.
pub(crate) fn run(args: &Args) -> anyhow::Result<Value> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("the tokio runtime")?;
    let mut runs = Vec::new();
    for (tag, &replicas) in args.replicas.iter().enumerate() {
        if !(1..=3).contains(&replicas) {
            bail!("--replicas {replicas}: the balancer's config names 3 servers");
        }
        eprintln!("replicas: {replicas} replica(s)");
        let result = Cluster::start(args, replicas, tag).and_then(|mut cluster| {
            runtime.block_on(async {
                cluster.wait_ready().await?;
                measure(args, &cluster, cores).await
            })
        });
        let mut report = result.unwrap_or_else(|error| json!({"error": format!("{error:#}")}));
        report["replicas"] = json!(replicas);
        eprintln!("replicas: {report}");
        runs.push(report);
    }
    Ok(json!({
        "nodes": args.nodes,
        "callers": args.callers,
        "seconds": args.seconds,
        "warmup_secs": args.warmup_secs,
        "cores": cores,
        "runs": runs,
    }))
}

async fn measure(args: &Args, cluster: &Cluster, cores: usize) -> anyhow::Result<Value> {
    let mut fleet = Fleet::new(&cluster.base_url, &args.model, Duration::from_secs(5))?;
    fleet.grow_to(args.nodes, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (warmup, seconds) = (Duration::from_secs(args.warmup_secs), Duration::from_secs(args.seconds.max(1)));
    let errors_before = fleet.counters().job_errors.load(Ordering::Relaxed);
    let calls = callers::run(&cluster.base_url, &cluster.api_key, &args.model, args.callers, warmup, seconds);
    let sample = async {
        tokio::time::sleep(warmup).await;
        let before = (cluster.cpu()?, Proc::This.cpu()?);
        tokio::time::sleep(seconds).await;
        anyhow::Ok((before, (cluster.cpu()?, Proc::This.cpu()?)))
    };
    let (report, cpu) = tokio::join!(calls, sample);
    let (report, ((grid_before, own_before), (grid_after, own_after))) = (report?, cpu?);
    let node_job_errors = fleet.counters().job_errors.load(Ordering::Relaxed) - errors_before;
    fleet.shutdown().await;
    let window = report.window.as_secs_f64().max(f64::EPSILON);
    Ok(json!({
        "jobs_per_s": round(report.latencies_ms.len() as f64 / window),
        "latency_ms": Summary::of(&report.latencies_ms),
        "failures": report.failures,
        "node_job_errors": node_job_errors,
        "grid_cpu_pct": round((grid_after - grid_before) / window * 100.0 / cores as f64),
        "loadgen_cpu_pct": round(own_after.percent_since(&own_before, cores)),
    }))
}

/// The replicas and the balancer; every process is killed, and the database dropped, on drop.
struct Cluster {
    replicas: Vec<Child>,
    balancer: Child,
    base_url: String,
    api_key: String,
    _database: PgDatabase,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.replicas.iter_mut().chain([&mut self.balancer]) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    fn start(args: &Args, replicas: usize, tag: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let database = PgDatabase::create(&args.postgres_url, &format!("sglreplicas_{}_{tag}", std::process::id()))?;
        let database_url = database.url()?;
        let config = dir.path().join("grid.toml");
        std::fs::write(&config, format!("proxy_protocol_from = [\"{BALANCER_SOURCE}\"]\n"))?;
        let command = |index: usize, subcommand: &[&str]| {
            let mut command = Command::new(&args.grid_bin);
            command
                .arg("--config")
                .arg(&config)
                .args(["--database-url", &database_url])
                .arg("--data-dir")
                .arg(dir.path().join(format!("replica-{index}")))
                .args(subcommand)
                .env("SGL_ALLOW_CODELESS_REGISTRATION", "true")
                .env("SGL_MIN_STAKE_SGL", "0")
                .env("SGL_MAX_CONNECTIONS", "60000")
                .env("SGL_MAX_CONNECTIONS_PER_ADDRESS", "60000")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null());
            command
        };
        let api_key = create_api_key(command(0, &["admin", "--json", "api-key", "create", "--credits-usd", "100000"]))?;
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
        let mut children = Vec::new();
        for (index, port) in ports.iter().enumerate().take(replicas) {
            let log = std::fs::File::create(dir.path().join(format!("replica-{index}.log")))?;
            let listen = format!("127.0.0.1:{port}");
            children.push(command(index, &["serve", "--listen", &listen]).stdout(Stdio::null()).stderr(log).spawn()?);
        }
        let lb_port = free_port()?;
        let balancer = balancer(&args.haproxy, &args.haproxy_config, lb_port, &ports)?;
        let base_url = format!("http://127.0.0.1:{lb_port}");
        Ok(Self { replicas: children, balancer, base_url, api_key, _database: database, _dir: dir })
    }

    /// Waits until the balancer answers `/healthz` from a replica.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let url = format!("{}/healthz", self.base_url);
        while !http.get(&url).send().await.is_ok_and(|response| response.status().is_success()) {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the replicas did not answer {url} through the balancer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Checks every 2 s, down after 2 failures: the absent servers are marked down.
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(())
    }

    /// CPU seconds of every replica so far.
    fn cpu(&self) -> anyhow::Result<f64> {
        self.replicas.iter().map(|child| Proc::Pid(child.id()).cpu_seconds()).sum()
    }
}

/// HAProxy with `config` on `lb_port`, in front of `ports`.
fn balancer(haproxy: &Path, config: &Path, lb_port: u16, ports: &[u16]) -> anyhow::Result<Child> {
    let replica = |index: usize| format!("127.0.0.1:{}", ports[index]);
    Command::new(haproxy)
        .arg("-f")
        .arg(config)
        .arg("-db")
        .env("SGL_LB_BIND", format!("127.0.0.1:{lb_port}"))
        .env("SGL_LB_SOURCE", BALANCER_SOURCE)
        .env("SGL_REPLICA_1", replica(0))
        .env("SGL_REPLICA_2", replica(1))
        .env("SGL_REPLICA_3", replica(2))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", haproxy.display()))
}
