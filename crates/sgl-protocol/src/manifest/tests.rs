//! Manifest tests: canonical bytes are exact, the signature covers every field.

use super::*;

fn manifest() -> CapabilityManifest {
    CapabilityManifest {
        node_id: Some("f617ee39-17e3-4904-9474-112446c9326a".parse().unwrap()),
        wallet: "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23".into(),
        public_key: String::new(),
        hardware_tier: "linux_se".into(),
        cpu: CpuInfo { model: "AMD EPYC".into(), cores: 2, ram_mb: 24_576 },
        gpus: vec![GpuInfo { name: "RTX 4090".into(), backend: "cuda".into(), vram_mb: 24_564 }],
        region: Some("eu-west".into()),
        workload_classes: vec!["llm-inference".into()],
        max_parallel_subtasks: 4,
        client_version: "0.1.0".into(),
        signature: String::new(),
    }
}

#[test]
fn canonical_bytes_are_length_prefixed_in_declaration_order() {
    let mut m = manifest();
    m.gpus.clear();
    m.region = None;
    m.node_id = None;
    m.wallet = "w".into();
    m.public_key = "k".into();
    m.hardware_tier = "t".into();
    m.cpu = CpuInfo { model: "c".into(), cores: 2, ram_mb: 3 };
    m.workload_classes = vec!["x".into()];
    m.max_parallel_subtasks = 4;
    m.client_version = "v".into();
    let mut expected = MANIFEST_DOMAIN.to_vec();
    expected.extend_from_slice(&[0, 0, 0, 0]); // node_id absent
    for field in ["w", "k", "t", "c"] {
        expected.extend_from_slice(&[0, 0, 0, 1]);
        expected.extend_from_slice(field.as_bytes());
    }
    expected.extend_from_slice(&2u64.to_be_bytes());
    expected.extend_from_slice(&3u64.to_be_bytes());
    expected.extend_from_slice(&[0, 0, 0, 0]); // no gpus
    expected.extend_from_slice(&[0, 0, 0, 0]); // region absent
    expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, b'x']);
    expected.extend_from_slice(&4u64.to_be_bytes());
    expected.extend_from_slice(&[0, 0, 0, 1, b'v']);
    assert_eq!(m.canonical_bytes(), expected);
}

#[test]
fn signed_manifest_verifies_and_any_change_breaks_it() {
    let identity = NodeIdentity::from_seed(&[0x42; 32]);
    let mut signed = manifest();
    signed.sign(&identity);
    assert_eq!(signed.verify().unwrap(), identity.public_key());

    let json = serde_json::to_string(&signed).unwrap();
    let parsed: CapabilityManifest = serde_json::from_str(&json).unwrap();
    parsed.verify().unwrap();

    let changes: [fn(&mut CapabilityManifest); 8] = [
        |m| m.wallet.push('x'),
        |m| m.cpu.cores += 1,
        |m| m.gpus[0].vram_mb += 1,
        |m| m.gpus.clear(),
        |m| m.region = None,
        |m| m.max_parallel_subtasks = 16,
        |m| m.workload_classes.push("wasm".into()),
        |m| m.node_id = None,
    ];
    for change in changes {
        let mut tampered = signed.clone();
        change(&mut tampered);
        assert!(tampered.verify().is_err(), "{tampered:?}");
    }
    // Re-signing with another key does not pass as the original node.
    let mut stolen = signed.clone();
    stolen.sign(&NodeIdentity::from_seed(&[1; 32]));
    assert_ne!(stolen.verify().unwrap(), identity.public_key());
}

#[test]
fn field_boundaries_cannot_be_shifted() {
    // With plain concatenation "ab"+"c" and "a"+"bc" would collide; length prefixes prevent it.
    let mut left = manifest();
    left.wallet = "ab".into();
    left.public_key = "c".into();
    let mut right = manifest();
    right.wallet = "a".into();
    right.public_key = "bc".into();
    assert_ne!(left.canonical_bytes(), right.canonical_bytes());
}
