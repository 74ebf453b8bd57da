//! The dashboard builds and signs bundles in the browser (`dashboard/static/js/bundle.js`): its
//! per-class forms must plan the manifest `sgl-cloud train|image|render` plans from the same
//! choices, its upload must hash a directory into the manifest as `sgl-cloud bundle sign` does,
//! and its signature must be `sgl-protocol`'s. This builds each case with the CLI's real code and
//! a fixed requester key, and holds `dashboard/test-vectors/bundle-v1.json` to it; the browser
//! tests (`crates/sgl-e2e/python/dashboard_jobs.py`) run `bundle.js` on the same cases and must
//! get the same bytes and signatures.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use sgl_protocol::compute::bundle::SignedBundle;
use sgl_protocol::identity::NodeIdentity;

use super::image::{DEFAULT_ENGINE as IMAGE_ENGINE, ImageArgs, image_bundle};
use super::render::{DEFAULT_ENGINE as RENDER_ENGINE, RenderArgs, render_bundle};
use super::tests::common;
use super::train::{DEFAULT_MODULE, TrainArgs, train_bundle};
use super::{BundlePlan, CommonArgs};
use crate::bundle_dir;

/// The requester key's seed: every signature of the vector is known.
const SEED: [u8; 32] = [7; 32];

fn identity() -> NodeIdentity {
    NodeIdentity::from_seed(&SEED)
}

/// `files` (path → text) written under `dir`.
fn write_all(dir: &Path, files: &BTreeMap<&str, &str>) {
    for (name, text) in files {
        let path = bundle_dir::file_path(dir, name, false);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        std::fs::write(path, text).expect("a file");
    }
}

/// One case: what the page is given and what it must produce.
fn case(kind: &str, form: &Value, files: &BTreeMap<&str, &str>, bundle: &SignedBundle) -> Value {
    json!({
        "kind": kind,
        "form": form,
        "files": files,
        "manifest": String::from_utf8(bundle.manifest_bytes.clone()).expect("UTF-8"),
        "bundle_hash": bundle.hash,
        "signature": bundle.signature.signature,
    })
}

fn common_of(out: &Path, form: &Value) -> CommonArgs {
    CommonArgs {
        redundancy: form["redundancy"].as_u64().expect("redundancy") as u32,
        wall_secs: form["wall_secs"].as_u64().expect("wall_secs") as u32,
        ..common(out)
    }
}

fn signed(plan: &BundlePlan) -> SignedBundle {
    let dir = tempfile::tempdir().expect("a directory");
    plan.write_signed(dir.path(), &identity()).expect("the plan signs")
}

fn train(scratch: &Path) -> Value {
    let files = BTreeMap::from([("mnist.csv", "0,0,1\n255,3,7\n")]);
    write_all(scratch, &files);
    let form = json!({
        "epochs": 2, "hidden": 100, "lr": "0.02", "seed": 7, "max_price": 1500, "redundancy": 2, "wall_secs": 300,
    });
    let args = TrainArgs {
        data: scratch.join("mnist.csv"),
        epochs: 2,
        hidden: 100,
        lr: 0.02,
        seed: 7,
        module: None,
        max_price: 1500,
        common: common_of(scratch, &form),
    };
    let mut value = case("train", &form, &files, &signed(&train_bundle(&args).expect("a train plan")));
    value["module_sha256"] = json!(sgl_protocol::compute::Digest::of(DEFAULT_MODULE));
    value
}

fn image(scratch: &Path) -> Value {
    let files = BTreeMap::from([("pipeline.json", "{\"steps\": []}\n"), ("models/unet.onnx", "not really onnx")]);
    let dir = scratch.join("pipeline");
    write_all(&dir, &files);
    let form = json!({
        "images": 5, "per_slice": 2, "seed": 3, "prompt": "a red \"hill\"", "engine": IMAGE_ENGINE,
        "max_price": 12000, "redundancy": 1, "wall_secs": 600,
    });
    let args = ImageArgs {
        pipeline: dir.join("pipeline.json"),
        images: 5,
        per_slice: 2,
        seed: 3,
        prompt: Some("a red \"hill\"".into()),
        engine: IMAGE_ENGINE.into(),
        max_price: 12000,
        common: common_of(scratch, &form),
    };
    case("image", &form, &files, &signed(&image_bundle(&args).expect("an image plan")))
}

fn render(scratch: &Path) -> Value {
    let files = BTreeMap::from([("scene.blend", "BLENDER-v304")]);
    write_all(scratch, &files);
    let form = json!({
        "frames": "1-2,5", "samples": 16, "resolution": "320x240", "seed": 9, "bands": 2,
        "engine": RENDER_ENGINE, "max_price": 100000, "redundancy": 1, "wall_secs": 900,
    });
    let args = RenderArgs {
        scene: scratch.join("scene.blend"),
        frames: "1-2,5".into(),
        samples: 16,
        resolution: Some((320, 240)),
        seed: Some(9),
        bands: 2,
        engine: RENDER_ENGINE.into(),
        max_price: 100000,
        common: common_of(scratch, &form),
    };
    case("render", &form, &files, &signed(&render_bundle(&args).expect("a render plan")))
}

/// A directory as a person writes it: a manifest with its keys in another order, no `files`,
/// and an input; `bundle sign` hashes it and writes the manifest in the protocol's order.
fn upload() -> Value {
    let manifest = "{\"slices\": [{\"args\": [\"0\", \"100\"]}, {\"args\": [\"100\", \"200\"]}], \"entry\": \
                    \"primes.wasm\", \"class\": \"wasm\", \"format\": \"sgl-bundle-v1\", \"limits\": {\"output_files\": \
                    4, \"fuel\": 1000000000, \"memory_mb\": 64, \"wall_secs\": 60, \"output_mb\": 1}, \
                    \"max_price_micros_per_gfuel\": 900, \"redundancy\": 1}\n";
    let files = BTreeMap::from([
        ("manifest.json", manifest),
        ("primes.wasm", "\0asm not really"),
        ("lib/z.txt", "z"),
        ("lib/a.txt", "a"),
        ("in/range.txt", "0 200\n"),
    ]);
    let dir = tempfile::tempdir().expect("a directory");
    write_all(dir.path(), &files);
    let bundle = bundle_dir::sign(dir.path(), &identity(), None).expect("the directory signs");
    case("upload", &json!({}), &files, &bundle)
}

/// The whole vector.
pub(super) fn vector() -> Value {
    let scratch = tempfile::tempdir().expect("a directory");
    json!({
        "about": "Made by sgl-cloud's classes::vector (bundle_vector_is_current) with the CLI's own bundle code; \
                  the dashboard's bundle.js must plan, hash and sign each case to the same manifest bytes and \
                  signature.",
        "requester_seed_hex": SEED.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "requester": identity().public_key().to_b58(),
        "cases": [train(scratch.path()), image(scratch.path()), render(scratch.path()), upload()],
    })
}

#[test]
fn bundle_vector_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dashboard/test-vectors/bundle-v1.json");
    let mut expected = serde_json::to_string_pretty(&vector()).expect("JSON");
    expected.push('\n');
    if std::env::var_os("SGL_UPDATE_VECTORS").is_some() {
        std::fs::write(path, &expected).expect("writing the vector");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == expected, "{path} is stale: run this test with SGL_UPDATE_VECTORS=1 and commit the file");
}
