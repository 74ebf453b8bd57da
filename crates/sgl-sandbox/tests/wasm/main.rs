//! The Wasm runner against real guests, written as WAT text (no Wasm toolchain needed), and the
//! committed example workloads (`examples/wasm/*`): one test binary, one shared [`Sandbox`], a
//! fresh pair of directories per test.

mod determinism;
mod example;
mod isolation;
mod limits;
mod logs;
mod modules;
mod output;
mod secrets;
mod train;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use sgl_sandbox::{Sandbox, WasmLimits, WasmRun};
use tempfile::TempDir;

/// WASI preview 1 imports and small helpers every guest may use. Memory layout: bytes 0..8 an
/// iovec, 8..12 the count a read or write returns, 12..16 the descriptor `$open` returns,
/// 16..24 scratch; guests keep their strings from 1024 and their buffers from 4096.
const PRELUDE: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)

  ;; fd_write of one buffer; the errno.
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))

  ;; fd_read into one buffer; the errno (the count is at 8).
  (func $read (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))

  ;; path_open under $dir with these open flags and rights; the errno (the descriptor is at 12).
  (func $open (param $dir i32) (param $path i32) (param $len i32) (param $oflags i32) (param $rights i64) (result i32)
    (call $path_open (local.get $dir) (i32.const 0) (local.get $path) (local.get $len) (local.get $oflags)
      (local.get $rights) (local.get $rights) (i32.const 0) (i32.const 12)))

  ;; One byte to stdout.
  (func $put_byte (param $byte i32)
    (i32.store8 (i32.const 16) (local.get $byte))
    (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1))))

  ;; The errno as one byte on stderr, then exit with $code.
  (func $fail (param $code i32) (param $errno i32)
    (i32.store8 (i32.const 16) (local.get $errno))
    (drop (call $write (i32.const 2) (i32.const 16) (i32.const 1)))
    (call $proc_exit (local.get $code)))
"#;

/// WASI rights: read and write.
const FD_READ: i64 = 1 << 1;
const FD_WRITE: i64 = 1 << 6;
/// WASI open flags: create, truncate.
const O_CREAT: i32 = 1;
const O_TRUNC: i32 = 8;

/// A guest module: the prelude plus `body` (which exports `_start`), as WAT text.
fn guest(body: &str) -> Vec<u8> {
    format!("(module {PRELUDE}\n{body})").into_bytes()
}

/// The sandbox all tests share, as callers will.
fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new().expect("the engine starts"))
}

/// A job's directories: `root/in` and `root/out`, siblings, so that `../` from one reaches the
/// other and `root` on the host.
struct JobDirs {
    root: TempDir,
}

impl JobDirs {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(root.path().join("in")).expect("create in");
        std::fs::create_dir(root.path().join("out")).expect("create out");
        Self { root }
    }

    fn input(&self) -> std::path::PathBuf {
        self.root.path().join("in")
    }

    fn output(&self) -> std::path::PathBuf {
        self.root.path().join("out")
    }
}

/// A run of `module` over `input` and `output` with seed 1, a fixed start time and the default
/// limits.
fn job<'a>(module: &'a [u8], input: &'a Path, output: &'a Path) -> WasmRun<'a> {
    WasmRun {
        module,
        args: vec!["guest".to_owned()],
        input_dir: input,
        output_dir: output,
        secrets_dir: None,
        seed: 1,
        start_unix_secs: 1_796_083_200,
        limits: WasmLimits::default(),
    }
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| value == "true")
}

/// Whether Debian's clang and wasi-libc are installed (compiler-rt's wasm32 builtins are
/// needed too; a build without them fails, and says so).
fn toolchain_present() -> bool {
    let clang = Command::new("clang").arg("--version").output().is_ok_and(|output| output.status.success());
    clang && Path::new("/usr/lib/wasm32-wasi/libc.a").is_file()
}

/// Checks that `examples/wasm/<example>/build.sh` builds exactly the `committed` bytes of
/// `file`, wherever the toolchain exists (always under `CI=true`).
fn assert_committed_build(example: &str, file: &str, committed: &[u8]) {
    if !toolchain_present() {
        assert!(!in_ci(), "CI must have clang, lld, wasi-libc and libclang-rt-14-dev-wasm32 (.ci/run installs them)");
        eprintln!("not tested here: no clang or wasi-libc to rebuild examples/wasm/{example}");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wasm").join(example);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let rebuilt = scratch.path().join(file);
    let output = Command::new("sh").arg(dir.join("build.sh")).arg(&rebuilt).output().expect("build.sh runs");
    assert!(output.status.success(), "{example}/build.sh failed: {}", String::from_utf8_lossy(&output.stderr));
    let rebuilt = std::fs::read(&rebuilt).expect("build.sh wrote the module");
    assert!(rebuilt == committed, "{file} differs from a fresh build of {example}: run build.sh and commit it");
}
