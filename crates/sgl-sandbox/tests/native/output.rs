//! The output limits: too many bytes (in one file, which also meets `RLIMIT_FSIZE`, or summed
//! over several), too many files, and anything but regular files and directories are refused;
//! exactly at the limits passes.

use std::path::Path;

use sgl_sandbox::native::NativeLimits;
use sgl_sandbox::{OutputUsage, SandboxError};

use crate::{JobDirs, sandbox, shell};

/// The limits of these tests: 1000 bytes, 3 entries.
fn small_output() -> NativeLimits {
    NativeLimits { output_bytes: 1000, output_files: 3, ..NativeLimits::default() }
}

fn run_script(script: &str) -> Result<sgl_sandbox::native::NativeReport, SandboxError> {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = shell(script, &input, &output);
    run.limits = small_output();
    sandbox().run(&run)
}

#[test]
fn exactly_at_the_limits_passes() {
    let report = run_script("head -c 600 /dev/zero > /out/a; mkdir /out/d; head -c 400 /dev/zero > /out/d/b")
        .expect("within the limits");
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.output, OutputUsage { bytes: 1000, files: 3 });
}

#[test]
fn one_file_past_the_byte_limit_is_refused() {
    // RLIMIT_FSIZE stops the write one byte past the limit; the check then refuses the file.
    match run_script("head -c 5000 /dev/zero > /out/big") {
        Err(SandboxError::OutputTooLarge { limit_bytes, found_bytes }) => {
            assert_eq!(limit_bytes, 1000);
            assert_eq!(found_bytes, 1001);
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
}

#[test]
fn files_summing_past_the_byte_limit_are_refused() {
    match run_script("head -c 600 /dev/zero > /out/a; head -c 600 /dev/zero > /out/b") {
        Err(SandboxError::OutputTooLarge { limit_bytes, found_bytes }) => {
            assert_eq!(limit_bytes, 1000);
            assert_eq!(found_bytes, 1200);
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
}

#[test]
fn too_many_files_are_refused() {
    match run_script("touch /out/1 /out/2 /out/3 /out/4") {
        Err(SandboxError::TooManyOutputFiles { limit }) => assert_eq!(limit, 3),
        other => panic!("expected TooManyOutputFiles, got {other:?}"),
    }
}

#[test]
fn a_symlink_or_a_fifo_is_refused() {
    for (script, name) in [("ln -s /etc/passwd /out/link", "link"), ("mkfifo /out/pipe", "pipe")] {
        match run_script(script) {
            Err(SandboxError::OutputNotRegularFile { path }) => assert_eq!(path, Path::new(name)),
            other => panic!("{script}: expected OutputNotRegularFile, got {other:?}"),
        }
    }
}
