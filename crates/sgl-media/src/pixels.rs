//! Decoded pixels: any PNG, read into one canonical form, hashed and written back.
//!
//! Redundant nodes rendering the same slice must agree on what the image shows, not on the
//! PNG's bytes: Blender writes a date (and other metadata) into its PNGs, and two encoders may
//! compress the same pixels differently. So a slice's output is compared by its
//! [`pixel_digest`], which hashes the pixels in a canonical form and nothing else.
//!
//! # The canonical form
//!
//! A [`PixelImage`]: width, height, a sample depth of 8 or 16 bits, and the samples, RGBA, rows
//! top to bottom, each row left to right, 16-bit samples big-endian (as PNG stores them). Every
//! PNG colour type and bit depth maps into it losslessly:
//!
//! - a palette becomes RGB (RGBA when the PNG has a `tRNS` chunk), at 8 bits;
//! - grey of 1, 2 or 4 bits is scaled to 8 bits (1 bit: 0 or 255; 2 bits: ×85; 4 bits: ×17);
//! - grey `g` becomes `(g, g, g)`;
//! - a `tRNS` colour key becomes an alpha channel; without alpha, alpha is the maximum (255 or
//!   65535);
//! - 16-bit images stay 16-bit: the digest keeps every bit a 16-bit heightmap carries.
//!
//! Nothing else counts: no metadata chunk (text, time, gamma, ICC profile, physical size), not
//! the interlacing, not the compression. An animated PNG (APNG) is refused
//! ([`PixelError::Animated`]): which of its frames is "the image" is not obvious.
//!
//! # The digest's bytes
//!
//! `pixel_digest = SHA-256(tag || width || height || bits || samples)` where `tag` is
//! [`PIXEL_DIGEST_TAG`] (the 20 ASCII bytes `sgl-media/pixels/v1` and a zero byte), `width`
//! and `height` are u32 big-endian, `bits` is one byte (8 or 16), and `samples` are the
//! canonical samples above (`width × height × 4` samples of `bits / 8` bytes).

#[cfg(test)]
mod tests;

use std::io::Cursor;

use sha2::{Digest, Sha256};

/// The domain tag in front of every pixel digest.
pub const PIXEL_DIGEST_TAG: &[u8; 20] = b"sgl-media/pixels/v1\0";

/// Most bytes [`PixelImage::decode`] allocates for one image's canonical samples (and the PNG
/// decoder for its own buffers): 512 MiB, an 8K × 8K RGBA image at 16 bits.
pub const MAX_DECODED_BYTES: usize = 512 << 20;

/// Why a PNG could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PixelError {
    /// The bytes are not a valid PNG (or it is truncated, or a checksum is wrong).
    #[error("not a valid PNG: {0}")]
    Decode(#[source] png::DecodingError),
    /// The PNG is animated (APNG).
    #[error("an animated PNG has no single image to compare")]
    Animated,
    /// Decoding would allocate more than the limit.
    #[error("the decoded image would take {bytes} bytes; the limit is {limit}")]
    TooLarge {
        /// What the canonical samples of the image would take.
        bytes: u64,
        /// The limit.
        limit: usize,
    },
    /// The samples given to [`PixelImage::new`] are not `width × height × 4` samples, or a
    /// side is zero.
    #[error("a {width}x{height} image at {bits} bits needs {expected} bytes of samples, not {actual}")]
    SampleCount {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bits per sample.
        bits: u8,
        /// Bytes the samples should take.
        expected: u64,
        /// Bytes given.
        actual: usize,
    },
    /// The PNG encoder failed.
    #[error("could not encode the PNG: {0}")]
    Encode(#[source] png::EncodingError),
}

/// Bits per sample of a [`PixelImage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleDepth {
    /// 8 bits per sample, 4 bytes per pixel.
    Eight,
    /// 16 bits per sample (big-endian), 8 bytes per pixel.
    Sixteen,
}

impl SampleDepth {
    /// 8 or 16.
    pub fn bits(self) -> u8 {
        match self {
            Self::Eight => 8,
            Self::Sixteen => 16,
        }
    }

    /// Bytes one RGBA pixel takes: 4 or 8.
    pub fn bytes_per_pixel(self) -> usize {
        4 * self.bytes_per_sample()
    }

    fn bytes_per_sample(self) -> usize {
        usize::from(self.bits() / 8)
    }
}

/// An image in the canonical form the module documentation describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelImage {
    width: u32,
    height: u32,
    depth: SampleDepth,
    samples: Vec<u8>,
}

impl PixelImage {
    /// An image from canonical samples (RGBA, rows top to bottom); both sides at least 1.
    pub fn new(width: u32, height: u32, depth: SampleDepth, samples: Vec<u8>) -> Result<Self, PixelError> {
        let expected = u64::from(width) * u64::from(height) * depth.bytes_per_pixel() as u64;
        if width == 0 || height == 0 || expected != samples.len() as u64 {
            return Err(PixelError::SampleCount { width, height, bits: depth.bits(), expected, actual: samples.len() });
        }
        Ok(Self { width, height, depth, samples })
    }

    /// Decodes a PNG into the canonical form, allocating at most [`MAX_DECODED_BYTES`].
    pub fn decode(png_bytes: &[u8]) -> Result<Self, PixelError> {
        Self::decode_with_limit(png_bytes, MAX_DECODED_BYTES)
    }

    /// Decodes a PNG into the canonical form, allocating at most `limit` bytes for the
    /// canonical samples (and as much again for the decoder's buffers).
    pub fn decode_with_limit(png_bytes: &[u8], limit: usize) -> Result<Self, PixelError> {
        let mut decoder = png::Decoder::new_with_limits(Cursor::new(png_bytes), png::Limits { bytes: limit });
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().map_err(PixelError::Decode)?;
        if reader.info().animation_control.is_some() {
            return Err(PixelError::Animated);
        }
        let (width, height) = reader.info().size();
        let (color, bit_depth) = reader.output_color_type();
        let depth = if bit_depth == png::BitDepth::Sixteen { SampleDepth::Sixteen } else { SampleDepth::Eight };
        let canonical_bytes = u64::from(width) * u64::from(height) * depth.bytes_per_pixel() as u64;
        if canonical_bytes > limit as u64 {
            return Err(PixelError::TooLarge { bytes: canonical_bytes, limit });
        }
        let buffer_size = reader.output_buffer_size().ok_or(PixelError::TooLarge { bytes: u64::MAX, limit })?;
        let mut decoded = vec![0; buffer_size];
        let frame = reader.next_frame(&mut decoded).map_err(PixelError::Decode)?;
        decoded.truncate(frame.buffer_size());
        let samples = to_rgba(&decoded, color, depth);
        Self::new(width, height, depth, samples)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bits per sample.
    pub fn depth(&self) -> SampleDepth {
        self.depth
    }

    /// The canonical samples: RGBA, rows top to bottom, each left to right.
    pub fn samples(&self) -> &[u8] {
        &self.samples
    }

    /// Bytes one row takes.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.depth.bytes_per_pixel()
    }

    /// The samples of rows `start..end` (0 is the top row), or `None` when the range is empty
    /// or runs past the bottom.
    pub fn rows(&self, start: u32, end: u32) -> Option<&[u8]> {
        if start >= end || end > self.height {
            return None;
        }
        self.samples.get(start as usize * self.row_bytes()..end as usize * self.row_bytes())
    }

    /// The pixel digest of this image (see the module documentation for its exact bytes).
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(PIXEL_DIGEST_TAG);
        hasher.update(self.width.to_be_bytes());
        hasher.update(self.height.to_be_bytes());
        hasher.update([self.depth.bits()]);
        hasher.update(&self.samples);
        hasher.finalize().into()
    }

    /// This image as a PNG: RGBA at its own depth, no metadata. The same image always gives the
    /// same bytes with the same `png` crate version; compare images by [`PixelImage::digest`].
    pub fn encode_png(&self) -> Result<Vec<u8>, PixelError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(match self.depth {
            SampleDepth::Eight => png::BitDepth::Eight,
            SampleDepth::Sixteen => png::BitDepth::Sixteen,
        });
        let mut writer = encoder.write_header().map_err(PixelError::Encode)?;
        writer.write_image_data(&self.samples).map_err(PixelError::Encode)?;
        writer.finish().map_err(PixelError::Encode)?;
        Ok(out)
    }
}

/// The pixel digest of a PNG: [`PixelImage::decode`], then [`PixelImage::digest`].
pub fn pixel_digest(png_bytes: &[u8]) -> Result<[u8; 32], PixelError> {
    Ok(PixelImage::decode(png_bytes)?.digest())
}

/// Canonical RGBA samples from the decoder's output (grey, grey and alpha, RGB or RGBA once
/// palettes, low bit depths and `tRNS` are expanded).
fn to_rgba(decoded: &[u8], color: png::ColorType, depth: SampleDepth) -> Vec<u8> {
    let sample = depth.bytes_per_sample();
    let opaque = [0xFF; 2];
    let opaque = &opaque[..sample];
    let channels = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb | png::ColorType::Indexed => 3,
        png::ColorType::Rgba => 4,
    };
    if channels == 4 {
        return decoded.to_vec();
    }
    let mut out = Vec::with_capacity(decoded.len() / channels * 4);
    for pixel in decoded.chunks_exact(channels * sample) {
        let (colour, alpha) = match channels {
            1 => (&pixel[..sample], opaque),
            2 => (&pixel[..sample], &pixel[sample..]),
            _ => (pixel, opaque),
        };
        if channels == 3 {
            out.extend_from_slice(colour);
        } else {
            (0..3).for_each(|_| out.extend_from_slice(colour));
        }
        out.extend_from_slice(alpha);
    }
    out
}
