//! The command line, the settings script and the band's border, the output's name, size and
//! work, every refusal, and the version parser on the outputs of Debian's and the official
//! builds.

use super::*;
use crate::pixels::SampleDepth;

fn settings() -> RenderSettings {
    RenderSettings { samples: 16, threads: 2, resolution: None, seed: 0 }
}

#[test]
fn the_command_line_loads_the_scene_then_sets_up_and_renders_one_frame() {
    let slice = RenderSlice::frame(7).expect("a frame");
    let args = render_args(Path::new("/in/scene.blend"), Path::new("/out/"), &slice, &settings()).expect("args");
    let script = settings_script(&slice, &settings()).expect("script");
    let expected = [
        "-b",
        "-Y",
        "--factory-startup",
        "-noaudio",
        "/in/scene.blend",
        "-E",
        "CYCLES",
        "-t",
        "2",
        "--python-exit-code",
        "3",
        "--python-expr",
        &script,
        "-o",
        "/out/frame_####",
        "-F",
        "PNG",
        "-f",
        "7",
    ];
    assert_eq!(args, expected);
    assert_eq!(slice.output_file_name(), "frame_0007.png");
    assert!(script.contains("c.samples = 16\nc.seed = 0\n"), "{script}");
    assert!(script.contains("c.use_denoising = False\n") && script.contains("c.time_limit = 0.0\n"));
    assert!(script.ends_with("r.use_border = False\n"), "a whole frame has no border: {script}");
    assert!(!script.contains("resolution_x"), "the scene's resolution is kept: {script}");
}

#[test]
fn a_band_is_named_by_its_rows_and_bordered_from_the_bottom() {
    let slice = RenderSlice::band(12, 0, 60).expect("a band");
    let with_size = RenderSettings { resolution: Some((160, 120)), seed: 9, ..settings() };
    let args = render_args(Path::new("/in/s.blend"), Path::new("/out"), &slice, &with_size).expect("args");
    assert_eq!(args[args.len() - 5], "/out/frame_####_rows_0-60");
    assert_eq!(args.last().map(String::as_str), Some("12"));
    assert_eq!(slice.output_file_name(), "frame_0012_rows_0-60.png");
    assert_eq!(RenderSlice::frame(123_456).expect("a frame").output_file_name(), "frame_123456.png");

    let script = settings_script(&slice, &with_size).expect("script");
    assert!(script.contains("r.resolution_x = 160\nr.resolution_y = 120\nr.resolution_percentage = 100\n"));
    assert!(script.contains("c.seed = 9\n"));
    assert!(script.contains("r.use_crop_to_border = True\n"));
    // Rows 0..60 from the top are rows h-60..h from the bottom.
    assert!(script.contains("r.border_min_y = edge(h - 60)\nr.border_max_y = edge(h - 0)\n"), "{script}");
    assert!(script.contains("if not 0 <= 0 < 60 <= h:\n    raise ValueError"), "{script}");
}

/// Blender's `(int)(border * winy)` in single precision, on the script's `edge(n)`.
fn blender_row(edge: f64, height: u32) -> u32 {
    ((edge as f32) * (height as f32)) as u32
}

#[test]
fn the_border_edges_land_on_exactly_the_asked_rows() {
    let edge = |n: u32, height: u32| match n {
        0 => 0.0,
        n if n == height => 1.0,
        n => (f64::from(n) + 0.5) / f64::from(height),
    };
    let mut naive_misses = 0;
    for height in 1..=2160 {
        for n in 0..=height {
            assert_eq!(blender_row(edge(n, height), height), n, "row {n} of {height}");
            naive_misses += u32::from(blender_row(f64::from(n) / f64::from(height), height) != n);
        }
    }
    assert!(naive_misses > 0, "plain n / h would lose rows, which is why the edge is moved half a row");
}

#[test]
fn slices_and_settings_out_of_range_are_refused() {
    assert_eq!(RenderSlice::frame(MAX_FRAME + 1), Err(SliceError::FrameTooLarge { frame: MAX_FRAME + 1 }));
    assert_eq!(RenderSlice::band(1, 5, 5), Err(SliceError::Rows { start: 5, end: 5 }));
    assert_eq!(RenderSlice::band(1, 6, 5), Err(SliceError::Rows { start: 6, end: 5 }));
    assert_eq!(RenderSlice::band(1, 0, MAX_RESOLUTION + 1), Err(SliceError::Rows { start: 0, end: 65_537 }));
    assert_eq!(RenderSlice::band(MAX_FRAME + 1, 0, 1), Err(SliceError::FrameTooLarge { frame: MAX_FRAME + 1 }));

    let band = RenderSlice::band(1, 0, 121).expect("a band");
    let frame = RenderSlice::frame(1).expect("a frame");
    let (scene, out) = (Path::new("/in/scene.blend"), Path::new("/out"));
    let args = |scene: &str, out: &str, slice: &RenderSlice, settings: RenderSettings| {
        render_args(Path::new(scene), Path::new(out), slice, &settings).expect_err("refused")
    };
    let cases = [
        (args("scene.blend", "/out", &frame, settings()), RenderArgsError::NotAbsolute { path: "scene.blend".into() }),
        (args("/in/s.blend", "out", &frame, settings()), RenderArgsError::NotAbsolute { path: "out".into() }),
        (args("/in/s.blend", "/o#t", &frame, settings()), RenderArgsError::UnusablePath { path: "/o#t".into() }),
        (args("/in/a\nb", "/out", &frame, settings()), RenderArgsError::UnusablePath { path: "/in/a\nb".into() }),
        (
            args("/in/s", "/out", &frame, RenderSettings { samples: 0, ..settings() }),
            RenderArgsError::Samples { samples: 0 },
        ),
        (
            args("/in/s", "/out", &frame, RenderSettings { threads: 0, ..settings() }),
            RenderArgsError::Threads { threads: 0 },
        ),
        (
            args("/in/s", "/out", &frame, RenderSettings { resolution: Some((0, 10)), ..settings() }),
            RenderArgsError::Resolution { width: 0, height: 10 },
        ),
        (
            args("/in/s", "/out", &band, RenderSettings { resolution: Some((160, 120)), ..settings() }),
            RenderArgsError::RowsPastBottom { end: 121, height: 120 },
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(error, expected);
    }
    assert!(render_args(scene, out, &band, &settings()).is_ok(), "without a resolution, Blender checks the rows");
}

#[test]
fn work_is_pixels_times_samples_and_the_output_must_be_the_slice_s_size() {
    assert_eq!(work(160, 120, 16), 307_200);
    assert_eq!(work(MAX_RESOLUTION, MAX_RESOLUTION, MAX_SAMPLES), 1 << 56, "no overflow at the extremes");
    let image = |width, height| {
        PixelImage::new(width, height, SampleDepth::Eight, vec![0; (width * height * 4) as usize]).expect("image")
    };
    let band = RenderSlice::band(1, 60, 120).expect("a band");
    let frame = RenderSlice::frame(1).expect("a frame");
    let sized = RenderSettings { resolution: Some((160, 120)), ..settings() };

    assert_eq!(check_output(&band, &settings(), &image(160, 60)), Ok(153_600));
    assert_eq!(check_output(&band, &sized, &image(160, 60)), Ok(153_600));
    assert_eq!(check_output(&frame, &settings(), &image(33, 21)), Ok(33 * 21 * 16), "any size when not given");
    assert_eq!(check_output(&frame, &sized, &image(160, 120)), Ok(307_200));
    let wrong = OutputSizeError { width: 160, height: 61, expected_width: None, expected_height: Some(60) };
    assert_eq!(check_output(&band, &settings(), &image(160, 61)), Err(wrong));
    let wrong = OutputSizeError { width: 161, height: 60, expected_width: Some(160), expected_height: Some(60) };
    assert_eq!(check_output(&band, &sized, &image(161, 60)), Err(wrong));
    let wrong = OutputSizeError { width: 160, height: 60, expected_width: Some(160), expected_height: Some(120) };
    assert_eq!(check_output(&frame, &sized, &image(160, 60)), Err(wrong));
}

#[test]
fn the_version_is_read_from_debian_s_and_the_official_builds_output() {
    let version = |major, minor, patch| BlenderVersion { major, minor, patch };
    let cases = [
        ("Blender 3.4.1\n", version(3, 4, 1)),
        ("Blender 4.2.0 LTS\n\tbuild date: 2024-07-16\n\tbuild hash: a51f293548ad\n", version(4, 2, 0)),
        ("Blender 2.79 (sub 0)\n", version(2, 79, 0)),
        ("Color management: using fallback mode\nBlender 3.6.12\n", version(3, 6, 12)),
    ];
    for (output, expected) in cases {
        assert_eq!(BlenderVersion::parse(output).expect(output), expected);
    }
    assert_eq!(version(3, 4, 1).to_string(), "3.4.1");
    for output in ["", "blender 3.4.1", "Blender three", "Blender 3", "Blender 3.4.1.2", "Blender 3.x.1", "Python 3.11"]
    {
        match BlenderVersion::parse(output) {
            Err(DetectError::Unrecognised { first_line }) => assert_eq!(first_line, output),
            other => panic!("{output:?}: expected Unrecognised, got {other:?}"),
        }
    }
}

#[test]
fn detect_says_why_a_program_is_not_a_blender() {
    let missing = Path::new("/nonexistent/blender");
    assert!(matches!(detect(missing), Err(DetectError::Spawn { path, .. }) if path == missing));
    assert!(matches!(detect(Path::new("/bin/false")), Err(DetectError::Failed { code: Some(1), .. })));
    // GNU `true --version` succeeds and prints coreutils' version.
    assert!(
        matches!(detect(Path::new("/bin/true")), Err(DetectError::Unrecognised { first_line }) if first_line.starts_with("true "))
    );
}
