//! sgl-image's integration tests, on the real ONNX Runtime (`ORT_DYLIB_PATH`, installed by
//! `.ci/install-onnx`): a text-to-image pipeline on tiny graphs built by `tests/make_tiny.py`
//! with the Python `onnx` package, the terrain consistency model (`SGL_TEST_TERRAIN_ONNX`) through
//! the built binary, and the binary's command line. Outside CI a missing prerequisite skips a
//! test with a note; with `CI=true` it fails, so CI cannot pass without running them.

mod cli;
mod engine;
mod terrain;
mod text_to_image;

use std::path::{Path, PathBuf};
use std::process::Command;

use sgl_image::Engine;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails in CI, else notes that the test is skipped: `what` is missing.
fn skip(what: &str) {
    assert!(!in_ci(), "CI=true but {what}: run .ci/install-onnx and export what it prints");
    eprintln!("note: skipping: {what} (run .ci/install-onnx and export what it prints)");
}

/// The ONNX Runtime library from `ORT_DYLIB_PATH`, if it is there.
fn ort_library() -> Option<PathBuf> {
    let library = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).filter(|path| path.is_file());
    if library.is_none() {
        skip("ORT_DYLIB_PATH does not name the ONNX Runtime library");
    }
    library
}

/// The process's engine, from `ORT_DYLIB_PATH`.
fn engine() -> Option<Engine> {
    Some(Engine::load(&ort_library()?).expect("ONNX Runtime loads"))
}

/// Decoded PNG: width, height, colour type and samples.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    width: u32,
    height: u32,
    color: png::ColorType,
    samples: Vec<u8>,
}

fn decode_png(path: &Path) -> Decoded {
    let file = std::fs::File::open(path).expect("PNG exists");
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("PNG header");
    let mut samples = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut samples).expect("PNG frame");
    samples.truncate(info.buffer_size());
    Decoded { width: info.width, height: info.height, color: info.color_type, samples }
}

/// The `sgl-image` binary with `ORT_DYLIB_PATH` set to `library`.
fn binary(library: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sgl-image"));
    command.env("ORT_DYLIB_PATH", library).env("RUST_BACKTRACE", "0");
    command
}
