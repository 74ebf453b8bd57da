//! The text-to-image pipeline on tiny graphs that `tests/make_tiny.py` builds: reproducible
//! pixels, seeds, prompts and image indexes that change them, and a typed error for each way a
//! pipeline can disagree with its graphs.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use sgl_image::{
    Engine, GenerateError, Generator, Picture, Pipeline, PipelineError, RunSettings, image_file_name, write_images,
};

use crate::{decode_png, engine, skip};

/// The tiny models in a fresh folder, or `None` (after [`skip`]) without Python's `onnx`.
fn tiny_models() -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("temporary folder");
    for (name, bytes) in built_models().as_ref()? {
        std::fs::write(dir.path().join(name), bytes).expect("writes a model");
    }
    Some(dir)
}

/// The tiny models' file names.
const MODELS: [&str; 3] = ["text_encoder.onnx", "unet.onnx", "vae_decoder.onnx"];

/// A model's file name and bytes.
type ModelFile = (String, Vec<u8>);

/// The models `make_tiny.py` builds, by file name. Importing `onnx` takes seconds, and nextest
/// runs each test in its own process, so they are built once per version of the script into a
/// folder of the target directory and read from there afterwards.
fn built_models() -> &'static Option<Vec<ModelFile>> {
    static BUILT: OnceLock<Option<Vec<ModelFile>>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make_tiny.py");
        let source = std::fs::read(&script).expect("make_tiny.py is readable");
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        source.hash(&mut hasher);
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sgl-image-tiny-{:016x}", hasher.finish()));
        if !MODELS.iter().all(|name| cache.join(name).is_file()) && !build_models(&script, &cache) {
            return None;
        }
        let read = |name: &str| (name.to_owned(), std::fs::read(cache.join(name)).expect("a built model"));
        Some(MODELS.map(read).into())
    })
}

/// Runs `make_tiny.py` into a fresh folder and moves it to `cache`; `false` (after [`skip`])
/// when Python cannot import `onnx`.
fn build_models(script: &Path, cache: &Path) -> bool {
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary folder");
    let output = Command::new("python3").arg(script).arg(scratch.path()).output().expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("No module named") {
        skip(&format!("python3 cannot build the tiny models: {}", stderr.lines().last().unwrap_or_default()));
        return false;
    }
    assert!(output.status.success(), "make_tiny.py failed: {stderr}");
    // Another test process may have won the race to the same folder (with the same content).
    let scratch = scratch.keep();
    if std::fs::rename(&scratch, cache).is_err() {
        std::fs::remove_dir_all(&scratch).expect("removes the losing copy");
    }
    true
}

/// The engine and the tiny models, or `None` when either is missing.
fn setup() -> Option<(Engine, tempfile::TempDir)> {
    Some((engine()?, tiny_models()?))
}

fn pipeline_json() -> Value {
    json!({
        "kind": "text-to-image",
        "tokenizer": { "max_length": 16 },
        "text_encoder": { "model": "text_encoder.onnx", "input": "input_ids", "output": "embedding" },
        "unet": { "model": "unet.onnx", "latent_input": "latent", "sigma_input": "sigma",
                  "text_input": "text", "output": "prediction", "prediction": "epsilon" },
        "vae_decoder": { "model": "vae_decoder.onnx", "input": "latent", "output": "image", "latent_scale": 0.5 },
        "latent": { "channels": 4, "height": 8, "width": 8 },
        "schedule": { "steps": 4, "sigma_max": 10.0, "sigma_min": 0.1 },
        "image": { "channels": 3, "height": 16, "width": 16 },
        "pixels": { "map": "linear", "min": -1.0, "max": 1.0 }
    })
}

fn load(dir: &Path, value: &Value) -> Result<Pipeline, PipelineError> {
    let path = dir.join("pipeline.json");
    std::fs::write(&path, value.to_string()).expect("writes the pipeline");
    Pipeline::load(&path)
}

fn settings(prompt: Option<&str>) -> RunSettings {
    RunSettings { threads: 1, prompt: prompt.map(str::to_owned) }
}

/// Image `index` of a fresh generator.
fn image(engine: &Engine, pipeline: &Pipeline, prompt: &str, seed: u64, index: u64) -> Picture {
    let mut generator = Generator::new(engine, pipeline, &settings(Some(prompt))).expect("pipeline loads");
    generator.image(seed, index).expect("image")
}

/// The error `Generator::new` (or its first image) gives for `value`.
fn error(engine: &Engine, dir: &Path, value: &Value, prompt: Option<&str>) -> GenerateError {
    let pipeline = load(dir, value).expect("the pipeline file itself is valid");
    match Generator::new(engine, &pipeline, &settings(prompt)).and_then(|mut generator| generator.image(0, 0)) {
        Ok(_) => panic!("{value} ran"),
        Err(error) => error,
    }
}

#[test]
fn same_inputs_give_the_same_pixels_and_seed_prompt_and_index_change_them() {
    let Some((ref engine, dir)) = setup() else { return };
    let pipeline = load(dir.path(), &pipeline_json()).expect("valid pipeline");
    let first = image(engine, &pipeline, "a red fox", 1, 0);
    assert_eq!((first.width(), first.height(), first.channels()), (16, 16, 3));
    assert_eq!(first.samples().len(), 16 * 16 * 3);
    let mut levels = first.samples().to_vec();
    levels.sort_unstable();
    levels.dedup();
    assert!(levels.len() > 20, "a nearly flat image: {levels:?}");

    assert_eq!(image(engine, &pipeline, "a red fox", 1, 0), first, "a second generator");
    assert_ne!(image(engine, &pipeline, "a red fox", 2, 0), first, "another seed");
    assert_ne!(image(engine, &pipeline, "a blue fox", 1, 0), first, "another prompt");
    assert_ne!(image(engine, &pipeline, "a red fox", 1, 1), first, "another index");

    // One generator, images in any order: each depends only on (seed, index).
    let mut generator = Generator::new(engine, &pipeline, &settings(Some("a red fox"))).expect("loads");
    let second = generator.image(1, 1).expect("image");
    assert_eq!(generator.image(1, 0).expect("image"), first);
    assert_eq!(generator.image(1, 1).expect("image"), second);
}

#[test]
fn written_pngs_decode_to_the_generated_pixels() {
    let Some((ref engine, dir)) = setup() else { return };
    let pipeline = load(dir.path(), &pipeline_json()).expect("valid pipeline");
    let out = dir.path().join("out");
    let mut generator = Generator::new(engine, &pipeline, &settings(Some("a red fox"))).expect("loads");
    let paths = write_images(&mut generator, 5, 2, &out).expect("writes");
    assert_eq!(paths, vec![out.join(image_file_name(0)), out.join("image-0001.png")]);
    for (index, path) in paths.iter().enumerate() {
        let decoded = decode_png(path);
        assert_eq!((decoded.width, decoded.height, decoded.color), (16, 16, png::ColorType::Rgb));
        assert_eq!(decoded.samples, image(engine, &pipeline, "a red fox", 5, index as u64).samples());
    }
}

#[test]
fn names_that_are_not_in_the_graph_are_typed_errors() {
    let Some((ref engine, dir)) = setup() else { return };
    let mut value = pipeline_json();
    value["unet"]["latent_input"] = json!("noise");
    match error(engine, dir.path(), &value, Some("x")) {
        GenerateError::UnknownInput { name, available, .. } => {
            assert_eq!(name, "noise");
            assert_eq!(available, ["latent", "sigma", "text"]);
        }
        other => panic!("expected UnknownInput, got {other}"),
    }
    let mut value = pipeline_json();
    value["vae_decoder"]["output"] = json!("pixels");
    match error(engine, dir.path(), &value, Some("x")) {
        GenerateError::UnknownOutput { name, available, .. } => {
            assert_eq!((name.as_str(), available), ("pixels", vec!["image".to_owned()]))
        }
        other => panic!("expected UnknownOutput, got {other}"),
    }
}

#[test]
fn sizes_that_disagree_with_the_graph_are_typed_errors() {
    let Some((ref engine, dir)) = setup() else { return };
    let mut value = pipeline_json();
    value["latent"] = json!({ "channels": 4, "height": 16, "width": 16 });
    match error(engine, dir.path(), &value, Some("x")) {
        GenerateError::InputShape { name, declared, fed, .. } => {
            assert_eq!((name.as_str(), declared, fed), ("latent", vec![1, 4, 8, 8], vec![1, 4, 16, 16]));
        }
        other => panic!("expected InputShape, got {other}"),
    }
    let mut value = pipeline_json();
    value["image"] = json!({ "channels": 3, "height": 32, "width": 32 });
    match error(engine, dir.path(), &value, Some("x")) {
        GenerateError::OutputShape { name, expected, actual, .. } => {
            assert_eq!((name.as_str(), expected, actual), ("image", vec![1, 3, 32, 32], vec![1, 3, 16, 16]));
        }
        other => panic!("expected OutputShape, got {other}"),
    }
    let mut value = pipeline_json();
    value["tokenizer"]["max_length"] = json!(8);
    assert!(matches!(
        error(engine, dir.path(), &value, Some("x")),
        GenerateError::InputShape { name, .. } if name == "input_ids"
    ));
}

#[test]
fn graphs_fed_the_wrong_way_are_typed_errors() {
    let Some((ref engine, dir)) = setup() else { return };
    // The UNet run as a consistency model: its text input is left unfed.
    let consistency = |model: &str, noise: &str| {
        json!({
            "kind": "consistency", "model": model,
            "inputs": { "noise": noise, "sigma": "sigma" }, "output": "prediction",
            "image": { "channels": 1, "height": 8, "width": 8 }, "sigma": 1.0,
            "pixels": { "map": "min-max" }
        })
    };
    let value = consistency("unet.onnx", "latent");
    assert!(
        matches!(error(engine, dir.path(), &value, None), GenerateError::UnfedInput { name, .. } if name == "text")
    );
    // A float graph input where the text encoder's token ids go.
    let mut value = pipeline_json();
    value["text_encoder"] = json!({ "model": "vae_decoder.onnx", "input": "latent", "output": "image" });
    match error(engine, dir.path(), &value, Some("x")) {
        GenerateError::ElementType { name, declared, needed, .. } => {
            assert_eq!((name.as_str(), declared.as_str(), needed), ("latent", "Float32", "int64"));
        }
        other => panic!("expected ElementType, got {other}"),
    }
}

#[test]
fn prompts_engine_pins_and_missing_models_are_checked() {
    let Some((ref engine, dir)) = setup() else { return };
    assert!(matches!(error(engine, dir.path(), &pipeline_json(), None), GenerateError::PromptRequired));
    let mut value = pipeline_json();
    value["onnxruntime_version"] = json!("0.0.1");
    match error(engine, dir.path(), &value, Some("x")) {
        GenerateError::EngineVersion { required, loaded } => {
            assert_eq!((required.as_str(), loaded.as_str()), ("0.0.1", engine.version()))
        }
        other => panic!("expected EngineVersion, got {other}"),
    }
    value["onnxruntime_version"] = json!(engine.version());
    assert!(Generator::new(engine, &load(dir.path(), &value).expect("valid"), &settings(Some("x"))).is_ok());

    std::fs::remove_file(dir.path().join("unet.onnx")).expect("removes");
    assert!(
        matches!(load(dir.path(), &pipeline_json()), Err(PipelineError::ModelMissing { path }) if path.ends_with("unet.onnx"))
    );
}
