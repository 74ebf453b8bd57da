//! Several replicas on one PostgreSQL. Each replica is a whole coordinator; what one learns
//! that another needs travels on the store's bus (`LISTEN/NOTIFY`):
//!
//! - a node's heartbeat, wherever it lands, updates every replica's registry (`Node`), so any
//!   replica schedules on any node;
//! - the slots a replica uses on a node (`Loads`), so that together they respect its capacity;
//! - a job or a cancellation for a node whose WebSocket another replica holds (`Push`);
//! - a node's result, chunk or failure posted to a replica that does not hold the job is
//!   forwarded to the one that does, which answers it (`Post`, `Reply`; see [`forward`]);
//! - an API key revoked on one replica is forgotten by the others' caches (`Forget`).
//!
//! Reservations are rows shared through the store. Leader duties run on the replica holding
//! the store's advisory lock ([`duties`]). A SQLite grid is one process and starts none of this:
//! [`AppState::cluster`] is `None`. Joining is [`join`].

pub mod duties;
pub mod forward;
mod live;
mod stats;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};
use sgl_grid_store::replicas::{Bus, BusListener};
use sgl_protocol::api::node::ServerMessage;
use sgl_protocol::ids::{JobId, NodeId};
use tokio::sync::{Notify, oneshot};

use crate::registry::LiveNode;
use crate::service::secrets;
use crate::state::AppState;

/// How long a replica's word on its loads lasts without being repeated: a replica that died
/// stops repeating it, and its slots come free on every node.
const LOADS_LAST_MS: i64 = 5_000;
/// Messages sent in one notification transaction at most.
const MAX_BATCH: usize = 256;

/// A message between replicas. Internal to the grid (replicas of one release), so it is defined
/// here rather than in `sgl-protocol`, which holds what the grid exchanges with others.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// A node's live state after a heartbeat (with the jobs it listed), or after a change made
    /// on one replica (its prices, maintenance, attestation; `listed` is then `None`).
    Node {
        /// The replica that took the heartbeat or made the change.
        from: String,
        /// The node's state.
        node: Box<LiveNode>,
        /// The jobs the node says it runs, when this is a heartbeat.
        listed: Option<Vec<JobId>>,
    },
    /// Slots a replica uses on nodes: every one when `full`, else the ones that changed.
    Loads {
        /// The replica.
        from: String,
        /// A complete list (nodes not named have none of its jobs).
        full: bool,
        /// Jobs in flight per node.
        loads: Vec<(NodeId, u32)>,
    },
    /// For whichever replica holds the node's WebSocket.
    Push {
        /// The node.
        node_id: NodeId,
        /// What to send it.
        message: ServerMessage,
    },
    /// A node's post about a job another replica holds.
    Post(Box<forward::Post>),
    /// The answer to a forwarded post.
    Reply(forward::Reply),
    /// An API key was revoked: forget it.
    Forget {
        /// The key's id.
        api_key_id: i64,
    },
    /// A replica is stopping.
    Gone {
        /// The replica.
        from: String,
    },
}

/// What other replicas said they run on one node: by replica, jobs in flight and when said.
type ReplicaLoads = HashMap<String, (u32, i64)>;

/// This replica's part in the cluster.
#[derive(Debug)]
pub struct Cluster {
    id: String,
    bus: Bus,
    outbox: Mutex<Vec<Message>>,
    changed_loads: Mutex<HashSet<NodeId>>,
    wake: Notify,
    leading: AtomicBool,
    next_corr: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<forward::Reply>>>,
    /// Per node, per other replica: its jobs in flight and when it said so.
    loads: Mutex<HashMap<NodeId, ReplicaLoads>>,
    /// When another replica was last heard (every one repeats its loads each second): while
    /// none has been for [`LOADS_LAST_MS`], heartbeats and load changes are not published.
    peer_heard_ms: std::sync::atomic::AtomicI64,
    /// Nodes' live state to write as rows (`live`).
    rows: Mutex<live::Rows>,
    /// How often an unchanged node's row is written again: a third of the node timeout.
    row_every_ms: i64,
    stats: stats::ClusterStats,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// This replica, on `bus`, with a fresh id, for a grid whose nodes time out after
    /// `node_timeout_ms`.
    pub fn new(bus: Bus, node_timeout_ms: i64) -> Self {
        Self {
            id: format!("rpl_{}", secrets::random_b58(12)),
            bus,
            outbox: Mutex::default(),
            changed_loads: Mutex::default(),
            wake: Notify::new(),
            leading: AtomicBool::new(false),
            next_corr: AtomicU64::new(1),
            waiting: Mutex::default(),
            loads: Mutex::default(),
            peer_heard_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            rows: Mutex::default(),
            row_every_ms: (node_timeout_ms / 3).max(1_000),
            stats: stats::ClusterStats::default(),
        }
    }

    /// This replica's id (as in the `replicas` table and the jobs it dispatched).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this replica holds the leader's lock.
    pub fn leads(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// Appends this replica's cluster metrics to a `/metrics` exposition.
    pub fn render_metrics(&self, out: &mut String, now_ms: i64) {
        self.stats.render(out, self.leads(), self.has_peers(now_ms));
    }

    /// Queues `message` for every other replica.
    pub fn send(&self, message: Message) {
        locked(&self.outbox).push(message);
        self.wake.notify_one();
    }

    /// This replica's jobs in flight on `node_id` changed.
    pub fn load_changed(&self, node_id: NodeId, now_ms: i64) {
        if self.has_peers(now_ms) {
            locked(&self.changed_loads).insert(node_id);
            self.wake.notify_one();
        }
    }

    /// Whether another replica has been heard lately. A replica alone publishes only what a
    /// newcomer needs to find it (its full loads each second); the newcomer's own then wake it
    /// within a second, and the nodes' next heartbeats teach the newcomer the registry.
    pub fn has_peers(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.peer_heard_ms.load(Ordering::Relaxed)) <= LOADS_LAST_MS
    }

    /// Tells the other replicas about `node` (after a heartbeat, with the jobs it listed, or
    /// after a change made here), when there are others.
    pub fn node_seen_here(&self, node: LiveNode, listed: Option<Vec<JobId>>, now_ms: i64) {
        self.note_row(&node, now_ms, listed.is_none());
        if self.has_peers(now_ms) {
            self.send(Message::Node { from: self.id.clone(), node: Box::new(node), listed });
        }
    }
}

/// On PostgreSQL, makes this process a replica among others: registers it, starts listening
/// and publishing, and the duties' ticker. Returns when messages from now on reach it, with the
/// tasks to abort at the end. Nothing on SQLite.
pub async fn join(state: &AppState) -> Result<Vec<tokio::task::JoinHandle<()>>, sgl_grid_store::StoreError> {
    let Some(bus) = state.store().bus().await? else { return Ok(Vec::new()) };
    state.join(Cluster::new(bus, state.config().node_timeout_ms()));
    let Some(cluster) = state.cluster() else { return Ok(Vec::new()) };
    state.store().register_replica(cluster.id(), state.now_ms()).await?;
    let listener = cluster.bus.listen().await?;
    let known = live::load(state).await?;
    tracing::info!(replica = cluster.id(), n_nodes = known, "joined the grid's replicas");
    Ok(vec![
        tokio::spawn(listen(state.clone(), listener)),
        tokio::spawn(publish(state.clone())),
        tokio::spawn(duties::run(state.clone())),
    ])
}

/// Publishes what is queued, in batches, as it comes.
async fn publish(state: AppState) {
    let Some(cluster) = state.cluster() else { return };
    loop {
        cluster.wake.notified().await;
        loop {
            let batch = outgoing(&state, cluster);
            if batch.is_empty() {
                break;
            }
            let published = cluster.bus.publish(&batch, state.now_ms()).await;
            if published.is_ok() {
                cluster.stats.published.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            if let Err(error) = published {
                tracing::warn!(%error, n_messages = batch.len(), "publishing to the other replicas failed");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

/// The next batch to publish: queued messages, then the loads that changed.
fn outgoing(state: &AppState, cluster: &Cluster) -> Vec<String> {
    let mut messages: Vec<Message> = {
        let mut outbox = locked(&cluster.outbox);
        let n = outbox.len().min(MAX_BATCH);
        outbox.drain(..n).collect()
    };
    let changed: Vec<NodeId> = locked(&cluster.changed_loads).drain().collect();
    if !changed.is_empty() {
        messages.push(Message::Loads {
            from: cluster.id.clone(),
            full: false,
            loads: own_loads(state, Some(&changed)),
        });
    }
    messages.iter().filter_map(|message| serde_json::to_string(message).ok()).collect()
}

/// This replica's jobs in flight per node: on `nodes`, or on every node where it has some.
pub(crate) fn own_loads(state: &AppState, nodes: Option<&[NodeId]>) -> Vec<(NodeId, u32)> {
    let registry = state.registry().lock();
    match nodes {
        Some(nodes) => nodes.iter().map(|id| (*id, registry.get(id).map_or(0, |node| node.jobs_in_flight))).collect(),
        None => {
            registry.values().filter(|node| node.jobs_in_flight > 0).map(|n| (n.node_id, n.jobs_in_flight)).collect()
        }
    }
}

/// Takes every message from the bus, for as long as the replica runs.
async fn listen(state: AppState, mut listener: BusListener) {
    loop {
        match listener.recv().await {
            Ok(text) => match serde_json::from_str::<Message>(&text) {
                Ok(message) => receive(&state, message),
                Err(error) => tracing::warn!(%error, "an unreadable message from another replica"),
            },
            Err(error) => {
                tracing::warn!(%error, "listening to the other replicas failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

/// Acts on one message (its own messages come back too, and are mostly ignored).
fn receive(state: &AppState, message: Message) {
    let Some(cluster) = state.cluster() else { return };
    cluster.stats.received.fetch_add(1, Ordering::Relaxed);
    if let Message::Loads { from, .. } = &message
        && *from != cluster.id
    {
        cluster.peer_heard_ms.store(state.now_ms(), Ordering::Relaxed);
    }
    match message {
        Message::Node { from, node, listed } if from != cluster.id => node_seen(state, *node, listed.as_deref()),
        Message::Loads { from, full, loads } if from != cluster.id => loads_seen(state, &from, full, &loads),
        Message::Push { node_id, message } => {
            if let Some(session) = state.jobs().sessions().get(&node_id) {
                let _ = session.try_send(message);
            }
        }
        Message::Post(post) if post.to == cluster.id => forward::serve(state, *post),
        Message::Reply(reply) if reply.to == cluster.id => {
            if let Some(waiter) = locked(&cluster.waiting).remove(&reply.corr) {
                let _ = waiter.send(reply);
            }
        }
        Message::Forget { api_key_id } => state.accounts().forget(api_key_id),
        Message::Gone { from } if from != cluster.id => replica_gone(state, &from),
        _ => {}
    }
}

/// Another replica took `node`'s heartbeat or changed it: keep this replica's own count of the
/// node's jobs, note the jobs a heartbeat listed, and offer its slots to waiting requests.
fn node_seen(state: &AppState, node: LiveNode, listed: Option<&[JobId]>) {
    let node_id = node.node_id;
    let elsewhere = elsewhere(state, node_id);
    state
        .registry()
        .lock()
        .entry(node_id)
        .and_modify(|old| {
            *old = LiveNode {
                jobs_in_flight: old.jobs_in_flight,
                signs_v2: old.signs_v2 || node.signs_v2,
                elsewhere,
                ..node.clone()
            }
        })
        .or_insert(LiveNode { jobs_in_flight: 0, elsewhere, ..node });
    if let Some(listed) = listed {
        crate::jobs::listed_elsewhere(state, node_id, listed);
    }
    crate::admission::offer(state, node_id);
}

/// Tells the other replicas what this one changed in `node_id`'s live state (its prices,
/// maintenance or attestation), so that the next heartbeat another replica takes does not
/// carry the old state back.
pub fn node_changed(state: &AppState, node_id: NodeId) {
    let Some(cluster) = state.cluster() else { return };
    if let Some(node) = state.registry().get(&node_id) {
        cluster.node_seen_here(node, None, state.now_ms());
    }
}

/// What another replica said about its jobs on nodes.
fn loads_seen(state: &AppState, from: &str, full: bool, loads: &[(NodeId, u32)]) {
    let Some(cluster) = state.cluster() else { return };
    let now = state.now_ms();
    let mut touched: Vec<NodeId> = loads.iter().map(|(id, _)| *id).collect();
    {
        let mut known = locked(&cluster.loads);
        if full {
            for (node_id, by_replica) in known.iter_mut() {
                if by_replica.remove(from).is_some() {
                    touched.push(*node_id);
                }
            }
        }
        for (node_id, count) in loads {
            known.entry(*node_id).or_default().insert(from.to_owned(), (*count, now));
        }
    }
    refresh_elsewhere(state, &touched);
}

/// Forgets what replica `from` said (it stopped, or stopped repeating itself).
fn replica_gone(state: &AppState, from: &str) {
    loads_seen(state, from, true, &[]);
}

/// Forgets loads not repeated within [`LOADS_LAST_MS`] (their replica died).
pub(crate) fn expire_loads(state: &AppState) {
    let Some(cluster) = state.cluster() else { return };
    let cutoff = state.now_ms() - LOADS_LAST_MS;
    let mut touched = Vec::new();
    for (node_id, by_replica) in locked(&cluster.loads).iter_mut() {
        let before = by_replica.len();
        by_replica.retain(|_, (_, said_at)| *said_at >= cutoff);
        if by_replica.len() != before {
            touched.push(*node_id);
        }
    }
    refresh_elsewhere(state, &touched);
}

/// Jobs other replicas have in flight on `node_id`.
fn elsewhere(state: &AppState, node_id: NodeId) -> u32 {
    let Some(cluster) = state.cluster() else { return 0 };
    locked(&cluster.loads).get(&node_id).map_or(0, |by_replica| by_replica.values().map(|(count, _)| count).sum())
}

/// Copies the other replicas' loads into the registry; a node with slots freed is offered to
/// waiting requests.
fn refresh_elsewhere(state: &AppState, nodes: &[NodeId]) {
    for node_id in nodes {
        let count = elsewhere(state, *node_id);
        let freed = {
            let mut registry = state.registry().lock();
            let Some(node) = registry.get_mut(node_id) else { continue };
            let freed = count < node.elsewhere;
            node.elsewhere = count;
            freed
        };
        if freed {
            crate::admission::offer(state, *node_id);
        }
    }
}

/// Sends `message` to `node_id`: on its WebSocket if this replica holds it, else to whichever
/// replica does. True if it went out on a socket here.
pub fn push(state: &AppState, node_id: NodeId, message: ServerMessage) -> bool {
    if let Some(session) = state.jobs().sessions().get(&node_id) {
        return session.try_send(message).is_ok();
    }
    if let Some(cluster) = state.cluster() {
        cluster.send(Message::Push { node_id, message });
    }
    false
}

/// Tells the other replicas to forget what they read of API key `api_key_id` (it was revoked
/// here; this replica's own cache forgot it already).
pub fn forget_key(state: &AppState, api_key_id: i64) {
    if let Some(cluster) = state.cluster() {
        cluster.send(Message::Forget { api_key_id });
    }
}

/// Tells the other replicas this one is stopping, and marks it silent in the store, so the
/// leader releases at once whatever jobs it leaves behind.
pub async fn leave(state: &AppState) {
    let Some(cluster) = state.cluster() else { return };
    let gone = serde_json::to_string(&Message::Gone { from: cluster.id.clone() }).unwrap_or_default();
    let _ = cluster.bus.publish(&[gone], state.now_ms()).await;
    if let Err(error) = state.store().touch_replica(cluster.id(), 0).await {
        tracing::warn!(%error, "could not mark this replica stopped");
    }
}
