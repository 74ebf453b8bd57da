//! The key binding (sgl-protocol.md §2.10): a caller's check that an X25519 key really is the
//! node's, with arbitrary signature strings.
//!
//! The input is text, one field per line: node id, X25519 key (base58), key version, signature
//! (base58), and optionally an identity key (base58) to check against instead of the node's.
//!
//! Invariants: the 104-byte message has its fixed layout; the node's own signature over it
//! verifies; a signature verifies exactly when it is that signature, under that node's key.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sgl_protocol::identity::{EncryptionPublicKey, NodeIdentity, NodePublicKey, VerifyError};
use sgl_protocol::ids::NodeId;
use sgl_protocol::keybind::{KEYBIND_DOMAIN, KeyBinding, sign_keybind};

fuzz_target!(|data: &[u8]| {
    let Some(text) = sgl_fuzz::text(data) else { return };
    let mut fields = text.split('\n');
    let (Some(node_id), Some(key), Some(version), Some(signature)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return;
    };
    let (Ok(node_id), Ok(encryption_key)) = (node_id.parse::<NodeId>(), EncryptionPublicKey::from_b58(key)) else {
        return;
    };
    let key_version = version.parse::<u32>().unwrap_or(1);

    // The identity of the seed vector (§2.10).
    let identity = NodeIdentity::from_seed(&[0x07; 32]);
    let identity_key = identity.public_key();
    let binding =
        KeyBinding { node_id: &node_id, identity_key: &identity_key, encryption_key: &encryption_key, key_version };
    let message = binding.message();
    assert_eq!(&message[..20], KEYBIND_DOMAIN);
    assert_eq!(&message[20..36], node_id.as_bytes());
    assert_eq!(&message[68..100], &encryption_key.to_bytes());
    assert_eq!(&message[100..], &key_version.to_le_bytes());

    let genuine = sign_keybind(&identity, &node_id, &encryption_key, key_version);
    assert_eq!(binding.verify(&genuine), Ok(()));
    match binding.verify(signature) {
        Ok(()) => assert_eq!(signature, genuine, "another signature verified"),
        Err(error) => assert_ne!(signature, genuine, "the genuine signature failed: {error}"),
    }

    let Some(other_key) = fields.next().and_then(|text| NodePublicKey::from_b58(text).ok()) else { return };
    let claimed = KeyBinding { identity_key: &other_key, ..binding };
    if claimed.verify(signature).is_ok() {
        assert_eq!((other_key, signature), (identity_key, genuine.as_str()), "a signature verified under another key");
    } else if other_key != identity_key {
        assert_eq!(claimed.verify(&genuine), Err(VerifyError::BadSignature));
    }
});
