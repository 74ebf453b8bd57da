//! Tests of pipeline parsing and validation: every rule gives its own typed error.

use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn consistency_json() -> Value {
    json!({
        "kind": "consistency",
        "model": "model.onnx",
        "inputs": { "noise": "noisy", "sigma": "sigma", "condition": "difficulty" },
        "output": "denoised",
        "image": { "channels": 1, "height": 128, "width": 128 },
        "sigma": 80.0,
        "condition": 0.5,
        "pixels": { "map": "linear", "min": -1.0, "max": 1.0 }
    })
}

fn text_to_image_json() -> Value {
    json!({
        "kind": "text-to-image",
        "tokenizer": { "max_length": 16 },
        "text_encoder": { "model": "text.onnx", "input": "ids", "output": "embedding" },
        "unet": { "model": "unet.onnx", "latent_input": "latent", "sigma_input": "sigma",
                  "text_input": "text", "output": "out", "prediction": "epsilon" },
        "vae_decoder": { "model": "vae.onnx", "input": "latent", "output": "image" },
        "latent": { "channels": 4, "height": 8, "width": 8 },
        "schedule": { "steps": 4, "sigma_max": 10.0, "sigma_min": 0.1 },
        "image": { "channels": 3, "height": 16, "width": 16 },
        "pixels": { "map": "min-max" }
    })
}

/// A folder holding empty files for every model the two pipelines above name.
fn model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for name in ["model.onnx", "text.onnx", "unet.onnx", "vae.onnx"] {
        std::fs::write(dir.path().join(name), b"").expect("writes");
    }
    dir
}

fn parse(value: &Value, dir: &Path) -> Result<Pipeline, PipelineError> {
    let spec: PipelineSpec = serde_json::from_value(value.clone())
        .map_err(|source| PipelineError::Parse { path: "pipeline.json".into(), source })?;
    Pipeline::new(spec, dir)
}

fn invalid_field(value: &Value, dir: &Path) -> &'static str {
    match parse(value, dir) {
        Err(PipelineError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn valid_pipelines_load_with_defaults() {
    let dir = model_dir();
    let consistency = parse(&consistency_json(), dir.path()).expect("valid");
    let PipelineSpec::Consistency(spec) = consistency.spec() else { panic!("kind") };
    assert_eq!(spec.condition, Some(0.5));
    assert_eq!(consistency.required_engine_version(), None);
    assert_eq!(consistency.model_files(), vec![Path::new("model.onnx")]);

    let text = parse(&text_to_image_json(), dir.path()).expect("valid");
    let PipelineSpec::TextToImage(spec) = text.spec() else { panic!("kind") };
    assert_eq!(spec.vae_decoder.latent_scale, 1.0);
    assert_eq!(spec.unet.prediction, Prediction::Epsilon);
    assert_eq!(text.model_files().len(), 3);
}

#[test]
fn load_reads_the_file_and_resolves_models_next_to_it() {
    let dir = model_dir();
    let mut value = consistency_json();
    value["onnxruntime_version"] = json!("1.32.0");
    let path = dir.path().join("pipeline.json");
    std::fs::write(&path, value.to_string()).expect("writes");
    let pipeline = Pipeline::load(&path).expect("valid");
    assert_eq!(pipeline.required_engine_version(), Some("1.32.0"));
    assert_eq!(pipeline.model_path(Path::new("model.onnx")).expect("present"), dir.path().join("model.onnx"));

    std::fs::write(&path, "{\"kind\": \"consistency\"").expect("writes");
    assert!(matches!(Pipeline::load(&path), Err(PipelineError::Parse { .. })));
    let missing = dir.path().join("absent.json");
    assert!(matches!(Pipeline::load(&missing), Err(PipelineError::Read { .. })));
}

#[test]
fn unknown_kinds_and_fields_are_refused() {
    let dir = model_dir();
    let mut value = consistency_json();
    value["kind"] = json!("gan");
    assert!(matches!(parse(&value, dir.path()), Err(PipelineError::Parse { .. })));
    let mut value = consistency_json();
    value["steps"] = json!(3);
    assert!(matches!(parse(&value, dir.path()), Err(PipelineError::Parse { .. })));
    let mut value = text_to_image_json();
    value["unet"]["prediction"] = json!("velocity");
    assert!(matches!(parse(&value, dir.path()), Err(PipelineError::Parse { .. })));
}

#[test]
fn each_bad_value_names_its_field() {
    let dir = model_dir();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/image/channels", json!(2), "image"),
        ("/image/width", json!(0), "image"),
        ("/image/height", json!(100_000), "image"),
        ("/sigma", json!(-1.0), "sigma"),
        ("/pixels", json!({ "map": "linear", "min": 1.0, "max": 1.0 }), "pixels"),
        ("/output", json!(""), "output"),
        ("/condition", Value::Null, "condition"),
        ("/inputs/sigma", json!("noisy"), "inputs.sigma"),
        ("/inputs/condition", json!("sigma"), "inputs.condition"),
    ];
    for (pointer, bad, field) in cases {
        let mut value = consistency_json();
        *value.pointer_mut(pointer).expect("field exists") = bad;
        assert_eq!(invalid_field(&value, dir.path()), field, "{pointer}");
    }
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/tokenizer/max_length", json!(1), "tokenizer.max_length"),
        ("/schedule/steps", json!(0), "schedule.steps"),
        ("/schedule/sigma_max", json!(0.01), "schedule.sigma_max"),
        ("/latent/channels", json!(0), "latent"),
        ("/unet/text_input", json!(""), "unet.text_input"),
        ("/unet/text_input", json!("latent"), "unet"),
    ];
    for (pointer, bad, field) in cases {
        let mut value = text_to_image_json();
        *value.pointer_mut(pointer).expect("field exists") = bad;
        assert_eq!(invalid_field(&value, dir.path()), field, "{pointer}");
    }
}

#[test]
fn condition_and_its_input_come_together() {
    let dir = model_dir();
    let mut value = consistency_json();
    value["inputs"].as_object_mut().expect("object").remove("condition");
    assert_eq!(invalid_field(&value, dir.path()), "inputs.condition");
    value.as_object_mut().expect("object").remove("condition");
    assert!(parse(&value, dir.path()).is_ok());
}

#[test]
fn models_must_exist_inside_the_pipeline_folder() {
    let dir = model_dir();
    for outside in ["../model.onnx", "/etc/passwd", ""] {
        let mut value = consistency_json();
        value["model"] = json!(outside);
        assert!(
            matches!(parse(&value, dir.path()), Err(PipelineError::ModelPathNotRelative { .. })),
            "{outside:?} accepted"
        );
    }
    let mut value = text_to_image_json();
    value["vae_decoder"]["model"] = json!("sub/missing.onnx");
    match parse(&value, dir.path()) {
        Err(PipelineError::ModelMissing { path }) => assert_eq!(path, dir.path().join("sub/missing.onnx")),
        other => panic!("expected a missing model, got {other:?}"),
    }
}
