//! A real bundle directory in a temporary folder: init, sign and verify; then every way of
//! breaking it after signing (any byte of any file, of an input or of the manifest, a file
//! added or removed, the signature gone) fails verification naming the problem.

use super::*;

const FILES: [(&str, &str); 4] = [
    ("main.wasm", "\0asm module"),
    ("lib/helper.txt", "helper"),
    ("in/data.txt", "1 2 3\n"),
    ("in/sub/more.txt", "more"),
];

fn identity() -> NodeIdentity {
    NodeIdentity::from_seed(&[5; 32])
}

fn options() -> InitOptions {
    InitOptions { entry: "main.wasm".into(), slices: 2, redundancy: 1 }
}

/// A signed bundle in a new temporary directory.
fn signed() -> (tempfile::TempDir, SignedBundle) {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), &options()).unwrap();
    for (path, text) in FILES {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let bundle = sign(dir.path(), &identity(), None).unwrap();
    (dir, bundle)
}

fn problem(dir: &Path) -> BundleProblem {
    let error = verify(dir).expect_err("the bundle must not verify");
    error.downcast::<BundleProblem>().unwrap_or_else(|e| panic!("not a bundle problem: {e:#}"))
}

#[test]
fn init_writes_the_starter_manifest_and_never_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = InitOptions { entry: "prog.wasm".into(), slices: 3, redundancy: 2 };
    let path = init(dir.path(), &options).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    let manifest: BundleManifest = serde_json::from_str(&text).unwrap();
    assert_eq!(manifest, starter_manifest(&options));
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["format"], "sgl-bundle-v1");
    assert_eq!(value["class"], "wasm");
    assert_eq!(value["entry"], "prog.wasm");
    assert_eq!(
        value["limits"],
        serde_json::json!({"fuel": 10_000_000_000u64, "memory_mb": 64, "wall_secs": 60, "output_mb": 16, "output_files": 16})
    );
    assert_eq!(value["slices"], serde_json::json!([{"args": []}, {"args": []}, {"args": []}]));
    assert_eq!(
        (&value["redundancy"], &value["max_price_micros_per_gfuel"], &value["seed"]),
        (&2.into(), &1000.into(), &0.into())
    );
    assert!(dir.path().join(INPUTS).is_dir());

    fs::write(&path, "{\"mine\": true}").unwrap();
    let error = init(dir.path(), &options).unwrap_err().to_string();
    assert!(error.contains("already exists") && error.contains("not overwriting"), "{error}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"mine\": true}", "the existing manifest is untouched");
    assert!(init(dir.path(), &InitOptions { slices: 0, ..options.clone() }).is_err());
    assert!(init(dir.path(), &InitOptions { entry: "../x".into(), ..options }).is_err());
}

#[test]
fn sign_lists_every_file_and_input_and_signs_the_bytes_it_wrote() {
    let (dir, bundle) = signed();
    let files: Vec<&str> = bundle.manifest.files.keys().map(String::as_str).collect();
    assert_eq!(files, ["lib/helper.txt", "main.wasm"]);
    let inputs: Vec<&str> = bundle.manifest.inputs.keys().map(String::as_str).collect();
    assert_eq!(inputs, ["data.txt", "sub/more.txt"]);
    assert_eq!(bundle.manifest.inputs["data.txt"], Digest::of("1 2 3\n"));
    let written = fs::read(dir.path().join(MANIFEST)).unwrap();
    assert_eq!(written, bundle.manifest_bytes);
    assert_eq!(bundle.hash, Digest::of(&written));
    let signature: BundleSignature = serde_json::from_slice(&fs::read(dir.path().join(SIGNATURE)).unwrap()).unwrap();
    assert_eq!(signature.verify(&written).unwrap(), identity().public_key());
    let verified = verify(dir.path()).unwrap();
    assert_eq!(verified.hash, bundle.hash);

    let resigned = sign(dir.path(), &identity(), Some(3)).unwrap();
    assert_eq!(resigned.manifest.redundancy, 3);
    assert_eq!(verify(dir.path()).unwrap().hash, resigned.hash);
}

#[test]
fn changing_any_byte_of_any_file_or_input_is_named() {
    let (dir, _) = signed();
    for (path, text) in FILES {
        let full = dir.path().join(path);
        for at in 0..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[at] ^= 0x01;
            fs::write(&full, &bytes).unwrap();
            match problem(dir.path()) {
                BundleProblem::Changed { path: named, listed, found } => {
                    assert_eq!((named.as_str(), listed, found), (path, Digest::of(text), Digest::of(&bytes)));
                }
                other => panic!("{path} byte {at}: {other}"),
            }
        }
        fs::write(&full, text).unwrap();
    }
    verify(dir.path()).unwrap();
}

#[test]
fn changing_any_byte_of_the_manifest_breaks_the_signature() {
    let (dir, bundle) = signed();
    let path = dir.path().join(MANIFEST);
    for at in 0..bundle.manifest_bytes.len() {
        let mut bytes = bundle.manifest_bytes.clone();
        bytes[at] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let problem = problem(dir.path());
        assert!(matches!(problem, BundleProblem::Signature(_)), "byte {at}: {problem}");
    }
    fs::write(&path, &bundle.manifest_bytes).unwrap();
    let message = format!("{:#}", anyhow::Error::from(BundleProblem::Signature(VerifyError::BadSignature)));
    assert!(message.contains("manifest.sig does not verify over manifest.json"), "{message}");
}

#[test]
fn an_unlisted_or_missing_file_or_a_missing_signature_is_named() {
    let (dir, _) = signed();
    for extra in ["extra.txt", "lib/extra.txt", "in/extra.txt", "in/sub/deeper/extra.txt"] {
        let path = dir.path().join(extra);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "unlisted").unwrap();
        match problem(dir.path()) {
            BundleProblem::Unlisted(named) => assert_eq!(named, extra),
            other => panic!("{extra}: {other}"),
        }
        fs::remove_file(&path).unwrap();
    }
    fs::remove_file(dir.path().join("in/data.txt")).unwrap();
    assert!(matches!(problem(dir.path()), BundleProblem::Missing(named) if named == "in/data.txt"));
    fs::write(dir.path().join("in/data.txt"), "1 2 3\n").unwrap();
    fs::remove_file(dir.path().join(SIGNATURE)).unwrap();
    let unsigned = problem(dir.path());
    assert!(matches!(unsigned, BundleProblem::Unsigned), "{unsigned}");
    assert!(unsigned.to_string().contains("bundle sign"), "{unsigned}");
}

#[test]
fn sign_refuses_a_manifest_whose_entry_is_not_in_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), &options()).unwrap();
    let error = format!("{:#}", sign(dir.path(), &identity(), None).unwrap_err());
    assert!(error.contains("entry \"main.wasm\" is not one of the files"), "{error}");
    assert!(!dir.path().join(SIGNATURE).exists(), "nothing is signed");
    let empty = tempfile::tempdir().unwrap();
    for error in [sign(empty.path(), &identity(), None).unwrap_err(), verify(empty.path()).unwrap_err()] {
        assert!(error.to_string().contains("no manifest.json: start one with `sgl-cloud bundle init"), "{error}");
        assert!(error.downcast_ref::<BundleProblem>().is_none(), "not a verification failure: exit 2");
    }
}
