//! A supervised `llama-server` child as an engine: the node starts llama.cpp's own HTTP server
//! on loopback, waits until it is ready and streams generations from it through an
//! [`UpstreamEngine`].
//!
//! Differences from the seed node (reference §3.3, §3.8, S6, R1):
//! - the binary is an explicit path, else `llama-server` on `PATH`, else
//!   `/usr/local/bin/llama-server`, else `/opt/sgl/bin/llama-server`; never `llama-cli`;
//! - the server requires an API key, random for every start. It is passed in the child's
//!   environment (`LLAMA_API_KEY`), which only the same user can read, not on the command line,
//!   which every local user can; it is never logged nor shown by `Debug`;
//! - stderr is appended to a log file (a pipe nobody drains would stall the server) and stdout
//!   goes to null;
//! - readiness is polled every 250 ms with a deadline that grows with the model file;
//! - a supervisor task restarts the child when it exits or fails two health probes in a row,
//!   with exponential backoff (1 s, 2 s, 4 s … 30 s, reset once the child stays healthy for a
//!   minute); [`LlamaServerEngine::restart`] is the watchdog's manual trigger.
//!
//! Like [`crate::upstream`], this engine does I/O only and runs on tokio tasks: start it and call
//! [`Engine::generate`] within a tokio runtime. Dropping the engine kills the child.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::model_file::{default_model_name, sha256_file};
use crate::upstream::{HEALTH_INTERVAL, HEALTH_TIMEOUT, UpstreamEngine, UpstreamError, UpstreamOptions};
use crate::{Engine, GenerateRequest, Generation};

/// The port tried first when none is configured (the seed node's `--inference-port`).
pub const DEFAULT_INFERENCE_PORT: u16 = 8081;
/// Where the binary is looked for after the explicit path and `PATH`.
pub const FALLBACK_BINARIES: &[&str] = &["/usr/local/bin/llama-server", "/opt/sgl/bin/llama-server"];
/// Time between readiness polls while the child starts.
const READY_POLL: Duration = Duration::from_millis(250);
/// Time between checks that the running child has not exited.
const EXIT_POLL: Duration = Duration::from_millis(250);
/// Consecutive failed health probes that make the supervisor restart the child.
const MAX_FAILED_PROBES: u32 = 2;
/// First restart delay; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A child healthy for this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Log lines quoted when the child fails to start.
const LOG_TAIL_LINES: usize = 12;

/// How to find, start and size the server.
#[derive(Debug, Clone)]
pub struct LlamaServerOptions {
    /// The `llama-server` binary; found by [`find_binary`] when `None`.
    pub binary: Option<PathBuf>,
    /// The GGUF file.
    pub model_path: PathBuf,
    /// The advertised (and upstream) model name; the file stem if not given.
    pub model_name: Option<String>,
    /// Per-slot context in tokens (`-c` gets `slots × context_size`, which llama-server splits).
    pub context_size: u32,
    /// Parallel slots (`--parallel`).
    pub slots: u32,
    /// CPU threads (`-t`).
    pub threads: u32,
    /// Layers offloaded to a GPU (`-ngl`).
    pub gpu_layers: u32,
    /// Prompt batch size (`-b`).
    pub batch_size: u32,
    /// The loopback port tried first ([`DEFAULT_INFERENCE_PORT`] in the node); if it is taken
    /// the OS chooses one.
    pub inference_port: u16,
    /// The child's stderr is appended here.
    pub log_path: PathBuf,
    /// One of llama.cpp's built-in chat templates by name (`gemma`, `chatml`, `llama3` …),
    /// passed as `--no-jinja --chat-template <name>` (with Jinja on, a name would be taken as a
    /// literal template). `None` uses the GGUF's own template; llama-server falls back to ChatML
    /// for a GGUF without one, such as the Gemma 3 270M test model.
    pub chat_template: Option<String>,
}

/// The server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No binary exists at any candidate path.
    #[error("no llama-server binary found; tried {}", .tried.join(", "))]
    NotFound {
        /// Every candidate, in order.
        tried: Vec<String>,
    },
    /// A file or process operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The child exited before it was ready.
    #[error("llama-server exited during startup ({status}); last log lines:\n{log_tail}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The end of its log file.
        log_tail: String,
    },
    /// The child did not report ready in time.
    #[error("llama-server was not ready within {seconds} s; last log lines:\n{log_tail}")]
    NotReady {
        /// The deadline.
        seconds: u64,
        /// The end of its log file.
        log_tail: String,
    },
    /// The client for the child could not be built.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Started outside a tokio runtime.
    #[error("the llama-server engine must be started within a tokio runtime")]
    NoRuntime,
}

/// The binary to run: `explicit` if given (and only it), else `llama-server` on `PATH`, else
/// [`FALLBACK_BINARIES`]. `llama-cli` is never a candidate: it is not a server.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, ServerError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(ServerError::NotFound { tried: vec![path.display().to_string()] })
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("llama-server")).collect::<Vec<_>>())
        .unwrap_or_default();
    let fallbacks = FALLBACK_BINARIES.iter().map(PathBuf::from);
    if let Some(found) = on_path.into_iter().chain(fallbacks).find(|path| path.is_file()) {
        return Ok(found);
    }
    let mut tried = vec!["llama-server on PATH".to_owned()];
    tried.extend(FALLBACK_BINARIES.iter().map(|path| (*path).to_owned()));
    Err(ServerError::NotFound { tried })
}

/// Everything needed to (re)start the child.
#[derive(Debug)]
struct Config {
    binary: PathBuf,
    model_path: PathBuf,
    model_name: String,
    model_sha256: String,
    context_size: u32,
    slots: u32,
    threads: u32,
    gpu_layers: u32,
    batch_size: u32,
    inference_port: u16,
    log_path: PathBuf,
    chat_template: Option<String>,
    ready_timeout: Duration,
}

/// A started, ready child.
struct Running {
    child: Child,
    port: u16,
    upstream: UpstreamEngine,
}

/// State shared by the engine and its supervisor.
#[derive(Debug)]
struct Shared {
    config: Config,
    probe: reqwest::Client,
    child: Mutex<Option<Child>>,
    pid: AtomicU32,
    port: AtomicU16,
    healthy: AtomicBool,
    upstream: RwLock<Arc<UpstreamEngine>>,
    restart: Notify,
    restarts: AtomicU32,
}

/// A supervised `llama-server` child.
#[derive(Debug)]
pub struct LlamaServerEngine {
    shared: Arc<Shared>,
    supervisor: JoinHandle<()>,
}

impl LlamaServerEngine {
    /// Finds the binary, hashes the model, starts the child, waits until it is ready, and starts
    /// the supervisor. Must be called within a tokio runtime.
    pub async fn start(options: LlamaServerOptions) -> Result<Self, ServerError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| ServerError::NoRuntime)?;
        let binary = find_binary(options.binary.as_deref())?;
        let io = |what: String| move |source| ServerError::Io { what, source };
        let model_size = std::fs::metadata(&options.model_path)
            .map_err(io(format!("reading {}", options.model_path.display())))?
            .len();
        let model_path = options.model_path.clone();
        let model_sha256 = tokio::task::spawn_blocking(move || sha256_file(&model_path))
            .await
            .map_err(|e| ServerError::Io { what: "hashing the model".into(), source: std::io::Error::other(e) })?
            .map_err(io(format!("hashing {}", options.model_path.display())))?;
        let config = Config {
            binary,
            model_name: options.model_name.clone().unwrap_or_else(|| default_model_name(&options.model_path)),
            model_path: options.model_path,
            model_sha256,
            context_size: options.context_size,
            slots: options.slots.max(1),
            threads: options.threads.max(1),
            gpu_layers: options.gpu_layers,
            batch_size: options.batch_size.max(1),
            inference_port: options.inference_port,
            log_path: options.log_path,
            chat_template: options.chat_template,
            ready_timeout: ready_timeout(model_size),
        };
        let probe = reqwest::Client::builder()
            .timeout(HEALTH_TIMEOUT)
            .build()
            .map_err(|e| ServerError::Upstream(UpstreamError::Client(e)))?;
        let running = start_child(&config, &probe).await?;
        let shared = Arc::new(Shared {
            config,
            probe,
            pid: AtomicU32::new(running.child.id().unwrap_or(0)),
            port: AtomicU16::new(running.port),
            child: Mutex::new(Some(running.child)),
            healthy: AtomicBool::new(true),
            upstream: RwLock::new(Arc::new(running.upstream)),
            restart: Notify::new(),
            restarts: AtomicU32::new(0),
        });
        let supervisor = handle.spawn(supervise(Arc::clone(&shared)));
        Ok(Self { shared, supervisor })
    }

    /// The current child's process id (0 while it is being restarted).
    pub fn pid(&self) -> u32 {
        self.shared.pid.load(Ordering::Relaxed)
    }

    /// The loopback port the current child listens on.
    pub fn port(&self) -> u16 {
        self.shared.port.load(Ordering::Relaxed)
    }

    /// How many times the child has been restarted.
    pub fn restarts(&self) -> u32 {
        self.shared.restarts.load(Ordering::Relaxed)
    }

    /// Kills the child and starts a new one now (the node's watchdog calls this when inference
    /// stops making progress). Unhealthy until the new child is ready.
    pub fn restart(&self) {
        self.shared.healthy.store(false, Ordering::Relaxed);
        self.shared.restart.notify_one();
    }

    fn upstream(&self) -> Arc<UpstreamEngine> {
        Arc::clone(&self.shared.upstream.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for LlamaServerEngine {
    fn drop(&mut self) {
        self.supervisor.abort();
        self.shared.healthy.store(false, Ordering::Relaxed);
        if let Some(child) = self.shared.child.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            let _ = child.start_kill();
        }
    }
}

impl Engine for LlamaServerEngine {
    fn model_name(&self) -> &str {
        &self.shared.config.model_name
    }

    fn model_sha256(&self) -> Option<&str> {
        Some(&self.shared.config.model_sha256)
    }

    fn slots(&self) -> u32 {
        self.shared.config.slots
    }

    fn context_size(&self) -> u32 {
        self.shared.config.context_size
    }

    /// Streams from the current child; while it is down the generation fails.
    fn generate(&self, request: GenerateRequest) -> Generation {
        self.upstream().generate(request)
    }

    fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    fn restart(&self) -> bool {
        LlamaServerEngine::restart(self);
        true
    }
}

/// 30 s plus 10 s per GB of model, at least 60 s.
fn ready_timeout(model_bytes: u64) -> Duration {
    Duration::from_secs((30 + 10 * model_bytes / 1_000_000_000).max(60))
}

/// `preferred` on loopback if it is free, else one the OS chooses.
fn choose_port(preferred: u16) -> Result<u16, ServerError> {
    let bind = |port| std::net::TcpListener::bind(("127.0.0.1", port)).and_then(|l| l.local_addr());
    bind(preferred)
        .or_else(|_| bind(0))
        .map(|address| address.port())
        .map_err(|source| ServerError::Io { what: "finding a free loopback port".into(), source })
}

/// 32 random bytes as 64 hex characters.
fn random_api_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Spawns the child and waits until it is ready; the child dies with the future on any error.
async fn start_child(config: &Config, probe: &reqwest::Client) -> Result<Running, ServerError> {
    let port = choose_port(config.inference_port)?;
    let api_key = random_api_key();
    let log = OpenOptions::new().create(true).append(true).open(&config.log_path).map_err(|source| {
        ServerError::Io { what: format!("opening the log file {}", config.log_path.display()), source }
    })?;
    let total_context = config.slots.saturating_mul(config.context_size);
    let mut command = Command::new(&config.binary);
    command
        .arg("-m")
        .arg(&config.model_path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-ngl", &config.gpu_layers.to_string(), "-c", &total_context.to_string()])
        .args(["-t", &config.threads.to_string(), "-b", &config.batch_size.to_string()])
        .args(["--parallel", &config.slots.to_string(), "--cont-batching"]);
    if let Some(template) = &config.chat_template {
        command.args(["--no-jinja", "--chat-template", template]);
    }
    command
        .env("LLAMA_API_KEY", &api_key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|source| ServerError::Io { what: format!("starting {}", config.binary.display()), source })?;
    tracing::info!(binary = %config.binary.display(), port, pid = child.id(), "llama-server starting");
    wait_ready(&mut child, port, config, probe).await?;
    tracing::info!(port, pid = child.id(), "llama-server ready");
    let upstream = UpstreamEngine::without_probe(&UpstreamOptions {
        base_url: format!("http://127.0.0.1:{port}"),
        api_key: Some(api_key),
        model_name: config.model_name.clone(),
        slots: config.slots,
        context_size: config.context_size,
        model_sha256: Some(config.model_sha256.clone()),
    })?;
    Ok(Running { child, port, upstream })
}

/// Polls `/health` until it says `{"status":"ok"}`, the child exits, or the deadline passes.
async fn wait_ready(child: &mut Child, port: u16, config: &Config, probe: &reqwest::Client) -> Result<(), ServerError> {
    let deadline = Instant::now() + config.ready_timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ServerError::Exited { status: status.to_string(), log_tail: log_tail(&config.log_path) });
        }
        if health_ok(probe, port).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ServerError::NotReady {
                seconds: config.ready_timeout.as_secs(),
                log_tail: log_tail(&config.log_path),
            });
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// `GET /health` answered `{"status":"ok"}` (a public endpoint: no key needed).
async fn health_ok(probe: &reqwest::Client, port: u16) -> bool {
    let Ok(response) = probe.get(format!("http://127.0.0.1:{port}/health")).send().await else { return false };
    if !response.status().is_success() {
        return false;
    }
    response.json::<Value>().await.is_ok_and(|body| body["status"] == "ok")
}

/// The last lines of the log file (at most its last 16 KiB), or why it cannot be read.
fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let length = file.metadata()?.len();
        file.seek(SeekFrom::Start(length.saturating_sub(16 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(error) => format!("(cannot read {}: {error})", path.display()),
    }
}

/// Why the supervisor replaces the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    Exited,
    Unresponsive,
    Requested,
}

/// Watches the child and replaces it, forever (until the engine drops and aborts this task).
async fn supervise(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_START;
    let mut started = Instant::now();
    loop {
        let trouble = watch(&shared).await;
        shared.healthy.store(false, Ordering::Relaxed);
        if let Some(mut child) = shared.child.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = child.start_kill();
        }
        shared.pid.store(0, Ordering::Relaxed);
        tracing::warn!(?trouble, "llama-server is down; restarting it");
        if started.elapsed() >= STABLE_AFTER {
            backoff = BACKOFF_START;
        }
        let mut delay = if trouble == Trouble::Requested { Duration::ZERO } else { backoff };
        loop {
            tokio::time::sleep(delay).await;
            started = Instant::now();
            let attempt = start_child(&shared.config, &shared.probe).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            match attempt {
                Ok(running) => {
                    shared.pid.store(running.child.id().unwrap_or(0), Ordering::Relaxed);
                    shared.port.store(running.port, Ordering::Relaxed);
                    *shared.upstream.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(running.upstream);
                    *shared.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(running.child);
                    shared.restarts.fetch_add(1, Ordering::Relaxed);
                    shared.healthy.store(true, Ordering::Relaxed);
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_s = backoff.as_secs(), "llama-server restart failed");
                    delay = backoff;
                }
            }
        }
    }
}

/// Returns when the child has exited, failed [`MAX_FAILED_PROBES`] probes in a row, or a restart
/// was requested.
async fn watch(shared: &Shared) -> Trouble {
    let mut failed_probes = 0;
    let mut next_probe = Instant::now() + HEALTH_INTERVAL;
    loop {
        tokio::select! {
            () = shared.restart.notified() => return Trouble::Requested,
            () = tokio::time::sleep(EXIT_POLL) => {}
        }
        let exited = match shared.child.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        };
        if exited {
            return Trouble::Exited;
        }
        if Instant::now() >= next_probe {
            // Only the supervisor marks the engine healthy, after a start: a probe that succeeds
            // while a restart is pending must not flip it back.
            if health_ok(&shared.probe, shared.port.load(Ordering::Relaxed)).await {
                failed_probes = 0;
            } else {
                failed_probes += 1;
                if failed_probes >= MAX_FAILED_PROBES {
                    return Trouble::Unresponsive;
                }
            }
            next_probe = Instant::now() + HEALTH_INTERVAL;
        }
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running").field("pid", &self.child.id()).field("port", &self.port).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Binary discovery, ports, keys, deadlines and log tails; the child itself is exercised by
    //! `tests/remote`.

    use super::*;

    #[test]
    fn an_explicit_binary_that_does_not_exist_is_a_typed_error_naming_it() {
        let error = find_binary(Some(Path::new("/nonexistent/llama-server"))).unwrap_err();
        assert!(matches!(&error, ServerError::NotFound { tried } if tried == &["/nonexistent/llama-server"]));
        assert!(error.to_string().contains("/nonexistent/llama-server"), "{error}");
    }

    #[test]
    fn an_explicit_binary_that_exists_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my-llama-server");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(find_binary(Some(&path)).unwrap(), path);
    }

    #[test]
    fn a_taken_port_falls_back_to_a_free_one() {
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let chosen = choose_port(port).unwrap();
        assert_ne!(chosen, port);
        assert_ne!(chosen, 0);
        drop(taken);
    }

    #[test]
    fn keys_are_random_hex_of_32_bytes() {
        let (a, b) = (random_api_key(), random_api_key());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_ready_deadline_grows_with_the_model() {
        assert_eq!(ready_timeout(253_113_024), Duration::from_secs(60));
        assert_eq!(ready_timeout(5_000_000_000), Duration::from_secs(80));
        assert_eq!(ready_timeout(40_000_000_000), Duration::from_secs(430));
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llama-server.log");
        let text: String = (0..40).map(|i| format!("line {i}\n\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path);
        assert_eq!(tail.lines().count(), LOG_TAIL_LINES);
        assert!(tail.ends_with("line 39"), "{tail}");
        assert!(log_tail(&dir.path().join("missing")).starts_with("(cannot read"));
    }
}
