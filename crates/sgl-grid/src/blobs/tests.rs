//! Blobs stored once under their digest.

use super::*;

#[test]
fn blobs_are_stored_once_under_their_digest_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = DiskBlobs::new(dir.path().join("blobs"));
    let digest = Digest::of(b"hello");
    assert_eq!(blobs.get(&digest).unwrap(), None);
    assert!(blobs.put(&digest, b"hello").unwrap());
    assert!(!blobs.put(&digest, b"hello").unwrap(), "a second put writes nothing");
    assert_eq!(blobs.get(&digest).unwrap().as_deref(), Some(&b"hello"[..]));
    assert_eq!(blobs.size(&digest).unwrap(), Some(5));
    let wrong = blobs.put(&Digest::of(b"other"), b"hello").unwrap_err();
    assert!(matches!(wrong, BlobError::DigestMismatch { actual, .. } if actual == digest));
    assert_eq!(blobs.size(&Digest::of(b"other")).unwrap(), None);
}
