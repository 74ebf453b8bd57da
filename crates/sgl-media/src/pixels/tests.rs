//! The canonical form of every PNG colour type and depth, the digest's pinned bytes, what the
//! digest ignores (metadata, compression) and what it does not (pixels, shape), and each error.

use super::*;

/// Options for [`png_of`]: everything but the samples.
struct Png {
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<Vec<u8>>,
    trns: Option<Vec<u8>>,
}

impl Png {
    fn new(width: u32, height: u32, color: png::ColorType, depth: png::BitDepth) -> Self {
        Self { width, height, color, depth, palette: None, trns: None }
    }

    fn encoder<'a>(&self, out: &'a mut Vec<u8>) -> png::Encoder<'static, &'a mut Vec<u8>> {
        let mut encoder = png::Encoder::new(out, self.width, self.height);
        encoder.set_color(self.color);
        encoder.set_depth(self.depth);
        if let Some(palette) = &self.palette {
            encoder.set_palette(palette.clone());
        }
        if let Some(trns) = &self.trns {
            encoder.set_trns(trns.clone());
        }
        encoder
    }

    fn encode(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = self.encoder(&mut out).write_header().expect("header");
        writer.write_image_data(data).expect("data");
        writer.finish().expect("finish");
        out
    }
}

fn decode(png_bytes: &[u8]) -> PixelImage {
    PixelImage::decode(png_bytes).expect("decodes")
}

/// One PNG, its raw data, and the canonical image it must decode to.
struct Case {
    what: &'static str,
    png: Png,
    data: Vec<u8>,
    depth: SampleDepth,
    samples: Vec<u8>,
}

#[test]
fn every_colour_type_and_depth_becomes_rgba_losslessly() {
    use SampleDepth::{Eight, Sixteen};
    use png::{BitDepth as B, ColorType as C};
    let case = |what, png, data: &[u8], depth, samples: &[u8]| Case {
        what,
        png,
        data: data.to_vec(),
        depth,
        samples: samples.to_vec(),
    };
    let gray_trns = Png { trns: Some(vec![0, 7]), ..Png::new(2, 1, C::Grayscale, B::Eight) };
    let palette = Png {
        palette: Some(vec![10, 20, 30, 40, 50, 60]),
        trns: Some(vec![128]),
        ..Png::new(2, 1, C::Indexed, B::Eight)
    };
    let cases = [
        case(
            "grey 1 bit",
            Png::new(3, 1, C::Grayscale, B::One),
            &[0b1010_0000],
            Eight,
            &[255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255],
        ),
        case("grey 4 bits", Png::new(1, 1, C::Grayscale, B::Four), &[0x30], Eight, &[51, 51, 51, 255]),
        case("grey 8 bits, tRNS", gray_trns, &[7, 9], Eight, &[7, 7, 7, 0, 9, 9, 9, 255]),
        case("grey and alpha", Png::new(1, 1, C::GrayscaleAlpha, B::Eight), &[5, 6], Eight, &[5, 5, 5, 6]),
        case("rgb 8 bits", Png::new(1, 1, C::Rgb, B::Eight), &[1, 2, 3], Eight, &[1, 2, 3, 255]),
        case("palette, tRNS", palette, &[0, 1], Eight, &[10, 20, 30, 128, 40, 50, 60, 255]),
        case("rgba 8 bits", Png::new(1, 1, C::Rgba, B::Eight), &[1, 2, 3, 4], Eight, &[1, 2, 3, 4]),
        case(
            "grey 16 bits",
            Png::new(1, 1, C::Grayscale, B::Sixteen),
            &[0x12, 0x34],
            Sixteen,
            &[0x12, 0x34, 0x12, 0x34, 0x12, 0x34, 0xFF, 0xFF],
        ),
        case(
            "rgb 16 bits",
            Png::new(1, 1, C::Rgb, B::Sixteen),
            &[0, 1, 0, 2, 0, 3],
            Sixteen,
            &[0, 1, 0, 2, 0, 3, 0xFF, 0xFF],
        ),
    ];
    for Case { what, png, data, depth, samples } in cases {
        let image = decode(&png.encode(&data));
        assert_eq!((image.width(), image.height()), (png.width, png.height), "{what}");
        assert_eq!(image.depth(), depth, "{what}");
        assert_eq!(image.samples(), samples.as_slice(), "{what}");
    }
}

#[test]
fn the_digest_is_the_documented_bytes() {
    // sha256(b"sgl-media/pixels/v1\0" || u32be 2 || u32be 1 || 8 || 1..=8), by Python's hashlib.
    let rgba = decode(&Png::new(2, 1, png::ColorType::Rgba, png::BitDepth::Eight).encode(&[1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(hex::encode(rgba.digest()), "e7daced8b6b19ee811a40c6d57cf42a4c1db813ea3614b6cb45ae48efa777a2c");
    // A 16-bit grey pixel 0x1234: bits byte 16, samples 12 34 12 34 12 34 ff ff.
    let grey16 = Png::new(1, 1, png::ColorType::Grayscale, png::BitDepth::Sixteen).encode(&[0x12, 0x34]);
    let digest = pixel_digest(&grey16).expect("decodes");
    assert_eq!(hex::encode(digest), "0dd4fbdda793262ee704c7ab8c5f3427e68b016c87d8a97ec4f2de5d77149a5a");
}

#[test]
fn metadata_and_compression_change_the_bytes_but_not_the_digest() {
    let data: Vec<u8> = (0..=255).cycle().take(16 * 8 * 3).collect();
    let plain = Png::new(16, 8, png::ColorType::Rgb, png::BitDepth::Eight);
    let mut tagged = Vec::new();
    let mut encoder = plain.encoder(&mut tagged);
    encoder.add_text_chunk("Date".to_owned(), "2026/12/06 03:32:00".to_owned()).expect("text");
    encoder.set_compression(png::Compression::NoCompression);
    let mut writer = encoder.write_header().expect("header");
    writer.write_image_data(&data).expect("data");
    writer.finish().expect("finish");

    let untagged = plain.encode(&data);
    assert_ne!(tagged, untagged);
    assert_eq!(pixel_digest(&tagged).expect("decodes"), pixel_digest(&untagged).expect("decodes"));
    // The same pixels given as RGBA (alpha 255) are the same image.
    let rgba: Vec<u8> = data.chunks(3).flat_map(|rgb| [rgb[0], rgb[1], rgb[2], 255]).collect();
    let as_rgba = Png::new(16, 8, png::ColorType::Rgba, png::BitDepth::Eight).encode(&rgba);
    assert_eq!(pixel_digest(&as_rgba).expect("decodes"), pixel_digest(&untagged).expect("decodes"));
}

#[test]
fn one_sample_or_the_shape_changes_the_digest() {
    let rgba = |width, height, data: &[u8]| {
        PixelImage::new(width, height, SampleDepth::Eight, data.to_vec()).expect("valid image").digest()
    };
    let data = [1, 2, 3, 4, 5, 6, 7, 8];
    let base = rgba(2, 1, &data);
    assert_ne!(base, rgba(2, 1, &[1, 2, 3, 4, 5, 6, 7, 9]), "one sample");
    assert_ne!(base, rgba(1, 2, &data), "same samples, other shape");
    let deeper = PixelImage::new(1, 1, SampleDepth::Sixteen, data.to_vec()).expect("valid image");
    assert_ne!(base, deeper.digest(), "same bytes, other depth");
}

#[test]
fn an_image_encodes_and_decodes_back_at_both_depths() {
    for depth in [SampleDepth::Eight, SampleDepth::Sixteen] {
        let len = 3 * 2 * depth.bytes_per_pixel();
        let image = PixelImage::new(3, 2, depth, (0..len as u8).collect()).expect("valid image");
        let png_bytes = image.encode_png().expect("encodes");
        assert_eq!(decode(&png_bytes), image, "{depth:?}");
        assert_eq!(image.encode_png().expect("encodes"), png_bytes, "encoding is repeatable");
    }
}

#[test]
fn rows_are_cut_from_the_top() {
    let image = PixelImage::new(1, 3, SampleDepth::Eight, (0..12).collect()).expect("valid image");
    assert_eq!(image.rows(1, 3), Some(&[4, 5, 6, 7, 8, 9, 10, 11][..]));
    assert_eq!(image.rows(0, 1), Some(&[0, 1, 2, 3][..]));
    assert_eq!(image.rows(2, 2), None, "empty");
    assert_eq!(image.rows(2, 4), None, "past the bottom");
}

#[test]
fn bad_input_is_refused_with_its_reason() {
    let good = Png::new(4, 4, png::ColorType::Rgba, png::BitDepth::Eight).encode(&[9; 64]);
    assert!(matches!(PixelImage::decode(b"not a png at all"), Err(PixelError::Decode(_))));
    assert!(matches!(PixelImage::decode(&good[..good.len() - 20]), Err(PixelError::Decode(_))), "truncated");
    let mut corrupt = good.clone();
    let idat = corrupt.windows(4).position(|w| w == b"IDAT").expect("an IDAT chunk");
    corrupt[idat + 6] ^= 0x55;
    assert!(matches!(PixelImage::decode(&corrupt), Err(PixelError::Decode(_))), "bad checksum");
    match PixelImage::decode_with_limit(&good, 63) {
        Err(PixelError::TooLarge { bytes: 64, limit: 63 }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(PixelImage::decode_with_limit(&good, 4096).is_ok());
    match PixelImage::new(2, 2, SampleDepth::Sixteen, vec![0; 16]) {
        Err(PixelError::SampleCount { expected: 32, actual: 16, .. }) => {}
        other => panic!("expected SampleCount, got {other:?}"),
    }
    assert!(matches!(PixelImage::new(0, 2, SampleDepth::Eight, Vec::new()), Err(PixelError::SampleCount { .. })));
}

#[test]
fn an_animated_png_is_refused() {
    let png = Png::new(1, 1, png::ColorType::Rgba, png::BitDepth::Eight);
    let mut out = Vec::new();
    let mut encoder = png.encoder(&mut out);
    encoder.set_animated(1, 0).expect("animated");
    let mut writer = encoder.write_header().expect("header");
    writer.write_image_data(&[1, 2, 3, 4]).expect("frame");
    writer.finish().expect("finish");
    assert!(matches!(PixelImage::decode(&out), Err(PixelError::Animated)));
}
