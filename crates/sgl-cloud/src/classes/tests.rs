//! The shared part of the class commands: a planned bundle is written, signed and verified
//! like any bundle directory; the manifest's counts are checked before anything is written;
//! `--bundle-dir` must be new or empty. Also the helpers the classes' own tests share.

use sgl_protocol::compute::Digest;

use super::*;

/// Flags as a command line without them gives them, writing to `out`.
pub(super) fn common(out: &Path) -> CommonArgs {
    CommonArgs { out: out.to_owned(), redundancy: 1, wall_secs: 600, bundle_dir: None, key: KeyArg { path: None } }
}

/// A signing key for tests.
pub(super) fn identity() -> NodeIdentity {
    NodeIdentity::from_seed(&[9; 32])
}

/// Writes `bytes` as slice `slice`'s output `path` under `out`, as `jobs::fetch` would, and
/// returns its record.
pub(super) fn downloaded(out: &Path, slice: u32, path: &str, bytes: &[u8]) -> Written {
    let file = out.join(format!("slice-{slice}")).join(path);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, bytes).unwrap();
    Written { slice, path: path.to_owned(), file, sha256: Digest::of(bytes), size: bytes.len() as u64 }
}

/// `plan` written into a new temporary directory and signed.
pub(super) fn signed(plan: &BundlePlan) -> (tempfile::TempDir, SignedBundle) {
    let dir = tempfile::tempdir().unwrap();
    let bundle = plan.write_signed(dir.path(), &identity()).unwrap();
    (dir, bundle)
}

fn parts(slices: usize) -> ManifestParts {
    ManifestParts {
        class: JobClass::Render,
        entry: "scene.blend".into(),
        args: vec!["--samples".into(), "4".into()],
        slices: vec![vec!["--frame".into(), "1".into()]; slices],
        limits: ResourceLimits { fuel: 7, memory_mb: 8, wall_secs: 1, output_mb: 2, output_files: 3 },
        max_price: 5,
        seed: 11,
        engine: Some("blender 3.4.1".into()),
    }
}

#[test]
fn a_plan_is_written_signed_and_verified_with_its_files_and_inputs() {
    let base = tempfile::tempdir().unwrap();
    let scene = base.path().join("any-name.blend");
    fs::write(&scene, "scene bytes").unwrap();
    let mut common = common(base.path());
    common.redundancy = 3;
    common.wall_secs = 42;
    let plan = BundlePlan {
        manifest: manifest(parts(2), &common).unwrap(),
        files: BTreeMap::from([
            ("scene.blend".to_owned(), Content::File(scene)),
            ("lib/extra.bin".to_owned(), Content::Embedded(b"embedded")),
        ]),
        inputs: BTreeMap::from([("data/numbers.txt".to_owned(), Content::Embedded(b"1 2 3"))]),
    };
    let (dir, bundle) = signed(&plan);
    let manifest = &bundle.manifest;
    assert_eq!(manifest.files["scene.blend"], Digest::of("scene bytes"));
    assert_eq!(manifest.files["lib/extra.bin"], Digest::of("embedded"));
    assert_eq!(manifest.inputs["data/numbers.txt"], Digest::of("1 2 3"));
    assert_eq!(fs::read(dir.path().join("in/data/numbers.txt")).unwrap(), b"1 2 3");
    assert_eq!((manifest.redundancy, manifest.limits.wall_secs, manifest.seed), (3, 42, 11));
    assert_eq!(manifest.limits.fuel, 7, "the class's limits, but the wall clock, are kept");
    assert_eq!(manifest.engine.as_deref(), Some("blender 3.4.1"));
    assert_eq!(bundle.signature.requester, identity().public_key().to_b58());
    assert_eq!(bundle_dir::verify(dir.path()).unwrap(), bundle, "the directory verifies as jobs submit checks it");
}

#[test]
fn counts_the_protocol_bounds_are_refused_before_anything_is_written() {
    let base = tempfile::tempdir().unwrap();
    let error = |parts: ManifestParts, common: &CommonArgs| manifest(parts, common).unwrap_err().to_string();
    let mut bad = common(base.path());
    bad.redundancy = 0;
    assert_eq!(error(parts(1), &bad), "--redundancy must be 1 to 9");
    bad.redundancy = 10;
    assert_eq!(error(parts(1), &bad), "--redundancy must be 1 to 9");
    let good = common(base.path());
    assert_eq!(error(parts(0), &good), "this makes 0 slices; a job has 1 to 1024");
    assert_eq!(error(parts(1025), &good), "this makes 1025 slices; a job has 1 to 1024");
    assert!(manifest(parts(1024), &good).is_ok());
    let engine = ManifestParts { engine: Some("blender".into()), ..parts(1) };
    assert!(error(engine, &good).starts_with("--engine \"blender\" must be a name and a version"));
    let mut zero_wall = common(base.path());
    zero_wall.wall_secs = 0;
    assert_eq!(error(parts(1), &zero_wall), "--wall-secs must be above zero");
}

#[test]
fn a_kept_bundle_directory_must_be_new_or_empty() {
    let base = tempfile::tempdir().unwrap();
    let new = base.path().join("new/bundle");
    assert_eq!(BundleHome::new(Some(&new)).unwrap().path(), new);
    assert!(new.is_dir(), "created");
    assert!(BundleHome::new(Some(&new)).is_ok(), "an empty directory is fine");
    fs::write(new.join("manifest.json"), "{}").unwrap();
    let error = BundleHome::new(Some(&new)).unwrap_err().to_string();
    assert!(error.contains("is not empty"), "{error}");
    let temporary = BundleHome::new(None).unwrap();
    let path = temporary.path().to_owned();
    assert!(path.is_dir());
    drop(temporary);
    assert!(!path.exists(), "a temporary bundle goes away");
}

#[test]
fn a_missing_output_is_named_by_slice_and_path() {
    let out = tempfile::tempdir().unwrap();
    let written = [downloaded(out.path(), 0, "a.txt", b"a")];
    assert_eq!(output_file(&written, 0, "a.txt").unwrap(), out.path().join("slice-0/a.txt"));
    assert_eq!(output_file(&written, 1, "a.txt").unwrap_err().to_string(), "slice 1 has no output a.txt");
}

#[test]
fn a_finished_job_is_described_with_its_products_and_the_class_s_fields() {
    let out = tempfile::tempdir().unwrap();
    let job: JobView = serde_json::from_value(json!({
        "id": "3f2a9c1e-0000-4000-8000-000000000001", "object": "job", "class": "train", "state": "done",
        "bundle_hash": Digest::of("manifest"), "redundancy": 2, "slice_count": 3, "slices_done": 3,
        "price_micros_per_gfuel": 200, "escrow_micros": 3600, "charged_micros": 1250, "refunded_micros": 2350,
        "created_at": "2026-12-06T04:00:00Z",
    }))
    .unwrap();
    let written = vec![downloaded(out.path(), 2, "ckpt.bin", b"weights")];
    let finished = Finished { job, dir: out.path().to_owned(), written };
    let mut summary = Summary { lines: vec!["epoch 1: …".into()], ..Summary::default() };
    summary.files.push(out.path().join("ckpt.bin"));
    summary.fields.insert("metrics".into(), json!([{"epoch": 1}]));
    let (object, text) = describe(&finished, summary);
    assert_eq!(object["job_id"], "3f2a9c1e-0000-4000-8000-000000000001");
    assert_eq!((&object["state"], &object["class"]), (&"done".into(), &"train".into()));
    assert_eq!(object["dir"], out.path().to_str().unwrap());
    assert_eq!(object["files"], json!([out.path().join("ckpt.bin")]));
    assert_eq!(object["outputs"][0]["path"], "ckpt.bin");
    assert_eq!(object["outputs"][0]["slice"], 2);
    assert_eq!(object["metrics"], json!([{"epoch": 1}]), "the class's own fields");
    assert_eq!((&object["charged_micros"], &object["refunded_micros"]), (&1250.into(), &2350.into()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "job 3f2a9c1e-0000-4000-8000-000000000001 done: 3 slice(s) × 2, charged $0.001250, refunded $0.002350"
    );
    assert_eq!(lines[1], "epoch 1: …");
    assert_eq!(lines[2], format!("  {}", out.path().join("ckpt.bin").display()));
}
