//! Secrets reach only the attempt they were sealed for, and only a bound key.

use super::*;
use crate::identity::NodeIdentity;
use crate::keybind::sign_keybind;

fn node() -> (NodeIdentity, NodeId, SecretsTarget) {
    let identity = NodeIdentity::from_seed(&[5; 32]);
    let node_id: NodeId = "7a1f0c1e-0000-4000-8000-000000000005".parse().unwrap();
    let encryption = identity.encryption_secret().public_key();
    let target = SecretsTarget {
        node_public_key: identity.public_key().to_b58(),
        encryption_public_key: encryption.to_b58(),
        encryption_public_key_signature: sign_keybind(&identity, &node_id, &encryption, 1),
        key_version: 1,
    };
    (identity, node_id, target)
}

#[test]
fn a_secret_opens_for_its_attempt_only() {
    let (identity, node_id, target) = node();
    let job: JobId = "cj_1".parse().unwrap();
    let to = SecretFor { job_id: &job, slice: 2, attempt: 1 };
    let sealed = seal_secret(&target, &node_id, &to, "token", "s3cret", &mut rand_core::OsRng).unwrap();
    assert!(!sealed.enc.ciphertext.contains("s3cret"));
    let secret = identity.encryption_secret();
    assert_eq!(open_secret(&secret, &to, &sealed).unwrap().as_str(), "s3cret");
    let other = SecretFor { attempt: 2, ..to.clone() };
    assert!(matches!(open_secret(&secret, &other, &sealed), Err(SecretError::Mismatch)));
    let renamed = SealedSecret { name: "other".into(), ..sealed.clone() };
    assert!(matches!(open_secret(&secret, &to, &renamed), Err(SecretError::Mismatch)));
    let stranger = NodeIdentity::from_seed(&[6; 32]).encryption_secret();
    assert!(matches!(open_secret(&stranger, &to, &sealed), Err(SecretError::Open(_))));
}

#[test]
fn an_unbound_encryption_key_gets_no_secret() {
    let (_, node_id, mut target) = node();
    target.encryption_public_key = NodeIdentity::from_seed(&[9; 32]).encryption_secret().public_key().to_b58();
    let job: JobId = "cj_1".parse().unwrap();
    let to = SecretFor { job_id: &job, slice: 0, attempt: 1 };
    let refused = seal_secret(&target, &node_id, &to, "token", "s3cret", &mut rand_core::OsRng);
    assert!(matches!(refused, Err(SecretError::Keybind(_))), "{refused:?}");
}
