//! The output limits, shared with the native runner: after the guest exits, `/out` must hold
//! at most so many bytes and entries, and only regular files and directories.

use std::path::Path;

use sgl_sandbox::{OutputUsage, SandboxError, WasmLimits, WasmReport};

use crate::{FD_WRITE, JobDirs, O_CREAT, guest, job, sandbox};

/// Writes 600 zero bytes to `/out/big`, then (if `symlink`) makes `/out/link` point at it.
fn writer(symlink: bool) -> Vec<u8> {
    let link = if symlink {
        "(call $fail_if (call $path_symlink (i32.const 1024) (i32.const 3) (i32.const 4) (i32.const 1040) (i32.const 4)))"
    } else {
        ""
    };
    guest(&format!(
        r#"
  (data (i32.const 1024) "big")
  (data (i32.const 1040) "link")
  (func $fail_if (param $errno i32) (if (local.get $errno) (then (call $fail (i32.const 1) (local.get $errno)))))
  (func (export "_start")
    (call $fail_if (call $open (i32.const 4) (i32.const 1024) (i32.const 3) (i32.const {O_CREAT}) (i64.const {FD_WRITE})))
    (call $fail_if (call $write (i32.load (i32.const 12)) (i32.const 4096) (i32.const 600)))
    {link})
"#
    ))
}

fn run_writer(symlink: bool, output_bytes: u64, output_files: u64) -> Result<WasmReport, SandboxError> {
    let module = writer(symlink);
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.limits = WasmLimits { output_bytes, output_files, ..WasmLimits::default() };
    sandbox().run(&run)
}

#[test]
fn an_output_within_the_limits_is_reported() {
    let report = run_writer(false, 600, 1).expect("exactly at the limits");
    assert_eq!(report.exit_code, 0, "errno {:?}", report.stderr);
    assert_eq!(report.output, OutputUsage { bytes: 600, files: 1 });
}

#[test]
fn too_many_bytes_are_refused() {
    match run_writer(false, 599, 1) {
        Err(SandboxError::OutputTooLarge { limit_bytes, found_bytes }) => {
            assert_eq!((limit_bytes, found_bytes), (599, 600));
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
}

#[test]
fn too_many_files_are_refused() {
    assert!(matches!(run_writer(false, 600, 0), Err(SandboxError::TooManyOutputFiles { limit: 0 })));
}

#[test]
fn a_symlink_the_guest_made_is_refused() {
    match run_writer(true, 1 << 20, 10) {
        Err(SandboxError::OutputNotRegularFile { path }) => assert_eq!(path, Path::new("link")),
        other => panic!("expected OutputNotRegularFile, got {other:?}"),
    }
}
