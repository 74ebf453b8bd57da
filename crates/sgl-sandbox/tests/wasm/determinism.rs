//! The same job gives the same bytes and the same fuel, run after run; the seed, and only the
//! seed, changes the random numbers; the clocks read the job's start time and zero; the guest
//! sees its arguments and no environment.

use crate::{FD_READ, FD_WRITE, JobDirs, O_CREAT, O_TRUNC, guest, job, sandbox};

/// Reads `/in/data.bin`, hashes it, draws 16 random bytes, reads both clocks, and writes the
/// 40-byte record `random[16] | wall clock ns u64 | monotonic ns u64 | hash u32 | length u32`
/// to stdout and to `/out/result.bin`.
fn checksum_guest() -> Vec<u8> {
    guest(&format!(
        r#"
  (data (i32.const 1024) "data.bin")
  (data (i32.const 1040) "result.bin")
  (func (export "_start")
    (local $errno i32) (local $fd i32) (local $n i32) (local $i i32) (local $hash i32)
    (local.set $errno (call $open (i32.const 3) (i32.const 1024) (i32.const 8) (i32.const 0) (i64.const {FD_READ})))
    (if (local.get $errno) (then (call $fail (i32.const 10) (local.get $errno))))
    (local.set $fd (i32.load (i32.const 12)))
    (local.set $errno (call $read (local.get $fd) (i32.const 4096) (i32.const 4096)))
    (if (local.get $errno) (then (call $fail (i32.const 11) (local.get $errno))))
    (local.set $n (i32.load (i32.const 8)))
    (drop (call $fd_close (local.get $fd)))
    (local.set $hash (i32.const 7))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $hash (i32.add (i32.mul (local.get $hash) (i32.const 31))
          (i32.load8_u (i32.add (i32.const 4096) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $errno (call $random_get (i32.const 256) (i32.const 16)))
    (if (local.get $errno) (then (call $fail (i32.const 12) (local.get $errno))))
    (local.set $errno (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 272)))
    (if (local.get $errno) (then (call $fail (i32.const 13) (local.get $errno))))
    (local.set $errno (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 280)))
    (if (local.get $errno) (then (call $fail (i32.const 14) (local.get $errno))))
    (i32.store (i32.const 288) (local.get $hash))
    (i32.store (i32.const 292) (local.get $n))
    (drop (call $write (i32.const 1) (i32.const 256) (i32.const 40)))
    (local.set $errno (call $open (i32.const 4) (i32.const 1040) (i32.const 10)
      (i32.const {creat_trunc}) (i64.const {FD_WRITE})))
    (if (local.get $errno) (then (call $fail (i32.const 15) (local.get $errno))))
    (local.set $fd (i32.load (i32.const 12)))
    (local.set $errno (call $write (local.get $fd) (i32.const 256) (i32.const 40)))
    (if (local.get $errno) (then (call $fail (i32.const 16) (local.get $errno))))
    (drop (call $fd_close (local.get $fd))))
"#,
        creat_trunc = O_CREAT | O_TRUNC,
    ))
}

/// What one run produced: its report's stdout and fuel, and `/out/result.bin`.
struct Outcome {
    stdout: Vec<u8>,
    fuel_used: u64,
    result_file: Vec<u8>,
}

fn run_checksum(seed: u64, data: &[u8]) -> Outcome {
    let module = checksum_guest();
    let dirs = JobDirs::new();
    std::fs::write(dirs.input().join("data.bin"), data).expect("write input");
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.seed = seed;
    let report = sandbox().run(&run).expect("the guest runs");
    assert_eq!(report.exit_code, 0, "guest failed; errno {:?}", report.stderr);
    assert!(!report.stdout_truncated);
    let result_file = std::fs::read(output.join("result.bin")).expect("the guest wrote /out/result.bin");
    Outcome { stdout: report.stdout, fuel_used: report.fuel_used, result_file }
}

fn expected_hash(data: &[u8]) -> u32 {
    data.iter().fold(7u32, |hash, byte| hash.wrapping_mul(31).wrapping_add(u32::from(*byte)))
}

/// 3000 bytes of input.
fn sample_data() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn the_same_job_twice_gives_identical_bytes_and_fuel() {
    let data = sample_data();
    let first = run_checksum(42, &data);
    let second = run_checksum(42, &data);

    assert_eq!(first.stdout.len(), 40);
    assert_eq!(first.result_file, first.stdout, "stdout and the output file carry the same record");
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(first.result_file, second.result_file);
    assert_eq!(first.fuel_used, second.fuel_used);
    // The hash loop alone is over ten instructions per byte: the fuel is counted, not zero.
    assert!(first.fuel_used > 30_000, "fuel used: {}", first.fuel_used);

    let record = &first.stdout;
    assert_ne!(&record[0..16], &[0u8; 16], "random_get filled the buffer");
    let wall_ns = u64::from_le_bytes(record[16..24].try_into().expect("8 bytes"));
    assert_eq!(wall_ns, 1_796_083_200 * 1_000_000_000, "the wall clock reads the job's start time");
    let monotonic_ns = u64::from_le_bytes(record[24..32].try_into().expect("8 bytes"));
    assert_eq!(monotonic_ns, 0, "the monotonic clock reads zero");
    let hash = u32::from_le_bytes(record[32..36].try_into().expect("4 bytes"));
    assert_eq!(hash, expected_hash(&data), "the guest read the whole input");
    let length = u32::from_le_bytes(record[36..40].try_into().expect("4 bytes"));
    assert_eq!(length, 3000);
}

#[test]
fn seed_42_gives_the_recorded_random_bytes_and_fuel() {
    // Golden values: a change here changes every job's result, so it must be deliberate (and
    // recorded with the job's engine version). The random bytes were computed apart from this
    // code, with Python's `cryptography` ChaCha20 (RFC 8439 keystream, key = the seed as 8
    // little-endian bytes then 24 zeros, nonce 0): wasmtime-wasi 48's `random_get` draws each
    // byte as one `u8` from rand 0.10, which is the low byte of the next 32-bit word, so the
    // guest sees keystream bytes 0, 4, 8, ... The fuel is wasmtime 48's cost model for this
    // guest and input.
    let outcome = run_checksum(42, &sample_data());
    assert_eq!(hex(&outcome.stdout[..16]), "1f516259163ddca4eb71045b5616d72d");
    assert_eq!(outcome.fuel_used, 54_140);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn another_seed_changes_the_random_bytes_and_nothing_else() {
    let data = b"the same input".to_vec();
    let seed_one = run_checksum(1, &data);
    let seed_two = run_checksum(2, &data);
    assert_ne!(seed_one.stdout[0..16], seed_two.stdout[0..16], "different seeds, different random bytes");
    assert_eq!(seed_one.stdout[16..], seed_two.stdout[16..], "clocks and hash do not depend on the seed");
    assert_ne!(seed_one.result_file, seed_two.result_file);
    assert_eq!(seed_one.fuel_used, seed_two.fuel_used, "fuel does not depend on the random values here");
}

#[test]
fn the_guest_sees_its_arguments_and_no_environment() {
    // argv as NUL-terminated strings to stdout, then the number of environment variables.
    let module = guest(
        r#"
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 24) (i32.const 28)))
    (drop (call $args_get (i32.const 2048) (i32.const 4096)))
    (drop (call $write (i32.const 1) (i32.const 4096) (i32.load (i32.const 28))))
    (drop (call $environ_sizes_get (i32.const 24) (i32.const 28)))
    (call $put_byte (i32.load (i32.const 24))))
"#,
    );
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    let mut run = job(&module, &input, &output);
    run.args = vec!["train".to_owned(), "--epochs".to_owned(), "3".to_owned()];
    let report = sandbox().run(&run).expect("the guest runs");
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.stdout, b"train\0--epochs\x003\0\x00", "argv, then zero environment variables");
}

#[test]
fn the_runtime_receipts_name_is_the_wasmtime_in_cargo_lock() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
    let version = sgl_sandbox::WASM_RUNTIME.strip_prefix("wasmtime ").unwrap();
    assert!(lock.contains(&format!("name = \"wasmtime\"\nversion = \"{version}\"")), "Cargo.lock has another wasmtime");
}
