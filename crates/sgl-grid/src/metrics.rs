//! Prometheus metrics in the text exposition format, without a metrics library: a few
//! counters and one latency histogram, plus node gauges computed at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

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

    /// The exposition text.
    pub fn render(&self, nodes: NodeCounts) -> String {
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
        out
    }
}
