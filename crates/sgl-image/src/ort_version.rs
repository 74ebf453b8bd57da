//! The version of an ONNX Runtime library as the library reports it
//! (`OrtGetApiBase()->GetVersionString()`): `ort` reads it when it loads the library but does not
//! expose it, and receipts must name the version that actually ran. The crate's only `unsafe`.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::path::Path;

use ort::sys::OrtApiBase;

use crate::error::EngineError;

/// The version string of the library at `path`, which `ort` has already loaded.
pub(crate) fn library_version(path: &Path) -> Result<String, EngineError> {
    // SAFETY: opening runs the library's initialisers; this is the ONNX Runtime library that
    // `ort` has already loaded from the same path, so they have run and this only takes a
    // reference, dropped at the end of this function.
    let library =
        unsafe { libloading::Library::new(path) }.map_err(|source| EngineError::Open { path: path.into(), source })?;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release
    // (onnxruntime_c_api.h: `const OrtApiBase* ORT_API_CALL OrtGetApiBase(void)`).
    let get_api_base = unsafe { library.get::<unsafe extern "C" fn() -> *const OrtApiBase>(b"OrtGetApiBase") }
        .map_err(|_| EngineError::NotOnnxRuntime { path: path.into() })?;
    // SAFETY: takes no arguments and returns a pointer to a static table (or null, checked).
    let base = unsafe { get_api_base() };
    if base.is_null() {
        return Err(EngineError::NotOnnxRuntime { path: path.into() });
    }
    // SAFETY: `base` points to the library's static `OrtApiBase`; `GetVersionString` returns a
    // static NUL-terminated string that must not be freed, copied here before the library
    // reference is dropped.
    let version = unsafe { CStr::from_ptr(((*base).GetVersionString)()) };
    Ok(version.to_string_lossy().into_owned())
}
