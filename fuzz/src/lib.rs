//! What the fuzz targets share: the fixed keys and the deterministic randomness they seal and
//! sign with, and the JSON round-trip check.
//!
//! Every target is deterministic: the same input always takes the same path, so that a crash
//! libFuzzer saves reproduces with `cargo fuzz run TARGET ARTIFACT`.

use std::fmt::Debug;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sgl_protocol::identity::{EncryptionSecret, NodeIdentity};

/// A deterministic RNG for sealing and key generation.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The node of the cross-language vector (sgl-protocol.md §2.13): identity seed `0x42 × 32`.
/// Its committed seed input is a real request sealed to it.
pub fn node_identity() -> NodeIdentity {
    NodeIdentity::from_seed(&[0x42; 32])
}

/// The X25519 secret of [`node_identity`].
pub fn node_secret() -> EncryptionSecret {
    node_identity().encryption_secret()
}

/// The input as text, when it is UTF-8: most decoders take strings.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Decodes `bytes` as `T`, and when that succeeds checks that writing the value and reading it
/// back gives the value again (nothing a decoder accepts is lost or altered by our own
/// encoder). Returns the decoded value.
pub fn json_round_trip<T>(bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value: T = serde_json::from_slice(bytes).ok()?;
    let written = serde_json::to_vec(&value).expect("a decoded value encodes");
    let reread: T = serde_json::from_slice(&written).unwrap_or_else(|error| {
        panic!("{} fails to re-read: {error}\n{}", std::any::type_name::<T>(), String::from_utf8_lossy(&written))
    });
    let shown = String::from_utf8_lossy(&written);
    assert_eq!(reread, value, "{} changed in a round trip through {shown}", std::any::type_name::<T>());
    Some(value)
}

/// Like [`json_round_trip`] for a type whose decoder normalises on purpose (it skips malformed
/// entries, or reads any value as a flag): the first round may change the value, but a second
/// round must not.
pub fn json_round_trip_normalising<T>(bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value: T = serde_json::from_slice(bytes).ok()?;
    let normalised: T = serde_json::from_slice(&serde_json::to_vec(&value).expect("a decoded value encodes"))
        .expect("a re-encoded value decodes");
    json_round_trip::<T>(&serde_json::to_vec(&normalised).expect("encodes"))
        .inspect(|again| assert_eq!(again, &normalised))
}
