//! sgl-media against the real Blender (Debian's, `.ci/install-blender`) and the example scene
//! (`examples/render/scene.blend`, 160×120, frames 1–4): frames and bands rendered, compared by
//! pixel digest and merged, the untrusted scene's scripts kept from running, and a render in
//! the real native sandbox. Without `blender` on `PATH` every test says so and stops.

mod bands;
mod frames;
mod sandbox;
mod untrusted;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sgl_media::blender::{RenderSettings, RenderSlice, render_args};
use sgl_media::pixels::PixelImage;

/// The scene's resolution.
const WIDTH: u32 = 160;
const HEIGHT: u32 = 120;

/// The settings the tests render with: the scene's resolution, 16 samples, 2 threads.
fn settings() -> RenderSettings {
    RenderSettings { samples: 16, threads: 2, resolution: None, seed: 0 }
}

/// `blender` on `PATH`, or `None` (with a note on stderr) when there is none.
fn blender() -> Option<&'static Path> {
    static BLENDER: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = BLENDER.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).map(|dir| dir.join("blender")).find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        eprintln!("blender is not on PATH (.ci/install-blender installs it); skipping");
    }
    found.as_deref()
}

/// The example scene, an absolute path.
fn scene() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/render/scene.blend").canonicalize().expect("the scene")
}

/// A slice rendered outside any sandbox: its PNG and its decoded pixels.
struct Rendered {
    png: Vec<u8>,
    image: PixelImage,
}

/// Renders `slice` of the example scene with `blender`, directly, and reads its output.
fn render(blender: &Path, slice: &RenderSlice, settings: &RenderSettings) -> Rendered {
    let out = tempfile::tempdir().expect("a temporary directory");
    let args = render_args(&scene(), out.path(), slice, settings).expect("valid arguments");
    let output = run(blender, &args);
    assert!(output.status.success(), "blender failed: {}", String::from_utf8_lossy(&output.stderr));
    let png = std::fs::read(out.path().join(slice.output_file_name())).expect("blender wrote the slice's file");
    let image = PixelImage::decode(&png).expect("a valid PNG");
    Rendered { png, image }
}

/// Runs `blender` with `args`, stdin empty, and collects its output.
fn run(blender: &Path, args: &[String]) -> Output {
    Command::new(blender).args(args).stdin(std::process::Stdio::null()).output().expect("blender starts")
}

/// Frame 1 of the scene, rendered once for all the tests that compare with it.
fn full_frame_1(blender: &Path) -> &'static Rendered {
    static FRAME: OnceLock<Rendered> = OnceLock::new();
    FRAME.get_or_init(|| render(blender, &RenderSlice::frame(1).expect("a frame"), &settings()))
}

/// The mean absolute difference, per sample, between two equally long runs of samples.
fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a.iter().zip(b).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    total as f64 / a.len() as f64
}
