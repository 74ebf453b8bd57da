//! Relative paths inside a bundle, `/in` or `/out`: the same rule everywhere, so a path the
//! grid accepted is one the node can create.

use super::BundleError;

/// The longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 255;

/// A relative path of `/`-separated components, each 1 to 255 bytes of printable ASCII other
/// than `/` and `\`, none `.` or `..`, the whole at most [`MAX_PATH_BYTES`] bytes.
pub fn check_path(path: &str) -> Result<(), BundleError> {
    let bad = |why: &str| Err(BundleError::Invalid(format!("path {path:?} {why}")));
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return bad("must be 1 to 255 bytes");
    }
    if path.starts_with('/') {
        return bad("must be relative");
    }
    for component in path.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return bad("must not have empty, `.` or `..` components");
        }
        if !component.bytes().all(|b| (b.is_ascii_graphic() && b != b'\\') || b == b' ') {
            return bad("must be printable ASCII without backslashes");
        }
    }
    Ok(())
}
