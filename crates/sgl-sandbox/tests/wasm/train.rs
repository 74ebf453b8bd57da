//! The example training workload `examples/wasm/mnist-train` (a C MLP trainer built with Debian's
//! clang for wasm32-wasi), run as the `train` job class runs it: one epoch per run, the data as
//! `/in/mnist.csv`, the previous epoch's checkpoint as `/in/prev/ckpt.bin`, and `/out/ckpt.bin`
//! and `/out/metrics.json` out. With the real MNIST sample (`SGL_TEST_MNIST`, which
//! `.ci/install-mnist` installs) two epochs reach the README's accuracy, an epoch is bitwise
//! reproducible, and a native build of `train.c` computes the same checkpoint; a small
//! synthetic data set checks the resume rules and the errors everywhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sgl_sandbox::WasmLimits;

use crate::{JobDirs, assert_committed_build, in_ci, job, sandbox, toolchain_present};

/// The committed module.
const TRAIN_WASM: &[u8] = include_bytes!("../../../../examples/wasm/mnist-train/train.wasm");

/// Bytes of a checkpoint's header, and of a checkpoint of the default 784-64-10 model.
const HEADER_BYTES: usize = 40;
const DEFAULT_CKPT_BYTES: usize = HEADER_BYTES + 4 * ((784 + 1 + 10) * 64 + 10);

/// What one epoch's run produced.
#[derive(Debug, PartialEq, Eq)]
struct Epoch {
    exit_code: i32,
    stdout: String,
    stderr: String,
    /// `/out/ckpt.bin`, if the guest wrote it.
    ckpt: Option<Vec<u8>>,
    /// `/out/metrics.json`, if the guest wrote it.
    metrics: Option<String>,
    fuel_used: u64,
}

/// Runs `train --data /in/mnist.csv --epoch N` over `data`, with `--resume /in/prev/ckpt.bin`
/// when `prev` is given (that file holding it), and `extra` arguments after; prints the run's
/// summary, fuel, peak memory and wall time (the README's figures, with `--nocapture`).
fn run_epoch(data: &Path, epoch: u32, prev: Option<&[u8]>, extra: &[&str]) -> Epoch {
    let dirs = JobDirs::new();
    let (input, output) = (dirs.input(), dirs.output());
    std::fs::copy(data, input.join("mnist.csv")).expect("copy the data into /in");
    let epoch_arg = epoch.to_string();
    let mut args = vec!["train", "--data", "/in/mnist.csv", "--epoch", &epoch_arg];
    if let Some(prev) = prev {
        std::fs::create_dir(input.join("prev")).expect("create /in/prev");
        std::fs::write(input.join("prev/ckpt.bin"), prev).expect("write /in/prev/ckpt.bin");
        args.extend(["--resume", "/in/prev/ckpt.bin"]);
    }
    args.extend(extra);
    let mut run = job(TRAIN_WASM, &input, &output);
    run.args = args.into_iter().map(str::to_owned).collect();
    // An epoch of the MNIST sample is about 0.7e9 fuel; the cap leaves room, the deadline is for
    // unoptimised test builds on a busy machine.
    run.limits = WasmLimits { fuel: 2_000_000_000, wall_clock: Duration::from_secs(300), ..WasmLimits::default() };
    let report = sandbox().run(&run).expect("the guest runs");
    let summary = String::from_utf8_lossy(&report.stdout);
    let (fuel, memory, wall) = (report.fuel_used, report.peak_memory_bytes, report.wall_time);
    eprintln!("{}: fuel {fuel} memory {memory} wall {wall:?}", summary.trim_end());
    Epoch {
        exit_code: report.exit_code,
        stdout: String::from_utf8(report.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(report.stderr).expect("utf-8 stderr"),
        ckpt: std::fs::read(output.join("ckpt.bin")).ok(),
        metrics: std::fs::read_to_string(output.join("metrics.json")).ok(),
        fuel_used: report.fuel_used,
    }
}

impl Epoch {
    /// The checkpoint of a run that succeeded, checked to be of `epoch`.
    fn succeeded(&self, epoch: u32) -> &[u8] {
        assert_eq!(self.exit_code, 0, "epoch {epoch} failed: {}", self.stderr);
        let ckpt = self.ckpt.as_deref().expect("the guest wrote /out/ckpt.bin");
        assert_eq!(&ckpt[..8], b"SGLTRAIN", "the checkpoint's magic");
        assert_eq!(header_u32(ckpt, 8), 1, "the checkpoint's version");
        assert_eq!(header_u32(ckpt, 12), epoch, "the checkpoint's epoch");
        ckpt
    }

    /// The test accuracy in `metrics.json`, whose format is checked on the way.
    fn test_accuracy(&self, epoch: u32) -> f64 {
        let metrics = self.metrics.as_deref().expect("the guest wrote /out/metrics.json");
        let rest = metrics.strip_prefix(&format!("{{\"epoch\":{epoch},\"train_loss\":")).expect("metrics' epoch");
        let (loss, rest) = rest.split_once(",\"test_accuracy\":").expect("metrics' train_loss");
        let accuracy = rest.strip_suffix("}\n").expect("metrics end with one line");
        for number in [loss, accuracy] {
            let (_, decimals) = number.split_once('.').expect("a decimal point");
            assert_eq!(decimals.len(), 6, "six decimals: {metrics}");
        }
        assert!(loss.parse::<f64>().expect("a loss") > 0.0, "{metrics}");
        let accuracy = accuracy.parse::<f64>().expect("an accuracy");
        assert!(self.stdout.contains(&format!(" test_accuracy {accuracy:.6} ")), "stdout: {}", self.stdout);
        accuracy
    }
}

fn header_u32(ckpt: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(ckpt[offset..offset + 4].try_into().expect("4 bytes"))
}

/// The MNIST sample's path (`SGL_TEST_MNIST`), or `None` (and a note) when it is not set.
fn mnist() -> Option<PathBuf> {
    let path = std::env::var_os("SGL_TEST_MNIST").filter(|path| !path.is_empty()).map(PathBuf::from);
    if path.is_none() {
        assert!(!in_ci(), "CI=true but SGL_TEST_MNIST is not set (.ci/install-mnist prints the path)");
        eprintln!(
            "not tested here: SGL_TEST_MNIST is not set (.ci/install-mnist installs the sample, prints its path)"
        );
    }
    path
}

#[test]
fn the_committed_train_module_is_what_build_sh_builds() {
    assert_committed_build("mnist-train", "train.wasm", TRAIN_WASM);
}

#[test]
fn three_epochs_on_mnist_each_resumed_from_the_last_reach_85_percent_from_the_second() {
    let Some(data) = mnist() else { return };
    let mut prev: Option<Vec<u8>> = None;
    for epoch in 1..=3 {
        let run = run_epoch(&data, epoch, prev.as_deref(), &[]);
        let ckpt = run.succeeded(epoch);
        assert_eq!(ckpt.len(), DEFAULT_CKPT_BYTES);
        let accuracy = run.test_accuracy(epoch);
        assert!(epoch < 2 || accuracy >= 0.85, "test accuracy after {epoch} epochs: {accuracy}");
        assert!(run.stdout.ends_with(" hidden 64 seed 1\n"), "{}", run.stdout);
        if let Some(prev) = &prev {
            assert_eq!(ckpt[16..HEADER_BYTES], prev[16..HEADER_BYTES], "same shape, rate and seed");
            assert_ne!(ckpt[HEADER_BYTES..], prev[HEADER_BYTES..], "epoch {epoch} trained");
        }
        prev = Some(ckpt.to_vec());
    }
}

#[test]
fn an_epoch_run_twice_gives_identical_bytes_and_fuel_and_the_recorded_ones() {
    let Some(data) = mnist() else { return };
    let first = run_epoch(&data, 1, None, &[]);
    let second = run_epoch(&data, 1, None, &[]);
    first.succeeded(1);
    assert_eq!(first, second, "checkpoint, metrics, logs and fuel");
    // Golden: the metrics of epoch 1 with the defaults, and wasmtime 48's fuel for the committed
    // train.wasm. A change means the module, the data or the engine's fuel accounting changed.
    assert_eq!(first.metrics.as_deref(), Some("{\"epoch\":1,\"train_loss\":0.613164,\"test_accuracy\":0.912000}\n"));
    assert_eq!(first.fuel_used, 715_024_290);
}

#[test]
fn a_native_build_of_train_c_computes_the_same_checkpoint() {
    let Some(data) = mnist() else { return };
    if !toolchain_present() {
        assert!(!in_ci(), "CI must have clang (.ci/run installs it)");
        eprintln!("not tested here: no clang to build train.c natively");
        return;
    }
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let (binary, out) = (scratch.path().join("train"), scratch.path().join("out"));
    std::fs::create_dir(&out).expect("create out");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wasm/mnist-train/train.c");
    let flags = ["-O2", "-ffp-contract=off", "-fno-math-errno", "-o"];
    let built = Command::new("clang").args(flags).arg(&binary).arg(&source).output().expect("clang runs");
    assert!(built.status.success(), "native build failed: {}", String::from_utf8_lossy(&built.stderr));
    let native = Command::new(&binary)
        .args(["--epoch", "1", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("the native trainer runs");
    assert!(native.status.success(), "native run failed: {}", String::from_utf8_lossy(&native.stderr));
    let wasm = run_epoch(&data, 1, None, &[]);
    assert!(std::fs::read(out.join("ckpt.bin")).expect("native ckpt.bin") == wasm.succeeded(1), "checkpoints differ");
    assert_eq!(std::fs::read_to_string(out.join("metrics.json")).ok(), wasm.metrics);
    assert_eq!(String::from_utf8_lossy(&native.stdout), wasm.stdout);
}

/// A small valid data set: `rows` rows, labels 0..9 in turn, a few nonzero pixels per row.
fn synthetic_csv(rows: u32) -> String {
    (0..rows)
        .map(|row| {
            let label = row % 10;
            let pixels = (0..784u32).map(|pixel| {
                if (pixel + label) % 10 == 0 { ((pixel * 7 + row * 13) % 255 + 1).to_string() } else { "0".to_owned() }
            });
            pixels.chain(std::iter::once(label.to_string())).collect::<Vec<_>>().join(",") + "\n"
        })
        .collect()
}

/// Writes `csv` to a temporary file for [`run_epoch`].
fn data_file(csv: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), csv).expect("write the data");
    file
}

/// Asserts a run failed with `code`, a message containing `message`, and no output files.
fn assert_refused(epoch: &Epoch, code: i32, message: &str) {
    assert_eq!(epoch.exit_code, code, "stderr: {}", epoch.stderr);
    assert!(epoch.stderr.starts_with("train: ") && epoch.stderr.contains(message), "stderr: {}", epoch.stderr);
    assert_eq!((epoch.ckpt.as_deref(), epoch.metrics.as_deref()), (None, None), "nothing written");
}

#[test]
fn a_checkpoint_of_another_epoch_is_refused_with_a_clear_message() {
    let data = data_file(&synthetic_csv(20));
    let first = run_epoch(data.path(), 1, None, &[]);
    let ckpt = first.succeeded(1).to_vec();
    assert_eq!(ckpt.len(), DEFAULT_CKPT_BYTES);
    run_epoch(data.path(), 2, Some(&ckpt), &[]).succeeded(2);
    assert_refused(
        &run_epoch(data.path(), 3, Some(&ckpt), &[]),
        1,
        "/in/prev/ckpt.bin holds epoch 1, but epoch 3 resumes from epoch 2",
    );
    assert_refused(
        &run_epoch(data.path(), 1, Some(&ckpt), &[]),
        2,
        "epoch 1 starts from the seed and takes no --resume",
    );
    assert_refused(&run_epoch(data.path(), 2, None, &[]), 2, "an epoch after the first needs --resume CKPT");
}

#[test]
fn a_damaged_or_mismatched_checkpoint_is_refused() {
    let data = data_file(&synthetic_csv(20));
    let ckpt = run_epoch(data.path(), 1, None, &["--hidden", "8", "--seed", "5"]).succeeded(1).to_vec();
    assert_eq!(ckpt.len(), HEADER_BYTES + 4 * ((784 + 1 + 10) * 8 + 10));
    assert_eq!(header_u32(&ckpt, 20), 8, "H in the header");
    assert_eq!(header_u32(&ckpt, 32), 5, "the seed in the header");
    // --hidden and --seed come from the checkpoint when left out, and must match when given.
    run_epoch(data.path(), 2, Some(&ckpt), &[]).succeeded(2);
    run_epoch(data.path(), 2, Some(&ckpt), &["--seed", "5", "--hidden", "8", "--lr", "0.01"]).succeeded(2);
    for extra in [&["--hidden", "64"][..], &["--seed", "6"], &["--lr", "0.02"]] {
        assert_refused(
            &run_epoch(data.path(), 2, Some(&ckpt), extra),
            1,
            "trained with another --seed, --hidden or --lr",
        );
    }
    let mut bad_magic = ckpt.clone();
    bad_magic[0] = b'X';
    assert_refused(&run_epoch(data.path(), 2, Some(&bad_magic), &[]), 1, "not a train checkpoint");
    assert_refused(&run_epoch(data.path(), 2, Some(&ckpt[..ckpt.len() - 4]), &[]), 1, "size does not match");
    let mut wide = ckpt.clone();
    wide[16] = 28;
    assert_refused(&run_epoch(data.path(), 2, Some(&wide), &[]), 1, "not of a 784-H-10 model");
    let mut not_finite = ckpt.clone();
    not_finite[HEADER_BYTES..HEADER_BYTES + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_refused(&run_epoch(data.path(), 2, Some(&not_finite), &[]), 1, "a weight that is not finite");
    let missing = run_epoch(data.path(), 2, None, &["--resume", "/in/prev/none.bin"]);
    assert_refused(&missing, 1, "cannot read the checkpoint /in/prev/none.bin");
}

#[test]
fn bad_arguments_exit_2_and_bad_data_exit_1_with_a_message() {
    let data = data_file(&synthetic_csv(20));
    for extra in [&["--epoch", "0"][..], &["--hidden", "1025"], &["--lr", "x"], &["--x", "1"]] {
        let epoch = run_epoch(data.path(), 1, None, extra);
        assert_refused(&epoch, 2, "usage: train --data CSV --epoch N");
    }
    let mut short_row = synthetic_csv(20);
    short_row.insert_str(short_row.find('\n').expect("a line") + 1, "1,2,3\n");
    assert_refused(&run_epoch(data_file(&short_row).path(), 1, None, &[]), 1, "data line 2: expected 784 pixels");
    let big_pixel = synthetic_csv(20).replacen("0,", "256,", 1);
    assert_refused(&run_epoch(data_file(&big_pixel).path(), 1, None, &[]), 1, "data line 1: expected 784 pixels");
    assert_refused(&run_epoch(data_file(&synthetic_csv(9)).path(), 1, None, &[]), 1, "too few rows");
}
