//! The `image` bundle (the pipeline's directory, the engine, a seed and a count per slice, the
//! prompt as the job's argument) and its summary (the images numbered across the job).

use sgl_protocol::compute::Digest;

use super::*;
use crate::classes::tests::{common, downloaded, signed};

/// A pipeline directory with a model beside it and one in a subdirectory.
fn pipeline(base: &Path) -> PathBuf {
    let dir = base.join("terrain");
    fs::create_dir_all(dir.join("models")).unwrap();
    fs::write(dir.join("pipeline.json"), "{\"kind\": \"consistency\"}").unwrap();
    fs::write(dir.join("terrain.onnx"), "onnx").unwrap();
    fs::write(dir.join("models/vae.onnx"), "vae").unwrap();
    dir.join("pipeline.json")
}

fn args(base: &Path) -> ImageArgs {
    ImageArgs {
        pipeline: pipeline(base),
        images: 5,
        per_slice: 2,
        seed: 7,
        prompt: Some("a red hill".into()),
        engine: DEFAULT_ENGINE.into(),
        max_price: 10_000,
        common: common(&base.join("out")),
    }
}

#[test]
fn each_slice_has_its_own_seed_and_count_and_the_directory_is_bundled() {
    let base = tempfile::tempdir().unwrap();
    let (_dir, bundle) = signed(&image_bundle(&args(base.path())).unwrap());
    let manifest = &bundle.manifest;
    assert_eq!((manifest.class, manifest.entry.as_str()), (JobClass::Image, "pipeline.json"));
    assert_eq!(manifest.engine.as_deref(), Some("onnxruntime 1.32.0"));
    assert_eq!(manifest.args, ["--prompt", "a red hill"]);
    let slices: Vec<&[String]> = manifest.slices.iter().map(|s| s.args.as_slice()).collect();
    assert_eq!(
        slices,
        [&["--seed", "7", "--count", "2"][..], &["--seed", "8", "--count", "2"], &["--seed", "9", "--count", "1"]]
    );
    assert_eq!(
        manifest.limits,
        ResourceLimits { fuel: 2_000_000_000, memory_mb: 1024, wall_secs: 600, output_mb: 64, output_files: 2 }
    );
    assert_eq!(manifest.max_price_micros_per_gfuel, 10_000);
    let files: Vec<(&str, Digest)> = manifest.files.iter().map(|(name, digest)| (name.as_str(), *digest)).collect();
    assert_eq!(
        files,
        [
            ("models/vae.onnx", Digest::of("vae")),
            ("pipeline.json", Digest::of("{\"kind\": \"consistency\"}")),
            ("terrain.onnx", Digest::of("onnx")),
        ]
    );
    assert!(manifest.inputs.is_empty());
}

#[test]
fn without_a_prompt_the_job_has_no_arguments_and_one_slice_can_do() {
    let base = tempfile::tempdir().unwrap();
    let args =
        ImageArgs { prompt: None, images: 3, per_slice: 4, engine: "onnxruntime 1.33.0".into(), ..args(base.path()) };
    let plan = image_bundle(&args).unwrap();
    assert!(plan.manifest.args.is_empty());
    assert_eq!(plan.manifest.slices.len(), 1);
    assert_eq!(plan.manifest.slices[0].args, ["--seed", "7", "--count", "3"]);
    assert_eq!(plan.manifest.limits.fuel, 3_000_000_000, "the most one slice makes");
    assert_eq!(plan.manifest.engine.as_deref(), Some("onnxruntime 1.33.0"));
}

#[test]
fn images_are_split_into_slices_of_at_most_per_slice() {
    assert_eq!(slice_counts(5, 2).unwrap(), [2, 2, 1]);
    assert_eq!(slice_counts(4, 4).unwrap(), [4]);
    assert_eq!(slice_counts(1, 4).unwrap(), [1]);
    assert_eq!(slice_counts(1024, 1).unwrap().len(), 1024);
    assert_eq!(slice_counts(0, 1).unwrap_err().to_string(), "--images must be at least 1");
    assert_eq!(slice_counts(1, 0).unwrap_err().to_string(), "--per-slice must be 1 to 1024");
    assert_eq!(
        slice_counts(1025, 1).unwrap_err().to_string(),
        "1025 images at 1 per slice is 1025 slices; a job has at most 1024"
    );
}

#[test]
fn a_pipeline_that_cannot_be_bundled_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let error = |args: ImageArgs| image_bundle(&args).unwrap_err().to_string();
    let missing = ImageArgs { pipeline: base.path().join("nope/pipeline.json"), ..args(base.path()) };
    assert!(error(missing).ends_with("nope/pipeline.json: no such pipeline file"));
    let overflow = ImageArgs { seed: u64::MAX - 1, ..args(base.path()) };
    assert_eq!(error(overflow), format!("--seed {} leaves no room for 3 slice seeds below 2^64", u64::MAX - 1));
    let bad_engine = ImageArgs { engine: "onnxruntime".into(), ..args(base.path()) };
    assert!(error(bad_engine).starts_with("--engine \"onnxruntime\" must be a name and a version"));
    let with_manifest = args(base.path());
    fs::write(with_manifest.pipeline.with_file_name("manifest.json"), "{}").unwrap();
    assert!(error(with_manifest).contains("manifest.json is in the pipeline's directory"));
}

#[test]
fn images_are_numbered_across_the_job() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let written = [
        downloaded(out, 0, "image-0000.png", b"slice 0 image 0"),
        downloaded(out, 0, "image-0001.png", b"slice 0 image 1"),
        downloaded(out, 1, "image-0000.png", b"slice 1 image 0"),
    ];
    let summary = summarise(&written, &[2, 1], out).unwrap();
    let expected: Vec<PathBuf> = (0..3).map(|n| out.join(format!("image-{n:04}.png"))).collect();
    assert_eq!(summary.files, expected);
    assert_eq!(fs::read_to_string(&expected[1]).unwrap(), "slice 0 image 1");
    assert_eq!(fs::read_to_string(&expected[2]).unwrap(), "slice 1 image 0");
    assert_eq!(summary.fields["images"], 3);
    let short = summarise(&written[..2], &[2, 1], out).unwrap_err().to_string();
    assert_eq!(short, "slice 1 has no output image-0000.png");
}
