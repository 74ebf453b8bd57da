//! `sgl-cloud train|image|render` against a real grid without nodes: each command builds its
//! class's bundle (kept with `--bundle-dir`), which verifies with the class, engine, slices and
//! arguments it should have; the grid accepts it at the class's price with the escrow its
//! limits make; the command follows the job, and when the job ends cancelled (no node ever
//! leases it) it exits 2 with the job, the escrow back. Bad flags are refused before a key is
//! made or anything is uploaded.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use sgl_protocol::compute::Digest;

use crate::jobs::{Session, arg};
use crate::{one_json, stderr};

/// Runs `sgl-cloud ARGS --json` while cancelling the job it submits as soon as it is listed;
/// returns the command's output and the cancelled job.
async fn run_cancelled(session: &Session, args: &[&str]) -> (Output, Value) {
    let args = [args, &["--json"]].concat();
    tokio::join!(session.run(&args), async {
        let id = loop {
            let list = session.json(&["jobs", "list"]).await;
            if let Some(id) = list["data"][0]["id"].as_str() {
                break id.to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        session.json(&["jobs", "cancel", &id]).await
    })
}

/// The kept bundle verified, and its manifest.
async fn verified_manifest(session: &Session, dir: &Path) -> (Value, Value) {
    let verified = session.json(&["bundle", "verify", arg(dir)]).await;
    let manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    (verified, manifest)
}

/// The command waited and failed because the job ended cancelled, printing it.
fn assert_ended_cancelled(output: &Output, cancelled: &Value) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    let printed = one_json(output);
    assert_eq!(printed["job"]["state"], "cancelled", "{printed}");
    let id = cancelled["id"].as_str().unwrap();
    assert!(printed["error"].as_str().unwrap().contains(&format!("job {id} ended cancelled")), "{printed}");
    let progress = stderr(output);
    assert!(progress.contains(&format!("job {id}: cancelled")), "{progress}");
}

fn args_of(manifest: &Value) -> Vec<Vec<&str>> {
    let slices = manifest["slices"].as_array().unwrap();
    slices.iter().map(|s| s["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect()).collect()
}

#[tokio::test]
async fn train_submits_one_resuming_slice_per_epoch_and_fails_when_the_job_is_cancelled() {
    let session = Session::start().await;
    let data = session.path("mnist_5k.csv");
    std::fs::write(&data, "0,0,7\n").unwrap();
    let (bundle, out) = (session.path("train-bundle"), session.path("out"));
    let args = ["train", "--data", arg(&data), "--epochs", "3", "--bundle-dir", arg(&bundle), "-o", arg(&out)];
    let (output, cancelled) = run_cancelled(&session, &args).await;
    assert_ended_cancelled(&output, &cancelled);
    assert_eq!((&cancelled["class"], &cancelled["slice_count"]), (&"train".into(), &3.into()), "{cancelled}");
    assert_eq!(cancelled["escrow_micros"], 1_800, "3 epochs × 3e9 fuel at 200 micro-USD per 10^9");
    let progress = stderr(&output);
    assert!(progress.contains("created a new requester key"), "{progress}");
    assert!(progress.contains("uploaded 2 blob(s), 2 new"), "{progress}");
    assert!(progress.contains("submitted: 3 slice(s) × 1; waiting for it"), "{progress}");

    let (verified, manifest) = verified_manifest(&session, &bundle).await;
    assert_eq!(verified["bundle_hash"], cancelled["bundle_hash"], "the kept bundle is the one submitted");
    assert_eq!((&manifest["class"], &manifest["entry"]), (&"train".into(), &"train.wasm".into()));
    assert_eq!(
        manifest["args"],
        serde_json::json!(["--data", "/in/mnist.csv", "--seed", "1", "--hidden", "64", "--lr", "0.01"])
    );
    assert_eq!(args_of(&manifest)[2], ["--epoch", "3", "--resume", "/in/prev/ckpt.bin"]);
    assert_eq!(manifest["inputs"]["mnist.csv"], Digest::of("0,0,7\n").to_hex());
    assert!(!out.exists(), "nothing is downloaded from a job that is not done");
    assert_eq!(session.balance().await, 1_000_000, "the escrow came back");
}

#[tokio::test]
async fn image_submits_a_seed_and_count_per_slice_at_the_image_price() {
    let session = Session::start().await;
    let pipeline_dir = session.path("terrain");
    std::fs::create_dir_all(&pipeline_dir).unwrap();
    std::fs::write(pipeline_dir.join("pipeline.json"), "{\"kind\": \"consistency\"}").unwrap();
    std::fs::write(pipeline_dir.join("terrain.onnx"), "onnx").unwrap();
    let pipeline = pipeline_dir.join("pipeline.json");
    let (bundle, out) = (session.path("image-bundle"), session.path("out"));
    let args = [
        "image",
        arg(&pipeline),
        "--images",
        "5",
        "--per-slice",
        "2",
        "--seed",
        "7",
        "--prompt",
        "a red hill",
        "--redundancy",
        "2",
        "--bundle-dir",
        arg(&bundle),
        "-o",
        arg(&out),
    ];
    let (output, cancelled) = run_cancelled(&session, &args).await;
    assert_ended_cancelled(&output, &cancelled);
    assert_eq!((&cancelled["class"], &cancelled["redundancy"]), (&"image".into(), &2.into()), "{cancelled}");
    assert_eq!(cancelled["price_micros_per_gfuel"], 2_000, "the grid's image price");
    assert_eq!(cancelled["escrow_micros"], 24_000, "3 slices × 2 nodes × 2 images at 2,000 micro-USD each");
    let (verified, manifest) = verified_manifest(&session, &bundle).await;
    assert_eq!(verified["bundle_hash"], cancelled["bundle_hash"]);
    assert_eq!((&manifest["entry"], &manifest["engine"]), (&"pipeline.json".into(), &"onnxruntime 1.32.0".into()));
    assert_eq!(manifest["args"], serde_json::json!(["--prompt", "a red hill"]));
    assert_eq!(
        args_of(&manifest),
        [["--seed", "7", "--count", "2"], ["--seed", "8", "--count", "2"], ["--seed", "9", "--count", "1"]]
    );
    let files: Vec<&String> = manifest["files"].as_object().unwrap().keys().collect();
    assert_eq!(files, ["pipeline.json", "terrain.onnx"]);
    assert_eq!(session.balance().await, 1_000_000);
}

#[tokio::test]
async fn render_submits_bands_of_each_frame_at_the_render_price() {
    let session = Session::start().await;
    let scene = session.path("scene.blend");
    std::fs::write(&scene, "BLENDER scene").unwrap();
    let (bundle, out) = (session.path("render-bundle"), session.path("out"));
    let args = [
        "render",
        arg(&scene),
        "--frames",
        "1-2",
        "--resolution",
        "160x120",
        "--bands",
        "2",
        "--samples",
        "8",
        "--bundle-dir",
        arg(&bundle),
        "-o",
        arg(&out),
    ];
    let (output, cancelled) = run_cancelled(&session, &args).await;
    assert_ended_cancelled(&output, &cancelled);
    assert_eq!((&cancelled["class"], &cancelled["slice_count"]), (&"render".into(), &4.into()), "{cancelled}");
    assert_eq!(cancelled["price_micros_per_gfuel"], 20_000, "the grid's render price");
    assert_eq!(cancelled["escrow_micros"], 8, "4 bands of 160×60×8 pixel samples at 20,000 per 10^9, rounded up");
    let (verified, manifest) = verified_manifest(&session, &bundle).await;
    assert_eq!(verified["bundle_hash"], cancelled["bundle_hash"]);
    assert_eq!((&manifest["entry"], &manifest["engine"]), (&"scene.blend".into(), &"blender 3.4.1".into()));
    assert_eq!(manifest["args"], serde_json::json!(["--samples", "8", "--resolution", "160x120"]));
    assert_eq!(args_of(&manifest)[1], ["--frame", "1", "--rows", "60-120"]);
    assert_eq!(args_of(&manifest)[2], ["--frame", "2", "--rows", "0-60"]);
    assert_eq!(session.balance().await, 1_000_000);
}

#[tokio::test]
async fn bad_flags_are_refused_before_a_key_is_made_or_anything_uploaded() {
    let session = Session::start().await;
    let scene = session.path("scene.blend");
    std::fs::write(&scene, "BLENDER scene").unwrap();
    let out = session.path("out");
    let missing = session.path("none.json");
    let refusals: [(&[&str], &str); 4] = [
        (&["render", arg(&scene), "--bands", "2", "-o", arg(&out)], "--bands 2 needs --resolution WxH"),
        (&["render", arg(&scene), "--frames", "3-1", "-o", arg(&out)], "--frames: \"3-1\" runs backwards"),
        (&["image", arg(&missing), "-o", arg(&out)], "none.json: no such pipeline file"),
        (&["train", "--data", arg(&scene), "--lr", "11", "-o", arg(&out)], "--lr must be above 0 and at most 10"),
    ];
    for (args, message) in refusals {
        let output = session.run(args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let error = stderr(&output);
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(error.starts_with("error: ") && error.contains(message), "{args:?}: {error}");
    }
    let usage = session.run(&["render", arg(&scene), "--resolution", "160", "-o", arg(&out)]).await;
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("expected WIDTHxHEIGHT"), "{}", stderr(&usage));
    assert!(!session.key_file().exists(), "no requester key was made");
    assert!(!out.exists());
    assert_eq!(session.json(&["jobs", "list"]).await["data"], serde_json::json!([]));

    // A price cap below the grid's: the grid refuses the job, and nothing is held.
    let capped = ["render", arg(&scene), "--max-price", "100", "-o", arg(&out), "--json"];
    let output = session.run(&capped).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let error = one_json(&output)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("20000") && error.contains("100"), "{error}");
    assert_eq!(session.balance().await, 1_000_000);
}

#[tokio::test]
async fn help_teaches_each_class_with_an_example() {
    let session = Session::start().await;
    for (command, teaches) in [("train", "/in/prev"), ("image", "pipeline.json"), ("render", "--bands")] {
        let output = session.run(&[command, "--help"]).await;
        assert!(output.status.success(), "{command}");
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(help.contains(&format!("Example:\n  sgl-cloud {command} ")), "{help}");
        assert!(help.contains(teaches), "{command}: {help}");
    }
}
