//! Tests for the identity keys, including the seed vector of sgl-protocol.md §2.3.

use super::*;

#[test]
fn seed_vector_2_3_ed25519_and_x25519_public_keys() {
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    assert_eq!(identity.public_key().to_b58(), "3F5qRPtKg8GhGNnbd3qCj6nVJxWsGxq7pvH84okYLAqf");
    assert_eq!(identity.encryption_secret().public_key().to_b58(), "A2MEKT8hNfpfNCrf9QyQesHWxnfxgS3TuL5DcX6jBwxT");
}

#[test]
fn signatures_verify_and_refuse_other_messages_and_keys() {
    let identity = NodeIdentity::from_seed(&[1; 32]);
    let other = NodeIdentity::from_seed(&[2; 32]);
    let signature = identity.sign_b58(b"message");
    identity.public_key().verify_b58(b"message", &signature).unwrap();
    assert_eq!(identity.public_key().verify_b58(b"messagE", &signature), Err(VerifyError::BadSignature));
    assert_eq!(other.public_key().verify_b58(b"message", &signature), Err(VerifyError::BadSignature));
    assert!(matches!(identity.public_key().verify_b58(b"message", "not-b58-0OIl"), Err(VerifyError::Malformed(_))));
}

#[test]
fn debug_never_shows_secret_material() {
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    let seed_hex = hex::encode([0x42; 32]);
    let printed = format!("{identity:?} {:?}", identity.encryption_secret());
    assert!(printed.contains("<redacted>"));
    assert!(!printed.contains(&seed_hex));
    assert!(!printed.contains("66, 66"));
}

#[test]
fn low_order_public_key_gives_no_shared_secret() {
    let secret = EncryptionSecret::from_bytes([7; 32]);
    assert!(secret.agree(&EncryptionPublicKey::from_bytes([0; 32])).is_none());
    let mut one = [0u8; 32];
    one[0] = 1;
    assert!(secret.agree(&EncryptionPublicKey::from_bytes(one)).is_none());
}
