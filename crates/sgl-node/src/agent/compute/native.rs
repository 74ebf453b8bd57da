//! The native classes: an engine binary run under the native sandbox (bubblewrap) with the
//! bundle's files and inputs read-only under `/in`, `/out` writable, no network, and the
//! engine itself bound read-only under `/engine`. The metered work is counted from what the
//! run made (images; for renders, pixels times samples), so redundant runs agree on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sgl_media::blender;
use sgl_media::pixels::PixelImage;
use sgl_protocol::compute::bundle::{BundleManifest, WORK_PER_IMAGE};
use sgl_sandbox::native::{NativeLimits, NativeReport, NativeRun, NativeSandbox, ReadOnlyBind};

use super::run::{Dirs, LOG_BYTES, Ran, RunError};
use super::{Worker, render_args};

/// Where a native engine sees its files.
const ENGINE_DIR: &str = "/engine";

/// An `image` slice: `sgl-image generate` on the bundle's pipeline, one thread, the job's and
/// the slice's arguments after the node's own (which they cannot override).
pub(super) async fn image(
    worker: &Worker,
    manifest: &BundleManifest,
    slice: u32,
    dirs: &Dirs<'_>,
) -> Result<Ran, RunError> {
    let engines = &worker.config.engines;
    let missing = "this node has no image engine (sgl-image and ONNX Runtime)";
    let (sandbox, engine) = ready(worker, engines.image.as_ref(), |e| &e.engine, missing, manifest)?;
    let mut args: Vec<String> = ["generate", "--pipeline", &format!("/in/{}", manifest.entry), "--out", "/out"]
        .into_iter()
        .chain(["--threads", "1"])
        .map(str::to_owned)
        .collect();
    args.extend(manifest.argv(slice as usize).into_iter().skip(1));
    let ort = format!("{ENGINE_DIR}/libonnxruntime.so");
    let job = Job {
        program: format!("{ENGINE_DIR}/sgl-image"),
        args,
        env: vec![("ORT_DYLIB_PATH".into(), ort.clone())],
        binds: vec![bind(&engine.worker, &format!("{ENGINE_DIR}/sgl-image")), bind(&engine.ort_library, &ort)],
    };
    let report = run(sandbox, job, manifest, dirs).await?;
    let images = count_png(dirs.output)?;
    Ok(ran(report, images.saturating_mul(WORK_PER_IMAGE), engine.engine))
}

/// A `render` slice: Blender on the bundle's scene (the entry), the frame or band the slice's
/// arguments name, with the job's settings; the work is the output's pixels times samples.
pub(super) async fn render(
    worker: &Worker,
    manifest: &BundleManifest,
    slice: u32,
    dirs: &Dirs<'_>,
) -> Result<Ran, RunError> {
    let engines = &worker.config.engines;
    let missing = "this node has no render engine (blender)";
    let (sandbox, engine) = ready(worker, engines.render.as_ref(), |e| &e.engine, missing, manifest)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let (part, settings) = render_args::parse(&manifest.argv(slice as usize)[1..], threads)
        .map_err(|e| RunError::Engine(format!("the render job's arguments: {e}")))?;
    let scene = PathBuf::from(format!("/in/{}", manifest.entry));
    let args = blender::render_args(&scene, Path::new("/out"), &part, &settings)
        .map_err(|e| RunError::Engine(format!("the render job's settings: {e}")))?;
    // Blender comes from the system's packages, under /usr, which the sandbox sees read-only.
    let binds = blender::SANDBOX_READ_ONLY_PATHS.iter().map(|p| bind(Path::new(p), p)).collect();
    let env = blender::SANDBOX_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let program = engine.blender.to_string_lossy().into_owned();
    let job = Job { program, args, env, binds };
    let report = run(sandbox, job, manifest, dirs).await?;
    let work = match report.exit_code {
        0 => {
            let png = std::fs::read(dirs.output.join(part.output_file_name()))?;
            let image = PixelImage::decode(&png).map_err(|e| RunError::Engine(format!("the rendered frame: {e}")))?;
            blender::check_output(&part, &settings, &image).map_err(|e| RunError::Engine(e.to_string()))?
        }
        _ => 0,
    };
    Ok(ran(report, work, engine.engine))
}

/// The native sandbox and a class's engine, when this node has both and the job pins that
/// engine; `missing` says what is not there.
fn ready<E: Clone>(
    worker: &Worker,
    engine: Option<&E>,
    name: fn(&E) -> &String,
    missing: &str,
    manifest: &BundleManifest,
) -> Result<(Arc<NativeSandbox>, E), RunError> {
    let (Some(sandbox), Some(engine)) = (worker.config.engines.native.clone(), engine.cloned()) else {
        return Err(RunError::Engine(missing.to_owned()));
    };
    pinned(manifest, name(&engine))?;
    Ok((sandbox, engine))
}

/// Refuses a job pinned to another engine than this node's (the grid should not lease it).
fn pinned(manifest: &BundleManifest, engine: &str) -> Result<(), RunError> {
    match manifest.engine.as_deref() {
        Some(pin) if pin == engine => Ok(()),
        Some(pin) => Err(RunError::Engine(format!("the job pins {pin}, this node runs {engine}"))),
        None => Err(RunError::Engine("a native job without an engine pin".into())),
    }
}

/// One program for the sandbox.
pub(super) struct Job {
    pub(super) program: String,
    pub(super) args: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) binds: Vec<ReadOnlyBind>,
}

pub(super) fn bind(host: &Path, sandbox: &str) -> ReadOnlyBind {
    ReadOnlyBind { host_path: host.to_owned(), sandbox_path: PathBuf::from(sandbox) }
}

/// Runs `job` in the sandbox within the manifest's limits, on a blocking thread.
pub(super) async fn run(
    sandbox: Arc<NativeSandbox>,
    job: Job,
    manifest: &BundleManifest,
    dirs: &Dirs<'_>,
) -> Result<NativeReport, RunError> {
    let l = manifest.limits;
    let limits = NativeLimits {
        memory_bytes: u64::from(l.memory_mb) << 20,
        cpu_seconds: u64::from(l.wall_secs),
        wall_clock: Duration::from_secs(l.wall_secs.into()),
        output_bytes: u64::from(l.output_mb) << 20,
        output_files: l.output_files.into(),
        log_bytes: LOG_BYTES,
        ..NativeLimits::default()
    };
    let (input, output) = (dirs.input.to_owned(), dirs.output.to_owned());
    let mut env = vec![("HOME".to_owned(), "/tmp".to_owned()), ("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
    env.extend(job.env);
    tokio::task::spawn_blocking(move || {
        sandbox.run(&NativeRun {
            program: &job.program,
            args: job.args,
            env,
            input_dir: &input,
            output_dir: &output,
            read_only_binds: job.binds,
            limits,
        })
    })
    .await
    .map_err(|_| RunError::Engine("the sandbox thread died".into()))?
    .map_err(RunError::from)
}

/// What a native run reports for its receipt.
pub(super) fn ran(report: NativeReport, work: u64, runtime: String) -> Ran {
    Ran {
        exit_code: report.exit_code,
        work,
        peak_memory_bytes: report.peak_memory_bytes,
        wall: report.wall_time,
        stdout: String::from_utf8(report.stdout).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        stderr: String::from_utf8(report.stderr).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        runtime,
    }
}

/// PNG files anywhere under `dir`.
fn count_png(dir: &Path) -> Result<u64, std::io::Error> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            count += count_png(&entry.path())?;
        } else if kind.is_file() && entry.path().extension().is_some_and(|e| e == "png") {
            count += 1;
        }
    }
    Ok(count)
}
