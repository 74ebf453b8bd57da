//! Loading ONNX Runtime in process: one library per process.

use sgl_image::{Engine, EngineError};

use crate::{engine, ort_library};

#[test]
fn a_process_runs_one_library() {
    let (Some(library), Some(ref engine)) = (ort_library(), engine()) else { return };
    assert_eq!(Engine::load(&library).expect("the same library again").version(), engine.version());

    let dir = tempfile::tempdir().expect("temporary folder");
    let copy = dir.path().join(library.file_name().expect("a file name"));
    std::fs::copy(&library, &copy).expect("copies the library");
    match Engine::load(&copy) {
        Err(EngineError::AnotherLibraryLoaded { loaded, requested }) => {
            assert_eq!((loaded, requested), (library, copy))
        }
        other => panic!("expected AnotherLibraryLoaded, got {other:?}"),
    }
}
