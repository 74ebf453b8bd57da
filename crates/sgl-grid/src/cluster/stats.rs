//! What `/metrics` says about this replica among the others.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one replica's part in the cluster.
#[derive(Debug, Default)]
pub(super) struct ClusterStats {
    /// Messages published on the bus.
    pub(super) published: AtomicU64,
    /// Messages received from the bus (its own included).
    pub(super) received: AtomicU64,
    /// Node posts forwarded to the replica holding their job.
    pub(super) forwarded: AtomicU64,
    /// Forwarded posts whose holder did not answer in time.
    pub(super) forward_timeouts: AtomicU64,
    /// Jobs of dead replicas this replica ended as the leader.
    pub(super) orphans_ended: AtomicU64,
}

impl ClusterStats {
    /// Appends the exposition lines; `leads` and `peers` are gauges read now.
    pub(super) fn render(&self, out: &mut String, leads: bool, peers: bool) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let lines: [(&str, &str, &str, u64); 7] = [
            ("sgl_replica_leader", "gauge", "1 while this replica holds the leader's lock.", u64::from(leads)),
            ("sgl_replica_peers_heard", "gauge", "1 while another replica has been heard lately.", u64::from(peers)),
            (
                "sgl_replica_bus_published_total",
                "counter",
                "Messages published to the other replicas.",
                load(&self.published),
            ),
            ("sgl_replica_bus_received_total", "counter", "Messages received on the bus.", load(&self.received)),
            (
                "sgl_replica_posts_forwarded_total",
                "counter",
                "Node posts forwarded to the replica holding the job.",
                load(&self.forwarded),
            ),
            (
                "sgl_replica_forward_timeouts_total",
                "counter",
                "Forwarded posts not answered in time.",
                load(&self.forward_timeouts),
            ),
            (
                "sgl_replica_orphans_ended_total",
                "counter",
                "Jobs of dead replicas ended as the leader.",
                load(&self.orphans_ended),
            ),
        ];
        for (name, kind, help, value) in lines {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
    }
}
