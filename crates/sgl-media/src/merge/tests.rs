//! Bands stack in row order whatever order they come in, and every way bands can fail to tile
//! a frame is its own error.

use super::*;
use crate::pixels::SampleDepth;

/// Rows `start..end` of a frame `width` wide whose every sample in row `y` is `y`.
fn band(start: u32, end: u32, width: u32) -> Band {
    let samples = (start..end).flat_map(|row| vec![row as u8; width as usize * 4]).collect();
    Band { start, end, image: PixelImage::new(width, end - start, SampleDepth::Eight, samples).expect("valid band") }
}

#[test]
fn bands_in_any_order_stack_top_to_bottom() {
    let merged = merge_bands(&[band(3, 5, 2), band(0, 1, 2), band(1, 3, 2)], 5).expect("the bands tile the frame");
    assert_eq!((merged.width(), merged.height(), merged.depth()), (2, 5, SampleDepth::Eight));
    for row in 0..5 {
        assert!(merged.rows(row, row + 1).expect("a row").iter().all(|&sample| u32::from(sample) == row), "row {row}");
    }
}

#[test]
fn png_bands_merge_into_a_png_of_the_whole_frame() {
    let (top, bottom) = (band(0, 2, 3), band(2, 3, 3));
    let top_png = top.image.encode_png().expect("encodes");
    let bottom_png = bottom.image.encode_png().expect("encodes");
    let bands = [PngBand { start: 2, end: 3, png: &bottom_png }, PngBand { start: 0, end: 2, png: &top_png }];
    let merged = PixelImage::decode(&merge_png_bands(&bands, 3).expect("merges")).expect("decodes");
    assert_eq!(merged, merge_bands(&[top, bottom], 3).expect("merges"));
    let broken = [PngBand { start: 0, end: 3, png: b"garbage" }];
    assert!(matches!(merge_png_bands(&broken, 3), Err(MergeError::Pixels(PixelError::Decode(_)))));
}

#[test]
fn gaps_overlaps_and_a_wrong_total_height_are_refused() {
    let cases: Vec<(&str, Vec<Band>, u32, &str)> = vec![
        ("no top band", vec![band(1, 4, 2)], 4, "Gap { from: 0, to: 1 }"),
        ("a hole", vec![band(0, 1, 2), band(2, 4, 2)], 4, "Gap { from: 1, to: 2 }"),
        ("no bottom band", vec![band(0, 3, 2)], 4, "Gap { from: 3, to: 4 }"),
        ("overlap", vec![band(0, 3, 2), band(2, 4, 2)], 4, "Overlap { start: 2, end: 4, previous_end: 3 }"),
        ("twice", vec![band(0, 4, 2), band(0, 4, 2)], 4, "Overlap { start: 0, end: 4, previous_end: 4 }"),
        ("too tall", vec![band(0, 5, 2)], 4, "PastBottom { end: 5, height: 4 }"),
        ("none", Vec::new(), 4, "NoBands"),
    ];
    for (what, bands, height, expected) in cases {
        let error = merge_bands(&bands, height).expect_err(what);
        assert_eq!(format!("{error:?}"), expected, "{what}");
    }
}

#[test]
fn a_band_that_does_not_fit_its_rows_or_the_others_is_refused() {
    let mut short = band(2, 4, 2);
    short.end = 5;
    let narrow = band(2, 4, 1);
    let mut deep = band(2, 4, 2);
    deep.image = PixelImage::new(2, 2, SampleDepth::Sixteen, vec![0; 32]).expect("valid image");
    let mut empty = band(2, 4, 2);
    empty.end = 2;
    let cases = [
        (short, "BandHeight { start: 2, end: 5, height: 2 }"),
        (narrow, "Width { start: 2, end: 4, width: 1, expected: 2 }"),
        (deep, "Depth { start: 2, end: 4 }"),
        (empty, "EmptyBand { start: 2, end: 2 }"),
    ];
    for (bad, expected) in cases {
        let error = merge_bands(&[band(0, 2, 2), bad], 4).expect_err(expected);
        assert_eq!(format!("{error:?}"), expected);
    }
}
