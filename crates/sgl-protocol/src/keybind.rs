//! The key binding (§2.10): the node's ed25519 signature over a 104-byte blob tying its node id,
//! identity key and X25519 key together, so a caller can check that the encryption key the
//! coordinator hands out really belongs to the node (and not to the coordinator).

use crate::identity::{EncryptionPublicKey, NodeIdentity, NodePublicKey, VerifyError};
use crate::ids::NodeId;

/// `SGL-NODE-KEYBIND-v1` followed by a zero byte.
pub const KEYBIND_DOMAIN: &[u8; 20] = b"SGL-NODE-KEYBIND-v1\0";
/// The only key version seed nodes use.
pub const KEY_VERSION_1: u32 = 1;
/// Length of the signed blob.
pub const KEYBIND_LEN: usize = 104;

/// What a keybind binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBinding<'a> {
    /// The node.
    pub node_id: &'a NodeId,
    /// Its ed25519 identity key.
    pub identity_key: &'a NodePublicKey,
    /// The X25519 key being published.
    pub encryption_key: &'a EncryptionPublicKey,
    /// The key version (u32, little-endian in the blob).
    pub key_version: u32,
}

impl KeyBinding<'_> {
    /// The 104 signed bytes: domain (20) ‖ node id (16) ‖ ed25519 key (32) ‖ X25519 key (32) ‖
    /// version (4, LE).
    pub fn message(&self) -> [u8; KEYBIND_LEN] {
        let mut blob = [0u8; KEYBIND_LEN];
        blob[..20].copy_from_slice(KEYBIND_DOMAIN);
        blob[20..36].copy_from_slice(self.node_id.as_bytes());
        blob[36..68].copy_from_slice(&self.identity_key.to_bytes());
        blob[68..100].copy_from_slice(&self.encryption_key.to_bytes());
        blob[100..].copy_from_slice(&self.key_version.to_le_bytes());
        blob
    }

    /// Verifies a base58 keybind signature against the bound identity key.
    pub fn verify(&self, signature_b58: &str) -> Result<(), VerifyError> {
        self.identity_key.verify_b58(&self.message(), signature_b58)
    }
}

/// Signs a binding of `encryption_key` to this identity and `node_id`.
pub fn sign_keybind(
    identity: &NodeIdentity,
    node_id: &NodeId,
    encryption_key: &EncryptionPublicKey,
    key_version: u32,
) -> String {
    let identity_key = identity.public_key();
    let binding = KeyBinding { node_id, identity_key: &identity_key, encryption_key, key_version };
    identity.sign_b58(&binding.message())
}

#[cfg(test)]
mod tests {
    //! The seed vector of §2.10 and tamper checks.

    use super::*;

    const NODE_ID: &str = "f617ee39-17e3-4904-9474-112446c9326a";

    #[test]
    fn seed_vector_2_10_keybind_signature() {
        let identity = NodeIdentity::from_seed(&[0x07; 32]);
        assert_eq!(identity.public_key().to_b58(), "GmaDrppBC7P5ARKV8g3djiwP89vz1jLK23V2GBjuAEGB");
        let node_id: NodeId = NODE_ID.parse().unwrap();
        let x25519 = EncryptionPublicKey::from_bytes([0x09; 32]);
        let signature = sign_keybind(&identity, &node_id, &x25519, KEY_VERSION_1);
        assert_eq!(
            signature,
            "4jBsDkZf16V7j8jCGm6HzupyWbG75CDHpv8EKo2SmSJ5A3LUSKhEUdtgvypBdpeLq638i5asyU9tpKjEGzL3xjHj"
        );
        let identity_key = identity.public_key();
        let binding =
            KeyBinding { node_id: &node_id, identity_key: &identity_key, encryption_key: &x25519, key_version: 1 };
        assert_eq!(binding.message().len(), 104);
        assert_eq!(&binding.message()[100..], &[1, 0, 0, 0]);
        binding.verify(&signature).unwrap();
    }

    #[test]
    fn swapped_encryption_key_node_or_version_fails() {
        let identity = NodeIdentity::from_seed(&[0x07; 32]);
        let node_id: NodeId = NODE_ID.parse().unwrap();
        let other_node = NodeId::random();
        let x25519 = EncryptionPublicKey::from_bytes([0x09; 32]);
        let attacker = EncryptionPublicKey::from_bytes([0x0a; 32]);
        let signature = sign_keybind(&identity, &node_id, &x25519, 1);
        let identity_key = identity.public_key();
        let good =
            KeyBinding { node_id: &node_id, identity_key: &identity_key, encryption_key: &x25519, key_version: 1 };
        for bad in [
            KeyBinding { encryption_key: &attacker, ..good },
            KeyBinding { node_id: &other_node, ..good },
            KeyBinding { key_version: 2, ..good },
        ] {
            assert_eq!(bad.verify(&signature), Err(VerifyError::BadSignature));
        }
    }
}
