//! stdout and stderr are kept up to the log cap; more is dropped, and the report says so, while
//! the guest's writes all succeed.

use sgl_sandbox::WasmLimits;

use crate::{JobDirs, guest, job, sandbox};

/// Writes the 100-byte pattern to stdout `$times` times, then once to stderr, and exits with
/// the number of writes that failed or wrote less than 100 bytes.
fn chatty_guest(times: u32) -> Vec<u8> {
    guest(&format!(
        r#"
  (data (i32.const 1024) "{pattern}")
  (func $counted_write (param $fd i32) (result i32)
    (if (result i32) (call $write (local.get $fd) (i32.const 1024) (i32.const 100))
      (then (i32.const 1))
      (else (i32.ne (i32.load (i32.const 8)) (i32.const 100)))))
  (func (export "_start")
    (local $i i32) (local $failures i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const {times})))
        (local.set $failures (i32.add (local.get $failures) (call $counted_write (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $failures (i32.add (local.get $failures) (call $counted_write (i32.const 2))))
    (call $proc_exit (local.get $failures)))
"#,
        pattern = pattern(),
    ))
}

/// `0123456789` ten times.
fn pattern() -> String {
    "0123456789".repeat(10)
}

fn run_chatty(times: u32, log_bytes: usize) -> sgl_sandbox::WasmReport {
    let module = chatty_guest(times);
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.limits = WasmLimits { log_bytes, ..WasmLimits::default() };
    sandbox().run(&run).expect("the guest runs")
}

#[test]
fn stdout_past_the_cap_is_cut_and_marked_truncated() {
    let report = run_chatty(10, 256);
    assert_eq!(report.exit_code, 0, "every write succeeded in full, past the cap too");
    assert!(report.stdout_truncated);
    assert_eq!(report.stdout.len(), 256);
    assert_eq!(report.stdout, pattern().repeat(10).as_bytes()[..256]);
    assert!(!report.stderr_truncated, "stderr has its own cap");
    assert_eq!(report.stderr, pattern().as_bytes());
}

#[test]
fn a_log_exactly_at_the_cap_is_not_truncated() {
    let report = run_chatty(10, 1000);
    assert_eq!(report.exit_code, 0);
    assert!(!report.stdout_truncated);
    assert_eq!(report.stdout, pattern().repeat(10).as_bytes());
}
