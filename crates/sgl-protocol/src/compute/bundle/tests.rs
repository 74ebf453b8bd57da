//! Bundles: signatures over exact bytes, and every manifest rule.

use super::*;

fn manifest_json() -> String {
    let wasm = Digest::of(b"module");
    let data = Digest::of(b"data");
    format!(
        r#"{{"format":"sgl-bundle-v1","class":"wasm","entry":"primes.wasm","args":["-v"],
"files":{{"primes.wasm":"{wasm}"}},"inputs":{{"data/n.txt":"{data}"}},
"limits":{{"fuel":1000000,"memory_mb":16,"wall_secs":10,"output_mb":1,"output_files":4}},
"slices":[{{"args":["0","10"]}},{{"args":["10","20"]}}],"redundancy":2,
"max_price_micros_per_gfuel":500,"seed":7}}"#
    )
}

fn identity() -> NodeIdentity {
    NodeIdentity::from_seed(&[7; 32])
}

#[test]
fn a_signed_manifest_opens_with_its_hash_and_argv() {
    let bytes = manifest_json().into_bytes();
    let signature = BundleSignature::sign(&identity(), &bytes);
    let bundle = SignedBundle::open(bytes.clone(), signature).unwrap();
    assert_eq!(bundle.hash, Digest::of(&bytes));
    assert_eq!(bundle.manifest.redundancy, 2);
    assert_eq!(bundle.manifest.argv(1), ["primes.wasm", "-v", "10", "20"]);
    assert_eq!(bundle.manifest.inputs.len(), 1);
}

#[test]
fn any_changed_byte_of_the_manifest_breaks_the_signature() {
    let bytes = manifest_json().into_bytes();
    let signature = BundleSignature::sign(&identity(), &bytes);
    for index in [0, bytes.len() / 2, bytes.len() - 1] {
        let mut changed = bytes.clone();
        changed[index] ^= 1;
        let err = SignedBundle::open(changed, signature.clone()).unwrap_err();
        assert!(matches!(err, BundleError::Signature(VerifyError::BadSignature)), "{err:?}");
    }
    let other = BundleSignature::sign(&NodeIdentity::from_seed(&[8; 32]), &bytes);
    let forged = BundleSignature { requester: signature.requester, signature: other.signature };
    assert!(matches!(SignedBundle::open(bytes, forged), Err(BundleError::Signature(_))));
}

fn open_edited(edit: impl Fn(&mut serde_json::Value)) -> Result<SignedBundle, BundleError> {
    let mut value: serde_json::Value = serde_json::from_str(&manifest_json()).unwrap();
    edit(&mut value);
    let bytes = serde_json::to_vec(&value).unwrap();
    SignedBundle::open(bytes.clone(), BundleSignature::sign(&identity(), &bytes))
}

#[test]
fn an_unknown_class_is_named() {
    let err = open_edited(|m| m["class"] = "quantum".into()).unwrap_err();
    assert!(err.to_string().contains("unknown variant `quantum`"), "{err}");
}

#[test]
fn unknown_fields_and_bad_values_are_refused_with_the_reason() {
    let cases: [(&str, Edit); 9] = [
        ("unknown field `fuell`", |m| m["limits"]["fuell"] = 1.into()),
        ("entry \"other.wasm\" is not one of the files", |m| m["entry"] = "other.wasm".into()),
        ("slices must number 1 to 1024", |m| m["slices"] = serde_json::json!([])),
        ("redundancy must be 1 to 9", |m| m["redundancy"] = 10.into()),
        ("redundancy must be 1 to 9", |m| m["redundancy"] = 0.into()),
        ("every limit must be above zero", |m| m["limits"]["wall_secs"] = 0.into()),
        ("must not have empty, `.` or `..` components", |m| {
            m["inputs"] = serde_json::json!({"../etc/passwd": Digest::of(b"x")})
        }),
        ("must be relative", |m| m["inputs"] = serde_json::json!({"/etc/passwd": Digest::of(b"x")})),
        ("secret name \".env\"", |m| m["secrets"] = serde_json::json!([".env"])),
    ];
    for (expected, edit) in cases {
        let err = open_edited(edit).unwrap_err();
        assert!(err.to_string().contains(expected), "expected {expected:?} in {err}");
    }
}

#[test]
fn the_signed_message_is_the_domain_and_the_manifest_hash() {
    let bytes = b"{}";
    let signature = BundleSignature::sign(&identity(), bytes);
    let mut message = b"sgl-bundle-v1\0".to_vec();
    message.extend_from_slice(&crate::encoding::sha256(bytes));
    identity().public_key().verify_b58(&message, &signature.signature).unwrap();
}

#[test]
fn an_llm_job_pins_a_model_and_has_one_prompt_per_slice() {
    let model = serde_json::json!({"sha256": Digest::of(b"gguf"), "max_tokens": 16});
    let llm = |m: &mut serde_json::Value| {
        m["class"] = "llm".into();
        m["args"] = serde_json::json!([]);
        m["slices"] = serde_json::json!([{"args": ["Hello"]}]);
    };
    let bundle = open_edited(|m| {
        llm(m);
        m["model"] = model.clone();
    })
    .unwrap();
    assert_eq!(bundle.manifest.model.unwrap().max_tokens, 16);
    assert_eq!(bundle.manifest.argv(0), ["primes.wasm", "Hello"]);
    let cases: [(&str, Edit); 3] = [
        ("class llm needs `model`", |m| {
            m["class"] = "llm".into();
            m["slices"] = serde_json::json!([{"args": ["Hello"]}]);
        }),
        ("exactly one argument", |m| {
            m["class"] = "llm".into();
            m["model"] = serde_json::json!({"sha256": Digest::of(b"gguf"), "max_tokens": 16});
        }),
        ("`model` is only for class llm", |m| {
            m["model"] = serde_json::json!({"sha256": Digest::of(b"g"), "max_tokens": 1})
        }),
    ];
    for (expected, edit) in cases {
        let err = open_edited(edit).unwrap_err();
        assert!(err.to_string().contains(expected), "expected {expected:?} in {err}");
    }
}

type Edit = fn(&mut serde_json::Value);

#[test]
fn native_classes_pin_an_engine_and_share_in_between_files_and_inputs() {
    let bundle = open_edited(|m| {
        m["class"] = "render".into();
        m["engine"] = "blender 3.4.1".into();
    })
    .unwrap();
    assert_eq!(bundle.manifest.engine.as_deref(), Some("blender 3.4.1"));
    let cases: [(&str, Edit); 4] = [
        ("class image needs `engine`", |m| m["class"] = "image".into()),
        ("must be a name and a version", |m| {
            m["class"] = "image".into();
            m["engine"] = "onnxruntime".into();
        }),
        ("`engine` is only for the native classes", |m| m["engine"] = "onnxruntime 1.32.0".into()),
        ("a path may not be both", |m| {
            m["class"] = "image".into();
            m["engine"] = "onnxruntime 1.32.0".into();
            m["inputs"]["primes.wasm"] = m["files"]["primes.wasm"].clone();
        }),
    ];
    for (expected, edit) in cases {
        let err = open_edited(edit).unwrap_err();
        assert!(err.to_string().contains(expected), "expected {expected:?} in {err}");
    }
}

#[test]
fn a_chained_class_keeps_prev_for_the_slice_befores_outputs() {
    let bundle = open_edited(|m| m["class"] = "train".into()).unwrap();
    assert!(bundle.manifest.class.is_chained());
    let err = open_edited(|m| {
        m["class"] = "train".into();
        m["inputs"]["prev/ckpt.bin"] = m["files"]["primes.wasm"].clone();
    })
    .unwrap_err();
    assert!(err.to_string().contains("no input may be there"), "{err}");
}
