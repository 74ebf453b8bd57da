//! `cargo xtask llama-server`: a reproducible `llama-server` (and `llama-bench`) build.
//!
//! The `llama-cpp-sys-2` crate's copy of llama.cpp has no `tools/` sources, so the complete tree
//! comes from the `llama-cpp-python` source package on PyPI (the one registry project machines
//! reach). Everything lives under `~/.cache/sgl-grid/llama-server/`: `src/` holds the sdist,
//! `llama.cpp/` the extracted tree, `build/` the CMake build. A stamp file records the version and
//! the configure flags; when it matches and the binary exists, the task only prints the path.
//!
//! CPU flags: `GGML_NATIVE=OFF` with ggml's defaults (AVX2), the same ISA level as the in-process
//! build. A native build would enable AMX on this machine kind, whose ggml kernels crash.
//! Progress goes to stderr; the last line on stdout is the path of the `llama-server` binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::command::run;

/// Runs `command` with its stdout sent to stderr, so stdout carries only the binary's path.
fn run_quietly(command: &mut Command) -> anyhow::Result<()> {
    run(command.stdout(std::io::stderr()))
}

/// The `llama-cpp-python` release whose vendored llama.cpp we build (ggml-org/llama.cpp@0c1e57098).
const VERSION: &str = "0.3.36";

/// CMake configure flags. Changing them invalidates the stamp and reconfigures.
const CMAKE_FLAGS: &[&str] = &[
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DGGML_NATIVE=OFF",
];

/// Builds `llama-server` and `llama-bench` unless an up-to-date build exists, then prints the
/// server binary's path.
pub(crate) fn build() -> anyhow::Result<()> {
    let binary = build_path()?;
    println!("{}", binary.display());
    Ok(())
}

/// Builds `llama-server` and `llama-bench` unless an up-to-date build exists; returns the
/// server binary's path (`llama-bench` is beside it).
pub(crate) fn build_path() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let root = Path::new(&home).join(".cache/sgl-grid/llama-server");
    let build = root.join("build");
    let binary = build.join("bin/llama-server");
    let stamp_path = build.join("sgl-stamp");
    let stamp = format!("llama-cpp-python {VERSION}\n{}\n", CMAKE_FLAGS.join(" "));
    let up_to_date = fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
    if up_to_date && binary.is_file() && build.join("bin/llama-bench").is_file() {
        eprintln!("llama-server is up to date ({})", stamp_path.display());
        return Ok(binary);
    }

    let source = extract(&root)?;
    let started = std::time::Instant::now();
    let _ = fs::remove_file(&stamp_path);
    let mut configure = Command::new("cmake");
    configure.arg("-S").arg(&source).arg("-B").arg(&build).args(CMAKE_FLAGS);
    run_quietly(&mut configure)?;
    let mut compile = Command::new("cmake");
    compile.arg("--build").arg(&build).args(["--config", "Release", "-j2", "--target", "llama-server", "llama-bench"]);
    run_quietly(&mut compile)?;
    if !binary.is_file() {
        bail!("the build finished but {} does not exist", binary.display());
    }
    fs::write(&stamp_path, stamp).with_context(|| format!("writing {}", stamp_path.display()))?;
    eprintln!("built llama-server and llama-bench in {:.0} s", started.elapsed().as_secs_f64());
    Ok(binary)
}

/// Downloads the sdist into `root/src` (once) and extracts its `vendor/llama.cpp` to
/// `root/llama.cpp` (once); returns the source tree.
fn extract(root: &Path) -> anyhow::Result<PathBuf> {
    let source = root.join("llama.cpp");
    if source.join("CMakeLists.txt").is_file() && source.join("tools/server/CMakeLists.txt").is_file() {
        return Ok(source);
    }
    let download = root.join("src");
    let sdist = download.join(format!("llama_cpp_python-{VERSION}.tar.gz"));
    if !sdist.is_file() {
        eprintln!("downloading the llama-cpp-python {VERSION} sdist from PyPI");
        fs::create_dir_all(&download).with_context(|| format!("creating {}", download.display()))?;
        let mut pip = Command::new("python3");
        pip.args(["-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps"])
            .arg(format!("llama-cpp-python=={VERSION}"))
            .arg("-d")
            .arg(&download);
        run_quietly(&mut pip)?;
        if !sdist.is_file() {
            bail!("pip download finished but {} does not exist", sdist.display());
        }
    }
    let unpack = root.join("unpack");
    let _ = fs::remove_dir_all(&unpack);
    fs::create_dir_all(&unpack).with_context(|| format!("creating {}", unpack.display()))?;
    let mut tar = Command::new("tar");
    tar.arg("xzf").arg(&sdist).arg("-C").arg(&unpack);
    run_quietly(&mut tar)?;
    let vendored = unpack.join(format!("llama_cpp_python-{VERSION}/vendor/llama.cpp"));
    if !vendored.join("CMakeLists.txt").is_file() {
        bail!("{} has no vendor/llama.cpp/CMakeLists.txt", sdist.display());
    }
    let _ = fs::remove_dir_all(&source);
    fs::rename(&vendored, &source).with_context(|| format!("moving {} to {}", vendored.display(), source.display()))?;
    // A `.git` file pointing at a submodule directory that does not exist confuses CMake's
    // build-info step.
    let _ = fs::remove_file(source.join(".git"));
    let _ = fs::remove_dir_all(&unpack);
    Ok(source)
}
