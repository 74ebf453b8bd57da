//! ONNX Runtime, opened at run time from a library file (`ort`'s `load-dynamic`): the worker
//! binary carries no engine, and the node names the exact library (and so the version) every
//! replica of a job runs. Sessions are built for reproducibility: a fixed number of intra-op
//! threads, one inter-op thread, sequential execution, deterministic compute, all graph
//! optimisations (the same on every run of the same library on the same CPU class).

use std::fmt;
use std::path::{Path, PathBuf};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::error::EngineError;
use crate::ort_version;

/// The engine's name in summaries and receipts.
pub const ENGINE_NAME: &str = "onnxruntime";

/// A loaded ONNX Runtime.
pub struct Engine {
    library: PathBuf,
    version: String,
    build_info: String,
    environment: Environment,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("library", &self.library).field("version", &self.version).finish()
    }
}

impl Engine {
    /// Opens the ONNX Runtime library at `library` (e.g. `libonnxruntime.so.1.32.0`). A process
    /// loads one library: later calls reuse the first one's.
    pub fn load(library: &Path) -> Result<Self, EngineError> {
        if !library.is_file() {
            return Err(EngineError::LibraryMissing { path: library.into() });
        }
        let builder = ort::init_from(library).map_err(|source| EngineError::Load { path: library.into(), source })?;
        let version = ort_version::library_version(library)?;
        let environment =
            builder.with_name("sgl-image").with_telemetry(false).build().map_err(EngineError::Environment)?;
        Ok(Self { library: library.into(), version, build_info: ort::info().to_owned(), environment })
    }

    /// The library's own version string, e.g. `1.32.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The library's build description (git commit, build type).
    pub fn build_info(&self) -> &str {
        &self.build_info
    }

    /// The library file.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// A session for `model` running on `threads` intra-op threads.
    pub(crate) fn session(&self, model: &Path, threads: usize) -> ort::Result<Session> {
        Session::builder(&self.environment)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .with_intra_threads(threads.max(1))?
            .with_inter_threads(1)?
            .with_parallel_execution(false)?
            .with_deterministic_compute(true)?
            .commit_from_file(model)
    }
}
