//! The guest's WASI preview 1 world: arguments, two preopened directories (three with secrets), captured logs, a
//! clock that never moves and random numbers from the job's seed. Nothing else: no
//! environment variables, no inherited stdio, no sockets.

use std::path::Path;
use std::time::Duration;

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use crate::log::CappedLog;
use crate::{SandboxError, WasmRun};

/// Guest path of the read-only input directory (file descriptor 3).
pub const INPUT_DIR: &str = "/in";
/// Guest path of the writable output directory (file descriptor 4).
pub const OUTPUT_DIR: &str = "/out";
/// Where the guest reads its job's secrets (descriptor 5, read-only), when it has any.
pub const SECRETS_DIR: &str = "/secrets";

/// The wall clock: always the job's start time.
struct FixedWallClock(Duration);

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// The monotonic clock: always zero.
struct FixedMonotonicClock;

impl HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}

/// Which of the guest's two random streams a generator feeds.
#[derive(Clone, Copy)]
enum RandomStream {
    /// `random_get`.
    Secure = 0,
    /// The host's insecure source (not reachable from preview 1, set for completeness).
    Insecure = 1,
}

/// ChaCha20 keyed by the seed: bytes 0..8 the seed (little endian), byte 8 the stream, the rest
/// zero, nonce zero. The algorithm and the key layout are part of a job's definition: changing
/// either changes every job's output. (wasmtime-wasi 48 draws `random_get`'s bytes one `u8` at
/// a time through rand 0.10, which takes the low byte of each 32-bit word: the guest sees
/// keystream bytes 0, 4, 8, ...; a test pins the first of them.)
fn seeded_rng(seed: u64, stream: RandomStream) -> ChaCha20Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8] = stream as u8;
    ChaCha20Rng::from_seed(key)
}

/// Fails unless `path` is an existing directory, so a bad path shows as an I/O error naming it.
fn check_dir(path: &Path) -> Result<(), SandboxError> {
    let io_error = |source| SandboxError::Io { path: path.to_owned(), source };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if !metadata.is_dir() {
        return Err(io_error(std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory")));
    }
    Ok(())
}

/// The guest's WASI context, writing its stdout and stderr to the given pipes.
pub(crate) fn guest_context(
    run: &WasmRun<'_>,
    stdout: CappedLog,
    stderr: CappedLog,
) -> Result<WasiP1Ctx, SandboxError> {
    check_dir(run.input_dir)?;
    check_dir(run.output_dir)?;
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(&run.args)
        .stdout(stdout)
        .stderr(stderr)
        .wall_clock(FixedWallClock(Duration::from_secs(run.start_unix_secs)))
        .monotonic_clock(FixedMonotonicClock)
        .secure_random(seeded_rng(run.seed, RandomStream::Secure))
        .insecure_random(seeded_rng(run.seed, RandomStream::Insecure))
        .insecure_random_seed(u128::from(run.seed))
        // Preview 1 has no socket calls; should a later WASI version be linked, the network
        // stays off (these are also the defaults, and no address passes the default check).
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        // File I/O on the calling thread: runs are synchronous and have no runtime to hop to.
        // Set before the preopens, which copy it.
        .allow_blocking_current_thread(true);
    // The order fixes the descriptors: 3 is the input, 4 the output.
    builder.preopened_dir(run.input_dir, INPUT_DIR, FsPerms::ReadOnly).map_err(|error| SandboxError::Io {
        path: run.input_dir.to_owned(),
        source: std::io::Error::other(format!("{error:#}")),
    })?;
    builder.preopened_dir(run.output_dir, OUTPUT_DIR, FsPerms::ReadWrite).map_err(|error| SandboxError::Io {
        path: run.output_dir.to_owned(),
        source: std::io::Error::other(format!("{error:#}")),
    })?;
    // 5: the attempt's secrets, read-only, when the job has any.
    if let Some(dir) = run.secrets_dir {
        builder.preopened_dir(dir, SECRETS_DIR, FsPerms::ReadOnly).map_err(|error| SandboxError::Io {
            path: dir.to_owned(),
            source: std::io::Error::other(format!("{error:#}")),
        })?;
    }
    Ok(builder.build_p1())
}
