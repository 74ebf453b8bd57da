//! The terrain consistency UNet (PyPI `adaptive-terrain-diffusion` 0.4.2, `SGL_TEST_TERRAIN_ONNX`)
//! through the built binary, as a node runs it: 128 x 128 grey PNGs whose decoded pixels are the
//! same in separate processes, whatever the image count, and the same as the library makes.

use std::path::{Path, PathBuf};

use serde_json::json;
use sgl_image::{Generator, Pipeline, RunSettings};

use crate::{Decoded, binary, decode_png, engine, ort_library, skip};

/// The terrain model from `SGL_TEST_TERRAIN_ONNX`, if it is there.
fn terrain_model() -> Option<PathBuf> {
    let model = std::env::var_os("SGL_TEST_TERRAIN_ONNX").map(PathBuf::from).filter(|path| path.is_file());
    if model.is_none() {
        skip("SGL_TEST_TERRAIN_ONNX does not name the terrain model");
    }
    model
}

/// A job folder as the node lays it out: `in/pipeline.json` next to the model.
fn job(model: &Path, difficulty: f32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::create_dir(dir.path().join("in")).expect("creates in/");
    std::fs::copy(model, dir.path().join("in/terrain.onnx")).expect("copies the model");
    let pipeline = json!({
        "kind": "consistency",
        "model": "terrain.onnx",
        "inputs": { "noise": "noisy", "sigma": "sigma", "condition": "difficulty" },
        "output": "denoised",
        "image": { "channels": 1, "height": 128, "width": 128 },
        "sigma": 80.0,
        "condition": difficulty,
        "pixels": { "map": "linear", "min": -1.0, "max": 1.0 }
    });
    std::fs::write(dir.path().join("in/pipeline.json"), pipeline.to_string()).expect("writes the pipeline");
    dir
}

/// Runs `sgl-image generate` into `job/<out>` and returns the decoded images.
fn generate(library: &Path, job: &Path, out: &str, seed: u64, count: u64) -> Vec<Decoded> {
    let out = job.join(out);
    let output = binary(library)
        .arg("generate")
        .arg("--pipeline")
        .arg(job.join("in/pipeline.json"))
        .arg("--out")
        .arg(&out)
        .args(["--seed", &seed.to_string(), "--count", &count.to_string(), "--threads", "1"])
        .output()
        .expect("sgl-image runs");
    assert!(output.status.success(), "sgl-image failed: {}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON summary line");
    assert_eq!(summary["images"], count);
    assert_eq!(summary["engine"], "onnxruntime");
    assert!(summary["seconds"].as_f64().is_some_and(|s| s > 0.0), "{summary}");
    (0..count).map(|index| decode_png(&out.join(format!("image-{index:04}.png")))).collect()
}

#[test]
fn terrain_pixels_are_identical_across_processes_and_counts() {
    let (Some(library), Some(model)) = (ort_library(), terrain_model()) else { return };
    let job = job(&model, 0.5);
    let first = generate(&library, job.path(), "out-a", 7, 2);
    for image in &first {
        assert_eq!((image.width, image.height, image.color), (128, 128, png::ColorType::Grayscale));
        let mut levels = image.samples.clone();
        levels.sort_unstable();
        levels.dedup();
        assert!(levels.len() > 16, "a nearly flat heightmap: {} grey levels", levels.len());
    }
    assert_ne!(first[0].samples, first[1].samples, "two images of a run are different terrains");
    assert_eq!(generate(&library, job.path(), "out-b", 7, 2), first, "a second process");
    assert_eq!(generate(&library, job.path(), "out-c", 7, 1)[0], first[0], "a run of one image");
    assert_ne!(generate(&library, job.path(), "out-d", 8, 1)[0], first[0], "another seed");
}

#[test]
fn the_library_makes_the_binarys_pixels_and_difficulty_matters() {
    let (Some(ref engine), Some(library), Some(model)) = (engine(), ort_library(), terrain_model()) else { return };
    let easy = job(&model, 0.0);
    let from_binary = generate(&library, easy.path(), "out", 3, 1);
    let pipeline = Pipeline::load(&easy.path().join("in/pipeline.json")).expect("valid pipeline");
    let settings = RunSettings { threads: 1, prompt: None };
    let mut generator = Generator::new(engine, &pipeline, &settings).expect("loads");
    assert_eq!(generator.image(3, 0).expect("image").samples(), from_binary[0].samples.as_slice());

    let hard = job(&model, 1.0);
    let pipeline = Pipeline::load(&hard.path().join("in/pipeline.json")).expect("valid pipeline");
    let mut generator = Generator::new(engine, &pipeline, &settings).expect("loads");
    assert_ne!(generator.image(3, 0).expect("image").samples(), from_binary[0].samples.as_slice());
}
