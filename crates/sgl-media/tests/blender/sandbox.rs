//! Blender in the node's real native sandbox (bubblewrap: `/usr` read-only, the scene in `/in`
//! read-only, `/out` writable, no network, only [`SANDBOX_ENV`] and
//! [`SANDBOX_READ_ONLY_PATHS`] besides): a frame renders there with the same pixels as outside,
//! and Blender's Python there reaches no network.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use sgl_media::blender::{RenderSlice, SANDBOX_ENV, SANDBOX_READ_ONLY_PATHS, render_args};
use sgl_media::pixels::pixel_digest;
use sgl_sandbox::native::{NativeLimits, NativeReport, NativeRun, NativeSandbox, ReadOnlyBind};

use crate::{blender, full_frame_1, settings};

fn sandbox() -> &'static NativeSandbox {
    static SANDBOX: OnceLock<NativeSandbox> = OnceLock::new();
    SANDBOX
        .get_or_init(|| NativeSandbox::probe().expect("bubblewrap is installed and works (apt-get install bubblewrap)"))
}

/// `blender` when the sandbox can see it (it shows the host's `/usr` only).
fn blender_in_usr() -> Option<&'static Path> {
    let blender = blender()?;
    let seen = blender.starts_with("/usr");
    if !seen {
        eprintln!("{} is outside /usr, which is all the sandbox shows; skipping", blender.display());
    }
    seen.then_some(blender)
}

/// The run of `blender args` the node would make: Blender's environment and binds, 2 GiB of
/// memory, 120 s of CPU and of wall clock, 256 threads, 64 MiB of output.
fn blender_run<'a>(blender: &'a Path, args: Vec<String>, input: &'a Path, output: &'a Path) -> NativeRun<'a> {
    NativeRun {
        program: blender.to_str().expect("UTF-8"),
        args,
        env: SANDBOX_ENV.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
        input_dir: input,
        output_dir: output,
        read_only_binds: SANDBOX_READ_ONLY_PATHS
            .iter()
            .map(|path| ReadOnlyBind { host_path: PathBuf::from(path), sandbox_path: PathBuf::from(path) })
            .collect(),
        limits: NativeLimits {
            memory_bytes: 2 << 30,
            cpu_seconds: 120,
            wall_clock: Duration::from_secs(120),
            pids: 256,
            output_bytes: 64 << 20,
            ..NativeLimits::default()
        },
    }
}

fn assert_exited_cleanly(report: &NativeReport) {
    assert_eq!(
        report.exit_code,
        0,
        "blender failed in the sandbox:\n{}\n{}",
        String::from_utf8_lossy(&report.stdout),
        String::from_utf8_lossy(&report.stderr)
    );
}

#[test]
fn a_frame_renders_in_the_sandbox_with_the_same_pixels_as_outside() {
    let Some(blender) = blender_in_usr() else { return };
    let (input, output) = (tempfile::tempdir().expect("a directory"), tempfile::tempdir().expect("a directory"));
    std::fs::copy(crate::scene(), input.path().join("scene.blend")).expect("copy the scene");
    let slice = RenderSlice::frame(1).expect("a frame");
    let args = render_args(Path::new("/in/scene.blend"), Path::new("/out"), &slice, &settings()).expect("arguments");

    let report = sandbox().run(&blender_run(blender, args, input.path(), output.path())).expect("the job runs");
    assert_exited_cleanly(&report);
    let png = std::fs::read(output.path().join(slice.output_file_name())).expect("the frame in /out");
    assert_eq!(pixel_digest(&png).expect("a PNG"), full_frame_1(blender).image.digest());
    assert_eq!(report.output.files, 1, "only the frame is left in /out");
    eprintln!(
        "sandboxed frame: {:?} wall, {:?} CPU, {} MiB peak memory",
        report.wall_time,
        report.cpu_time,
        report.peak_memory_bytes >> 20
    );
}

#[test]
fn blender_s_python_reaches_no_network_in_the_sandbox() {
    let Some(blender) = blender_in_usr() else { return };
    let (input, output) = (tempfile::tempdir().expect("a directory"), tempfile::tempdir().expect("a directory"));
    let script = "import socket
try:
    socket.create_connection(('1.1.1.1', 80), timeout=5)
    result = 'connected'
except OSError as error:
    result = 'refused: %s' % error
open('/out/net.txt', 'w').write(result)
";
    let args = ["-b", "-Y", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python-expr", script];
    let args = args.iter().map(|arg| (*arg).to_owned()).collect();
    let report = sandbox().run(&blender_run(blender, args, input.path(), output.path())).expect("the job runs");
    assert_exited_cleanly(&report);
    let result = std::fs::read_to_string(output.path().join("net.txt")).expect("the script wrote its result");
    assert!(result.starts_with("refused: "), "{result}");
    assert!(result.contains("unreachable"), "no route at all, not a refused connection: {result}");
}
