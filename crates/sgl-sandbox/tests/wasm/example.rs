//! The example workload `examples/wasm/primes` (a C prime sieve built with Debian's clang for
//! wasm32-wasi), as the grid's end-to-end job test and canaries will run it: its output is
//! checked against primes computed here, its fuel is pinned, and the committed binary is
//! checked against a fresh build wherever the toolchain exists (always under `CI=true`).

use crate::{JobDirs, assert_committed_build, job, sandbox};

/// The committed module.
const PRIMES_WASM: &[u8] = include_bytes!("../../../../examples/wasm/primes/primes.wasm");

/// What a run of `primes LO HI` produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    exit_code: i32,
    stdout: String,
    stderr: String,
    /// `/out/primes.txt`, if the guest wrote it.
    primes_txt: Option<Vec<u8>>,
    fuel_used: u64,
    peak_memory_bytes: usize,
}

fn run_primes(args: &[&str]) -> Outcome {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(PRIMES_WASM, &input, &output);
    run.args = std::iter::once("primes").chain(args.iter().copied()).map(str::to_owned).collect();
    let report = sandbox().run(&run).expect("the guest runs");
    assert!(std::fs::read_dir(&input).expect("list /in").next().is_none(), "/in stays empty");
    Outcome {
        exit_code: report.exit_code,
        stdout: String::from_utf8(report.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(report.stderr).expect("utf-8 stderr"),
        primes_txt: std::fs::read(output.join("primes.txt")).ok(),
        fuel_used: report.fuel_used,
        peak_memory_bytes: report.peak_memory_bytes,
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d))
}

/// The primes in `[lo, hi)` as the guest writes them: decimal, one per line.
fn expected_lines(lo: u64, hi: u64) -> (usize, Vec<u8>) {
    let primes: Vec<u64> = (lo..hi).filter(|n| is_prime(*n)).collect();
    (primes.len(), primes.iter().map(|p| format!("{p}\n")).collect::<String>().into_bytes())
}

fn check_range(lo: u64, hi: u64) -> Outcome {
    let outcome = run_primes(&[&lo.to_string(), &hi.to_string()]);
    let (count, lines) = expected_lines(lo, hi);
    assert_eq!(outcome.exit_code, 0, "{}", outcome.stderr);
    assert_eq!(outcome.stdout, format!("count {count}\n"));
    assert_eq!(outcome.primes_txt.as_deref(), Some(&lines[..]), "primes in [{lo}, {hi})");
    outcome
}

#[test]
fn the_primes_below_100_are_the_25_known_ones() {
    check_range(0, 100);
    let (count, lines) = expected_lines(0, 100);
    assert_eq!(count, 25);
    assert!(lines.starts_with(b"2\n3\n5\n7\n11\n") && lines.ends_with(b"89\n97\n"), "the test's own list is right");
}

#[test]
fn ranges_away_from_zero_match_trial_division() {
    check_range(1_000_000, 1_010_000);
    check_range(97, 98);
    check_range(500, 500);
    // Next to the largest HI allowed, across a segment boundary of the sieve (64 Ki numbers),
    // with bounded memory (a few hundred KiB of linear memory, whatever the range).
    let top = check_range(999_900_000, 1_000_000_000);
    assert!(top.peak_memory_bytes <= 2 << 20, "linear memory grew to {} bytes", top.peak_memory_bytes);
}

#[test]
fn two_runs_give_identical_bytes_and_fuel_and_the_fuel_is_the_recorded_one() {
    let first = check_range(0, 100_000);
    let second = check_range(0, 100_000);
    assert_eq!(first, second);
    // Golden: wasmtime 48's cost model for the committed primes.wasm. A change means the module
    // (or the engine's fuel accounting) changed, which changes every canary's expected fuel.
    assert_eq!(first.fuel_used, 8_499_686);
}

#[test]
fn bad_arguments_exit_2_with_a_message_and_write_nothing() {
    for args in
        [&["10"][..], &["1", "2", "3"], &["5", "3"], &["x", "10"], &["", "10"], &["0", "1000000001"], &["-1", "5"]]
    {
        let outcome = run_primes(args);
        assert_eq!(outcome.exit_code, 2, "{args:?}");
        assert!(
            outcome.stderr.starts_with("primes: ") && outcome.stderr.contains("usage: primes LO HI"),
            "{args:?}: {}",
            outcome.stderr
        );
        assert_eq!(outcome.stdout, "", "{args:?}");
        assert_eq!(outcome.primes_txt, None, "{args:?}");
    }
}

#[test]
fn the_committed_module_is_what_build_sh_builds() {
    assert_committed_build("primes", "primes.wasm", PRIMES_WASM);
}
