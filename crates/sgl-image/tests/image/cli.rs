//! The binary's command line: the engine it reports, and its errors without an engine.

use crate::{binary, engine, ort_library};

#[test]
fn without_a_library_the_error_names_ort_dylib_path() {
    let output = binary("/nonexistent".as_ref()).env_remove("ORT_DYLIB_PATH").arg("version").output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ORT_DYLIB_PATH"), "{stderr}");

    let output = binary("/nonexistent/libonnxruntime.so".as_ref()).arg("version").output().expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/libonnxruntime.so does not exist"), "{stderr}");
}

#[test]
fn version_reports_the_loaded_library() {
    let (Some(library), Some(ref engine)) = (ort_library(), engine()) else { return };
    let output = binary(&library).args(["version", "--json"]).output().expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(info["engine"], "onnxruntime");
    let version = info["engine_version"].as_str().expect("a version");
    assert!(version.split('.').all(|part| part.parse::<u32>().is_ok()), "{version}");
    assert_eq!(version, engine.version());
    assert!(info["build_info"].as_str().is_some_and(|b| b.contains("git-commit-id")), "{info}");
    assert_eq!(info["library"].as_str().map(std::path::PathBuf::from), Some(library));
}
