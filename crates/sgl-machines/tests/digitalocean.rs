//! The DigitalOcean client against the DigitalOcean double over real HTTP: page paging, create
//! with a key (and refused without one), status mapping, power-off → resize → power-on with
//! action polling, errored actions, idempotent delete, 429 and 5xx handling, and the token in
//! every call but never in a debug print.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sgl_machines::backend::{BackendError, BackendPlan, CreateSpec, MachineBackend, ResizeSpec, Status};
use sgl_machines::digitalocean::{DigitalOceanClient, DigitalOceanConfig};
use sgl_machines::retry::RetryPolicy;
use sgl_machines::secret::ProviderToken;
use sgl_provider_doubles::{DigitalOceanDouble, Op};

const TOKEN: &str = "dop_v1_secret_0123456789";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl renter@laptop";

fn client_with(double: &DigitalOceanDouble, base: Duration) -> DigitalOceanClient {
    let mut config = DigitalOceanConfig::new(ProviderToken::new(TOKEN.into()).unwrap());
    config.api_url = double.base_url();
    config.retry = RetryPolicy { base, ..RetryPolicy::default() };
    config.action_poll = Duration::from_millis(2);
    DigitalOceanClient::new(config).unwrap()
}

async fn start() -> (DigitalOceanDouble, DigitalOceanClient) {
    let double = DigitalOceanDouble::start().await.unwrap();
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
        regions: vec!["do:nyc3".into()],
    }
}

fn spec(machine_id: &str, key: Option<&str>) -> CreateSpec {
    CreateSpec {
        machine_id: machine_id.into(),
        plan: plan("do:s-1vcpu-1gb"),
        region: "do:nyc3".into(),
        os_id: None,
        label: None,
        ssh_public_key: key.map(str::to_owned),
    }
}

/// `(method, path)` of every call after the first `skip`.
fn calls_after(double: &DigitalOceanDouble, skip: usize) -> Vec<(String, String)> {
    double.calls().into_iter().skip(skip).map(|c| (c.method, c.path)).collect()
}

fn action_bodies(double: &DigitalOceanDouble) -> Vec<Value> {
    double
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/actions"))
        .filter_map(|c| c.body)
        .collect()
}

#[tokio::test]
async fn sizes_page_by_number_and_keep_exact_prices() {
    let (double, client) = start().await;
    double.set_page_size(2);
    let plans = client.plans().await.unwrap();
    let ids: Vec<_> = plans.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["do:s-1vcpu-1gb", "do:s-1vcpu-2gb", "do:s-2vcpu-4gb", "do:s-4vcpu-8gb", "do:gpu-h100x1-80gb"]);
    let paths: Vec<_> = double.calls().into_iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        ["/v2/sizes?per_page=200&page=1", "/v2/sizes?per_page=200&page=2", "/v2/sizes?per_page=200&page=3"],
        "the unavailable size on the last page is read and left out"
    );
    let documented = &plans[0];
    assert_eq!((documented.monthly_micros, documented.memory_mb, documented.disk_gb), (5_000_000, 1024, 25));
    assert!(documented.regions.contains(&"do:nyc3".to_owned()));
    let gpu = plans.iter().find(|p| p.id == "do:gpu-h100x1-80gb").unwrap();
    assert_eq!(gpu.monthly_micros, 2_522_160_000);
    let card = gpu.gpu.as_ref().unwrap();
    assert_eq!((card.model.as_str(), card.count, card.vram_gb), ("nvidia_h100", 1, 80));

    let regions = client.regions().await.unwrap();
    let regions: Vec<_> = regions.iter().map(|r| (r.id.as_str(), r.city.as_str(), r.country.as_str())).collect();
    assert_eq!(regions, [("do:nyc3", "New York 3", "US"), ("do:ams3", "Amsterdam 3", "NL")]);
}

#[tokio::test]
async fn a_create_registers_the_key_tags_the_droplet_and_deletes_the_key() {
    let (double, client) = start().await;
    let created = client.create(&spec("vm_do1", Some(KEY))).await.unwrap();
    assert!(created.password.is_none());
    let calls = double.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!((calls[0].method.as_str(), calls[0].path.as_str(), calls[0].status), ("POST", "/v2/account/keys", 201));
    assert_eq!(calls[0].body, Some(json!({"name": "sgl-vm_do1", "public_key": KEY})));
    assert_eq!((calls[1].method.as_str(), calls[1].path.as_str(), calls[1].status), ("POST", "/v2/droplets", 202));
    let key_id = calls[0].reply.as_ref().unwrap()["ssh_key"]["id"].clone();
    assert_eq!(
        calls[1].body,
        Some(json!({
            "name": "vm-do1", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "debian-12-x64",
            "ssh_keys": [key_id], "tags": ["sgl-machine:vm_do1"]
        }))
    );
    assert_eq!(
        (calls[2].method.as_str(), calls[2].path.as_str()),
        ("DELETE", format!("/v2/account/keys/{key_id}").as_str())
    );
    assert!(double.ssh_keys().is_empty());
    let droplets = double.instances();
    assert_eq!(droplets.len(), 1);
    assert_eq!((droplets[0].id.as_str(), droplets[0].status.as_str()), (created.provider_id.as_str(), "new"));
}

#[tokio::test]
async fn a_create_without_a_key_is_refused_before_any_call() {
    let (double, client) = start().await;
    let refused = client.create(&spec("vm_nokey", None)).await.unwrap_err();
    assert!(matches!(refused, BackendError::Unsupported("password")), "{refused:?}");
    assert!(double.calls().is_empty(), "DigitalOcean would e-mail the password to the operator");
}

#[tokio::test]
async fn status_follows_the_droplet_and_its_public_address() {
    let (double, client) = start().await;
    double.ready_after(1);
    let id = client.create(&spec("vm_status", Some(KEY))).await.unwrap().provider_id;
    assert_eq!(client.status(&id).await.unwrap(), Status::Provisioning);
    assert_eq!(client.status(&id).await.unwrap(), Status::Running { ssh: "192.0.2.123:22".parse().unwrap() });
    double.set_main_ip("127.0.0.2");
    client.stop(&id).await.unwrap();
    assert_eq!(client.status(&id).await.unwrap(), Status::Stopped);
    client.start(&id).await.unwrap();
    assert_eq!(client.status(&id).await.unwrap(), Status::Running { ssh: "127.0.0.2:22".parse().unwrap() });
    assert_eq!(action_bodies(&double), [json!({"type": "power_off"}), json!({"type": "power_on"})]);
    assert_eq!(client.status("999").await.unwrap(), Status::Gone);
}

#[tokio::test]
async fn a_resize_powers_off_resizes_and_powers_on_waiting_for_each_action() {
    let (double, client) = start().await;
    let id = client.create(&spec("vm_resize", Some(KEY))).await.unwrap().provider_id;
    double.slow_actions(2);
    let before = double.calls().len();
    let to = ResizeSpec { plan: plan("do:s-2vcpu-4gb"), grow_disk: true };
    client.resize(&id, &to).await.unwrap();

    assert_eq!(
        action_bodies(&double),
        [
            json!({"type": "power_off"}),
            json!({"type": "resize", "size": "s-2vcpu-4gb", "disk": true}),
            json!({"type": "power_on"})
        ]
    );
    // Each action is read until it completed (two in-progress reads, then done) before the next
    // starts; the double refuses a resize of a droplet that is not off yet.
    let kinds: Vec<_> = calls_after(&double, before)
        .into_iter()
        .map(|(m, p)| match (m.as_str(), p.as_str()) {
            ("GET", p) if p.starts_with("/v2/droplets/") => "read",
            ("POST", _) => "act",
            ("GET", p) if p.starts_with("/v2/actions/") => "poll",
            _ => "other",
        })
        .collect();
    let act = ["act", "poll", "poll", "poll"];
    assert_eq!(kinds, [&["read"][..], &act, &act, &act].concat());
    let statuses: Vec<_> = double
        .calls()
        .iter()
        .filter(|c| c.path.starts_with("/v2/actions/"))
        .map(|c| c.reply.clone().unwrap()["action"]["status"].clone())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "completed").count(), 3);

    let droplet = &double.instances()[0];
    assert_eq!((droplet.plan.as_str(), droplet.disk_grown, droplet.powered_on), ("s-2vcpu-4gb", true, true));
    assert_eq!(double.actions().len(), 3);
}

#[tokio::test]
async fn a_failed_resize_still_powers_the_droplet_on() {
    let (double, client) = start().await;
    let id = client.create(&spec("vm_fail", Some(KEY))).await.unwrap().provider_id;

    // An errored resize action: Unavailable, and the droplet is on again with its old size.
    double.error_next_action("resize");
    let to = ResizeSpec { plan: plan("do:s-2vcpu-4gb"), grow_disk: false };
    let error = client.resize(&id, &to).await.unwrap_err();
    assert!(
        matches!(&error, BackendError::Unavailable(m) if m.contains("resize") && m.contains("errored")),
        "{error:?}"
    );
    let droplet = &double.instances()[0];
    assert_eq!((droplet.plan.as_str(), droplet.powered_on), ("s-1vcpu-1gb", true));

    // Growing the disk cannot be undone: a smaller disk afterwards is DigitalOcean's refusal.
    client.resize(&id, &ResizeSpec { plan: plan("do:s-2vcpu-4gb"), grow_disk: true }).await.unwrap();
    let down = ResizeSpec { plan: plan("do:s-1vcpu-1gb"), grow_disk: false };
    match client.resize(&id, &down).await.unwrap_err() {
        BackendError::Rejected { status, message } => {
            assert_eq!(status, 422);
            assert!(message.contains("smaller disk") && message.contains("(unprocessable_entity)"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(double.instances()[0].powered_on, "powered on again after the refused resize");

    // An errored power-off stops the resize before it starts.
    double.error_next_action("power_off");
    let error = client.resize(&id, &to).await.unwrap_err();
    assert!(matches!(&error, BackendError::Unavailable(m) if m.contains("power_off")), "{error:?}");
    assert_eq!(action_bodies(&double).last(), Some(&json!({"type": "power_off"})));
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
        double.calls().into_iter().filter(|c| c.method == "DELETE" && c.path.starts_with("/v2/droplets")).collect();
    assert_eq!(deletes.iter().map(|c| c.status).collect::<Vec<_>>(), [204, 404]);
}

#[tokio::test]
async fn refusals_server_errors_and_rate_limits() {
    let double = DigitalOceanDouble::start().await.unwrap();
    let client = client_with(&double, Duration::from_millis(2));

    // A size that is not available: 422 in DigitalOcean's error shape; the key is still deleted.
    let mut bad = spec("vm_bad", Some(KEY));
    bad.plan = plan("do:s-8vcpu-16gb");
    match client.create(&bad).await.unwrap_err() {
        BackendError::Rejected { status, message } => {
            assert_eq!(status, 422);
            assert!(
                message.starts_with("You specified an invalid size") && message.ends_with("(unprocessable_entity)")
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(double.ssh_keys().is_empty());

    // 5xx: reads are retried five times, then Unavailable; a create is sent once.
    let id = client.create(&spec("vm_ok", Some(KEY))).await.unwrap().provider_id;
    for _ in 0..5 {
        double.fail_next(Op::Get, 500, json!({"id": "server_error", "message": "Unexpected server-side error"}));
    }
    let error = client.status(&id).await.unwrap_err();
    assert!(matches!(&error, BackendError::Unavailable(m) if m.contains("server_error")), "{error:?}");
    double.fail_next(Op::Create, 503, json!({"id": "service_unavailable", "message": "busy"}));
    assert!(matches!(client.create(&spec("vm_once", Some(KEY))).await, Err(BackendError::Unavailable(_))));
    let creates = double.calls().iter().filter(|c| c.method == "POST" && c.path == "/v2/droplets").count();
    assert_eq!(creates, 3, "one refused, one made, one 503 not retried");

    // 429 with DigitalOcean's Retry-After: waited out, then served; five in a row: RateLimited.
    double.rate_limit_next(1, Some(1));
    let begun = Instant::now();
    client.regions().await.unwrap();
    assert!(begun.elapsed() >= Duration::from_secs(1), "{:?}", begun.elapsed());
    double.rate_limit_next(5, None);
    assert!(matches!(client.plans().await, Err(BackendError::RateLimited)));
    let last_five: Vec<_> = double.calls().iter().rev().take(5).map(|c| c.status).collect();
    assert_eq!(last_five, [429; 5]);
}

#[tokio::test]
async fn the_token_is_in_every_call_and_never_printed() {
    let (double, client) = start().await;
    let id = client.create(&spec("vm_token", Some(KEY))).await.unwrap().provider_id;
    client.plans().await.unwrap();
    client.resize(&id, &ResizeSpec { plan: plan("do:s-1vcpu-2gb"), grow_disk: false }).await.unwrap();
    client.destroy(&id).await.unwrap();
    let calls = double.calls();
    assert!(calls.len() >= 10);
    for call in &calls {
        assert_eq!(call.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()), "{}", call.path);
        assert!(!call.path.contains(TOKEN));
    }
    let printed = format!("{client:?}");
    assert!(!printed.contains(TOKEN) && printed.contains("<redacted>"), "{printed}");
}
