//! 8-bit images made from planar float output, and their PNG encoding: grey or RGB, 8 bits, no
//! text, time or gamma chunks, so the same pixels always give the same file from the same
//! encoder (replicas still compare decoded pixels, not file bytes).

use crate::error::GenerateError;
use crate::pipeline::{ImageSize, PixelMap};

/// An 8-bit grey or RGB image, its samples interleaved row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    width: u32,
    height: u32,
    channels: u32,
    samples: Vec<u8>,
}

impl Picture {
    /// Maps `values`, planar `[channels, height, width]` (the batch of one dropped), to 8 bits
    /// with `map`. `values` holds exactly `size.n_values()` values (checked by the caller).
    pub(crate) fn from_planar(values: &[f32], size: ImageSize, map: PixelMap) -> Self {
        let (lo, hi) = match map {
            PixelMap::Linear { min, max } => (min, max),
            PixelMap::MinMax => finite_range(values),
        };
        let plane = size.height as usize * size.width as usize;
        let channels = size.channels as usize;
        let mut samples = vec![0u8; values.len()];
        for (channel, plane_values) in values.chunks_exact(plane).enumerate() {
            for (pixel, &value) in plane_values.iter().enumerate() {
                samples[pixel * channels + channel] = to_byte(value, lo, hi);
            }
        }
        Self { width: size.width, height: size.height, channels: size.channels, samples }
    }

    /// Columns.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Rows.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// 1 (grey) or 3 (RGB).
    pub fn channels(&self) -> u32 {
        self.channels
    }

    /// The samples, row by row, channels interleaved.
    pub fn samples(&self) -> &[u8] {
        &self.samples
    }

    /// The image as a PNG file.
    pub fn to_png(&self) -> Result<Vec<u8>, GenerateError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width, self.height);
        encoder.set_color(if self.channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.samples)?;
        writer.finish()?;
        Ok(bytes)
    }
}

/// The smallest and largest finite value (0, 0 when there is none).
fn finite_range(values: &[f32]) -> (f32, f32) {
    let mut finite = values.iter().copied().filter(|v| v.is_finite());
    let Some(first) = finite.next() else { return (0.0, 0.0) };
    finite.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// `round(255 * clamp((value - lo) / (hi - lo), 0, 1))`; NaN, and everything when `hi <= lo`, is 0.
fn to_byte(value: f32, lo: f32, hi: f32) -> u8 {
    if value.is_nan() || hi <= lo {
        return 0;
    }
    let unit = ((value - lo) / (hi - lo)).clamp(0.0, 1.0);
    (unit * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_map_clamps_rounds_and_interleaves() {
        let size = ImageSize { channels: 3, height: 1, width: 2 };
        // Planar: R = [-1, 1], G = [0, 2], B = [NaN, -5].
        let values = [-1.0, 1.0, 0.0, 2.0, f32::NAN, -5.0];
        let picture = Picture::from_planar(&values, size, PixelMap::Linear { min: -1.0, max: 1.0 });
        assert_eq!(picture.samples(), &[0, 128, 0, 255, 255, 0]);
    }

    #[test]
    fn min_max_map_stretches_each_image_and_flat_images_are_black() {
        let size = ImageSize { channels: 1, height: 2, width: 2 };
        let picture = Picture::from_planar(&[2.0, 4.0, 3.0, f32::INFINITY], size, PixelMap::MinMax);
        assert_eq!(picture.samples(), &[0, 255, 128, 255]);
        let flat = Picture::from_planar(&[5.0; 4], size, PixelMap::MinMax);
        assert_eq!(flat.samples(), &[0; 4]);
    }

    #[test]
    fn png_round_trips_and_is_byte_stable() {
        let size = ImageSize { channels: 1, height: 3, width: 5 };
        let values: Vec<f32> = (0..15).map(|v| v as f32).collect();
        let picture = Picture::from_planar(&values, size, PixelMap::MinMax);
        let bytes = picture.to_png().expect("encodes");
        assert_eq!(bytes, picture.to_png().expect("encodes"));
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().expect("decodes");
        let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buffer).expect("frame");
        assert_eq!((info.width, info.height, info.color_type), (5, 3, png::ColorType::Grayscale));
        assert_eq!(&buffer[..info.buffer_size()], picture.samples());
    }
}
