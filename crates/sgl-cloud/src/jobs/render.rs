//! The text forms of jobs, logs and downloads (`--json` prints the wire types instead).

use sgl_protocol::api::compute::{JobLog, JobResult, JobView};

use super::Written;
use crate::micros_to_usd as usd;

/// One line: the job's state and how many slices are done.
pub(super) fn progress(job: &JobView) -> String {
    format!("job {}: {}, {}/{} slice(s) done", job.id, job.state.as_str(), job.slices_done, job.slice_count)
}

/// A job with its money, and each slice and attempt when present.
pub(super) fn job(job: &JobView) -> String {
    let mut lines = vec![
        progress(job),
        format!("  bundle {}  class {}  redundancy {}", job.bundle_hash, job.class, job.redundancy),
        format!(
            "  price {} micro-USD per 10^9 fuel  escrow ${:.6}  charged ${:.6}  refunded ${:.6}",
            job.price_micros_per_gfuel,
            usd(job.escrow_micros),
            usd(job.charged_micros),
            usd(job.refunded_micros)
        ),
        format!(
            "  created {}{}",
            job.created_at,
            job.ended_at.as_deref().map(|t| format!("  ended {t}")).unwrap_or_default()
        ),
    ];
    lines.extend(job.error.as_deref().map(|e| format!("  error: {e}")));
    for slice in &job.slices {
        let result = slice.result_digest.map(|d| format!("  result {d}")).unwrap_or_default();
        lines.push(format!("  slice {}  {}{result}", slice.index, slice.state.as_str()));
        for attempt in &slice.attempts {
            let fuel = attempt.fuel.map(|f| format!("  fuel {f}")).unwrap_or_default();
            let error = attempt.error.as_deref().map(|e| format!("  error: {e}")).unwrap_or_default();
            lines.push(format!(
                "    attempt {}  {}  node {}{fuel}  charged ${:.6}{error}",
                attempt.attempt,
                attempt.state.as_str(),
                attempt.node_id,
                usd(attempt.charged_micros)
            ));
        }
    }
    lines.join("\n")
}

/// One line per job.
pub(super) fn list(jobs: &[JobView]) -> String {
    let rows = jobs.iter().map(|job| {
        format!(
            "{}  {:<9}  {}/{} done  x{}  {}",
            job.id,
            job.state.as_str(),
            job.slices_done,
            job.slice_count,
            job.redundancy,
            job.created_at
        )
    });
    rows.collect::<Vec<_>>().join("\n")
}

/// A log under a header naming its slice, attempt, node and stream, ending in a newline.
pub(super) fn log(log: &JobLog) -> String {
    let stream = match log.stream {
        sgl_protocol::api::compute::LogStream::Stdout => "stdout",
        sgl_protocol::api::compute::LogStream::Stderr => "stderr",
    };
    let mut text = format!("--- slice {} attempt {} ({}) node {} ---\n", log.slice, log.attempt, stream, log.node_id);
    text.push_str(&log.text);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Each slice's exit code and the files written for it.
pub(super) fn written(result: &JobResult, written: &[Written]) -> String {
    let mut lines = Vec::new();
    for slice in &result.slices {
        lines.push(format!("slice {}: exit code {}", slice.index, slice.exit_code));
        for file in written.iter().filter(|w| w.slice == slice.index) {
            lines.push(format!("  wrote {} ({} bytes, sha256 {})", file.file.display(), file.size, file.sha256));
        }
    }
    lines.join("\n")
}
