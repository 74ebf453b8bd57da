//! `sgl-cloud chat` and discovery with a real node and the real model: sealed `--json` (one
//! object, verified, signed usage, the node's id), plain `--json`, streamed text with the
//! verified footer, `--no-stream`, and a prompt piped on stdin.

use crate::{api_key, cloud, grid, model_path, node_binary, one_json, start_node, stderr};

const MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_with_a_real_node_is_sealed_verified_and_printed() {
    let (Some(model), Some(binary)) = (model_path(), node_binary()) else { return };
    let grid = grid().await;
    let base = tempfile::tempdir().unwrap();
    let node = start_node(&grid, &binary, &model, &base.path().join("node")).await;
    let key = api_key(&grid, 5.0).await;
    let url = grid.url.as_str();

    let output = cloud(url, None, &["models", "--json"], None).await;
    assert_eq!(one_json(&output)["data"][0]["id"], "gemma");
    let output = cloud(url, None, &["providers", "--json"], None).await;
    let providers = one_json(&output);
    assert_eq!(providers["count"], 1, "{providers}");
    let node_id = providers["providers"][0]["node_id"].as_str().unwrap().to_owned();

    // Sealed (the default) and streamed (the default), as one JSON object.
    let prompt = ["chat", "--json", "--model", "gemma", "--max-tokens", "6", "--temperature", "0"];
    let output = cloud(url, Some(&key), &[&prompt[..], &["The capital of France is"]].concat(), None).await;
    assert!(output.status.success(), "{}\n{}", stderr(&output), node.read_log());
    let sealed = one_json(&output);
    assert_eq!(sealed["verified"], true, "{sealed}");
    assert_eq!(sealed["node_id"], node_id.as_str());
    assert_eq!(sealed["model_sha256"], MODEL_SHA256);
    assert!(sealed["job_id"].as_str().is_some_and(|j| !j.is_empty()));
    let completion_tokens = sealed["usage"]["completion_tokens"].as_u64().unwrap();
    assert!((1..=6).contains(&completion_tokens), "{sealed}");
    assert!(sealed["usage"]["prompt_tokens"].as_u64().unwrap() > 5);
    assert!(!sealed["content"].as_str().unwrap().is_empty());

    // Sealed without streaming: the same greedy answer.
    let output =
        cloud(url, Some(&key), &[&prompt[..], &["--no-stream", "The capital of France is"]].concat(), None).await;
    let whole = one_json(&output);
    assert_eq!((whole["verified"].as_bool(), &whole["content"]), (Some(true), &sealed["content"]));

    // Plain: not sealed, so nothing is verified, but the answer and usage arrive.
    let output = cloud(url, Some(&key), &[&prompt[..], &["--plain", "The capital of France is"]].concat(), None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let plain = one_json(&output);
    assert_eq!(plain["verified"], false);
    assert_eq!(plain["content"], sealed["content"], "the same node, greedy");
    assert_eq!(plain["usage"]["prompt_tokens"], sealed["usage"]["prompt_tokens"]);

    // Text mode streams the tokens to stdout and ends with the footer on stderr.
    let args = ["chat", "--max-tokens", "16", "--temperature", "0", "Count: one, two, three,"];
    let output = cloud(url, Some(&key), &args, None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).trim().is_empty());
    let footer = stderr(&output);
    assert!(
        footer.contains("verified") && footer.contains(&node_id[..8]) && footer.contains(&MODEL_SHA256[..12]),
        "{footer}"
    );

    // A prompt piped on stdin, plain streaming.
    let args = ["chat", "--plain", "--max-tokens", "6", "--temperature", "0"];
    let output = cloud(url, Some(&key), &args, Some("The capital of France is\n")).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(stdout.trim(), sealed["content"].as_str().unwrap().trim(), "{stdout}");
    assert!(stderr(&output).contains("not verified"));
    drop(node);
}
