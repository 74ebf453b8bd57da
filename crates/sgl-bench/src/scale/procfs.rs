//! What `/proc` says about a process: CPU time (`utime + stime` from `/proc/PID/stat`) and
//! resident memory (`VmRSS` from `/proc/PID/status`), and CPU time turned into a share of the
//! whole machine.

use std::time::{Duration, Instant};

use anyhow::Context;

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on Linux).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// A process's CPU time at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    ticks: u64,
    at: Instant,
}

/// Which process to read: another one by pid, or this one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Proc {
    /// `/proc/PID`.
    Pid(u32),
    /// `/proc/self`.
    This,
}

impl Proc {
    fn path(self, file: &str) -> String {
        match self {
            Self::Pid(pid) => format!("/proc/{pid}/{file}"),
            Self::This => format!("/proc/self/{file}"),
        }
    }

    /// User plus system CPU time so far.
    pub(crate) fn cpu(self) -> anyhow::Result<CpuSample> {
        let path = self.path("stat");
        let line = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let ticks = cpu_ticks(&line).with_context(|| format!("parsing {path}"))?;
        Ok(CpuSample { ticks, at: Instant::now() })
    }

    /// User plus system CPU seconds so far.
    pub(crate) fn cpu_seconds(self) -> anyhow::Result<f64> {
        Ok(self.cpu()?.ticks as f64 / CLOCK_TICKS_PER_SEC)
    }

    /// Resident memory in KiB.
    pub(crate) fn rss_kib(self) -> anyhow::Result<u64> {
        let path = self.path("status");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        vm_rss_kib(&text).with_context(|| format!("no VmRSS in {path}"))
    }
}

impl CpuSample {
    /// CPU used since `earlier`, as a percentage of the whole machine (`cores` cores).
    pub(crate) fn percent_since(&self, earlier: &Self, cores: usize) -> f64 {
        machine_percent(self.ticks.saturating_sub(earlier.ticks), self.at.duration_since(earlier.at), cores)
    }
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
pub(crate) fn cpu_ticks(stat_line: &str) -> Option<u64> {
    let after_name = &stat_line[stat_line.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: utime is field 14, i.e. index 11 here.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
pub(crate) fn vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.trim_start_matches("VmRSS:").split_whitespace().next()?.parse().ok()
}

/// `ticks` of CPU time over `wall` as a percentage of a machine with `cores` cores.
pub(crate) fn machine_percent(ticks: u64, wall: Duration, cores: usize) -> f64 {
    let wall = wall.as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    100.0 * (ticks as f64 / CLOCK_TICKS_PER_SEC) / wall / cores.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_skip_a_name_with_spaces_and_parentheses() {
        let line = "4242 (sgl grid) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 123 456 789";
        assert_eq!(cpu_ticks(line), Some(300));
        assert_eq!(cpu_ticks("4242 (short"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tsgl-grid\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n";
        assert_eq!(vm_rss_kib(status), Some(12345));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_share_is_of_the_whole_machine() {
        // 1 s of CPU in 2 s on 2 cores is a quarter of the machine.
        assert_eq!(machine_percent(100, Duration::from_secs(2), 2), 25.0);
        assert_eq!(machine_percent(400, Duration::from_secs(2), 2), 100.0);
        assert_eq!(machine_percent(5, Duration::ZERO, 2), 0.0);
    }
}
