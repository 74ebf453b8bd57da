//! ONNX Runtime, opened at run time from a library file (`ort`'s `load-dynamic`): the worker
//! binary carries no engine, and the node names the exact library (and so the version) every
//! replica of a job runs. Sessions are built for reproducibility: a fixed number of intra-op
//! threads, one inter-op thread, sequential execution, deterministic compute, all graph
//! optimisations (the same on every run of the same library on the same CPU class).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::error::EngineError;
use crate::ort_version;

/// The engine's name in summaries and receipts.
pub const ENGINE_NAME: &str = "onnxruntime";

/// A loaded ONNX Runtime. ONNX Runtime allows one library and one environment per process, so
/// every `Engine` of a process shares them.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

struct Shared {
    library: PathBuf,
    version: String,
    build_info: String,
    environment: Environment,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("library", &self.shared.library).field("version", &self.shared.version).finish()
    }
}

impl Engine {
    /// Opens the ONNX Runtime library at `library` (e.g. `libonnxruntime.so.1.32.0`), or returns
    /// the process's engine when it already has one from the same file.
    pub fn load(library: &Path) -> Result<Self, EngineError> {
        // The process's engine, held while loading so two threads cannot load two libraries.
        static LOADED: Mutex<Option<Engine>> = Mutex::new(None);
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(engine) = loaded.as_ref() {
            if engine.library() != library {
                return Err(EngineError::AnotherLibraryLoaded {
                    loaded: engine.library().into(),
                    requested: library.into(),
                });
            }
            return Ok(engine.clone());
        }
        if !library.is_file() {
            return Err(EngineError::LibraryMissing { path: library.into() });
        }
        let builder = ort::init_from(library).map_err(|source| EngineError::Load { path: library.into(), source })?;
        let version = ort_version::library_version(library)?;
        let environment =
            builder.with_name("sgl-image").with_telemetry(false).build().map_err(EngineError::Environment)?;
        let shared = Shared { library: library.into(), version, build_info: ort::info().to_owned(), environment };
        let engine = Self { shared: Arc::new(shared) };
        *loaded = Some(engine.clone());
        Ok(engine)
    }

    /// The library's own version string, e.g. `1.32.0`.
    pub fn version(&self) -> &str {
        &self.shared.version
    }

    /// The library's build description (git commit, build type).
    pub fn build_info(&self) -> &str {
        &self.shared.build_info
    }

    /// The library file.
    pub fn library(&self) -> &Path {
        &self.shared.library
    }

    /// A session for `model` running on `threads` intra-op threads.
    pub(crate) fn session(&self, model: &Path, threads: usize) -> ort::Result<Session> {
        Session::builder(&self.shared.environment)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .with_intra_threads(threads.max(1))?
            .with_inter_threads(1)?
            .with_parallel_execution(false)?
            .with_deterministic_compute(true)?
            .commit_from_file(model)
    }
}
