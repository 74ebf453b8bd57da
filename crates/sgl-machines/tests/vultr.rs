//! The Vultr client against the Vultr double over real HTTP: paging, create with and without a
//! key, the one-time password, status mapping, upgrade-only resize, idempotent delete, 429 and
//! 5xx handling, and the token in every call but never in a debug print.

use std::time::{Duration, Instant};

use serde_json::json;
use sgl_machines::backend::{BackendError, BackendPlan, CreateSpec, MachineBackend, ResizeSpec, Status};
use sgl_machines::retry::RetryPolicy;
use sgl_machines::secret::ProviderToken;
use sgl_machines::vultr::{VultrClient, VultrConfig};
use sgl_provider_doubles::{Op, VultrDouble};

const TOKEN: &str = "vultr-secret-token-0123";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl renter@laptop";

fn client_with(double: &VultrDouble, base: Duration) -> VultrClient {
    let mut config = VultrConfig::new(ProviderToken::new(TOKEN.into()).unwrap());
    config.api_url = double.base_url();
    config.retry = RetryPolicy { base, ..RetryPolicy::default() };
    VultrClient::new(config).unwrap()
}

async fn start() -> (VultrDouble, VultrClient) {
    let double = VultrDouble::start().await.unwrap();
    let client = client_with(&double, Duration::from_millis(5));
    (double, client)
}

fn plan(id: &str) -> BackendPlan {
    BackendPlan {
        id: id.into(),
        vcpus: 1,
        memory_mb: 1024,
        disk_gb: 25,
        gpu: None,
        monthly_micros: 5_000_000,
        regions: vec!["ewr".into()],
    }
}

fn spec(machine_id: &str, key: Option<&str>) -> CreateSpec {
    CreateSpec {
        machine_id: machine_id.into(),
        plan: plan("vc2-1c-1gb"),
        region: "ewr".into(),
        os_id: None,
        label: Some("my box".into()),
        ssh_public_key: key.map(str::to_owned),
    }
}

fn count(double: &VultrDouble, method: &str, path_start: &str) -> usize {
    double.calls().iter().filter(|c| c.method == method && c.path.starts_with(path_start)).count()
}

#[tokio::test]
async fn plans_follow_the_cursor_and_keep_exact_prices() {
    let (double, client) = start().await;
    double.set_page_size(3);
    let plans = client.plans().await.unwrap();
    let ids: Vec<_> = plans.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["vc2-1c-0.5gb", "vc2-1c-1gb", "vc2-1c-2gb", "vc2-2c-4gb", "vc2-4c-8gb", "vhf-8c-32gb", "vcg-a100-1c-6g-4vram"]
    );
    let paths: Vec<_> = double.calls().into_iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        ["/v2/plans?per_page=500", "/v2/plans?per_page=500&cursor=at-3", "/v2/plans?per_page=500&cursor=at-6"]
    );
    let by_id = |id: &str| plans.iter().find(|p| p.id == id).unwrap();
    assert_eq!(by_id("vc2-1c-0.5gb").monthly_micros, 2_500_000);
    let documented = by_id("vhf-8c-32gb");
    assert_eq!((documented.monthly_micros, documented.vcpus, documented.memory_mb), (192_000_000, 8, 32_768));
    assert_eq!(documented.regions, ["sea"]);
    let gpu = by_id("vcg-a100-1c-6g-4vram");
    assert_eq!(gpu.monthly_micros, 90_500_000);
    let card = gpu.gpu.as_ref().unwrap();
    assert_eq!((card.model.as_str(), card.vram_gb), ("NVIDIA_A100", 4));

    let regions = client.regions().await.unwrap();
    let regions: Vec<_> = regions.iter().map(|r| (r.id.as_str(), r.city.as_str(), r.country.as_str())).collect();
    assert_eq!(regions, [("ams", "Amsterdam", "NL"), ("ewr", "New Jersey", "US")]);
}

#[tokio::test]
async fn a_create_with_a_key_registers_it_tags_the_instance_and_deletes_the_key() {
    let (double, client) = start().await;
    let created = client.create(&spec("vm_test1", Some(KEY))).await.unwrap();
    assert!(created.password.is_none(), "a machine with a key gets no password");

    let order: Vec<_> = double.calls().into_iter().map(|c| (c.method, c.path)).collect();
    assert_eq!(order[0], ("POST".into(), "/v2/ssh-keys".into()));
    assert_eq!(order[1], ("POST".into(), "/v2/instances".into()));
    assert_eq!(order[2].0, "DELETE");
    assert!(order[2].1.starts_with("/v2/ssh-keys/"));
    assert!(double.ssh_keys().is_empty(), "the renter's key is not left in the operator's account");

    let calls = double.calls();
    let key_body = calls[0].body.clone().unwrap();
    assert_eq!(key_body, json!({"name": "sgl-vm_test1", "ssh_key": KEY}));
    let key_id = calls[0].reply.as_ref().unwrap()["ssh_key"]["id"].as_str().unwrap().to_owned();
    let body = calls[1].body.clone().unwrap();
    assert_eq!(body["sshkey_id"], json!([key_id]));
    assert_eq!(body["tags"], json!(["sgl-machine:vm_test1"]));
    assert_eq!(body["activation_email"], false);
    assert_eq!(
        (&body["hostname"], &body["label"], &body["os_id"]),
        (&json!("vm-test1"), &json!("my box"), &json!(2136))
    );

    let instances = double.instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].id, created.provider_id);
    assert_eq!(instances[0].tags, ["sgl-machine:vm_test1"]);
}

#[tokio::test]
async fn without_a_key_the_password_comes_from_the_create_answer_only() {
    let (double, client) = start().await;
    let created = client.create(&spec("vm_pw", None)).await.unwrap();
    let password = created.password.expect("a keyless Vultr machine has a root password");
    assert_eq!(Some(password.expose().to_owned()), double.issued_password(&created.provider_id));
    assert!(!format!("{password:?}").contains(password.expose()));
    assert_eq!(count(&double, "POST", "/v2/ssh-keys"), 0);

    for _ in 0..3 {
        client.status(&created.provider_id).await.unwrap();
    }
    let calls = double.calls();
    let later = &calls[1..];
    assert_eq!(later.len(), 3);
    for call in later {
        let reply = call.reply.as_ref().unwrap().to_string();
        assert!(!reply.contains(password.expose()), "a later read must not show the password: {reply}");
        assert!(!reply.contains("default_password"));
    }
}

#[tokio::test]
async fn status_is_running_only_when_active_booted_and_addressed() {
    let (double, client) = start().await;
    double.ready_after(2);
    let id = client.create(&spec("vm_status", Some(KEY))).await.unwrap().provider_id;
    assert_eq!(client.status(&id).await.unwrap(), Status::Provisioning);
    assert_eq!(client.status(&id).await.unwrap(), Status::Provisioning);
    assert_eq!(client.status(&id).await.unwrap(), Status::Running { ssh: "192.0.2.123:22".parse().unwrap() });

    double.set_main_ip("127.0.0.1");
    assert_eq!(client.status(&id).await.unwrap(), Status::Running { ssh: "127.0.0.1:22".parse().unwrap() });
    client.stop(&id).await.unwrap();
    assert_eq!(client.status(&id).await.unwrap(), Status::Stopped);
    client.start(&id).await.unwrap();
    assert!(matches!(client.status(&id).await.unwrap(), Status::Running { .. }));
    assert_eq!(count(&double, "POST", &format!("/v2/instances/{id}/halt")), 1);
    assert_eq!(count(&double, "POST", &format!("/v2/instances/{id}/start")), 1);

    assert_eq!(client.status("4f0f12e5-0000-0000-0000-000000000000").await.unwrap(), Status::Gone);
    assert_eq!(client.status("../plans").await.unwrap(), Status::Gone, "an id that cannot be a path segment");
}

#[tokio::test]
async fn resize_goes_up_only() {
    let (double, client) = start().await;
    let id = client.create(&spec("vm_resize", Some(KEY))).await.unwrap().provider_id;
    let up = ResizeSpec { plan: plan("vc2-2c-4gb"), grow_disk: false };
    client.resize(&id, &up).await.unwrap();
    assert_eq!(double.instances()[0].plan, "vc2-2c-4gb");
    let patch = double.calls().into_iter().find(|c| c.method == "PATCH").unwrap();
    assert_eq!(patch.body, Some(json!({"plan": "vc2-2c-4gb"})));

    let down = ResizeSpec { plan: plan("vc2-1c-1gb"), grow_disk: false };
    let refused = client.resize(&id, &down).await.unwrap_err();
    assert!(matches!(refused, BackendError::Unsupported("downgrade")), "{refused:?}");
    assert_eq!(count(&double, "PATCH", "/v2/instances"), 1, "a downgrade is never sent");
    assert_eq!(double.instances()[0].plan, "vc2-2c-4gb");
}

#[tokio::test]
async fn destroy_is_ok_twice_and_leaves_nothing() {
    let (double, client) = start().await;
    let id = client.create(&spec("vm_gone", Some(KEY))).await.unwrap().provider_id;
    assert_eq!(client.leftovers(&id).await.unwrap().len(), 1);
    client.destroy(&id).await.unwrap();
    client.destroy(&id).await.unwrap();
    assert!(client.leftovers(&id).await.unwrap().is_empty());
    assert!(double.instances().is_empty());
    let deletes: Vec<_> =
        double.calls().into_iter().filter(|c| c.method == "DELETE" && c.path.starts_with("/v2/instances")).collect();
    assert_eq!(deletes.iter().map(|c| c.status).collect::<Vec<_>>(), [204, 404]);
}

#[tokio::test]
async fn a_refusal_is_rejected_with_vultrs_message_and_the_key_is_still_deleted() {
    let (double, client) = start().await;
    let mut bad = spec("vm_bad", Some(KEY));
    bad.plan = plan("vc2-99c-1tb");
    let error = client.create(&bad).await.unwrap_err();
    match error {
        BackendError::Rejected { status, message } => {
            assert_eq!((status, message.as_str()), (400, "Invalid plan chosen."))
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(double.ssh_keys().is_empty(), "the key is deleted even when the create failed");
    assert_eq!(count(&double, "POST", "/v2/instances"), 1, "a 4xx is not retried");
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_only_then_unavailable() {
    let (double, client) = start().await;
    let id = client.create(&spec("vm_5xx", Some(KEY))).await.unwrap().provider_id;
    for _ in 0..5 {
        double.fail_next(Op::Get, 503, json!({"error": "Service Unavailable", "status": 503}));
    }
    let error = client.status(&id).await.unwrap_err();
    assert!(matches!(&error, BackendError::Unavailable(m) if m.contains("503")), "{error:?}");
    assert_eq!(count(&double, "GET", "/v2/instances/"), 5, "five tries in all");

    double.fail_next(Op::Get, 500, json!({"error": "Internal Server Error", "status": 500}));
    assert!(matches!(client.status(&id).await.unwrap(), Status::Running { .. }), "one 5xx is retried away");

    double.fail_next(Op::Create, 500, json!({"error": "Internal Server Error", "status": 500}));
    let error = client.create(&spec("vm_once", None)).await.unwrap_err();
    assert!(matches!(error, BackendError::Unavailable(_)), "{error:?}");
    assert_eq!(count(&double, "POST", "/v2/instances"), 2, "a create is never sent twice");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_with_backoff_or_retry_after() {
    let double = VultrDouble::start().await.unwrap();
    let client = client_with(&double, Duration::from_millis(100));

    // No Retry-After: 100 ms, then 200 ms.
    double.rate_limit_next(2, None);
    let begun = Instant::now();
    client.regions().await.unwrap();
    assert!(begun.elapsed() >= Duration::from_millis(300), "{:?}", begun.elapsed());
    assert_eq!(double.calls().iter().map(|c| c.status).collect::<Vec<_>>(), [429, 429, 200]);

    // Retry-After: 1 s is honoured over the 100 ms backoff.
    double.rate_limit_next(1, Some(1));
    let begun = Instant::now();
    client.regions().await.unwrap();
    assert!(begun.elapsed() >= Duration::from_secs(1), "{:?}", begun.elapsed());

    // Five 429s in a row, even for a create, end as RateLimited with nothing made.
    let fast = client_with(&double, Duration::from_millis(1));
    double.rate_limit_next(5, None);
    let before = double.calls().len();
    let error = fast.create(&spec("vm_limited", None)).await.unwrap_err();
    assert!(matches!(error, BackendError::RateLimited), "{error:?}");
    assert_eq!(double.calls().len() - before, 5);
    assert!(double.instances().is_empty());
}

#[tokio::test]
async fn the_token_is_in_every_call_and_never_printed() {
    let (double, client) = start().await;
    let id = client.create(&spec("vm_token", Some(KEY))).await.unwrap().provider_id;
    client.plans().await.unwrap();
    client.status(&id).await.unwrap();
    client.destroy(&id).await.unwrap();
    let calls = double.calls();
    assert!(calls.len() >= 6);
    for call in &calls {
        assert_eq!(call.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()), "{}", call.path);
        assert!(!call.path.contains(TOKEN));
    }
    let printed = format!("{client:?}");
    assert!(!printed.contains(TOKEN), "{printed}");
    assert!(printed.contains("<redacted>"));
}

#[tokio::test]
async fn a_lost_answer_times_out_and_is_retried_for_reads_only() {
    let double = VultrDouble::start().await.unwrap();
    let mut config = VultrConfig::new(ProviderToken::new(TOKEN.into()).unwrap());
    config.api_url = double.base_url();
    config.retry =
        RetryPolicy { base: Duration::from_millis(5), timeout: Duration::from_millis(300), ..RetryPolicy::default() };
    let client = VultrClient::new(config).unwrap();
    let id = client.create(&spec("vm_slow", Some(KEY))).await.unwrap().provider_id;

    double.stall_next(Op::Get, Duration::from_secs(2));
    assert!(matches!(client.status(&id).await.unwrap(), Status::Running { .. }), "the read is tried again");
    assert_eq!(count(&double, "GET", "/v2/instances/"), 2);

    // The provider made the machine but its answer never came: Unavailable, and never sent twice
    // (the grid's tag sgl-machine:{id} lets a later reconcile find such a machine).
    double.stall_next(Op::Create, Duration::from_secs(2));
    let error = client.create(&spec("vm_lost", None)).await.unwrap_err();
    assert!(matches!(&error, BackendError::Unavailable(m) if m.contains("POST /instances timed out")), "{error:?}");
    assert_eq!(count(&double, "POST", "/v2/instances"), 2);
    assert!(double.instances().iter().any(|m| m.tags == ["sgl-machine:vm_lost"]));
}
