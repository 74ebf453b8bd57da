//! The `train` bundle (class, module, data, one resuming slice per epoch, limits) and its
//! summary (each epoch's metrics, the last checkpoint copied), on real files.

use sgl_protocol::compute::Digest;

use super::*;
use crate::classes::tests::{common, downloaded, signed};

fn args(base: &Path) -> TrainArgs {
    let data = base.join("mnist_5k.csv");
    std::fs::write(&data, "0,0,7\n").unwrap();
    TrainArgs {
        data,
        epochs: 3,
        hidden: 64,
        lr: 0.01,
        seed: 1,
        module: None,
        max_price: 1_000,
        common: common(&base.join("out")),
    }
}

#[test]
fn each_epoch_is_a_slice_resuming_from_the_previous_one() {
    let base = tempfile::tempdir().unwrap();
    let plan = train_bundle(&args(base.path())).unwrap();
    let (_dir, bundle) = signed(&plan);
    let manifest = &bundle.manifest;
    assert_eq!((manifest.class, manifest.entry.as_str()), (JobClass::Train, "train.wasm"));
    assert_eq!(manifest.args, ["--data", "/in/mnist.csv", "--seed", "1", "--hidden", "64", "--lr", "0.01"]);
    let slices: Vec<Vec<&str>> = manifest.slices.iter().map(|s| s.args.iter().map(String::as_str).collect()).collect();
    assert_eq!(
        slices,
        [
            vec!["--epoch", "1"],
            vec!["--epoch", "2", "--resume", "/in/prev/ckpt.bin"],
            vec!["--epoch", "3", "--resume", "/in/prev/ckpt.bin"],
        ]
    );
    assert_eq!(
        manifest.limits,
        ResourceLimits { fuel: 3_000_000_000, memory_mb: 256, wall_secs: 600, output_mb: 16, output_files: 4 }
    );
    assert_eq!((manifest.redundancy, manifest.max_price_micros_per_gfuel, manifest.engine.as_ref()), (1, 1_000, None));
    let committed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wasm/mnist-train/train.wasm"));
    assert_eq!(
        manifest.files["train.wasm"],
        Digest::of(committed.unwrap()),
        "the built-in module is the committed one"
    );
    assert_eq!(manifest.files.len(), 1);
    assert_eq!(manifest.inputs["mnist.csv"], Digest::of("0,0,7\n"));
    assert_eq!(manifest.inputs.len(), 1);
}

#[test]
fn the_hidden_layer_raises_the_fuel_and_the_flags_reach_the_guest() {
    let base = tempfile::tempdir().unwrap();
    let module = base.path().join("mine.wasm");
    std::fs::write(&module, "\0asm mine").unwrap();
    let args = TrainArgs { hidden: 65, lr: 0.02, seed: 9, epochs: 1, module: Some(module), ..args(base.path()) };
    let (_dir, bundle) = signed(&train_bundle(&args).unwrap());
    assert_eq!(bundle.manifest.limits.fuel, 6_000_000_000);
    assert_eq!(bundle.manifest.args, ["--data", "/in/mnist.csv", "--seed", "9", "--hidden", "65", "--lr", "0.02"]);
    assert_eq!(bundle.manifest.slices.len(), 1);
    assert_eq!(bundle.manifest.files["train.wasm"], Digest::of("\0asm mine"));
}

#[test]
fn bad_flags_are_refused_with_a_clear_message() {
    let base = tempfile::tempdir().unwrap();
    let error = |args: TrainArgs| train_bundle(&args).unwrap_err().to_string();
    assert_eq!(error(TrainArgs { hidden: 0, ..args(base.path()) }), "--hidden must be 1 to 1024");
    assert_eq!(error(TrainArgs { hidden: 1025, ..args(base.path()) }), "--hidden must be 1 to 1024");
    assert_eq!(error(TrainArgs { lr: 0.0, ..args(base.path()) }), "--lr must be above 0 and at most 10");
    assert_eq!(error(TrainArgs { lr: f32::NAN, ..args(base.path()) }), "--lr must be above 0 and at most 10");
    assert_eq!(error(TrainArgs { epochs: 0, ..args(base.path()) }), "--epochs must be at least 1");
    assert_eq!(error(TrainArgs { epochs: 1025, ..args(base.path()) }), "this makes 1025 slices; a job has 1 to 1024");
    let missing = base.path().join("missing.csv");
    assert!(error(TrainArgs { data: missing, ..args(base.path()) }).ends_with("missing.csv: no such file"));
    let module = Some(base.path().join("nope.wasm"));
    assert!(error(TrainArgs { module, ..args(base.path()) }).ends_with("nope.wasm: no such file"));
}

fn metrics(epoch: u32, loss: f64, accuracy: f64) -> String {
    format!("{{\"epoch\":{epoch},\"train_loss\":{loss:.6},\"test_accuracy\":{accuracy:.6}}}\n")
}

#[test]
fn the_summary_has_each_epochs_metrics_and_the_last_checkpoint() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let mut written = Vec::new();
    for (slice, (loss, accuracy)) in (0..).zip([(0.61, 0.843), (0.31, 0.887), (0.25, 0.901)]) {
        written.push(downloaded(out, slice, "ckpt.bin", format!("checkpoint {slice}").as_bytes()));
        written.push(downloaded(out, slice, "metrics.json", metrics(slice + 1, loss, accuracy).as_bytes()));
    }
    let summary = summarise(&written, 3, out).unwrap();
    assert_eq!(summary.files, [out.join("ckpt.bin")]);
    assert_eq!(std::fs::read_to_string(out.join("ckpt.bin")).unwrap(), "checkpoint 2");
    assert_eq!(summary.lines[0], "epoch 1: test accuracy 84.30 %, train loss 0.6100");
    assert_eq!(summary.lines[2], "epoch 3: test accuracy 90.10 %, train loss 0.2500");
    assert_eq!(
        summary.fields["metrics"][1],
        serde_json::json!({"epoch": 2, "train_loss": 0.31, "test_accuracy": 0.887})
    );
    assert_eq!(summary.fields["checkpoint"], out.join("ckpt.bin").to_str().unwrap());

    let error = summarise(&written[..5], 3, out).unwrap_err().to_string();
    assert_eq!(error, "slice 2 has no output metrics.json", "a missing epoch");
    written[3] = downloaded(out, 1, "metrics.json", metrics(7, 0.3, 0.8).as_bytes());
    assert_eq!(summarise(&written, 3, out).unwrap_err().to_string(), "slice 1 reports epoch 7, not 2");
    written[3] = downloaded(out, 1, "metrics.json", b"not json");
    assert!(summarise(&written, 3, out).unwrap_err().to_string().contains("is not the guest's metrics"));
}
