//! Prometheus metrics in the text exposition format, without a metrics library: a few
//! counters and one latency histogram, plus node gauges computed at scrape time, and the
//! connection counts kept by [`crate::server`].

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sgl_protocol::api::admin::LatencyPercentiles;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The upper bound of the first cumulative bucket holding the `q` quantile of `count`
/// observations; `None` before any, or when it lies past the last finite bucket.
fn percentile(cumulative: &[u64], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    // The rank of the quantile, 1-based and rounded up: the smallest bucket holding it.
    let rank = ((count as f64) * q).ceil().max(1.0) as u64;
    BUCKETS.iter().zip(cumulative).find(|(_, n)| **n >= rank).map(|(bound, _)| *bound)
}

/// Counters updated by handlers.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Heartbeats accepted.
    pub heartbeats: AtomicU64,
    /// Nodes registered.
    pub registrations: AtomicU64,
    /// Jobs settled with a verified result.
    pub jobs_completed: AtomicU64,
    /// Jobs failed (nothing billed).
    pub jobs_failed: AtomicU64,
    /// Responses by status class: 2xx, 3xx, 4xx, 5xx.
    responses: [AtomicU64; 4],
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    /// Requests that had to wait in an admission line.
    queued: AtomicU64,
    /// Requests handed a slot after waiting, and their total wait.
    queue_handoffs: AtomicU64,
    queue_wait_sum_ms: AtomicU64,
    connections: Arc<ConnectionStats>,
    commits: Arc<CommitStats>,
}

/// Group commits of job writes, kept by [`crate::jobs::commit`].
#[derive(Debug, Default)]
pub struct CommitStats {
    groups: AtomicU64,
    writes: AtomicU64,
    fallbacks: AtomicU64,
    micros: AtomicU64,
}

impl CommitStats {
    /// Counts one group of `writes` committed in `took`, written one by one after all if
    /// `fell_back`.
    pub fn record(&self, writes: usize, took: std::time::Duration, fell_back: bool) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.fallbacks.fetch_add(u64::from(fell_back), Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP sgl_job_commits_total Transactions writing jobs' dispatches and ends (group commits).\n\
             # TYPE sgl_job_commits_total counter\n",
        );
        let _ = writeln!(out, "sgl_job_commits_total {}", self.groups.load(Ordering::Relaxed));
        out.push_str(
            "# HELP sgl_job_commit_seconds_total Time spent writing groups of job writes.\n\
             # TYPE sgl_job_commit_seconds_total counter\n",
        );
        let _ = writeln!(out, "sgl_job_commit_seconds_total {}", self.micros.load(Ordering::Relaxed) as f64 / 1e6);
        out.push_str(
            "# HELP sgl_job_writes_total Jobs' dispatches and ends written; over sgl_job_commits_total, the mean group.\n\
             # TYPE sgl_job_writes_total counter\n",
        );
        let _ = writeln!(out, "sgl_job_writes_total {}", self.writes.load(Ordering::Relaxed));
        out.push_str(
            "# HELP sgl_job_commit_fallbacks_total Groups that could not be written whole and were written one by one.\n\
             # TYPE sgl_job_commit_fallbacks_total counter\n",
        );
        let _ = writeln!(out, "sgl_job_commit_fallbacks_total {}", self.fallbacks.load(Ordering::Relaxed));
    }
}

/// Why a connection was closed as soon as it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its client already held `max_connections_per_address` connections.
    PerAddress,
    /// The grid already held `max_connections` connections.
    Total,
}

/// Which timeout closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionTimeout {
    /// A request head was not complete within `header_read_timeout_secs` (from the connection's
    /// start, or from the first byte of a later request).
    HeaderRead,
    /// No next request began within `idle_timeout_secs` of the previous response.
    Idle,
}

/// Connection counts, kept by the server's accept loop and its connections.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicU64,
    refused: [AtomicU64; 2],
    timed_out: [AtomicU64; 2],
}

impl ConnectionStats {
    /// Sets the number of open connections.
    pub fn set_open(&self, open: usize) {
        self.open.store(open as u64, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts one refused connection.
    pub fn refused(&self, refusal: Refusal) {
        self.refused[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections refused for `refusal` so far.
    pub fn refused_count(&self, refusal: Refusal) -> u64 {
        self.refused[refusal as usize].load(Ordering::Relaxed)
    }

    /// Counts one connection closed by a timeout.
    pub fn timed_out(&self, timeout: ConnectionTimeout) {
        self.timed_out[timeout as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed by `timeout` so far.
    pub fn timed_out_count(&self, timeout: ConnectionTimeout) -> u64 {
        self.timed_out[timeout as usize].load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String) {
        out.push_str("# HELP sgl_connections_open Open client connections.\n# TYPE sgl_connections_open gauge\n");
        let _ = writeln!(out, "sgl_connections_open {}", self.open());
        out.push_str(
            "# HELP sgl_connections_refused_total Connections closed at once because a cap was reached.\n\
             # TYPE sgl_connections_refused_total counter\n",
        );
        for (reason, refusal) in [("per_address", Refusal::PerAddress), ("total", Refusal::Total)] {
            let _ =
                writeln!(out, "sgl_connections_refused_total{{reason=\"{reason}\"}} {}", self.refused_count(refusal));
        }
        out.push_str(
            "# HELP sgl_connections_timed_out_total Connections closed for sending no request in time.\n\
             # TYPE sgl_connections_timed_out_total counter\n",
        );
        for (timeout, which) in [("header_read", ConnectionTimeout::HeaderRead), ("idle", ConnectionTimeout::Idle)] {
            let _ = writeln!(
                out,
                "sgl_connections_timed_out_total{{timeout=\"{timeout}\"}} {}",
                self.timed_out_count(which)
            );
        }
    }
}

/// Node counts by state, computed when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// Heartbeating and dispatchable.
    pub online: u64,
    /// Heartbeating but in maintenance.
    pub off_grid: u64,
    /// Registered, not heard from recently.
    pub offline: u64,
}

impl Metrics {
    /// The connection counts, shared with the server.
    pub fn connections(&self) -> &Arc<ConnectionStats> {
        &self.connections
    }

    /// Records one HTTP response.
    pub fn observe_response(&self, status: u16, seconds: f64) {
        let class = usize::from(status / 100).saturating_sub(2).min(3);
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        // Saturating float-to-int conversion: a negative or NaN duration counts as zero.
        self.latency_sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Counts a request that waits in an admission line.
    pub fn observe_queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a waiting request handed a slot after `waited_ms`.
    pub fn observe_queue_wait(&self, waited_ms: i64) {
        self.queue_handoffs.fetch_add(1, Ordering::Relaxed);
        self.queue_wait_sum_ms.fetch_add(u64::try_from(waited_ms).unwrap_or(0), Ordering::Relaxed);
    }

    /// The exposition text; `waiting` is the requests in admission lines now.
    pub fn render(&self, nodes: NodeCounts, waiting: usize) -> String {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str("# HELP sgl_nodes Registered nodes by state.\n# TYPE sgl_nodes gauge\n");
        for (state, n) in [("online", nodes.online), ("off_grid", nodes.off_grid), ("offline", nodes.offline)] {
            let _ = writeln!(out, "sgl_nodes{{state=\"{state}\"}} {n}");
        }
        out.push_str("# HELP sgl_heartbeats_total Heartbeats accepted.\n# TYPE sgl_heartbeats_total counter\n");
        let _ = writeln!(out, "sgl_heartbeats_total {}", load(&self.heartbeats));
        out.push_str("# HELP sgl_registrations_total Nodes registered.\n# TYPE sgl_registrations_total counter\n");
        let _ = writeln!(out, "sgl_registrations_total {}", load(&self.registrations));
        out.push_str("# HELP sgl_jobs_total Finished jobs by outcome.\n# TYPE sgl_jobs_total counter\n");
        let _ = writeln!(out, "sgl_jobs_total{{outcome=\"completed\"}} {}", load(&self.jobs_completed));
        let _ = writeln!(out, "sgl_jobs_total{{outcome=\"failed\"}} {}", load(&self.jobs_failed));
        out.push_str("# HELP sgl_http_responses_total HTTP responses by status class.\n# TYPE sgl_http_responses_total counter\n");
        for (class, counter) in ["2xx", "3xx", "4xx", "5xx"].iter().zip(&self.responses) {
            let _ = writeln!(out, "sgl_http_responses_total{{class=\"{class}\"}} {}", load(counter));
        }
        out.push_str(
            "# HELP sgl_http_request_seconds HTTP request latency.\n# TYPE sgl_http_request_seconds histogram\n",
        );
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(out, "sgl_http_request_seconds_bucket{{le=\"{bound}\"}} {}", load(bucket));
        }
        let count = load(&self.latency_count);
        let _ = writeln!(out, "sgl_http_request_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "sgl_http_request_seconds_sum {}", load(&self.latency_sum_micros) as f64 / 1e6);
        let _ = writeln!(out, "sgl_http_request_seconds_count {count}");
        out.push_str("# HELP sgl_admission_waiting Requests waiting for a node's slot now.\n# TYPE sgl_admission_waiting gauge\n");
        let _ = writeln!(out, "sgl_admission_waiting {waiting}");
        out.push_str(
            "# HELP sgl_admission_queued_total Requests that waited for a slot.\n# TYPE sgl_admission_queued_total counter\n",
        );
        let _ = writeln!(out, "sgl_admission_queued_total {}", load(&self.queued));
        out.push_str(
            "# HELP sgl_admission_wait_seconds Wait of requests handed a slot.\n# TYPE sgl_admission_wait_seconds summary\n",
        );
        let _ = writeln!(out, "sgl_admission_wait_seconds_sum {}", load(&self.queue_wait_sum_ms) as f64 / 1e3);
        let _ = writeln!(out, "sgl_admission_wait_seconds_count {}", load(&self.queue_handoffs));
        self.connections.render(&mut out);
        self.commits.render(&mut out);
        out
    }

    /// Jobs finished since start, as `sgl_jobs_total` counts them: completed, failed.
    pub fn jobs_finished(&self) -> (u64, u64) {
        (self.jobs_completed.load(Ordering::Relaxed), self.jobs_failed.load(Ordering::Relaxed))
    }

    /// Percentiles of `sgl_http_request_seconds`, read from its buckets.
    pub fn latency(&self) -> LatencyPercentiles {
        let count = self.latency_count.load(Ordering::Relaxed);
        let buckets: Vec<u64> = self.latency_buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        LatencyPercentiles {
            count,
            p50_seconds: percentile(&buckets, count, 0.50),
            p95_seconds: percentile(&buckets, count, 0.95),
            p99_seconds: percentile(&buckets, count, 0.99),
            mean_seconds: (count > 0).then(|| sum / count as f64),
        }
    }

    /// The group-commit counters, for the job writer.
    pub fn commits(&self) -> Arc<CommitStats> {
        self.commits.clone()
    }
}

#[cfg(test)]
mod tests;
