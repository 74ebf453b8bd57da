//! Receipts: the test vector and tamper evidence.

use super::*;

/// The test vector of `docs/protocol.md` §10.
fn vector() -> (NodeIdentity, Receipt) {
    let identity = NodeIdentity::from_seed(&[1; 32]);
    let receipt = Receipt {
        job_id: "cj_0123456789abcdef".parse().unwrap(),
        slice: 2,
        attempt: 1,
        node_id: "6f1d4a52-58c3-4b1e-9c7e-2d8f0a3b4c5d".parse().unwrap(),
        bundle_hash: Digest::of(b"manifest"),
        inputs: [("n.txt".to_owned(), Digest::of(b"input"))].into(),
        outputs: vec![
            OutputFile { path: "z.txt".into(), sha256: Digest::of(b"z"), size: 1, pixels: None },
            OutputFile { path: "primes.txt".into(), sha256: Digest::of(b"2\n3\n"), size: 4, pixels: None },
        ],
        exit_code: 0,
        runtime: "wasmtime 48.0.8".into(),
        usage: ResourceUsage { fuel: Some(12345), cpu_ms: 3, peak_memory_bytes: 1 << 20, wall_ms: 4 },
        result_digest: Digest::from_bytes([0; 32]),
        proof: Digest::from_bytes([0; 32]),
        signature: String::new(),
    };
    (identity, receipt.seal(&NodeIdentity::from_seed(&[1; 32])))
}

#[test]
fn the_test_vector_is_stable() {
    let (_, receipt) = vector();
    assert_eq!(receipt.outputs[0].path, "primes.txt", "sealing sorts the outputs");
    assert_eq!(receipt.result_digest.to_hex(), "35b3c144b8a56bae068913c7d34b394109be80472b002d41d2472a1f47503e7c");
    assert_eq!(receipt.proof.to_hex(), "7c1354e55578a8697c4b0d7632f137ecae7bf82bed2c29379a0df0c6f63a0eaf");
    assert_eq!(
        crate::encoding::sha256_hex(receipt.canonical_bytes()),
        "f2e738d7c86e021b68d8ea46d7e1103f7a4fe22ad7537f91cdfe13f8416bf570"
    );
    assert_eq!(
        receipt.signature,
        "5QWcVTV6yDpgoqdRoEeo9u53zhNTbXtnBmExf6CTRqQuqkQViGwDHeMajhnUsPmN6ggvnyoaXS9gfKUJ6aFox7FF"
    );
}

#[test]
fn a_sealed_receipt_verifies_and_any_change_breaks_it() {
    let (identity, receipt) = vector();
    let key = identity.public_key();
    receipt.verify(&key).unwrap();
    let mut fuel = receipt.clone();
    fuel.usage.fuel = Some(12346);
    assert_eq!(fuel.verify(&key), Err(ReceiptError::ResultDigest));
    let mut output = receipt.clone();
    output.outputs[1].size = 2;
    assert_eq!(output.verify(&key), Err(ReceiptError::ResultDigest));
    let mut slice = receipt.clone();
    slice.slice = 3;
    assert_eq!(slice.verify(&key), Err(ReceiptError::Proof));
    let mut wall = receipt.clone();
    wall.usage.wall_ms = 5;
    assert!(matches!(wall.verify(&key), Err(ReceiptError::Signature(_))));
    let mut unsorted = receipt.clone();
    unsorted.outputs.reverse();
    assert_eq!(unsorted.verify(&key), Err(ReceiptError::Unsorted));
    let other = NodeIdentity::from_seed(&[2; 32]).public_key();
    assert!(matches!(receipt.verify(&other), Err(ReceiptError::Signature(_))));
}

#[test]
fn the_result_digest_ignores_who_ran_it_and_the_proof_does_not() {
    let (_, receipt) = vector();
    let other_node = Receipt { node_id: NodeId::random(), ..receipt.clone() }.seal(&NodeIdentity::from_seed(&[3; 32]));
    assert_eq!(other_node.result_digest, receipt.result_digest);
    assert_ne!(other_node.proof, receipt.proof);
}

#[test]
fn json_round_trips() {
    let (_, receipt) = vector();
    let json = serde_json::to_string(&receipt).unwrap();
    assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), receipt);
}

#[test]
fn pngs_with_the_same_pixels_agree_and_their_digests_are_signed() {
    let (identity, sample) = vector();
    let png = |bytes: &[u8], pixels: &[u8]| OutputFile {
        path: "frame_0001.png".into(),
        sha256: Digest::of(bytes),
        size: bytes.len() as u64,
        pixels: Some(Digest::of(pixels)),
    };
    let receipt = |file: OutputFile| Receipt { outputs: vec![file], ..sample.clone() }.seal(&identity);
    let (a, b) = (receipt(png(b"png dated monday", b"pixels")), receipt(png(b"png dated tuesday!", b"pixels")));
    assert_eq!(a.result_digest, b.result_digest, "same pixels, different bytes: one result");
    let c = receipt(png(b"png dated monday", b"other pixels"));
    assert_ne!(a.result_digest, c.result_digest);
    a.verify(&identity.public_key()).unwrap();
    let mut forged = a.clone();
    forged.outputs[0].pixels = Some(Digest::of(b"forged"));
    forged.result_digest = result_digest(forged.exit_code, forged.usage.fuel, &forged.outputs);
    forged.proof = proof_of_execution(&forged.job_id, forged.slice, &forged.result_digest, &forged.node_id);
    assert!(forged.verify(&identity.public_key()).is_err(), "the pixel digest is under the signature");
}
