//! Tests for key files: the 64-integer layout, round trips and permission handling.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::ids::AuthToken;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keypair_json_is_64_integers_seed_then_public_key() {
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    let text = encode_keypair_json(&identity);
    let numbers: Vec<u8> = serde_json::from_str(&text).unwrap();
    assert_eq!(numbers.len(), 64);
    assert_eq!(&numbers[..32], &[0x42; 32]);
    assert_eq!(&numbers[32..], identity.public_key().to_bytes());
}

#[test]
fn save_then_load_round_trips_with_private_modes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nested/sgl-node");
    let path = config.join("keypair.json");
    let identity = NodeIdentity::from_seed(&[3; 32]);
    save_keypair(&path, &identity).unwrap();
    assert_eq!(mode(&config), 0o700);
    assert_eq!(mode(&path), 0o600);
    let (loaded, fix) = load_keypair(&path).unwrap();
    assert_eq!(fix, PermissionFix::AlreadyPrivate);
    assert_eq!(loaded.public_key(), identity.public_key());
}

#[test]
fn loose_files_are_tightened_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keypair.json");
    save_keypair(&path, &NodeIdentity::from_seed(&[4; 32])).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let (_, fix) = load_keypair(&path).unwrap();
    assert_eq!(fix, PermissionFix::Tightened { previous_mode: 0o644 });
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn overwriting_a_loose_existing_file_leaves_it_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keypair.json");
    fs::write(&path, "old").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    save_keypair(&path, &NodeIdentity::from_seed(&[5; 32])).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn malformed_and_mismatched_files_are_refused() {
    let path = Path::new("keypair.json");
    for text in ["[]", "[1,2,3]", "{\"seed\":1}", &format!("[{}]", vec!["256"; 64].join(","))] {
        assert!(matches!(decode_keypair_json(text, path), Err(KeyFileError::Malformed { .. })), "{text}");
    }
    let mut numbers = vec![7u8; 64];
    numbers[63] ^= 1;
    let text = serde_json::to_string(&numbers).unwrap();
    assert!(matches!(decode_keypair_json(&text, path), Err(KeyFileError::PublicKeyMismatch { .. })));
}

#[test]
fn payout_key_round_trips_and_missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payout.key");
    let key = PayoutKey::from_bytes(&[8; 32]).unwrap();
    save_payout_key(&path, &key).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(load_payout_key(&path).unwrap().0.address(), key.address());
    let missing = load_payout_key(&dir.path().join("absent.key"));
    assert!(matches!(missing, Err(KeyFileError::Io { .. })));
}

#[test]
fn node_file_round_trips_pretty_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.json");
    let node = NodeFile {
        node_id: "f617ee39-17e3-4904-9474-112446c9326a".parse().unwrap(),
        auth_token: AuthToken::new("tok"),
        wallet_address: "w".into(),
        tee_type: "linux_se".into(),
        orchestrator_url: "http://127.0.0.1:8080".into(),
        keypair_path: dir.path().join("keypair.json"),
    };
    save_node_file(&path, &node).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\n  \"auth_token\": \"tok\""), "{text}");
    assert_eq!(load_node_file(&path).unwrap().0, node);
    fs::write(&path, "{}").unwrap();
    assert!(matches!(load_node_file(&path), Err(KeyFileError::NodeFile { .. })));
}

#[test]
fn new_directories_are_private_at_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/keypair.json");
    save_keypair(&path, &NodeIdentity::from_seed(&[6; 32])).unwrap();
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
}

#[test]
fn a_planted_temporary_symlink_is_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "keep me").unwrap();
    let path = dir.path().join("keypair.json");
    std::os::unix::fs::symlink(&victim, path.with_extension("tmp")).unwrap();
    save_keypair(&path, &NodeIdentity::from_seed(&[7; 32])).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
    assert_eq!(mode(&path), 0o600);
    load_keypair(&path).unwrap();
}
