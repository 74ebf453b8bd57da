//! The result checks against receipts sealed with real node keys: a consistent result passes,
//! and each way of breaking it fails with its own error.

use sgl_protocol::compute::receipt::{OutputFile, ResourceUsage};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::NodeId;

use super::*;

const BUNDLE: &str = "the bundle's manifest";

fn job_id() -> JobId {
    "job-1".parse().unwrap()
}

fn output(path: &str, text: &str) -> OutputFile {
    OutputFile { path: path.into(), sha256: Digest::of(text), size: text.len() as u64, pixels: None }
}

/// A receipt sealed by node `seed` for `slice`, with `outputs`.
fn receipt(seed: u8, slice: u32, outputs: Vec<OutputFile>) -> Receipt {
    let identity = NodeIdentity::from_seed(&[seed; 32]);
    Receipt {
        job_id: job_id(),
        slice,
        attempt: u32::from(seed),
        node_id: node_id(seed),
        bundle_hash: Digest::of(BUNDLE),
        inputs: Default::default(),
        outputs,
        exit_code: 0,
        runtime: "wasmtime 48.0.8".into(),
        usage: ResourceUsage { fuel: Some(1_000), cpu_ms: 1, peak_memory_bytes: 1, wall_ms: 1 },
        result_digest: Digest::of(b""),
        proof: Digest::of(b""),
        signature: String::new(),
    }
    .seal(&identity)
}

fn slice(index: u32, receipts: Vec<Receipt>) -> SliceResult {
    let first = &receipts[0];
    SliceResult {
        index,
        result_digest: first.result_digest,
        exit_code: first.exit_code,
        outputs: first.outputs.clone(),
        receipts,
    }
}

/// Two slices, each vouched for by two nodes that agree.
fn good() -> JobResult {
    let slices = (0..2)
        .map(|index| {
            let outputs = vec![output("a.txt", &format!("slice {index}")), output("b.txt", "b")];
            slice(index, vec![receipt(1, index, outputs.clone()), receipt(2, index, outputs)])
        })
        .collect();
    JobResult { job_id: job_id(), slices, public_keys: keys(&[1, 2]) }
}

/// The public keys of nodes `seeds`, as the grid lists them.
fn keys(seeds: &[u8]) -> std::collections::BTreeMap<NodeId, String> {
    seeds.iter().map(|seed| (node_id(*seed), NodeIdentity::from_seed(&[*seed; 32]).public_key().to_b58())).collect()
}

fn node_id(seed: u8) -> NodeId {
    format!("00000000-0000-4000-8000-0000000000{seed:02x}").parse().unwrap()
}

fn check(result: &JobResult) -> Result<(), JobVerifyError> {
    check_job_result(&job_id(), result)
}

#[test]
fn a_consistent_result_passes() {
    assert_eq!(check(&good()), Ok(()));
}

#[test]
fn a_result_of_another_job_or_with_misordered_slices_is_refused() {
    let other: JobId = "job-2".parse().unwrap();
    assert_eq!(
        check_job_result(&other, &good()),
        Err(JobVerifyError::WrongJob { expected: other.clone(), got: job_id() })
    );
    let mut swapped = good();
    swapped.slices.swap(0, 1);
    assert_eq!(check(&swapped), Err(JobVerifyError::SlicesOutOfOrder(0)));
    let mut empty = good();
    empty.slices[1].receipts.clear();
    assert_eq!(check(&empty), Err(JobVerifyError::NoReceipts(1)));
}

#[test]
fn each_broken_receipt_is_named() {
    let mut misplaced = good();
    misplaced.slices[1].receipts[1] = receipt(2, 0, misplaced.slices[1].outputs.clone());
    assert_eq!(check(&misplaced), Err(JobVerifyError::ReceiptMisplaced { slice: 1, attempt: 2 }));

    let mut unsorted = good();
    unsorted.slices[0].receipts[0].outputs.reverse();
    assert_eq!(check(&unsorted), Err(JobVerifyError::ReceiptUnsorted { slice: 0, attempt: 1 }));

    for unsafe_path in ["../up.txt", "/etc/passwd", "a//b", "./a"] {
        let escaping = slice(0, vec![receipt(1, 0, vec![output(unsafe_path, "x")])]);
        let result = JobResult { job_id: job_id(), slices: vec![escaping], public_keys: keys(&[1, 2]) };
        let expected = JobVerifyError::UnsafePath { slice: 0, attempt: 1, path: unsafe_path.into() };
        assert_eq!(check(&result), Err(expected), "sealed by its node, but {unsafe_path:?} is unsafe");
    }

    let mut digest = good();
    digest.slices[0].receipts[1].usage.fuel = Some(1);
    assert_eq!(check(&digest), Err(JobVerifyError::ReceiptDigest { slice: 0, attempt: 2 }));

    let mut exit = good();
    exit.slices[1].receipts[0].exit_code = 3;
    assert_eq!(check(&exit), Err(JobVerifyError::ReceiptDigest { slice: 1, attempt: 1 }));

    let mut proof = good();
    proof.slices[1].receipts[0].proof = Digest::of("forged");
    assert_eq!(check(&proof), Err(JobVerifyError::ReceiptProof { slice: 1, attempt: 1 }));
}

#[test]
fn receipts_must_agree_with_each_other_and_with_the_slice() {
    let mut disagree = good();
    disagree.slices[0].receipts[1] = receipt(2, 0, vec![output("a.txt", "something else")]);
    assert_eq!(check(&disagree), Err(JobVerifyError::ReceiptsDisagree(0)));

    let mut twice = good();
    twice.slices[1].receipts[1] = twice.slices[1].receipts[0].clone();
    let node_id = twice.slices[1].receipts[0].node_id;
    assert_eq!(check(&twice), Err(JobVerifyError::DuplicateNode { slice: 1, node_id }));

    let mut stated_exit = good();
    stated_exit.slices[0].exit_code = 1;
    assert_eq!(check(&stated_exit), Err(JobVerifyError::SliceMismatch(0)));
    let mut stated_outputs = good();
    stated_outputs.slices[1].outputs[0].sha256 = Digest::of("swapped");
    assert_eq!(check(&stated_outputs), Err(JobVerifyError::SliceMismatch(1)));
    let mut stated_digest = good();
    stated_digest.slices[1].result_digest = Digest::of("swapped");
    assert_eq!(check(&stated_digest), Err(JobVerifyError::SliceMismatch(1)));
}

#[test]
fn a_blob_must_hash_to_its_name() {
    let name = Digest::of("bytes");
    assert_eq!(check_blob(&name, b"bytes"), Ok(()));
    assert_eq!(check_blob(&name, b"other"), Err(JobVerifyError::BlobMismatch { name, actual: Digest::of("other") }));
}

#[test]
fn a_receipt_must_be_signed_by_the_key_listed_for_its_node() {
    let mut unknown = good();
    unknown.public_keys.remove(&node_id(2));
    assert_eq!(check(&unknown), Err(JobVerifyError::UnknownNode { slice: 0, node_id: node_id(2) }));
    let mut swapped = good();
    let other = NodeIdentity::from_seed(&[7; 32]).public_key().to_b58();
    swapped.public_keys.insert(node_id(1), other);
    assert_eq!(check(&swapped), Err(JobVerifyError::ReceiptSignature { slice: 0, attempt: 1 }));
    let mut resigned = good();
    resigned.slices[1].receipts[1].usage.wall_ms = 99;
    assert_eq!(check(&resigned), Err(JobVerifyError::ReceiptSignature { slice: 1, attempt: 2 }));
}
