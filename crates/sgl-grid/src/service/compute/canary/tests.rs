//! The canaries' known answers.

use super::*;

#[test]
fn the_native_sieve_writes_what_the_guest_writes() {
    assert_eq!(primes_text(0, 30), "2\n3\n5\n7\n11\n13\n17\n19\n23\n29\n");
    assert_eq!(primes_text(0, 2), "");
    assert_eq!(primes_text(7_919, 7_920), "7919\n");
    assert_eq!(primes_text(1_000_000, 1_000_100).lines().count(), 6);
}

#[test]
fn a_receipt_matches_only_the_exact_answer() {
    let text = primes_text(10, 20);
    let file =
        OutputFile { path: "primes.txt".into(), sha256: Digest::of(&text), size: text.len() as u64, pixels: None };
    let expected = Expected { exit_code: 0, outputs: vec![file.clone()] };
    let parsed = Expected::parse(&serde_json::to_string(&expected).unwrap()).unwrap();
    assert_eq!(parsed, expected);
    let receipt = |exit_code: i32, outputs: Vec<OutputFile>| Receipt {
        job_id: "cj_x".parse().unwrap(),
        slice: 0,
        attempt: 1,
        node_id: sgl_protocol::ids::NodeId::random(),
        bundle_hash: Digest::of(b"m"),
        inputs: Default::default(),
        outputs,
        exit_code,
        runtime: "wasmtime 48.0.8".into(),
        usage: Default::default(),
        result_digest: Digest::of(b""),
        proof: Digest::of(b""),
        signature: String::new(),
    };
    assert!(expected.matches(&receipt(0, vec![file.clone()])));
    assert!(!expected.matches(&receipt(1, vec![file.clone()])));
    let wrong = OutputFile { size: file.size + 1, ..file.clone() };
    assert!(!expected.matches(&receipt(0, vec![wrong])));
    assert!(!expected.matches(&receipt(0, vec![])));
}
