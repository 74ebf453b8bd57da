//! The engines of the classes a node can serve, found when it starts (and by `sgl detect`):
//! the Wasm sandbox for `wasm` and `train`, the node's own model for `llm`, and for the native
//! classes a native sandbox (bubblewrap) plus their engine: the `sgl-image` worker with ONNX
//! Runtime's library for `image`, Blender for `render`. A class whose engine is missing is not
//! offered, and the report says why.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde::Serialize;
use sgl_protocol::compute::JobClass;
use sgl_sandbox::native::NativeSandbox;

/// Where the native engines are, when not in their default places.
#[derive(Debug, Clone, Default)]
pub struct EnginePaths {
    /// The `sgl-image` worker; default: beside this binary, then on `PATH`.
    pub image_worker: Option<PathBuf>,
    /// ONNX Runtime's shared library; default: `ORT_DYLIB_PATH`.
    pub ort_library: Option<PathBuf>,
    /// Blender; default: `blender` on `PATH`.
    pub blender: Option<PathBuf>,
    /// The node serves a model (`--model-path`), which `llm` needs.
    pub has_model: bool,
}

/// The `image` class's engine.
#[derive(Debug, Clone)]
pub struct ImageEngine {
    /// The worker binary.
    pub worker: PathBuf,
    /// ONNX Runtime's library, which the worker opens.
    pub ort_library: PathBuf,
    /// `onnxruntime <version>`, as the worker reports the library it loaded.
    pub engine: String,
}

/// The `render` class's engine.
#[derive(Debug, Clone)]
pub struct RenderEngine {
    /// The Blender binary.
    pub blender: PathBuf,
    /// `blender <version>`.
    pub engine: String,
}

/// The native engines found, and the sandbox they run in.
#[derive(Debug, Clone, Default)]
pub struct Engines {
    /// The native sandbox, when bubblewrap works here.
    pub native: Option<Arc<NativeSandbox>>,
    /// The image worker, when it and ONNX Runtime were found and it runs.
    pub image: Option<ImageEngine>,
    /// Blender, when found.
    pub render: Option<RenderEngine>,
}

impl Engines {
    /// The engine names nodes announce (`onnxruntime 1.32.0`, `blender 3.4.1`).
    pub fn announced(&self) -> Vec<String> {
        let image = self.image.as_ref().map(|e| e.engine.clone());
        image.into_iter().chain(self.render.as_ref().map(|e| e.engine.clone())).collect()
    }
}

/// Whether this machine can serve one class, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassReport {
    /// The class.
    pub class: JobClass,
    /// The engine and version that would run it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Why it cannot be served here; none when it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// Why a class's engine is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// bubblewrap is missing or does not work here.
    #[error("no native sandbox: {0}")]
    NoSandbox(String),
    /// No `sgl-image` was found.
    #[error("no sgl-image worker beside sgl or on PATH (or give --image-worker)")]
    NoImageWorker,
    /// No ONNX Runtime library was named.
    #[error("no ONNX Runtime library: set ORT_DYLIB_PATH or give --ort-library")]
    NoOrtLibrary,
    /// The ONNX Runtime library named is not there.
    #[error("no ONNX Runtime library at {}", .0.display())]
    OrtLibraryNotFound(PathBuf),
    /// No Blender was found.
    #[error("no blender on PATH (apt-get install blender, or give --blender)")]
    NoBlender,
    /// Blender is outside `/usr`, which is all the native sandbox sees of the system.
    #[error("{}: the native sandbox sees only /usr; install Blender from the system's packages", .0.display())]
    BlenderOutsideUsr(PathBuf),
    /// The engine did not answer its version question.
    #[error("{} {question}: {why}", program.display())]
    NoVersion {
        /// The engine's binary.
        program: PathBuf,
        /// What it was asked.
        question: &'static str,
        /// What went wrong.
        why: String,
    },
}

/// Finds every class's engine.
pub fn detect(options: &EnginePaths) -> (Engines, Vec<ClassReport>) {
    let native = NativeSandbox::probe().map(Arc::new).map_err(|e| Missing::NoSandbox(e.to_string()));
    let image = native.as_ref().map_err(Clone::clone).and_then(|_| image_engine(options));
    let render = native.as_ref().map_err(Clone::clone).and_then(|_| render_engine(options));
    let wasm = Some(sgl_sandbox::WASM_RUNTIME.to_owned());
    let report =
        |class, engine: Option<String>, unavailable: Option<String>| ClassReport { class, engine, unavailable };
    let why = |missing: &Missing| missing.to_string();
    let reports = vec![
        report(JobClass::Wasm, wasm.clone(), None),
        report(JobClass::Train, wasm, None),
        report(JobClass::Llm, None, (!options.has_model).then(|| "no model: start with --model-path".to_owned())),
        report(JobClass::Image, image.as_ref().ok().map(|e| e.engine.clone()), image.as_ref().err().map(why)),
        report(JobClass::Render, render.as_ref().ok().map(|e| e.engine.clone()), render.as_ref().err().map(why)),
    ];
    let engines = Engines { native: native.ok(), image: image.ok(), render: render.ok() };
    (engines, reports)
}

fn image_engine(options: &EnginePaths) -> Result<ImageEngine, Missing> {
    let worker = match &options.image_worker {
        Some(path) => path.clone(),
        None => beside_this_binary("sgl-image").or_else(|| on_path("sgl-image")).ok_or(Missing::NoImageWorker)?,
    };
    let ort_library = options
        .ort_library
        .clone()
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
        .ok_or(Missing::NoOrtLibrary)?;
    if !ort_library.is_file() {
        return Err(Missing::OrtLibraryNotFound(ort_library));
    }
    let mut version = Command::new(&worker);
    version.arg("version").env("ORT_DYLIB_PATH", &ort_library);
    let engine = first_line(&mut version, &worker, "version")?;
    Ok(ImageEngine { worker, ort_library, engine })
}

fn render_engine(options: &EnginePaths) -> Result<RenderEngine, Missing> {
    let blender = match &options.blender {
        Some(path) => path.clone(),
        None => on_path("blender").ok_or(Missing::NoBlender)?,
    };
    if !blender.starts_with("/usr/") {
        return Err(Missing::BlenderOutsideUsr(blender));
    }
    let mut version = Command::new(&blender);
    version.args(["--factory-startup", "--version"]);
    let line = first_line(&mut version, &blender, "--version")?;
    let engine = blender_engine(&line).ok_or_else(|| Missing::NoVersion {
        program: blender.clone(),
        question: "--version",
        why: format!("printed {line:?}"),
    })?;
    Ok(RenderEngine { blender, engine })
}

/// `Blender 3.4.1` (the first line of `blender --version`) as an engine name: `blender 3.4.1`.
fn blender_engine(line: &str) -> Option<String> {
    let version = line.strip_prefix("Blender ")?.split_whitespace().next()?;
    version.bytes().all(|b| b.is_ascii_digit() || b == b'.').then(|| format!("blender {version}"))
}

/// The first non-empty line `command` (`program` asked `question`) prints, when it exits 0.
fn first_line(command: &mut Command, program: &Path, question: &'static str) -> Result<String, Missing> {
    let failed = |why: String| Missing::NoVersion { program: program.to_owned(), question, why };
    let output = command.output().map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!("{}: {}", output.status, stderr.lines().last().unwrap_or_default())));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().map(str::trim).find(|line| !line.is_empty()).map(str::to_owned);
    line.ok_or_else(|| failed("printed nothing".to_owned()))
}

fn beside_this_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.with_file_name(name);
    path.is_file().then_some(path)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    //! Engine names from what the engines print.

    use super::blender_engine;

    #[test]
    fn blender_version_lines_become_engine_names() {
        assert_eq!(blender_engine("Blender 3.4.1").as_deref(), Some("blender 3.4.1"));
        assert_eq!(blender_engine("Blender 4.2.0 LTS").as_deref(), Some("blender 4.2.0"));
        assert_eq!(blender_engine("blender: command not found"), None);
        assert_eq!(blender_engine("Blender x.y"), None);
    }
}
