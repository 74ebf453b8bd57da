//! The `render` bundle (the scene, the job's and each slice's exact arguments, the fuel from
//! the resolution), the flags' parsing and refusals, and the frames made from downloaded
//! outputs: whole frames copied, bands merged into the frame by their decoded pixels.

use sgl_media::pixels::{PixelImage, SampleDepth};
use sgl_protocol::compute::Digest;

use super::*;
use crate::classes::tests::{common, downloaded, signed};

fn args(base: &Path) -> RenderArgs {
    let scene = base.join("scene.blend");
    std::fs::write(&scene, "BLENDER scene").unwrap();
    RenderArgs {
        scene,
        frames: "1-2".into(),
        samples: 8,
        resolution: Some((160, 120)),
        seed: Some(3),
        bands: 2,
        engine: DEFAULT_ENGINE.into(),
        max_price: 100_000,
        common: common(&base.join("out")),
    }
}

fn slice_args_of(plan: &BundlePlan) -> Vec<Vec<&str>> {
    plan.manifest.slices.iter().map(|s| s.args.iter().map(String::as_str).collect()).collect()
}

#[test]
fn bands_of_each_frame_are_slices_with_exactly_the_node_s_flags() {
    let base = tempfile::tempdir().unwrap();
    let plan = render_bundle(&args(base.path())).unwrap();
    let (_dir, bundle) = signed(&plan);
    let manifest = &bundle.manifest;
    assert_eq!((manifest.class, manifest.entry.as_str()), (JobClass::Render, "scene.blend"));
    assert_eq!(manifest.engine.as_deref(), Some("blender 3.4.1"));
    assert_eq!(manifest.args, ["--samples", "8", "--resolution", "160x120", "--seed", "3"]);
    assert_eq!(
        slice_args_of(&plan),
        [
            vec!["--frame", "1", "--rows", "0-60"],
            vec!["--frame", "1", "--rows", "60-120"],
            vec!["--frame", "2", "--rows", "0-60"],
            vec!["--frame", "2", "--rows", "60-120"],
        ]
    );
    assert_eq!(manifest.limits.fuel, 160 * 60 * 8, "a band's pixel samples");
    assert_eq!((manifest.limits.memory_mb, manifest.limits.output_files), (1024, 2));
    assert_eq!(manifest.max_price_micros_per_gfuel, 100_000);
    assert_eq!(manifest.files.keys().collect::<Vec<_>>(), ["scene.blend"]);
    assert_eq!(manifest.files["scene.blend"], Digest::of("BLENDER scene"));
}

#[test]
fn whole_frames_without_a_resolution_get_a_generous_limit() {
    let base = tempfile::tempdir().unwrap();
    let args = RenderArgs { frames: "4,1,7-8".into(), resolution: None, seed: None, bands: 1, ..args(base.path()) };
    let plan = render_bundle(&args).unwrap();
    assert_eq!(plan.manifest.args, ["--samples", "8"]);
    assert_eq!(
        slice_args_of(&plan),
        [vec!["--frame", "4"], vec!["--frame", "1"], vec!["--frame", "7"], vec!["--frame", "8"]]
    );
    assert_eq!(plan.manifest.limits.fuel, UNKNOWN_SIZE_WORK);
    let with_resolution = RenderArgs { resolution: Some((320, 240)), ..args };
    assert_eq!(render_bundle(&with_resolution).unwrap().manifest.limits.fuel, 320 * 240 * 8);
}

#[test]
fn bands_need_a_resolution_and_other_bad_flags_are_refused() {
    let base = tempfile::tempdir().unwrap();
    let error = |args: RenderArgs| render_bundle(&args).unwrap_err().to_string();
    let error_text = error(RenderArgs { resolution: None, ..args(base.path()) });
    assert!(error_text.starts_with("--bands 2 needs --resolution WxH"), "{error_text}");
    assert_eq!(
        error(RenderArgs { bands: 121, ..args(base.path()) }),
        "--bands must be 1 to the frame's height (120 rows)"
    );
    assert_eq!(error(RenderArgs { bands: 0, ..args(base.path()) }), "--bands must be at least 1");
    assert_eq!(error(RenderArgs { samples: 0, ..args(base.path()) }), "--samples must be 1 to 16777216");
    let missing = RenderArgs { scene: base.path().join("missing.blend"), ..args(base.path()) };
    assert!(error(missing).ends_with("missing.blend: no such scene file"));
    let too_many = RenderArgs { frames: "1-600".into(), ..args(base.path()) };
    assert_eq!(error(too_many), "this makes 1200 slices; a job has 1 to 1024");
    assert_eq!(
        error(RenderArgs { frames: "2000000".into(), bands: 1, ..args(base.path()) }),
        "frame 2000000 is past Blender's last frame (1048574)"
    );
}

#[test]
fn frames_and_resolutions_parse_or_say_why_not() {
    assert_eq!(parse_frames("1").unwrap(), [1]);
    assert_eq!(parse_frames("1-3,7, 9-9").unwrap(), [1, 2, 3, 7, 9]);
    assert_eq!(parse_frames("1-3,2").unwrap_err().to_string(), "--frames: frame 2 is given twice");
    assert_eq!(parse_frames("5-3").unwrap_err().to_string(), "--frames: \"5-3\" runs backwards");
    assert_eq!(parse_frames("1,x").unwrap_err().to_string(), "--frames: \"x\" is not N or A-B");
    assert_eq!(parse_frames("").unwrap_err().to_string(), "--frames: \"\" is not N or A-B");
    assert!(parse_frames("0-4294967295").unwrap_err().to_string().contains("more than 1024 frames"));
    assert_eq!(parse_resolution("320x240"), Ok((320, 240)));
    for bad in ["320", "320x", "0x240", "320x240x2", "65537x1", "axb"] {
        assert!(parse_resolution(bad).is_err(), "{bad}");
    }
}

#[test]
fn bands_cover_every_row_once_as_evenly_as_whole_rows_allow() {
    assert_eq!(band_rows(120, 2).unwrap(), [(0, 60), (60, 120)]);
    assert_eq!(band_rows(10, 3).unwrap(), [(0, 3), (3, 6), (6, 10)]);
    assert_eq!(band_rows(5, 5).unwrap(), [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]);
    assert_eq!(band_rows(7, 1).unwrap(), [(0, 7)]);
    assert!(band_rows(4, 5).is_err());
}

/// A `width`-wide RGBA image of `rows` rows, each row `r` of value `base + r`.
fn image(width: u32, rows: u32, base: u8) -> PixelImage {
    let samples = (0..rows).flat_map(|row| vec![base + row as u8; width as usize * 4]).collect();
    PixelImage::new(width, rows, SampleDepth::Eight, samples).unwrap()
}

fn png(image: &PixelImage) -> Vec<u8> {
    image.encode_png().unwrap()
}

#[test]
fn downloaded_bands_are_merged_into_their_frame_and_whole_frames_copied() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let whole = [RenderSlice::frame(1).unwrap()];
    let written = [downloaded(out, 0, "frame_0001.png", b"the whole frame")];
    let summary = summarise(&written, &whole, None, out).unwrap();
    assert_eq!(summary.files, [out.join("frame_0001.png")]);
    assert_eq!(std::fs::read(out.join("frame_0001.png")).unwrap(), b"the whole frame");

    // Frame 12 in bands 0-2 and 2-5 (slices 0 and 1), frame 13 in bands (slices 2 and 3).
    let slices: Vec<RenderSlice> = [(12, 0, 2), (12, 2, 5), (13, 0, 2), (13, 2, 5)]
        .into_iter()
        .map(|(frame, start, end)| RenderSlice::band(frame, start, end).unwrap())
        .collect();
    let written = [
        downloaded(out, 0, "frame_0012_rows_0-2.png", &png(&image(4, 2, 10))),
        downloaded(out, 1, "frame_0012_rows_2-5.png", &png(&image(4, 3, 12))),
        downloaded(out, 2, "frame_0013_rows_0-2.png", &png(&image(4, 2, 50))),
        downloaded(out, 3, "frame_0013_rows_2-5.png", &png(&image(4, 3, 52))),
    ];
    let summary = summarise(&written, &slices, Some(5), out).unwrap();
    assert_eq!(summary.files, [out.join("frame_0012.png"), out.join("frame_0013.png")]);
    assert_eq!(summary.fields["frames"], 2);
    let merged = PixelImage::decode(&std::fs::read(out.join("frame_0012.png")).unwrap()).unwrap();
    assert_eq!(merged, image(4, 5, 10), "the rows stacked top to bottom");
    let merged = PixelImage::decode(&std::fs::read(out.join("frame_0013.png")).unwrap()).unwrap();
    assert_eq!(merged, image(4, 5, 50));
}

#[test]
fn bands_that_do_not_make_their_frame_are_refused() {
    let out = tempfile::tempdir().unwrap();
    let out = out.path();
    let slices = [RenderSlice::band(1, 0, 2).unwrap(), RenderSlice::band(1, 2, 5).unwrap()];
    let missing = [downloaded(out, 0, "frame_0001_rows_0-2.png", &png(&image(4, 2, 0)))];
    let error = summarise(&missing, &slices, Some(5), out).unwrap_err().to_string();
    assert_eq!(error, "slice 1 has no output frame_0001_rows_2-5.png");
    let short = [
        downloaded(out, 0, "frame_0001_rows_0-2.png", &png(&image(4, 2, 0))),
        downloaded(out, 1, "frame_0001_rows_2-5.png", &png(&image(4, 2, 0))),
    ];
    let error = format!("{:#}", summarise(&short, &slices, Some(5), out).unwrap_err());
    assert!(error.contains("merging the bands of") && error.contains("band 2..5 should be 3 rows tall"), "{error}");
    assert!(!out.join("frame_0001.png").exists(), "no frame is written from bands that do not fit");
    let error = summarise(&short, &slices, None, out).unwrap_err().to_string();
    assert_eq!(error, "bands need the frame's height (--resolution)");
}
