//! The crate's errors, one enum per operation: reading a pipeline ([`PipelineError`]), opening
//! ONNX Runtime ([`EngineError`]) and generating images ([`GenerateError`]).

use std::path::PathBuf;

/// Why a `pipeline.json` could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The file could not be read.
    #[error("cannot read pipeline {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not a pipeline: bad JSON, an unknown `kind`, a missing or unknown field.
    #[error("pipeline {path} is not valid: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    /// A field has a value the worker cannot run (`field` is its JSON path, e.g. `image.channels`).
    #[error("pipeline field {field} {reason}")]
    Invalid { field: &'static str, reason: &'static str },
    /// A model path is absolute or leaves the pipeline's folder (`..`).
    #[error("model path {path} must be relative to the pipeline file and stay in its folder")]
    ModelPathNotRelative { path: PathBuf },
    /// A model file named by the pipeline does not exist.
    #[error("model file {path} does not exist")]
    ModelMissing { path: PathBuf },
}

/// Why ONNX Runtime could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The library file does not exist.
    #[error("ONNX Runtime library {path} does not exist (set ORT_DYLIB_PATH or pass --ort)")]
    LibraryMissing { path: PathBuf },
    /// The process already runs another ONNX Runtime library (one per process).
    #[error("this process already loaded ONNX Runtime from {loaded}, not {requested}")]
    AnotherLibraryLoaded { loaded: PathBuf, requested: PathBuf },
    /// `ort` could not load the library, or found a version older than it supports.
    #[error("cannot load ONNX Runtime from {path}: {source}")]
    Load { path: PathBuf, source: ort::LoadDynamicError },
    /// The library could not be opened to read its version.
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: libloading::Error },
    /// The library does not export `OrtGetApiBase`: it is not ONNX Runtime.
    #[error("{path} is not an ONNX Runtime library (no OrtGetApiBase)")]
    NotOnnxRuntime { path: PathBuf },
    /// ONNX Runtime refused to create its environment.
    #[error("cannot create the ONNX Runtime environment: {0}")]
    Environment(#[source] ort::Error),
}

/// Why images could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The pipeline's files changed after it was validated (a model file disappeared).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The pipeline pins an ONNX Runtime version and another one is loaded.
    #[error("the pipeline requires ONNX Runtime {required}, but {loaded} is loaded")]
    EngineVersion { required: String, loaded: String },
    /// A `text-to-image` pipeline was run without a prompt.
    #[error("a text-to-image pipeline needs a prompt (--prompt)")]
    PromptRequired,
    /// A prompt was given to a pipeline that takes none.
    #[error("a consistency pipeline takes no prompt")]
    PromptUnused,
    /// ONNX Runtime could not load a model.
    #[error("cannot load model {model}: {source}")]
    Session { model: PathBuf, source: ort::Error },
    /// ONNX Runtime failed while running a model.
    #[error("running model {model} failed: {source}")]
    Run { model: PathBuf, source: ort::Error },
    /// The pipeline names an input the model does not have.
    #[error("model {model} has no input {name:?} (its inputs: {})", available.join(", "))]
    UnknownInput { model: PathBuf, name: String, available: Vec<String> },
    /// The pipeline names an output the model does not have.
    #[error("model {model} has no output {name:?} (its outputs: {})", available.join(", "))]
    UnknownOutput { model: PathBuf, name: String, available: Vec<String> },
    /// The model has an input the pipeline does not feed.
    #[error("model {model} input {name:?} is not fed by the pipeline")]
    UnfedInput { model: PathBuf, name: String },
    /// An input or output has an element type the pipeline cannot feed or read.
    #[error("model {model} {name:?} holds {declared}, the pipeline needs {needed}")]
    ElementType { model: PathBuf, name: String, declared: String, needed: &'static str },
    /// An input's declared shape does not accept the tensor the pipeline feeds.
    #[error("model {model} input {name:?} has shape {declared:?} (-1: any), the pipeline feeds {fed:?}")]
    InputShape { model: PathBuf, name: String, declared: Vec<i64>, fed: Vec<i64> },
    /// An output came back with another shape than the pipeline expects.
    #[error("model {model} output {name:?} has shape {actual:?}, the pipeline expects {expected:?}")]
    OutputShape { model: PathBuf, name: String, expected: Vec<i64>, actual: Vec<i64> },
    /// A PNG could not be encoded.
    #[error("cannot encode PNG: {0}")]
    Png(#[from] png::EncodingError),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}
