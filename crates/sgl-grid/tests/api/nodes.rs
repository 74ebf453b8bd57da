//! The node API: registration gates, heartbeats and keybinds, token rotation, attestation,
//! maintenance, prices and status.

use axum::http::StatusCode;
use serde_json::json;
use sgl_grid::admin::AdminCommand;
use sgl_protocol::api::node::HardwareReport;
use sgl_protocol::attestation::{report_hash, sign_challenge};
use sgl_protocol::identity::NodeIdentity;

use crate::harness::{Grid, assert_error, register_body};

#[tokio::test]
async fn registration_needs_stake_and_a_single_use_wallet_bound_code() {
    let grid = Grid::new().await;
    let identity = NodeIdentity::from_seed(&[1; 32]);
    let code = grid.code("0xop").await;
    // No stake yet: refused, and the code is not used up.
    let refused =
        grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, "0xop", Some(&code)))).await;
    assert_error(refused.clone(), StatusCode::FORBIDDEN, "invalid_request");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains("50000 SGL"), "{}", refused.1);
    grid.stake("0xop", 49_999).await;
    assert_eq!(
        grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, "0xop", Some(&code)))).await.0,
        StatusCode::FORBIDDEN
    );
    grid.stake("0xop", 1).await;
    // Without a code, or with another wallet's code: refused.
    let no_code = grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, "0xop", None))).await;
    assert_error(no_code, StatusCode::FORBIDDEN, "invalid_request");
    grid.stake("0xother", 50_000).await;
    let wrong_wallet =
        grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, "0xother", Some(&code)))).await;
    assert!(wrong_wallet.1["error"]["message"].as_str().unwrap().contains("another wallet"), "{}", wrong_wallet.1);
    // The right wallet registers once.
    let (status, body) =
        grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, "0xop", Some(&code)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted_envelope_versions"], json!(["v1", "v2"]));
    assert!(body["node_id"].as_str().unwrap().parse::<sgl_protocol::ids::NodeId>().is_ok());
    let again =
        grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&identity, "0xop", Some(&code)))).await;
    assert_error(again, StatusCode::CONFLICT, "conflict");
    let other = NodeIdentity::from_seed(&[2; 32]);
    let reused = grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&other, "0xop", Some(&code)))).await;
    assert!(reused.1["error"]["message"].as_str().unwrap().contains("already used"), "{}", reused.1);
}

#[tokio::test]
async fn bad_registration_bodies_get_clear_errors_and_change_nothing() {
    let grid = Grid::new().await;
    grid.stake("0xop", 50_000).await;
    let identity = NodeIdentity::from_seed(&[1; 32]);
    let mut bad_key = register_body(&identity, "0xop", Some("x"));
    bad_key["public_key"] = json!("not-a-key");
    let (status, body) = grid.call("POST", "/grid/nodes/register", &[], Some(bad_key)).await;
    assert_eq!((status, body["error"]["param"].as_str()), (StatusCode::BAD_REQUEST, Some("public_key")));
    assert_error(
        grid.call("POST", "/grid/nodes/register", &[], Some(json!("{not json"))).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert_error(
        grid.call("POST", "/grid/nodes/register", &[], Some(json!({"wallet_address": "w"}))).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let no_type = grid.call("POST", "/grid/nodes/register", &[], None).await;
    assert_error(no_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request");
    let huge = json!({"wallet_address": "w".repeat(3 * 1024 * 1024)});
    assert_error(
        grid.call("POST", "/grid/nodes/register", &[], Some(huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
    );
    let mut empty_wallet = register_body(&identity, " ", None);
    empty_wallet["wallet_address"] = json!("");
    assert_error(
        grid.call("POST", "/grid/nodes/register", &[], Some(empty_wallet)).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    assert!(grid.store.list_nodes().await.unwrap().is_empty());
}

#[tokio::test]
async fn heartbeats_publish_verified_keys_and_live_models() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 3).await;
    // A wrong token, or a token used with another node's id, is refused.
    let id = node.node_id.to_string();
    let wrong = grid
        .call(
            "POST",
            "/grid/nodes/heartbeat",
            &[("X-Node-Auth", "nope"), ("X-Node-Id", &id)],
            Some(node.heartbeat_body(&["m"])),
        )
        .await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_node_token");
    let other_id = sgl_protocol::ids::NodeId::random().to_string();
    let mismatch = grid
        .call(
            "POST",
            "/grid/nodes/heartbeat",
            &[("X-Node-Auth", &node.token), ("X-Node-Id", &other_id)],
            Some(node.heartbeat_body(&["m"])),
        )
        .await;
    assert_eq!(mismatch.0, StatusCode::FORBIDDEN);
    // A keybind signed by another key is refused and nothing is published.
    let mut forged = node.heartbeat_body(&["gemma"]);
    let impostor = NodeIdentity::from_seed(&[9; 32]);
    let key = node.identity.encryption_secret().public_key();
    forged["encryption_public_key_signature"] =
        json!(sgl_protocol::keybind::sign_keybind(&impostor, &node.node_id, &key, 1));
    assert_error(node.heartbeat(&grid, forged).await, StatusCode::BAD_REQUEST, "invalid_signature");
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"], json!([]));
    // A good heartbeat makes the model visible.
    let beat = node.beat(&grid, &["gemma"]).await;
    assert_eq!((beat["status"].as_str(), beat["pending_jobs"].clone()), (Some("ok"), json!([])));
    assert_eq!(beat["accepted_envelope_versions"], json!(["v1", "v2"]));
    // Only the exact keybind already verified skips verification: a forged one is still refused.
    let mut forged = node.heartbeat_body(&["gemma"]);
    forged["encryption_public_key_signature"] =
        json!(sgl_protocol::keybind::sign_keybind(&impostor, &node.node_id, &key, 1));
    assert_error(node.heartbeat(&grid, forged).await, StatusCode::BAD_REQUEST, "invalid_signature");
    let models = grid.call("GET", "/v1/models", &[], None).await.1;
    assert_eq!(
        models,
        json!({"object": "list", "data": [{"id": "gemma", "object": "model", "created": 0, "owned_by": "sgl-grid"}]})
    );
    // An empty model list (engine unhealthy) withdraws it; silence beyond the timeout too.
    node.beat(&grid, &[]).await;
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"], json!([]));
    node.beat(&grid, &["gemma"]).await;
    grid.advance_ms(16_000);
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"], json!([]));
}

#[tokio::test]
async fn tokens_rotate_in_their_last_quarter_and_overlap() {
    let grid = Grid::new().await;
    let mut node = grid.node("0xop", 4).await;
    assert!(node.beat(&grid, &["m"]).await.get("new_auth_token").is_none());
    grid.advance_ms(19 * 3600 * 1000);
    let beat = node.beat(&grid, &["m"]).await;
    let new_token = beat["new_auth_token"].as_str().expect("rotated").to_owned();
    assert!(beat["token_expires_at"].as_str().unwrap().ends_with('Z'));
    // The node missed that answer and keeps using its token: it still works, and the grid
    // issues a replacement for the token the node never received.
    let again = node.beat(&grid, &["m"]).await;
    let reissued = again["new_auth_token"].as_str().expect("reissued").to_owned();
    assert_ne!(reissued, new_token);
    let old_token = std::mem::replace(&mut node.token, new_token);
    assert_eq!(node.heartbeat(&grid, node.heartbeat_body(&["m"])).await.0, StatusCode::UNAUTHORIZED, "replaced");
    node.token = reissued;
    assert!(node.beat(&grid, &["m"]).await.get("new_auth_token").is_none(), "settled on the new token");
    // Once the new token is in use, the old one no longer works.
    node.token = old_token;
    assert_eq!(node.heartbeat(&grid, node.heartbeat_body(&["m"])).await.0, StatusCode::UNAUTHORIZED);
}

fn report(binary_hash: &str) -> HardwareReport {
    let mut report = HardwareReport {
        tee_type: "linux_se".into(),
        chip_model: "EPYC".into(),
        cpu_cores: 2,
        memory_gb: 24.0,
        kernel_version: "6.1".into(),
        binary_hash: binary_hash.into(),
        ..HardwareReport::default()
    };
    report.report_hash = report_hash(&report);
    report
}

#[tokio::test]
async fn attestation_checks_signature_report_hash_and_allowlist_once_per_challenge() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 5).await;
    let id = node.node_id.to_string();
    let base = format!("/grid/nodes/{id}");
    let attest = |signature: String, report: HardwareReport| json!({"signature": signature, "encryption_public_key": "k", "hardware_report": report});
    let no_challenge =
        node.call(&grid, "POST", &format!("{base}/verify-attestation"), Some(attest("s".into(), report("x")))).await;
    assert_eq!(no_challenge.0, StatusCode::BAD_REQUEST);

    let challenge =
        node.call(&grid, "POST", &format!("{base}/challenge"), None).await.1["challenge"].as_str().unwrap().to_owned();
    let signature = sign_challenge(&node.identity, &challenge);
    let (_, ok) = node
        .call(&grid, "POST", &format!("{base}/verify-attestation"), Some(attest(signature.clone(), report("ab"))))
        .await;
    assert_eq!(ok, json!({"verified": true, "status": "attested"}));
    let replay =
        node.call(&grid, "POST", &format!("{base}/verify-attestation"), Some(attest(signature, report("ab")))).await;
    assert_eq!(replay.0, StatusCode::BAD_REQUEST, "a challenge is single-use");

    let challenge =
        node.call(&grid, "POST", &format!("{base}/challenge"), None).await.1["challenge"].as_str().unwrap().to_owned();
    let forged = sign_challenge(&NodeIdentity::from_seed(&[6; 32]), &challenge);
    let (_, bad) =
        node.call(&grid, "POST", &format!("{base}/verify-attestation"), Some(attest(forged, report("ab")))).await;
    assert_eq!(bad["verified"], false);

    grid.admin(AdminCommand::AllowBinary { sha256: "cd".repeat(32) }).await;
    let challenge =
        node.call(&grid, "POST", &format!("{base}/challenge"), None).await.1["challenge"].as_str().unwrap().to_owned();
    let signature = sign_challenge(&node.identity, &challenge);
    let (_, unknown) = node
        .call(&grid, "POST", &format!("{base}/verify-attestation"), Some(attest(signature, report(&"ab".repeat(32)))))
        .await;
    assert_eq!(unknown, json!({"verified": false, "status": "Node binary is not a recognized SGL build"}));

    let challenge =
        node.call(&grid, "POST", &format!("{base}/challenge"), None).await.1["challenge"].as_str().unwrap().to_owned();
    let mut tampered = report(&"cd".repeat(32));
    tampered.kernel_version = "6.2".into();
    let signature = sign_challenge(&node.identity, &challenge);
    let (_, mismatch) =
        node.call(&grid, "POST", &format!("{base}/verify-attestation"), Some(attest(signature, tampered))).await;
    assert_eq!(mismatch["status"], "report_hash does not match the hardware report");
}

#[tokio::test]
async fn maintenance_status_and_cross_node_access() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 7).await;
    let other = grid.node("0xop2", 8).await;
    node.beat(&grid, &["m"]).await;
    let path = format!("/grid/nodes/{}", node.node_id);
    assert_eq!(node.call(&grid, "GET", &path, None).await.1["status"], "active");
    assert_eq!(other.call(&grid, "GET", &path, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        other.call(&grid, "POST", &format!("{path}/status"), Some(json!({"off_grid": true}))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(grid.call("GET", &path, &[], None).await.0, StatusCode::UNAUTHORIZED);
    node.call(&grid, "POST", &format!("{path}/status"), Some(json!({"off_grid": true}))).await;
    let status = node.call(&grid, "GET", &path, None).await.1;
    assert_eq!((status["status"].as_str(), status["jobs_completed"].as_u64()), (Some("off_grid"), Some(0)));
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"], json!([]));
    node.call(&grid, "POST", &format!("{path}/status"), Some(json!({"off_grid": false}))).await;
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"][0]["id"], "m");
}

#[tokio::test]
async fn prices_stay_in_the_band_and_reset() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 9).await;
    node.beat(&grid, &["m"]).await;
    let path = format!("/grid/nodes/{}/prices", node.node_id);
    let (_, public) = grid.call("GET", &path, &[], None).await;
    assert_eq!(public["prices"][0]["effective"], json!({"inputPerM": 0.1, "outputPerM": 0.4}));
    assert_eq!(public["prices"][0]["custom"], json!(null));
    assert_eq!(public["prices"][0]["band"]["max"], json!({"inputPerM": 0.5, "outputPerM": 2.0}));
    let too_cheap =
        node.call(&grid, "POST", &path, Some(json!({"model": "m", "input_per_m": 0.01, "output_per_m": 0.4}))).await;
    assert_error(too_cheap, StatusCode::BAD_REQUEST, "invalid_request");
    let set =
        node.call(&grid, "POST", &path, Some(json!({"model": "m", "input_per_m": 0.05, "output_per_m": 0.3}))).await;
    assert_eq!(set.0, StatusCode::OK);
    assert_eq!(
        grid.call("GET", &path, &[], None).await.1["prices"][0]["effective"],
        json!({"inputPerM": 0.05, "outputPerM": 0.3})
    );
    let providers = grid.call("GET", "/v1/providers?model=m", &[], None).await.1;
    assert_eq!(providers["providers"][0]["is_custom"], true);
    node.call(&grid, "POST", &path, Some(json!({"model": "m", "reset": true}))).await;
    assert_eq!(grid.call("GET", &path, &[], None).await.1["prices"][0]["custom"], json!(null));
    let ambiguous = node.call(&grid, "POST", &path, Some(json!({"model": "m", "reset": false}))).await;
    assert_eq!(ambiguous.0, StatusCode::BAD_REQUEST);
    assert_error(
        grid.call("GET", "/grid/nodes/00000000-0000-0000-0000-000000000000/prices", &[], None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn allowlisted_binaries_gate_dispatch_on_every_heartbeat() {
    let grid = Grid::new().await;
    let node = grid.node("0xop", 10).await;
    grid.admin(AdminCommand::AllowBinary { sha256: "cd".repeat(32) }).await;
    node.beat(&grid, &["m"]).await;
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"], json!([]), "binary ab… is not allowed");
    grid.admin(AdminCommand::AllowBinary { sha256: "AB".repeat(32) }).await;
    node.beat(&grid, &["m"]).await;
    assert_eq!(grid.call("GET", "/v1/models", &[], None).await.1["data"][0]["id"], "m");
    assert_eq!(grid.call("GET", "/grid/allowed-binaries", &[], None).await.1["hashes"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn device_login_is_approved_by_a_wallet_signature_and_yields_a_code() {
    let grid = Grid::new().await;
    let (status, start) =
        grid.call("POST", "/grid/auth/device/start", &[("host", "grid.test:8080")], Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let user_code = start["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9);
    assert_eq!(start["verify_url"], format!("http://grid.test:8080/grid/auth/device/verify?user_code={user_code}"));
    assert_eq!((start["interval"].as_u64(), start["expires_in"].as_u64()), (Some(3), Some(600)));
    let poll = json!({"device_code": start["device_code"]});
    assert_eq!(
        grid.call("POST", "/grid/auth/device/poll", &[], Some(poll.clone())).await.1,
        json!({"status": "pending"})
    );

    let wallet = NodeIdentity::from_seed(&[42; 32]);
    let wallet_address = wallet.public_key().to_b58();
    let message = sgl_protocol::api::node::device_approval_message(&user_code, &wallet_address);
    let stranger = NodeIdentity::from_seed(&[43; 32]).sign_b58(message.as_bytes());
    let forged = json!({"user_code": user_code, "wallet_address": wallet_address, "signature": stranger});
    assert_error(
        grid.call("POST", "/grid/auth/device/approve", &[], Some(forged)).await,
        StatusCode::BAD_REQUEST,
        "invalid_signature",
    );
    let approval = json!({"user_code": user_code, "wallet_address": wallet_address, "signature": wallet.sign_b58(message.as_bytes())});
    assert_eq!(grid.call("POST", "/grid/auth/device/approve", &[], Some(approval.clone())).await.0, StatusCode::OK);
    assert_eq!(grid.call("POST", "/grid/auth/device/approve", &[], Some(approval)).await.0, StatusCode::CONFLICT);

    let (_, approved) = grid.call("POST", "/grid/auth/device/poll", &[], Some(poll)).await;
    assert_eq!(
        (approved["status"].as_str(), approved["wallet_address"].as_str()),
        (Some("approved"), Some(wallet_address.as_str()))
    );
    let code = approved["registration_code"].as_str().unwrap();
    grid.stake(&wallet_address, 50_000).await;
    let node = NodeIdentity::from_seed(&[44; 32]);
    let (status, body) =
        grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&node, &wallet_address, Some(code)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let unknown = grid.call("POST", "/grid/auth/device/poll", &[], Some(json!({"device_code": "nope"}))).await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found");
    let (_, page) = grid.call("GET", &format!("/grid/auth/device/verify?user_code={user_code}"), &[], None).await;
    assert!(page.as_str().unwrap().contains(&user_code));
}

#[tokio::test]
async fn the_grid_operator_can_approve_a_device_login() {
    let grid = Grid::new().await;
    let (_, start) = grid.call("POST", "/grid/auth/device/start", &[], Some(json!({}))).await;
    let user_code = start["user_code"].as_str().unwrap().to_lowercase();
    let approved = grid.admin(AdminCommand::ApproveDevice { user_code, wallet: "0xop".into() }).await;
    assert_eq!(approved["approved"], true);
    let (_, polled) =
        grid.call("POST", "/grid/auth/device/poll", &[], Some(json!({"device_code": start["device_code"]}))).await;
    assert_eq!(polled["wallet_address"], "0xop");
    grid.advance_ms(601_000);
    let (_, expired) =
        grid.call("POST", "/grid/auth/device/poll", &[], Some(json!({"device_code": start["device_code"]}))).await;
    assert_eq!(expired, json!({"status": "expired"}));
}

#[tokio::test]
async fn a_node_cannot_touch_another_nodes_jobs() {
    let grid = Grid::new().await;
    let owner = grid.node("0xa", 50).await;
    let other = grid.node("0xb", 51).await;
    owner.beat(&grid, &["m"]).await;
    let (_, api_key) = grid.api_key(1.0).await;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4});
    let caller = grid.spawn_call("/v1/chat/completions", &api_key, body);
    let job = owner.open(&owner.wait_job(&grid, "m").await);
    for action in ["complete", "chunk", "fail"] {
        let (status, _) = other
            .call(
                &grid,
                "POST",
                &format!("/grid/jobs/{}/{action}", job.id),
                Some(json!({"reason": "x", "error": true})),
            )
            .await;
        assert!(status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST, "{action}: {status}");
    }
    let (status, _) =
        other.call(&grid, "POST", &format!("/grid/jobs/{}/fail", job.id), Some(json!({"reason": "x"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        other.call(&grid, "POST", "/grid/jobs/not-a-job/fail", Some(json!({"reason": "x"}))).await.0,
        StatusCode::NOT_FOUND
    );
    owner.complete(&grid, &job, "mine", sgl_protocol::api::inference::Usage::new(1, 1)).await;
    assert_eq!(caller.await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn only_nodes_attested_with_the_binary_they_run_are_listed_and_served() {
    let grid = Grid::new().await;
    let (_, api_key) = grid.api_key(1.0).await;
    let node = grid.unattested_node("0xop", 31).await;
    node.beat(&grid, &["m"]).await;
    let status_path = format!("/grid/nodes/{}", node.node_id);
    let models = || async { grid.call("GET", "/v1/models", &[], None).await.1["data"].clone() };
    let reserve =
        || async { grid.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "m"}))).await.0 };
    assert_eq!(models().await, json!([]), "an unattested node's models are not listed");
    assert_eq!(reserve().await, StatusCode::NOT_FOUND);
    let (_, status) = node.call(&grid, "GET", &status_path, None).await;
    assert_eq!(status["not_serving"], json!(["not_attested"]), "{status}");

    node.attest(&grid, crate::harness::SCRIPTED_BINARY).await;
    assert_eq!(models().await[0]["id"], "m");
    assert_eq!(reserve().await, StatusCode::OK);
    assert_eq!(node.call(&grid, "GET", &status_path, None).await.1["not_serving"], json!([]));

    // The node now reports another binary than the one attested: no work until it attests again.
    let mut other = node.heartbeat_body(&["m"]);
    other["binary_hash"] = json!("cd".repeat(32));
    assert_eq!(node.heartbeat(&grid, other).await.0, StatusCode::OK);
    assert_eq!(models().await, json!([]));
    assert_eq!(reserve().await, StatusCode::NOT_FOUND);
    let (_, status) = node.call(&grid, "GET", &status_path, None).await;
    assert_eq!(status["not_serving"], json!(["binary_changed"]), "{status}");
    node.attest(&grid, &"cd".repeat(32)).await;
    assert_eq!(models().await[0]["id"], "m");
}

#[tokio::test]
async fn a_wallet_can_consent_to_a_registration_with_its_own_signature() {
    use sgl_protocol::api::node::registration_message;
    let grid = Grid::new().await;
    let key = sgl_protocol::payout::PayoutKey::generate(&mut rand_core::OsRng);
    let wallet = key.address().to_checksummed();
    grid.stake(&wallet, 50_000).await;
    let now_secs = u64::try_from(crate::harness::START_MS / 1000).unwrap();
    let identity = NodeIdentity::from_seed(&[21; 32]);
    let proof = |identity: &NodeIdentity, signed_at: u64, signer: &sgl_protocol::payout::PayoutKey| {
        let message = registration_message(&wallet, &identity.public_key().to_b58(), signed_at);
        json!({"signed_at": signed_at, "signature": sgl_protocol::wallet::personal_sign(signer, message.as_bytes())})
    };
    let with_proof = |identity: &NodeIdentity, proof: serde_json::Value| {
        let mut body = register_body(identity, &wallet, None);
        body["wallet_proof"] = proof;
        body
    };
    // Another key's signature, or one signed long ago, proves nothing.
    let stranger = sgl_protocol::payout::PayoutKey::generate(&mut rand_core::OsRng);
    let forged = with_proof(&identity, proof(&identity, now_secs, &stranger));
    let (status, body) = grid.call("POST", "/grid/nodes/register", &[], Some(forged)).await;
    assert_eq!((status, &body["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("wallet_proof")), "{body}");
    let stale = with_proof(&identity, proof(&identity, now_secs - 3_600, &key));
    assert_eq!(grid.call("POST", "/grid/nodes/register", &[], Some(stale)).await.0, StatusCode::BAD_REQUEST);
    // A proof for one node's key does not register another.
    let other = NodeIdentity::from_seed(&[22; 32]);
    let moved = with_proof(&other, proof(&identity, now_secs, &key));
    assert_eq!(grid.call("POST", "/grid/nodes/register", &[], Some(moved)).await.0, StatusCode::BAD_REQUEST);
    // The wallet's own, fresh signature for this key registers it.
    let good = with_proof(&identity, proof(&identity, now_secs, &key));
    let (status, body) = grid.call("POST", "/grid/nodes/register", &[], Some(good.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(grid.call("POST", "/grid/nodes/register", &[], Some(good)).await.0, StatusCode::CONFLICT, "once");
    // Without code or proof the refusal says what the operator can do.
    let bare = grid.call("POST", "/grid/nodes/register", &[], Some(register_body(&other, &wallet, None))).await;
    assert!(bare.1["error"]["message"].as_str().unwrap().contains("--wallet-key"), "{}", bare.1);
}
