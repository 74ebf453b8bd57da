//! Fuel, memory and the wall clock each end a guest with their own error, and one run's deadline
//! never ends another run.

use std::time::{Duration, Instant};

use sgl_sandbox::{SandboxError, WasmLimits};

use crate::{JobDirs, guest, job, sandbox};

const ENDLESS_LOOP: &str = r#"(func (export "_start") (loop $forever (br $forever)))"#;

#[test]
fn an_endless_loop_runs_out_of_fuel() {
    let module = guest(ENDLESS_LOOP);
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.limits = WasmLimits { fuel: 1_000_000, wall_clock: Duration::from_secs(60), ..WasmLimits::default() };
    match sandbox().run(&run) {
        Err(SandboxError::OutOfFuel { fuel }) => assert_eq!(fuel, 1_000_000),
        other => panic!("expected OutOfFuel, got {other:?}"),
    }
}

#[test]
fn an_endless_loop_with_endless_fuel_hits_the_deadline() {
    let module = guest(ENDLESS_LOOP);
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.limits = WasmLimits { fuel: u64::MAX, wall_clock: Duration::from_millis(200), ..WasmLimits::default() };
    let started = Instant::now();
    let result = sandbox().run(&run);
    let elapsed = started.elapsed();
    match result {
        Err(SandboxError::DeadlineExceeded { wall_clock }) => assert_eq!(wall_clock, Duration::from_millis(200)),
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(200), "stopped after {elapsed:?}, before its deadline");
    assert!(elapsed < Duration::from_secs(5), "stopped only after {elapsed:?}");
}

#[test]
fn one_runs_deadline_does_not_end_a_run_beside_it() {
    // A long run (a fuel budget of seconds, a generous deadline) beside short runs that hit a
    // 100 ms deadline: their timers bump the shared engine's epoch, and the long run must
    // carry on to its own end (out of fuel), not be interrupted.
    let long_module = guest(ENDLESS_LOOP);
    let long = std::thread::spawn(move || {
        let dirs = JobDirs::new();
        let (input, output) = (dirs.input(), dirs.output());
        let mut run = job(&long_module, &input, &output);
        run.limits = WasmLimits { fuel: 3_000_000_000, wall_clock: Duration::from_secs(120), ..WasmLimits::default() };
        let started = Instant::now();
        (sandbox().run(&run), started.elapsed())
    });
    let short_module = guest(ENDLESS_LOOP);
    let mut n_short = 0;
    while !long.is_finished() && n_short < 20 {
        let dirs = JobDirs::new();
        let (input, output) = (dirs.input(), dirs.output());
        let mut run = job(&short_module, &input, &output);
        run.limits = WasmLimits { fuel: u64::MAX, wall_clock: Duration::from_millis(100), ..WasmLimits::default() };
        assert!(matches!(sandbox().run(&run), Err(SandboxError::DeadlineExceeded { .. })));
        n_short += 1;
    }
    let (result, elapsed) = long.join().expect("the long run's thread");
    assert!(matches!(result, Err(SandboxError::OutOfFuel { .. })), "long run: {result:?}");
    assert!(n_short >= 2, "only {n_short} short runs hit their deadline while the long one ran ({elapsed:?})");
}

#[test]
fn growing_memory_past_the_limit_ends_the_guest() {
    // Growing within the limit works (memory.grow returns the old size, 1 page); growing past
    // it traps.
    let module = guest(
        r#"
  (func (export "_start")
    (if (i32.ne (memory.grow (i32.const 10)) (i32.const 1)) (then (call $proc_exit (i32.const 1))))
    (drop (memory.grow (i32.const 100))))
"#,
    );
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.limits = WasmLimits { memory_bytes: 4 << 20, ..WasmLimits::default() };
    match sandbox().run(&run) {
        Err(SandboxError::MemoryLimit { limit_bytes, requested_bytes }) => {
            assert_eq!(limit_bytes, 4 << 20);
            assert_eq!(requested_bytes, 111 * 65536);
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
}

#[test]
fn growing_memory_within_the_limit_is_reported() {
    let module = guest(
        r#"
  (func (export "_start")
    (if (i32.ne (memory.grow (i32.const 10)) (i32.const 1)) (then (call $proc_exit (i32.const 1)))))
"#,
    );
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.limits = WasmLimits { memory_bytes: 4 << 20, ..WasmLimits::default() };
    let report = sandbox().run(&run).expect("the guest runs");
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.peak_memory_bytes, 11 * 65536);
}

#[test]
fn a_declared_memory_past_the_limit_is_refused_at_instantiation() {
    let module = br#"(module (memory (export "memory") 100) (func (export "_start")))"#;
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(module, &input, &output);
    run.limits = WasmLimits { memory_bytes: 4 << 20, ..WasmLimits::default() };
    assert!(
        matches!(sandbox().run(&run), Err(SandboxError::MemoryLimit { requested_bytes, .. }) if requested_bytes == 100 * 65536)
    );
}
