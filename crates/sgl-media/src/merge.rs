//! Row bands stacked into one frame: the bands of a frame rendered as separate slices, each
//! with the rows it covers (0 is the top row, the end exclusive), become one image of the
//! frame's full height.
//!
//! The bands must tile the frame exactly: every row covered once ([`MergeError::Gap`],
//! [`MergeError::Overlap`], [`MergeError::PastBottom`]), each band as tall as its rows
//! ([`MergeError::BandHeight`]), all of one width and one sample depth. They may come in any
//! order. A merged frame is not the same as one full render of the frame: Blender renders a
//! band's edge pixels slightly differently (see `blender.rs`), so a band is verified against
//! other renders of the same band, and the merge only after.

#[cfg(test)]
mod tests;

use crate::pixels::{PixelError, PixelImage};

/// One decoded band: rows `start..end` of the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Band {
    /// The band's first row in the frame (0 is the top row).
    pub start: u32,
    /// The row after the band's last.
    pub end: u32,
    /// Its pixels, `end - start` rows tall.
    pub image: PixelImage,
}

/// One band as a PNG: rows `start..end` of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngBand<'a> {
    /// The band's first row in the frame (0 is the top row).
    pub start: u32,
    /// The row after the band's last.
    pub end: u32,
    /// The PNG, `end - start` rows tall.
    pub png: &'a [u8],
}

/// Why bands do not make a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No band at all.
    #[error("no bands to merge")]
    NoBands,
    /// A band's rows are empty (`start >= end`).
    #[error("band {start}..{end} covers no rows")]
    EmptyBand {
        /// Its first row.
        start: u32,
        /// Its end.
        end: u32,
    },
    /// A band's image is not as tall as its rows.
    #[error("band {start}..{end} should be {} rows tall, its image is {height}", end - start)]
    BandHeight {
        /// Its first row.
        start: u32,
        /// Its end.
        end: u32,
        /// The image's height.
        height: u32,
    },
    /// A band's width differs from the first band's.
    #[error("band {start}..{end} is {width} pixels wide, the frame {expected}")]
    Width {
        /// Its first row.
        start: u32,
        /// Its end.
        end: u32,
        /// Its width.
        width: u32,
        /// The first band's width.
        expected: u32,
    },
    /// A band's sample depth differs from the first band's.
    #[error("band {start}..{end} has another sample depth than the first band")]
    Depth {
        /// Its first row.
        start: u32,
        /// Its end.
        end: u32,
    },
    /// Rows `from..to` are in no band.
    #[error("rows {from}..{to} are in no band")]
    Gap {
        /// The first missing row.
        from: u32,
        /// The row after the last missing one.
        to: u32,
    },
    /// A band starts before the band above it ends.
    #[error("band {start}..{end} overlaps the band above it, which ends at row {previous_end}")]
    Overlap {
        /// Its first row.
        start: u32,
        /// Its end.
        end: u32,
        /// Where the band above ends.
        previous_end: u32,
    },
    /// The bands run past the frame's bottom.
    #[error("the bands end at row {end}; the frame is {height} rows tall")]
    PastBottom {
        /// Where the last band ends.
        end: u32,
        /// The frame's height.
        height: u32,
    },
    /// A band's PNG could not be decoded, or the frame's encoded.
    #[error(transparent)]
    Pixels(#[from] PixelError),
}

/// Stacks `bands` (in any order) into one image `height` rows tall.
pub fn merge_bands(bands: &[Band], height: u32) -> Result<PixelImage, MergeError> {
    let order = checked_order(bands, height)?;
    let first = &bands[order[0]].image;
    let mut samples = Vec::with_capacity(first.row_bytes() * height as usize);
    for idx in order {
        samples.extend_from_slice(bands[idx].image.samples());
    }
    Ok(PixelImage::new(first.width(), height, first.depth(), samples)?)
}

/// Decodes each band's PNG, stacks them into one image `height` rows tall and encodes it as a
/// PNG ([`PixelImage::encode_png`]).
pub fn merge_png_bands(bands: &[PngBand<'_>], height: u32) -> Result<Vec<u8>, MergeError> {
    let decoded = bands
        .iter()
        .map(|band| Ok(Band { start: band.start, end: band.end, image: PixelImage::decode(band.png)? }))
        .collect::<Result<Vec<_>, PixelError>>()?;
    Ok(merge_bands(&decoded, height)?.encode_png()?)
}

/// The bands' indices from the top of the frame down, once every band is checked against the
/// first and the bands are seen to cover rows `0..height` exactly once.
fn checked_order(bands: &[Band], height: u32) -> Result<Vec<usize>, MergeError> {
    let first = &bands.first().ok_or(MergeError::NoBands)?.image;
    for band in bands {
        check_band(band, first)?;
    }
    let mut order: Vec<usize> = (0..bands.len()).collect();
    order.sort_by_key(|&idx| (bands[idx].start, bands[idx].end));
    let mut next_row = 0;
    for &idx in &order {
        let Band { start, end, .. } = bands[idx];
        if start > next_row {
            return Err(MergeError::Gap { from: next_row, to: start });
        }
        if start < next_row {
            return Err(MergeError::Overlap { start, end, previous_end: next_row });
        }
        next_row = end;
    }
    match next_row.cmp(&height) {
        std::cmp::Ordering::Less => Err(MergeError::Gap { from: next_row, to: height }),
        std::cmp::Ordering::Greater => Err(MergeError::PastBottom { end: next_row, height }),
        std::cmp::Ordering::Equal => Ok(order),
    }
}

/// One band on its own, and against the first band's width and depth.
fn check_band(band: &Band, first: &PixelImage) -> Result<(), MergeError> {
    let Band { start, end, ref image } = *band;
    if start >= end {
        return Err(MergeError::EmptyBand { start, end });
    }
    if image.height() != end - start {
        return Err(MergeError::BandHeight { start, end, height: image.height() });
    }
    if image.width() != first.width() {
        return Err(MergeError::Width { start, end, width: image.width(), expected: first.width() });
    }
    if image.depth() != first.depth() {
        return Err(MergeError::Depth { start, end });
    }
    Ok(())
}
