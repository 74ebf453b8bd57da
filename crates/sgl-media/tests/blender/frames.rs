//! Whole frames: the installed version, one frame's pixels the same on every render (at 1 and
//! 2 threads), the scene's own resolution loaded under `--factory-startup`, another frame of
//! the animation another image, and the resolution override.

use sgl_media::blender::{RenderSettings, RenderSlice, check_output, detect};

use crate::{HEIGHT, WIDTH, blender, full_frame_1, render, settings};

#[test]
fn detect_reads_the_installed_version() {
    let Some(blender) = blender() else { return };
    let version = detect(blender).expect("blender --version is understood");
    let printed = String::from_utf8(crate::run(blender, &["--version".to_owned()]).stdout).expect("UTF-8");
    assert!(printed.starts_with(&format!("Blender {}.{}", version.major, version.minor)), "{printed}");
    assert!(version.major >= 3, "Debian 12 ships 3.4.1, found {version}");
}

#[test]
fn a_frame_has_the_same_pixels_on_every_render_whatever_the_threads() {
    let Some(blender) = blender() else { return };
    let first = full_frame_1(blender);
    let one_thread = RenderSettings { threads: 1, ..settings() };
    let again = render(blender, &RenderSlice::frame(1).expect("a frame"), &one_thread);
    assert_eq!((first.image.width(), first.image.height()), (WIDTH, HEIGHT), "the scene's own resolution");
    assert_eq!(first.image.digest(), again.image.digest());
    let frame = RenderSlice::frame(1).expect("a frame");
    assert_eq!(check_output(&frame, &settings(), &first.image), Ok(160 * 120 * 16));
    eprintln!("PNG bytes identical across the two renders: {}", first.png == again.png);
}

#[test]
fn another_frame_of_the_animation_is_another_image() {
    let Some(blender) = blender() else { return };
    let frame_2 = render(blender, &RenderSlice::frame(2).expect("a frame"), &settings());
    assert_eq!((frame_2.image.width(), frame_2.image.height()), (WIDTH, HEIGHT));
    assert_ne!(frame_2.image.digest(), full_frame_1(blender).image.digest(), "the cube turns, the sphere moves");
}

#[test]
fn a_resolution_override_replaces_the_scene_s() {
    let Some(blender) = blender() else { return };
    let smaller = RenderSettings { resolution: Some((80, 50)), samples: 4, ..settings() };
    let frame = RenderSlice::frame(1).expect("a frame");
    let rendered = render(blender, &frame, &smaller);
    assert_eq!((rendered.image.width(), rendered.image.height()), (80, 50));
    assert_eq!(check_output(&frame, &smaller, &rendered.image), Ok(80 * 50 * 4));
}
