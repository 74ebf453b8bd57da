//! The limits of one run ([`WasmLimits`]) and the store's resource limiter that turns a
//! too-large memory into an error the runner can recognise.

use std::fmt;
use std::time::Duration;

/// Most elements any one table may hold. Tables hold function references; compilers emit one
/// table sized to the program's indirect calls, far below this.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// What one run may use. Every limit is enforced by the sandbox, not asked of the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmLimits {
    /// Fuel units (about one per Wasm instruction). Counted the same way on every machine, so
    /// the fuel a job used is part of its deterministic result.
    pub fuel: u64,
    /// Most bytes of linear memory, declared or grown.
    pub memory_bytes: usize,
    /// Longest wall-clock time the guest may run. Not deterministic: it stops runaway jobs on
    /// a slow machine; fuel is the deterministic budget.
    pub wall_clock: Duration,
    /// Most bytes kept of each of stdout and stderr; the rest is dropped and the report says
    /// so.
    pub log_bytes: usize,
    /// Most bytes the output directory may hold after the run (the sum of its files' sizes).
    pub output_bytes: u64,
    /// Most files and directories the output directory may hold after the run.
    pub output_files: u64,
}

impl Default for WasmLimits {
    /// Ten billion fuel units (several seconds of compute), 64 MiB of memory, one minute, 64 KiB
    /// of each log, and an output of at most 1 GiB in at most 4096 files and directories.
    fn default() -> Self {
        Self {
            fuel: 10_000_000_000,
            memory_bytes: 64 << 20,
            wall_clock: Duration::from_secs(60),
            log_bytes: 64 << 10,
            output_bytes: 1 << 30,
            output_files: 4096,
        }
    }
}

/// The error a refused `memory.grow` (or a too-large declared memory) ends the guest with.
#[derive(Debug)]
pub(crate) struct MemoryLimitHit {
    pub(crate) limit_bytes: usize,
    pub(crate) requested_bytes: usize,
}

impl fmt::Display for MemoryLimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory of {} bytes asked for; the limit is {}", self.requested_bytes, self.limit_bytes)
    }
}

impl std::error::Error for MemoryLimitHit {}

/// The store's [`wasmtime::ResourceLimiter`]: one instance, one memory, one table, and a
/// memory size past which growth traps rather than returning -1 to the guest (so the run ends
/// with [`crate::SandboxError::MemoryLimit`] instead of a guest's own out-of-memory path).
#[derive(Debug)]
pub(crate) struct GuestLimiter {
    memory_bytes: usize,
    /// Largest memory size granted, for the report.
    pub(crate) peak_memory_bytes: usize,
}

impl GuestLimiter {
    pub(crate) fn new(memory_bytes: usize) -> Self {
        Self { memory_bytes, peak_memory_bytes: 0 }
    }
}

impl wasmtime::ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(MemoryLimitHit {
                limit_bytes: self.memory_bytes,
                requested_bytes: desired,
            }));
        }
        // Growing past the module's own declared maximum is the guest's business: -1, no trap.
        let allowed = maximum.is_none_or(|maximum| desired <= maximum);
        if allowed {
            self.peak_memory_bytes = self.peak_memory_bytes.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|maximum| desired <= maximum))
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}
