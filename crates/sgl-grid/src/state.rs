//! Shared state of one coordinator process: the store, the configuration, the live view of
//! nodes, outstanding reservations, metrics and the clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use sgl_grid_store::Store;

use crate::admission::Admission;
use crate::blobs::{BlobStore, DiskBlobs};
use crate::chain::GridChain;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::jobs::Jobs;
use crate::jobs::commit::Committer;
use crate::metrics::Metrics;
use crate::payments::Payments;
use crate::registry::Registry;
use crate::service::accounts::Accounts;
use crate::service::limits::AddressLimiter;
use crate::service::machines::Machines;
use crate::service::market::Market;
use crate::service::recent::Recent;
use crate::service::reservations::Reservations;
use sgl_grid_store::nodes::NodeRecord;

/// Where the grid reads the time, injected once into [`AppState`]: [`SystemClock`] when
/// serving, a [`ManualClock`] in tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The clock shared by everything one grid runs.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `now_ms`.
    pub fn at(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    /// Moves the clock `ms` forward (backward when negative).
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A reservation: one node held for one sealed request.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// The node.
    pub node_id: sgl_protocol::ids::NodeId,
    /// The model.
    pub model: String,
    /// The price quoted; the caller never pays more.
    pub price: crate::config::ReferencePrice,
    /// The API key that reserved it, which alone may use it; `None` for a reservation made
    /// without a key, used by a request that pays for itself (x402 or MPP).
    pub api_key_id: Option<i64>,
    /// Unix ms after which it is void.
    pub expires_at_ms: i64,
    /// The client address that made a keyless reservation (each address holds a bounded
    /// number); `None` for keyed ones and in-process callers.
    pub address: Option<std::net::IpAddr>,
}

/// Device logins one client address may start per minute: a login is a database write that
/// anybody can ask for, so a flood must not crowd paying work off the write path.
pub const DEVICE_STARTS_PER_MINUTE: u32 = 10;

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: Config,
    registry: Registry,
    jobs: Jobs,
    committer: Committer,
    admission: Admission,
    accounts: Accounts,
    reservations: Reservations,
    metrics: Metrics,
    clock: SharedClock,
    payments: Option<Payments>,
    device_starts: AddressLimiter,
    node_tokens: Recent<NodeRecord>,
    last_purge_ms: AtomicI64,
    cluster: std::sync::OnceLock<Cluster>,
    blobs: Arc<dyn BlobStore>,
    machines: Machines,
    chain: Option<Arc<GridChain>>,
    market: Market,
    admin: crate::service::admin::Admin,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("backend", &self.inner.store.backend()).finish_non_exhaustive()
    }
}

impl AppState {
    /// State over an opened store, without a chain.
    pub fn new(store: Store, config: Config, clock: SharedClock) -> Self {
        Self::on_chain(store, config, clock, None)
    }

    /// State over an opened store and, for a grid with `[chain]`, its opened chain.
    pub fn on_chain(store: Store, config: Config, clock: SharedClock, chain: Option<GridChain>) -> Self {
        let chain = chain.map(Arc::new);
        let payments = config.x402.clone().and_then(|x402| {
            Payments::new(x402, store.clone(), clock.clone(), chain.clone())
                .inspect_err(
                    |error| tracing::error!(%error, "per-request payments are off: the facilitator URL is unusable"),
                )
                .ok()
        });
        let accounts = Accounts::new(store.clone(), clock.clone());
        let metrics = Metrics::default();
        let committer = Committer::new(store.clone(), clock.clone(), metrics.commits());
        let reservations = Reservations::new(&store);
        let blobs: Arc<dyn BlobStore> = Arc::new(DiskBlobs::new(config.data_dir.join("blobs")));
        let machines = Machines::new(store.clone(), clock.clone(), config.machines.clone(), &config.data_dir);
        let market =
            Market::new(store.clone(), clock.clone(), config.compute.shares, config.node_timeout_ms(), chain.clone());
        let inner = Inner {
            store,
            config,
            registry: Registry::default(),
            jobs: Jobs::default(),
            committer,
            admission: Admission::default(),
            accounts,
            reservations,
            metrics,
            clock,
            payments,
            device_starts: AddressLimiter::new(DEVICE_STARTS_PER_MINUTE, 60_000),
            node_tokens: Recent::new(crate::routes::NODE_RECHECK_MS),
            last_purge_ms: AtomicI64::new(i64::MIN),
            cluster: std::sync::OnceLock::new(),
            blobs,
            machines,
            chain,
            market,
            admin: crate::service::admin::Admin::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The grid's chain, when it runs on one (`[chain]`).
    pub fn chain(&self) -> Option<&GridChain> {
        self.inner.chain.as_deref()
    }

    /// Machines rented by the hour.
    pub fn machines(&self) -> &Machines {
        &self.inner.machines
    }

    /// The order book.
    pub fn market(&self) -> &Market {
        &self.inner.market
    }

    /// The grid operator's overview.
    pub fn admin(&self) -> &crate::service::admin::Admin {
        &self.inner.admin
    }

    /// Where blobs live.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.inner.blobs
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Per-request payments, unless turned off.
    pub fn payments(&self) -> Option<&Payments> {
        self.inner.payments.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The live view of nodes.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Jobs in flight and nodes' WebSocket sessions.
    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// The job writer (group commit).
    pub fn committer(&self) -> &Committer {
        &self.inner.committer
    }

    /// Callers' keys and credits.
    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    /// Requests waiting for a node's slot.
    pub fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The clock, for parts that keep it (the payments ledger).
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Nodes recently found by their token, for their job posts.
    pub fn node_tokens(&self) -> &Recent<NodeRecord> {
        &self.inner.node_tokens
    }

    /// Device logins started per client address.
    pub fn device_starts(&self) -> &AddressLimiter {
        &self.inner.device_starts
    }

    /// Whether housekeeping is due at `now_ms` (at most once per `every_ms`); claims it if so.
    pub fn housekeeping_due(&self, now_ms: i64, every_ms: i64) -> bool {
        let last = self.inner.last_purge_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= every_ms
            && self.inner.last_purge_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Open reservations.
    pub fn reservations(&self) -> &Reservations {
        &self.inner.reservations
    }

    /// This replica's part among several on one PostgreSQL; `None` for a grid of one process.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.inner.cluster.get()
    }

    /// Makes this process a replica among others (once; see [`crate::cluster::join`]).
    pub fn join(&self, cluster: Cluster) {
        let _ = self.inner.cluster.set(cluster);
    }

    /// Whether this process does the grid's once-per-grid duties: always for a grid of one
    /// process, else while its replica holds the leader's lock.
    pub fn leads(&self) -> bool {
        self.cluster().is_none_or(Cluster::leads)
    }
}
