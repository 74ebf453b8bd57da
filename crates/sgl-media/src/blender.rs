//! Blender's command line for one render slice: a whole frame, or a band of its rows, rendered
//! headless with Cycles on the CPU into one PNG; the slice's output file name; the work it is
//! billed by; and the installed Blender's version ([`detect`]).
//!
//! # The command line
//!
//! ```text
//! blender -b -Y --factory-startup -noaudio SCENE -E CYCLES -t THREADS
//!     --python-exit-code 3 --python-expr SETTINGS -o OUT/frame_####[_rows_Y0-Y1] -F PNG -f FRAME
//! ```
//!
//! - `-b`: no window. `-Y`: scripts inside the scene (drivers, registered text blocks) never
//!   run; the scene is the requester's and untrusted. `--factory-startup`: the machine's own
//!   preferences and startup file are not read; the scene's own settings (resolution, camera,
//!   materials) still load with it, since they are part of the `.blend`. `-noaudio`: no sound
//!   device.
//! - `SCENE` is loaded, then everything after it applies to it, in order: the engine, the thread
//!   count, [`settings_script`] (which fails the run with exit code 3 if it raises), the output
//!   path and format, and last `-f`, which renders and writes the frame.
//! - The settings fix what decides the pixels: the sample count, seed (not animated), no
//!   denoiser, no adaptive sampling, no time limit, no per-view-layer sample counts, no
//!   compositor or sequencer (whose nodes and strips the grid does not check), no stamp burnt
//!   into the image and no stamp metadata, one view, an 8-bit RGBA PNG.
//!
//! # Bands of rows
//!
//! A band is rows `start..end` of the frame, 0 being the top row, as in the PNG. Blender's
//! render border is normalised with its origin at the **bottom left**, so the band is the
//! border `min_y = (H - end) / H`, `max_y = (H - start) / H`, cropped to the border
//! (`use_crop_to_border`): the PNG is exactly `end - start` rows, the full width. Blender turns
//! the border into pixels as `(int)(border * H)` in single precision, which would truncate a
//! value like 0.3 × 10 to 2, so each inner edge is set half a row past its row
//! (`(n + 0.5) / H`); 0 and `H` are set exactly. `H` is the scene's height at render time
//! (its resolution times its percentage, or [`RenderSettings::resolution`]), read by the
//! script, which raises (exit code 3) when the band runs past it.
//!
//! A band's pixels are not bitwise the same as the same rows of a whole-frame render (pixels
//! along the cut differ by a level or two): renders of one band agree with each other, so
//! redundant nodes must render the same slices, and bands are merged only after.

mod version;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use version::{BlenderVersion, DetectError, detect};

use crate::pixels::PixelImage;

/// The highest frame Blender renders (`MAXFRAME`).
pub const MAX_FRAME: u32 = 1_048_574;
/// The largest side, in pixels, Blender renders.
pub const MAX_RESOLUTION: u32 = 65_536;
/// The most samples per pixel Cycles takes.
pub const MAX_SAMPLES: u32 = 1 << 24;
/// The most render threads Blender takes (`-t`).
pub const MAX_THREADS: u32 = 1024;
/// Blender's exit code when the settings script raised (`--python-exit-code`).
pub const SETTINGS_FAILED_EXIT_CODE: i32 = 3;
/// The environment Blender needs in the native sandbox (which passes on nothing else): a home
/// (without `HOME` Debian's Blender 3.4 dies of a segmentation fault before reading the scene),
/// in the sandbox's own `/tmp`; a `PATH`, where its Python looks for a `python3` binary.
pub const SANDBOX_ENV: &[(&str, &str)] = &[("HOME", "/tmp"), ("PATH", "/usr/bin:/bin")];
/// Host paths Blender needs in the sandbox besides `/usr`, each bound read-only at the same
/// path: Debian's BLAS and LAPACK (`/usr/lib/x86_64-linux-gnu/libblas.so.3`,
/// `liblapack.so.3`), which Blender links, are symlinks into `/etc/alternatives`.
pub const SANDBOX_READ_ONLY_PATHS: &[&str] = &["/etc/alternatives"];

/// One slice of a render job: a whole frame, or a band of its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RenderSlice {
    frame: u32,
    rows: Option<(u32, u32)>,
}

/// Why a slice is not a valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SliceError {
    /// The frame is past [`MAX_FRAME`].
    #[error("frame {frame} is past Blender's last frame ({MAX_FRAME})")]
    FrameTooLarge {
        /// The frame asked for.
        frame: u32,
    },
    /// The band covers no row, or ends past [`MAX_RESOLUTION`].
    #[error("rows {start}..{end} are not a band of a frame")]
    Rows {
        /// Its first row.
        start: u32,
        /// Its end.
        end: u32,
    },
}

impl RenderSlice {
    /// The whole of `frame`.
    pub fn frame(frame: u32) -> Result<Self, SliceError> {
        if frame > MAX_FRAME {
            return Err(SliceError::FrameTooLarge { frame });
        }
        Ok(Self { frame, rows: None })
    }

    /// Rows `start..end` of `frame` (0 is the top row; `end` is exclusive).
    pub fn band(frame: u32, start: u32, end: u32) -> Result<Self, SliceError> {
        if start >= end || end > MAX_RESOLUTION {
            return Err(SliceError::Rows { start, end });
        }
        Ok(Self { rows: Some((start, end)), ..Self::frame(frame)? })
    }

    /// The frame number.
    pub fn frame_number(&self) -> u32 {
        self.frame
    }

    /// The band's rows `(start, end)`, or `None` for a whole frame.
    pub fn rows(&self) -> Option<(u32, u32)> {
        self.rows
    }

    /// The file Blender writes for this slice in the output directory: `frame_0001.png`, or
    /// `frame_0001_rows_0-60.png` for rows 0..60 (the frame padded to four digits, as
    /// Blender's `####` does).
    pub fn output_file_name(&self) -> String {
        format!("{}.png", self.output_stem(&format!("{:04}", self.frame)))
    }

    /// The `-o` pattern's file part: `frame_####`, with the band's rows after it.
    fn output_pattern(&self) -> String {
        self.output_stem("####")
    }

    fn output_stem(&self, frame: &str) -> String {
        match self.rows {
            None => format!("frame_{frame}"),
            Some((start, end)) => format!("frame_{frame}_rows_{start}-{end}"),
        }
    }
}

/// How a slice is rendered, besides the scene itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RenderSettings {
    /// Cycles samples per pixel (1 to [`MAX_SAMPLES`]).
    pub samples: u32,
    /// Render threads (`-t`, 1 to [`MAX_THREADS`]). The pixels do not depend on it.
    pub threads: u32,
    /// `(width, height)` in pixels at 100 %, replacing the scene's; `None` keeps the scene's
    /// resolution and percentage.
    pub resolution: Option<(u32, u32)>,
    /// Cycles' seed.
    pub seed: u32,
}

/// Why a command line could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderArgsError {
    /// A path is relative (Blender would resolve it against its own working directory, and a
    /// path starting with `-` would read as an option).
    #[error("{} is not an absolute path", path.display())]
    NotAbsolute {
        /// The path.
        path: PathBuf,
    },
    /// A path is not UTF-8, or has a character Blender's command line or output pattern would
    /// read specially (`#`, a newline).
    #[error("{} cannot be passed to Blender", path.display())]
    UnusablePath {
        /// The path.
        path: PathBuf,
    },
    /// [`RenderSettings::samples`] is 0 or past [`MAX_SAMPLES`].
    #[error("{samples} samples per pixel is out of range (1 to {MAX_SAMPLES})")]
    Samples {
        /// The count asked for.
        samples: u32,
    },
    /// [`RenderSettings::threads`] is 0 or past [`MAX_THREADS`].
    #[error("{threads} threads is out of range (1 to {MAX_THREADS})")]
    Threads {
        /// The count asked for.
        threads: u32,
    },
    /// A side of [`RenderSettings::resolution`] is 0 or past [`MAX_RESOLUTION`].
    #[error("a resolution of {width}x{height} is out of range")]
    Resolution {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// The band ends below the frame's bottom (when the resolution is given).
    #[error("rows ..{end} run past the frame's {height} rows")]
    RowsPastBottom {
        /// The band's end.
        end: u32,
        /// The frame's height.
        height: u32,
    },
}

/// Blender's arguments (after the program) to render `slice` of `scene` into `output_dir`,
/// both absolute paths as Blender sees them (`/in/scene.blend`, `/out` in the sandbox). The
/// PNG is `output_dir` joined with [`RenderSlice::output_file_name`].
pub fn render_args(
    scene: &Path,
    output_dir: &Path,
    slice: &RenderSlice,
    settings: &RenderSettings,
) -> Result<Vec<String>, RenderArgsError> {
    let scene = usable_path(scene)?;
    let output_dir = usable_path(output_dir)?;
    let script = settings_script(slice, settings)?;
    let output = format!("{}/{}", output_dir.trim_end_matches('/'), slice.output_pattern());
    let args = [
        "-b",
        "-Y",
        "--factory-startup",
        "-noaudio",
        scene,
        "-E",
        "CYCLES",
        "-t",
        &settings.threads.to_string(),
        "--python-exit-code",
        &SETTINGS_FAILED_EXIT_CODE.to_string(),
        "--python-expr",
        &script,
        "-o",
        &output,
        "-F",
        "PNG",
        "-f",
        &slice.frame.to_string(),
    ];
    Ok(args.iter().map(|arg| (*arg).to_owned()).collect())
}

/// The Python run after the scene loads (`--python-expr`): the settings the module
/// documentation lists, the resolution when given, and the band's border. Every value in it is
/// a number this function formats, so nothing from outside reaches the script as text.
pub fn settings_script(slice: &RenderSlice, settings: &RenderSettings) -> Result<String, RenderArgsError> {
    check_settings(slice, settings)?;
    let RenderSettings { samples, seed, .. } = *settings;
    let mut script = format!(
        "import bpy
s = bpy.context.scene
r = s.render
c = s.cycles
c.device = 'CPU'
c.samples = {samples}
c.seed = {seed}
c.use_animated_seed = False
c.use_denoising = False
c.use_adaptive_sampling = False
c.time_limit = 0.0
c.use_layer_samples = 'IGNORE'
r.use_compositing = False
r.use_sequencer = False
r.use_multiview = False
for name in [n for n in dir(r) if n.startswith('use_stamp')]:
    setattr(r, name, False)
r.image_settings.file_format = 'PNG'
r.image_settings.color_mode = 'RGBA'
r.image_settings.color_depth = '8'
r.use_file_extension = True
r.use_overwrite = True
r.use_placeholder = False
"
    );
    if let Some((width, height)) = settings.resolution {
        script
            .push_str(&format!("r.resolution_x = {width}\nr.resolution_y = {height}\nr.resolution_percentage = 100\n"));
    }
    script.push_str(&match slice.rows {
        None => "r.use_border = False\n".to_owned(),
        Some((start, end)) => band_script(start, end),
    });
    Ok(script)
}

/// The border for rows `start..end`, from the top, in Blender's bottom-up normalised terms.
fn band_script(start: u32, end: u32) -> String {
    format!(
        "h = r.resolution_y * r.resolution_percentage // 100
if not 0 <= {start} < {end} <= h:
    raise ValueError('rows {start}..{end} are not within the frame of %d rows' % h)
def edge(n):
    return 0.0 if n == 0 else 1.0 if n == h else (n + 0.5) / h
r.use_border = True
r.use_crop_to_border = True
r.border_min_x = 0.0
r.border_max_x = 1.0
r.border_min_y = edge(h - {end})
r.border_max_y = edge(h - {start})
"
    )
}

fn check_settings(slice: &RenderSlice, settings: &RenderSettings) -> Result<(), RenderArgsError> {
    let RenderSettings { samples, threads, resolution, .. } = *settings;
    if !(1..=MAX_SAMPLES).contains(&samples) {
        return Err(RenderArgsError::Samples { samples });
    }
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err(RenderArgsError::Threads { threads });
    }
    let Some((width, height)) = resolution else { return Ok(()) };
    let side = 1..=MAX_RESOLUTION;
    if !side.contains(&width) || !side.contains(&height) {
        return Err(RenderArgsError::Resolution { width, height });
    }
    match slice.rows {
        Some((_, end)) if end > height => Err(RenderArgsError::RowsPastBottom { end, height }),
        _ => Ok(()),
    }
}

fn usable_path(path: &Path) -> Result<&str, RenderArgsError> {
    if !path.is_absolute() {
        return Err(RenderArgsError::NotAbsolute { path: path.to_owned() });
    }
    match path.to_str() {
        Some(text) if !text.contains(['#', '\n', '\r']) => Ok(text),
        _ => Err(RenderArgsError::UnusablePath { path: path.to_owned() }),
    }
}

/// The work a render of `width × height` pixels at `samples` samples per pixel is metered and
/// billed by: their product (pixel samples). Deterministic: it depends on the slice's output
/// size and the job's settings, never on the machine or the time taken.
pub fn work(width: u32, height: u32, samples: u32) -> u64 {
    u64::from(width) * u64::from(height) * u64::from(samples)
}

/// A slice's output whose size is not the slice's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the output is {width}x{height}, the slice should be {expected_width:?}x{expected_height:?}")]
pub struct OutputSizeError {
    /// The output's width.
    pub width: u32,
    /// The output's height.
    pub height: u32,
    /// The width it should have, when the settings give it.
    pub expected_width: Option<u32>,
    /// The height it should have, when the slice or the settings give it.
    pub expected_height: Option<u32>,
}

/// Checks a slice's decoded output against the slice (a band is exactly its rows tall) and the
/// settings (the resolution, when given), and returns the slice's [`work`].
pub fn check_output(
    slice: &RenderSlice,
    settings: &RenderSettings,
    image: &PixelImage,
) -> Result<u64, OutputSizeError> {
    let (width, height) = (image.width(), image.height());
    let expected_width = settings.resolution.map(|(width, _)| width);
    let expected_height = match slice.rows {
        Some((start, end)) => Some(end - start),
        None => settings.resolution.map(|(_, height)| height),
    };
    let fits = |expected: Option<u32>, actual: u32| expected.is_none_or(|expected| expected == actual);
    if !fits(expected_width, width) || !fits(expected_height, height) {
        return Err(OutputSizeError { width, height, expected_width, expected_height });
    }
    Ok(work(width, height, settings.samples))
}
