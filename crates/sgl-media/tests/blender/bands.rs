//! Bands of rows: a band is exactly its rows (counted from the top), renders of one band
//! agree, two bands merge into a frame of the full size holding each band's pixels, and a band
//! past the frame's bottom fails the run.

use sgl_media::blender::{RenderSlice, SETTINGS_FAILED_EXIT_CODE, check_output, render_args};
use sgl_media::merge::{PngBand, merge_png_bands};
use sgl_media::pixels::{PixelImage, pixel_digest};

use crate::{HEIGHT, WIDTH, blender, full_frame_1, mean_abs_diff, render, run, scene, settings};

/// Checks that a band of `start..end` looks like those rows of the whole frame (a band differs
/// from the whole frame's rows by a level or two along the cut), more than like the rows one
/// above or one below (a border off by one row), and not like the same number of rows taken
/// from the other end of the frame (a border upside down).
fn assert_is_rows(band: &PixelImage, full: &PixelImage, start: u32, end: u32) {
    let diff = |from: u32, to: u32| mean_abs_diff(band.samples(), full.rows(from, to).expect("rows of the frame"));
    let near = diff(start, end);
    let flipped = diff(HEIGHT - end, HEIGHT - start);
    let above = start.checked_sub(1).map(|up| diff(up, end - 1));
    let below = (end < HEIGHT).then(|| diff(start + 1, end + 1));
    eprintln!(
        "band {start}..{end}: mean difference {near:.3} from its rows, {above:.3?} one row up, {below:.3?} one row down, {flipped:.3} flipped"
    );
    assert!(near < 1.0, "band {start}..{end} is not those rows of the frame ({near:.3})");
    for shifted in [above, below].into_iter().flatten() {
        assert!(near < shifted, "band {start}..{end} is nearer to rows a row away ({shifted:.3}) than to its own");
    }
    assert!(flipped > 10.0, "band {start}..{end} looks like the flipped rows ({flipped:.3})");
}

#[test]
fn two_bands_merge_into_the_frame_and_a_band_renders_alike_twice() {
    let Some(blender) = blender() else { return };
    let top_slice = RenderSlice::band(1, 0, 60).expect("a band");
    let bottom_slice = RenderSlice::band(1, 60, 120).expect("a band");
    let top = render(blender, &top_slice, &settings());
    let bottom = render(blender, &bottom_slice, &settings());
    assert_eq!(check_output(&top_slice, &settings(), &top.image), Ok(160 * 60 * 16));
    assert_eq!(check_output(&bottom_slice, &settings(), &bottom.image), Ok(160 * 60 * 16));
    let full = &full_frame_1(blender).image;
    assert_is_rows(&top.image, full, 0, 60);
    assert_is_rows(&bottom.image, full, 60, 120);

    let top_again = render(blender, &top_slice, &settings());
    assert_eq!(pixel_digest(&top_again.png).expect("a PNG"), pixel_digest(&top.png).expect("a PNG"));

    let bands = [PngBand { start: 60, end: 120, png: &bottom.png }, PngBand { start: 0, end: 60, png: &top.png }];
    let merged = PixelImage::decode(&merge_png_bands(&bands, HEIGHT).expect("the bands tile the frame")).expect("PNG");
    assert_eq!((merged.width(), merged.height()), (WIDTH, HEIGHT));
    assert_eq!(merged.rows(0, 60), Some(top.image.samples()));
    assert_eq!(merged.rows(60, 120), Some(bottom.image.samples()));
    assert!(mean_abs_diff(merged.samples(), full.samples()) < 1.0, "the merged frame looks like the whole render");
}

#[test]
fn an_odd_band_is_exactly_its_rows() {
    let Some(blender) = blender() else { return };
    let slice = RenderSlice::band(1, 17, 63).expect("a band");
    let band = render(blender, &slice, &settings());
    assert_eq!((band.image.width(), band.image.height()), (WIDTH, 46));
    assert_is_rows(&band.image, &full_frame_1(blender).image, 17, 63);
}

#[test]
fn a_band_past_the_frame_s_bottom_fails_the_run() {
    let Some(blender) = blender() else { return };
    let out = tempfile::tempdir().expect("a temporary directory");
    let slice = RenderSlice::band(1, 100, 130).expect("a band");
    let output = run(blender, &render_args(&scene(), out.path(), &slice, &settings()).expect("valid arguments"));
    assert_eq!(output.status.code(), Some(SETTINGS_FAILED_EXIT_CODE));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("rows 100..130 are not within the frame of 120 rows"),
        "Python errors go to stdout: {stdout}"
    );
    assert_eq!(std::fs::read_dir(out.path()).expect("the output directory").count(), 0, "nothing rendered");
}
