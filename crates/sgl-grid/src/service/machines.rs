//! Machines rented by the hour (issue 18), without HTTP: what is on sale ([`catalog`]), a
//! provision from its checks to the machine answering SSH ([`provision`]), extensions, resizes,
//! passwords and destruction ([`manage`]), the leader's expiry work ([`duties`]) and the renter's
//! view of a machine ([`views`]).
//!
//! Money follows the store (`sgl_grid_store::machines`): the price is held at provision, taken
//! only when the machine answers SSH, and given back whole if it never does.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sgl_grid_store::Store;
use sgl_grid_store::machines::MachineStoreError;
use sgl_machines::backend::{BackendError, BackendName, MachineBackend};
use sgl_machines::price::PriceError;
use sgl_protocol::api::machines::BadSshKey;

use crate::config::MachinesConfig;
use crate::state::SharedClock;

pub mod catalog;
pub mod duties;
pub mod manage;
mod password;
pub mod provision;
pub mod views;
pub mod wallet;
mod webhook;

/// Why a machine request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MachineError {
    /// No such plan on sale.
    #[error("no plan {0:?}; GET /compute/plans lists them")]
    UnknownPlan(String),
    /// The plan is not sold in that region.
    #[error("plan {plan} is not sold in region {region:?}; GET /compute/regions lists them")]
    UnknownRegion {
        /// The plan.
        plan: String,
        /// The region asked for.
        region: String,
    },
    /// A bad duration.
    #[error("{0}")]
    Duration(#[source] PriceError),
    /// A bad label.
    #[error("label {0}")]
    BadLabel(&'static str),
    /// A bad webhook URL.
    #[error("webhook_url {0}")]
    BadWebhook(&'static str),
    /// A bad SSH key.
    #[error(transparent)]
    BadSshKey(#[from] BadSshKey),
    /// The backend gives no password, so a key is needed.
    #[error("this plan's machines have no root password: send ssh_public_key")]
    KeyRequired,
    /// No such machine in the caller's account.
    #[error("no such machine")]
    NotFound,
    /// Not possible in the machine's state.
    #[error("the machine is {0}")]
    Conflict(String),
    /// A resize to another backend's plan.
    #[error("plan {0} is on another backend; a machine can only move between its backend's plans")]
    OtherBackend(String),
    /// The backend cannot move to a smaller plan.
    #[error("this backend cannot move a machine to a smaller plan")]
    Downgrade,
    /// A permanent disk growth not confirmed.
    #[error("moving to {0} grows the disk for good (it can never shrink); send confirm_disk_resize: true")]
    DiskResizeUnconfirmed(String),
    /// The resize would leave too little time.
    #[error("{0}")]
    TooLittleLeft(#[source] PriceError),
    /// The payer's credits are short.
    #[error("insufficient credits: this costs {needed} micro-USD, the key has {available}")]
    InsufficientCredits {
        /// The price.
        needed: i64,
        /// The credits.
        available: i64,
    },
    /// The password was shown already, or the machine never had one.
    #[error("no password to show: it was shown once already, or the machine was made with an SSH key")]
    NoPassword,
    /// The backend cannot take the machine now (no free slot, provider down before any money moved).
    #[error("no capacity for this machine now: {0}")]
    NoCapacity(String),
    /// The provider failed a change to a running machine; nothing was charged.
    #[error("the provider failed: {0}")]
    Backend(#[from] BackendError),
    /// A wallet-signed request was refused.
    #[error(transparent)]
    Wallet(#[from] wallet::WalletAuthError),
    /// The password store failed.
    #[error("the machine password store: {0}")]
    Password(#[from] password::PasswordError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] sgl_grid_store::StoreError),
}

impl From<MachineStoreError> for MachineError {
    fn from(error: MachineStoreError) -> Self {
        match error {
            MachineStoreError::InsufficientCredits { needed, available } => {
                Self::InsufficientCredits { needed, available }
            }
            MachineStoreError::NotFound => Self::NotFound,
            MachineStoreError::Conflict(why) => Self::Conflict(why.to_owned()),
            MachineStoreError::Post(error) => Self::Store(sgl_grid_store::StoreError::Invariant(error.to_string())),
            MachineStoreError::Store(error) => Self::Store(error),
            other => Self::Store(sgl_grid_store::StoreError::Invariant(other.to_string())),
        }
    }
}

/// The grid's machines: the backends that sell them and the work in flight.
#[derive(Clone, Debug)]
pub struct Machines {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: SharedClock,
    config: MachinesConfig,
    backends: RwLock<BTreeMap<BackendName, Arc<dyn MachineBackend>>>,
    passwords: password::Sealer,
    tasks: tokio::sync::Mutex<tokio::task::JoinSet<()>>,
    poll: RwLock<Duration>,
    webhooks: webhook::Notifier,
}

impl Machines {
    /// No backends yet: nothing is on sale until [`Machines::install`].
    pub fn new(store: Store, clock: SharedClock, config: MachinesConfig, data_dir: &std::path::Path) -> Self {
        let inner = Inner {
            store,
            clock,
            config,
            backends: RwLock::new(BTreeMap::new()),
            passwords: password::Sealer::new(data_dir.join("machines.key")),
            tasks: tokio::sync::Mutex::new(tokio::task::JoinSet::new()),
            poll: RwLock::new(Duration::from_millis(500)),
            webhooks: webhook::Notifier::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Sells `backend`'s machines from now on.
    pub fn install(&self, backend: Arc<dyn MachineBackend>) {
        let mut backends = self.inner.backends.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        backends.insert(backend.name(), backend);
    }

    /// How often a machine being made is looked at (default 500 ms).
    pub fn set_poll(&self, every: Duration) {
        *self.inner.poll.write().unwrap_or_else(std::sync::PoisonError::into_inner) = every;
    }

    fn poll(&self) -> Duration {
        *self.inner.poll.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The backend of `name`, if it is installed.
    pub fn backend(&self, name: BackendName) -> Option<Arc<dyn MachineBackend>> {
        self.inner.backends.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&name).cloned()
    }

    fn backends(&self) -> Vec<Arc<dyn MachineBackend>> {
        self.inner.backends.read().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect()
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &MachinesConfig {
        &self.inner.config
    }

    /// Stops every provisioning task (at shutdown); the leader's duties finish what they left.
    pub async fn shutdown(&self) {
        self.inner.tasks.lock().await.abort_all();
    }
}
