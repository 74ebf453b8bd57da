//! `sgl-cloud jobs result` against a scripted grid (a real one would need nodes to finish a
//! job): outputs land in `DIR/slice-<index>/<path>`; a blob that does not hash to its name, a
//! receipt altered after sealing, and an output path escaping the directory are refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use sgl_protocol::api::compute::{JobResult, SliceResult};
use sgl_protocol::compute::Digest;
use sgl_protocol::compute::receipt::{OutputFile, Receipt, ResourceUsage};
use sgl_protocol::identity::NodeIdentity;
use sgl_protocol::ids::{JobId, NodeId};

use crate::{cloud, one_json, stderr};

/// The files of each slice of the good job.
const SLICES: [&[(&str, &str)]; 2] =
    [&[("primes.txt", "2\n3\n5\n"), ("sub/dir/count.txt", "3\n")], &[("primes.txt", "7\n")]];

fn sealed(job_id: &JobId, slice: u32, files: &[(&str, &str)]) -> Receipt {
    let identity = NodeIdentity::from_seed(&[3; 32]);
    let outputs = files
        .iter()
        .map(|(path, text)| OutputFile {
            path: (*path).into(),
            sha256: Digest::of(text),
            size: text.len() as u64,
            pixels: None,
        })
        .collect();
    Receipt {
        job_id: job_id.clone(),
        slice,
        attempt: 1,
        node_id: "6a1f0c1e-0000-4000-8000-000000000001".parse::<NodeId>().unwrap(),
        bundle_hash: Digest::of("manifest"),
        inputs: BTreeMap::new(),
        outputs,
        exit_code: 0,
        runtime: "wasmtime 48.0.8".into(),
        usage: ResourceUsage { fuel: Some(1_000), cpu_ms: 1, peak_memory_bytes: 1, wall_ms: 1 },
        result_digest: Digest::of(""),
        proof: Digest::of(""),
        signature: String::new(),
    }
    .seal(&identity)
}

/// The job's result as the scripted grid tells it; the job id picks the lie.
fn result(id: &str) -> JobResult {
    let job_id: JobId = id.parse().unwrap();
    let escape: &[&[(&str, &str)]] = &[&[("../escape.txt", "x")]];
    let slices: &[&[(&str, &str)]] = if id == "escape" { escape } else { &SLICES };
    let slices: Vec<SliceResult> = slices
        .iter()
        .zip(0..)
        .map(|(files, index)| {
            let mut receipt = sealed(&job_id, index, files);
            if id == "forged" {
                receipt.outputs[0].sha256 = Digest::of("forged");
            }
            SliceResult {
                index,
                result_digest: receipt.result_digest,
                exit_code: 0,
                outputs: receipt.outputs.clone(),
                receipts: vec![receipt],
            }
        })
        .collect();
    let node: NodeId = "6a1f0c1e-0000-4000-8000-000000000001".parse().unwrap();
    let public_keys = [(node, NodeIdentity::from_seed(&[3; 32]).public_key().to_b58())].into();
    JobResult { job_id, slices, public_keys }
}

/// Serves [`result`] and every output as a blob, except that `2\n3\n5\n` arrives altered.
async fn scripted_grid(corrupt_blob: bool) -> String {
    let mut blobs: BTreeMap<Digest, String> =
        SLICES.iter().flat_map(|files| files.iter()).map(|(_, text)| (Digest::of(text), (*text).to_owned())).collect();
    if corrupt_blob {
        blobs.insert(Digest::of("2\n3\n5\n"), "2\n3\n4\n".into());
    }
    let router = Router::new()
        .route("/v1/jobs/{id}/result", get(|UrlPath(id): UrlPath<String>| async move { axum::Json(result(&id)) }))
        .route(
            "/v1/blobs/{sha256}",
            get(|State(blobs): State<Arc<BTreeMap<Digest, String>>>, UrlPath(name): UrlPath<String>| async move {
                match blobs.get(&name.parse::<Digest>().unwrap()) {
                    Some(bytes) => bytes.clone().into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .with_state(Arc::new(blobs));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn outputs_are_downloaded_per_slice_with_their_hashes_checked() {
    let url = scripted_grid(false).await;
    let base = tempfile::tempdir().unwrap();
    let out = base.path().join("results");
    let output =
        cloud(&url, Some("x402c_k"), &["jobs", "result", "good", "-o", out.to_str().unwrap(), "--json"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = one_json(&output);
    assert_eq!(printed["files"].as_array().unwrap().len(), 3, "{printed}");
    assert_eq!(printed["slices"][1]["exit_code"], 0, "{printed}");
    assert_eq!(read(&out.join("slice-0/primes.txt")), "2\n3\n5\n");
    assert_eq!(read(&out.join("slice-0/sub/dir/count.txt")), "3\n");
    assert_eq!(read(&out.join("slice-1/primes.txt")), "7\n");
    let text = cloud(&url, Some("x402c_k"), &["jobs", "result", "good", "-o", out.to_str().unwrap()], None).await;
    let stdout = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(stdout.contains("slice 1: exit code 0") && stdout.contains("slice-1/primes.txt (2 bytes"), "{stdout}");
}

#[tokio::test]
async fn a_bad_blob_a_forged_receipt_or_an_escaping_path_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let out = base.path().join("results");
    let args = |id| ["jobs", "result", id, "-o", out.to_str().unwrap()];

    let corrupt = scripted_grid(true).await;
    let output = cloud(&corrupt, Some("x402c_k"), &args("good"), None).await;
    assert_eq!(output.status.code(), Some(1), "a verification failure");
    let message = stderr(&output);
    assert!(message.contains(&format!("blob {} arrived with SHA-256", Digest::of("2\n3\n5\n"))), "{message}");
    assert!(!out.join("slice-0/primes.txt").exists(), "nothing unverified is written");

    let honest = scripted_grid(false).await;
    let output = cloud(&honest, Some("x402c_k"), &args("forged"), None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("result digest that does not match its outputs"), "{}", stderr(&output));

    let output = cloud(&honest, Some("x402c_k"), &args("escape"), None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("unsafe output path \"../escape.txt\""), "{}", stderr(&output));
    assert!(!base.path().join("results/escape.txt").exists() && !base.path().join("escape.txt").exists());
}
