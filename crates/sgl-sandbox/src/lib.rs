//! Runs untrusted jobs in a sandbox, in one of two ways:
//!
//! - **WebAssembly** ([`Sandbox`], described on this page): a `wasm32-wasip1` guest (a binary
//!   module or WAT text) runs under wasmtime, synchronously, and the same job on any machine
//!   gives the same bytes and the same fuel count. `examples/wasm/primes` (a C prime sieve with
//!   a checkable output and a pinned fuel count) and `examples/wasm/mnist-train` (an MLP trainer,
//!   one epoch per run, with bitwise reproducible checkpoints) are the example workloads.
//! - **Native** ([`native::NativeSandbox`]): a program runs under bubblewrap, with rlimits,
//!   cgroups and a wall-clock kill, for work that cannot be Wasm (an ONNX worker, Blender). It
//!   is not deterministic by construction, and what a machine cannot enforce its probe says.
//!
//! Both check the output directory when the job has exited (`output.rs`): at most so many bytes
//! and entries, and only regular files and directories ([`OutputUsage`] in the report, or
//! [`SandboxError::OutputTooLarge`], [`SandboxError::TooManyOutputFiles`],
//! [`SandboxError::OutputNotRegularFile`]).
//!
//! # What the Wasm runner enforces, and how
//!
//! - **Compute: fuel.** Every run gets [`WasmLimits::fuel`] units (wasmtime's
//!   `consume_fuel`, about one unit per instruction); when they are gone the guest stops with
//!   [`SandboxError::OutOfFuel`]. The fuel a finished run used is in [`WasmReport::fuel_used`]
//!   and is deterministic.
//! - **Memory.** A resource limiter allows one instance with one memory and one table, and
//!   refuses a memory past [`WasmLimits::memory_bytes`], declared or grown: the guest stops with
//!   [`SandboxError::MemoryLimit`] (a trap, not `memory.grow` returning -1).
//! - **Wall clock: epoch interruption.** A timer thread per run bumps the engine's epoch when
//!   [`WasmLimits::wall_clock`] has passed; the guest stops at its next loop or call with
//!   [`SandboxError::DeadlineExceeded`]. The thread is stopped and joined when the run ends, and
//!   a bump only ends runs whose own deadline has passed (see `deadline.rs`), so runs sharing a
//!   [`Sandbox`] never end each other. `poll_oneoff` (sleeping) is refused with `ENOTSUP`,
//!   because a guest blocked in a host call cannot be interrupted.
//! - **Files: two preopens only.** The input directory is `/in` (descriptor 3), read-only
//!   (no writes, no new files); the output directory is `/out` (descriptor 4), read-write.
//!   wasmtime-wasi resolves every path inside its preopen (`..`, absolute paths and symlinks
//!   leading out are refused), and nothing else of the host file system is visible.
//! - **No network.** WASI preview 1 cannot create sockets; no socket is ever handed to the
//!   guest, so `sock_accept` and friends fail.
//! - **Determinism.** The wall clock always reads [`WasmRun::start_unix_secs`] and the
//!   monotonic clock always reads zero; `random_get` returns ChaCha20 output keyed by
//!   [`WasmRun::seed`] (the exact byte stream is pinned by a test); there are no environment
//!   variables; NaNs are canonicalised and relaxed SIMD (whose results may differ by CPU) is
//!   off; Wasm threads are not enabled.
//! - **Logs.** stdout and stderr go to in-memory buffers capped at [`WasmLimits::log_bytes`]
//!   each; the rest is dropped and [`WasmReport::stdout_truncated`] (or `stderr_truncated`)
//!   says so. The guest's writes always succeed, so logging too much never ends a job.
//!   Nothing is inherited from the host's stdio; stdin is empty.
//! - **Output.** When the guest has exited, `/out` must hold at most
//!   [`WasmLimits::output_bytes`] in at most [`WasmLimits::output_files`] files and
//!   directories, and nothing else (a guest can make symlinks with `path_symlink`). The check
//!   comes after the run: while it runs, the guest can fill the directory's file system, so give
//!   it one of bounded size.
//!
//! A guest's `proc_exit(n)` is a normal end: [`WasmReport::exit_code`] is `n`.
//!
//! # Not done yet
//!
//! - No limit on how many files a Wasm guest holds open, nor on compile time or module size
//!   (the caller should cap the module's bytes).
//! - The logs of a run that failed are not returned with the error (either runner), nor its
//!   fuel (which wasmtime does not count exactly after an interrupt or a trap).
//! - The native runner has no seccomp filter or Landlock ruleset yet: bubblewrap's namespaces,
//!   no capabilities and no nested user namespaces are the whole boundary.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod deadline;
mod error;
mod limits;
mod log;
pub mod native;
mod output;
mod wasi;

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::{Config, Engine, Linker, Module, Store, Trap};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::WasiP1Ctx;

pub use error::SandboxError;
pub use limits::WasmLimits;
pub use output::OutputUsage;
pub use wasi::{INPUT_DIR, OUTPUT_DIR, SECRETS_DIR};

/// The Wasm runtime and its version, as receipts name it: redundant runs are compared only
/// between nodes that ran the same one. A test checks it against `Cargo.lock`.
pub const WASM_RUNTIME: &str = "wasmtime 48.0.8";

use deadline::DeadlineTimer;
use limits::{GuestLimiter, MemoryLimitHit};
use log::CappedLog;
use output::{OutputLimits, check_output};

/// WASI's `ENOTSUP` errno, returned by the refused `poll_oneoff`.
const ERRNO_NOTSUP: i32 = 58;

/// One job for [`Sandbox::run`].
#[derive(Debug, Clone)]
pub struct WasmRun<'a> {
    /// A Wasm binary module or its WAT text, exporting `_start` (a WASI command).
    pub module: &'a [u8],
    /// The guest's `argv`, exactly (by convention the first is the program's name).
    pub args: Vec<String>,
    /// Host directory the guest reads as `/in`.
    pub input_dir: &'a Path,
    /// Host directory the guest reads and writes as `/out`.
    pub output_dir: &'a Path,
    /// Host directory the guest reads as `/secrets` (read-only), for a job with secrets.
    pub secrets_dir: Option<&'a Path>,
    /// Seed of the guest's random numbers.
    pub seed: u64,
    /// What the guest's wall clock reads, in seconds since the Unix epoch.
    pub start_unix_secs: u64,
    /// What the run may use.
    pub limits: WasmLimits,
}

/// A run that ended with the guest exiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmReport {
    /// 0 when `_start` returned, else the guest's `proc_exit` code.
    pub exit_code: i32,
    /// Fuel units used; deterministic for a given module, input, arguments and seed.
    pub fuel_used: u64,
    /// Largest linear memory the guest had, in bytes.
    pub peak_memory_bytes: usize,
    /// What the guest wrote to stdout, at most [`WasmLimits::log_bytes`].
    pub stdout: Vec<u8>,
    /// What the guest wrote to stderr, at most [`WasmLimits::log_bytes`].
    pub stderr: Vec<u8>,
    /// The guest wrote more to stdout than was kept.
    pub stdout_truncated: bool,
    /// The guest wrote more to stderr than was kept.
    pub stderr_truncated: bool,
    /// How long the run took (compile, instantiate, run); not deterministic.
    pub wall_time: Duration,
    /// What the guest left in the output directory, within [`WasmLimits::output_bytes`] and
    /// [`WasmLimits::output_files`].
    pub output: OutputUsage,
}

/// What a store holds: the guest's WASI world and its limiter.
struct GuestState {
    wasi: WasiP1Ctx,
    limiter: GuestLimiter,
}

/// A compiled-code engine and a WASI linker, shared by every run. Cheap to share across
/// threads (`&Sandbox` runs concurrently); each run gets its own store, limits and timer.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<GuestState>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

impl Sandbox {
    /// An engine configured for metered, deterministic guests, and its WASI linker.
    pub fn new() -> Result<Self, SandboxError> {
        let host_error = |error: wasmtime::Error| SandboxError::Host { message: format!("{error:#}") };
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .cranelift_nan_canonicalization(true)
            .wasm_relaxed_simd(false);
        let engine = Engine::new(&config).map_err(host_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut GuestState| &mut state.wasi)
            .map_err(host_error)?;
        linker.allow_shadowing(true);
        linker
            .func_wrap("wasi_snapshot_preview1", "poll_oneoff", |_: i32, _: i32, _: i32, _: i32| ERRNO_NOTSUP)
            .map_err(host_error)?;
        linker.allow_shadowing(false);
        Ok(Self { engine, linker })
    }

    /// Runs one job to its end. `Ok` whenever the guest exited, whatever its exit code.
    pub fn run(&self, run: &WasmRun<'_>) -> Result<WasmReport, SandboxError> {
        let started = Instant::now();
        let module = Module::new(&self.engine, run.module)
            .map_err(|error| SandboxError::ModuleInvalid { message: format!("{error:#}") })?;
        let stdout = CappedLog::new(run.limits.log_bytes);
        let stderr = CappedLog::new(run.limits.log_bytes);
        let wasi = wasi::guest_context(run, stdout.clone(), stderr.clone())?;

        let mut store =
            Store::new(&self.engine, GuestState { wasi, limiter: GuestLimiter::new(run.limits.memory_bytes) });
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(run.limits.fuel).map_err(|error| SandboxError::Host { message: format!("{error:#}") })?;
        // What the store actually holds (wasmtime may clamp a huge budget).
        let fuel_given = store.get_fuel().unwrap_or(run.limits.fuel);
        let deadline = started.checked_add(run.limits.wall_clock);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(deadline::epoch_callback(deadline));
        let _timer = deadline
            .map(|deadline| DeadlineTimer::start(&self.engine, deadline))
            .transpose()
            .map_err(|error| SandboxError::Host { message: format!("cannot start the deadline timer: {error}") })?;

        let instance = self.linker.instantiate(&mut store, &module);
        let outcome = match instance {
            Ok(instance) => {
                let start = instance
                    .get_typed_func::<(), ()>(&mut store, "_start")
                    .map_err(|error| SandboxError::ModuleInvalid { message: format!("{error:#}") })?;
                start.call(&mut store, ())
            }
            Err(error) if is_limit_or_trap(&error) => Err(error),
            Err(error) => return Err(SandboxError::ModuleInvalid { message: format!("{error:#}") }),
        };
        let fuel_used = fuel_given.saturating_sub(store.get_fuel().unwrap_or(0));
        let peak_memory_bytes = store.data().limiter.peak_memory_bytes;
        drop(store);

        let exit_code = match outcome {
            Ok(()) => 0,
            Err(error) => exit_code_or_error(&error, run, fuel_given)?,
        };
        let output_limits = OutputLimits { bytes: run.limits.output_bytes, files: run.limits.output_files };
        let output = check_output(run.output_dir, output_limits)?;
        let (stdout, stdout_truncated) = stdout.contents();
        let (stderr, stderr_truncated) = stderr.contents();
        Ok(WasmReport {
            exit_code,
            fuel_used,
            peak_memory_bytes,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            wall_time: started.elapsed(),
            output,
        })
    }
}

/// Runs one job in a fresh [`Sandbox`]. Prefer one `Sandbox` for many runs: it keeps the
/// engine and the linker.
pub fn run(run: &WasmRun<'_>) -> Result<WasmReport, SandboxError> {
    Sandbox::new()?.run(run)
}

/// An instantiation error that comes from running the guest (a start function, a limit), not
/// from linking.
fn is_limit_or_trap(error: &wasmtime::Error) -> bool {
    error.downcast_ref::<Trap>().is_some()
        || error.downcast_ref::<MemoryLimitHit>().is_some()
        || error.downcast_ref::<I32Exit>().is_some()
}

/// The guest's exit code if it called `proc_exit`, else the error the run ended with.
fn exit_code_or_error(error: &wasmtime::Error, run: &WasmRun<'_>, fuel_given: u64) -> Result<i32, SandboxError> {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    if let Some(hit) = error.downcast_ref::<MemoryLimitHit>() {
        return Err(SandboxError::MemoryLimit { limit_bytes: hit.limit_bytes, requested_bytes: hit.requested_bytes });
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Err(SandboxError::OutOfFuel { fuel: fuel_given }),
        Some(Trap::Interrupt) => Err(SandboxError::DeadlineExceeded { wall_clock: run.limits.wall_clock }),
        _ => Err(SandboxError::GuestTrap { message: format!("{error:#}") }),
    }
}
