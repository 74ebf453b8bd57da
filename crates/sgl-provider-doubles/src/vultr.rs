//! The Vultr API v2 double: plans (cursor paging), regions, SSH keys, instances (create with the
//! one-time `default_password`, read, halt, start, upgrade-only plan change, delete). Answers are
//! the documented examples of `fixtures/vultr/` with the stateful fields replaced.

use std::collections::BTreeMap;
use std::io;

use axum::http::Method;
use serde_json::{Value, json};

use crate::double::{
    Double, Machine, Op, Provider, Reply, Shared, fixture, page, query_param, segments, serve, strings,
};

/// The Vultr double's handle: [`Double`]'s controls plus what it holds.
pub type VultrDouble = Double<VultrApi>;

/// The state of the Vultr double (its catalogue, keys and instances).
#[derive(Debug)]
pub struct VultrApi {
    plans: Vec<Value>,
    regions: Vec<Value>,
    key_template: Value,
    create_template: Value,
    get_template: Value,
    upgrades_template: Value,
    invalid_plan: Value,
    keys: BTreeMap<String, Value>,
    instances: BTreeMap<String, Instance>,
    passwords: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Instance {
    machine: Machine,
    os_id: Value,
    polls: u32,
    ready: bool,
}

#[derive(Debug)]
pub(crate) enum Route {
    Plans,
    Regions,
    CreateKey,
    DeleteKey(String),
    Create,
    Get(String),
    Update(String),
    Delete(String),
    Upgrades(String),
    Halt(String),
    Start(String),
}

impl Double<VultrApi> {
    /// Starts a Vultr double on `127.0.0.1:0`; [`Double::base_url`] ends in `/v2`.
    pub async fn start() -> io::Result<Self> {
        serve(VultrApi::load()?, "/v2").await
    }

    /// The instances it holds now (deleted ones are gone).
    pub fn instances(&self) -> Vec<Machine> {
        self.with(|s| s.provider.instances.values().map(|i| i.machine.clone()).collect())
    }

    /// The ids of the SSH keys registered now.
    pub fn ssh_keys(&self) -> Vec<String> {
        self.with(|s| s.provider.keys.keys().cloned().collect())
    }

    /// The `default_password` the create answer of instance `id` carried.
    pub fn issued_password(&self, id: &str) -> Option<String> {
        self.with(|s| s.provider.passwords.get(id).cloned())
    }
}

impl VultrApi {
    fn load() -> io::Result<Self> {
        let documented = fixture(include_str!("../fixtures/vultr/list-plans.documented.json"))?;
        let regions = fixture(include_str!("../fixtures/vultr/list-regions.documented.json"))?;
        Ok(Self {
            plans: catalogue(&documented["plans"][0]),
            regions: region_list(&regions["regions"][0]),
            key_template: fixture(include_str!("../fixtures/vultr/create-ssh-key-201.documented.json"))?,
            create_template: fixture(include_str!("../fixtures/vultr/create-instance-202.documented.json"))?,
            get_template: fixture(include_str!("../fixtures/vultr/get-instance.documented.json"))?,
            upgrades_template: fixture(include_str!("../fixtures/vultr/get-instance-upgrades.documented.json"))?,
            invalid_plan: fixture(include_str!("../fixtures/vultr/error-400.documented.json"))?,
            keys: BTreeMap::new(),
            instances: BTreeMap::new(),
            passwords: BTreeMap::new(),
        })
    }

    fn plan(&self, id: &str) -> Option<&Value> {
        self.plans.iter().find(|p| p["id"] == id)
    }

    /// Plans of the same type that cost more: Vultr resizes only upwards.
    fn upgrades_of(&self, plan_id: &str) -> Vec<String> {
        let Some(current) = self.plan(plan_id) else { return Vec::new() };
        let cost = |p: &Value| p["monthly_cost"].as_f64().unwrap_or(0.0);
        self.plans
            .iter()
            .filter(|p| p["type"] == current["type"] && cost(p) > cost(current))
            .filter_map(|p| p["id"].as_str().map(str::to_owned))
            .collect()
    }

    fn instance_json(&self, template: &Value, instance: &Instance, main_ip: &str) -> Value {
        let m = &instance.machine;
        let mut v = template["instance"].clone();
        let plan = self.plan(&m.plan).cloned().unwrap_or(Value::Null);
        let (status, server_status, ip) =
            if instance.ready { ("active", "ok", main_ip) } else { ("pending", "installingbooting", "0.0.0.0") };
        v["id"] = json!(m.id);
        v["plan"] = json!(m.plan);
        v["region"] = json!(m.region);
        v["label"] = json!(m.label);
        v["hostname"] = json!(m.hostname);
        v["tags"] = json!(m.tags);
        v["os_id"] = instance.os_id.clone();
        v["ram"] = plan["ram"].clone();
        v["vcpu_count"] = plan["vcpu_count"].clone();
        v["disk"] = plan["disk"].clone();
        v["status"] = json!(status);
        v["server_status"] = json!(server_status);
        v["power_status"] = json!(if m.powered_on { "running" } else { "stopped" });
        v["main_ip"] = json!(ip);
        if let Some(fields) = v.as_object_mut() {
            fields.remove("default_password");
        }
        v
    }
}

/// The documented plan and a few more made like it, so lists page and upgrades exist.
fn catalogue(documented: &Value) -> Vec<Value> {
    let like = |id: &str, vcpus: u32, ram: u32, disk: u32, cost: Value, kind: &str| {
        let mut p = documented.clone();
        p["id"] = json!(id);
        p["vcpu_count"] = json!(vcpus);
        p["ram"] = json!(ram);
        p["disk"] = json!(disk);
        p["monthly_cost"] = cost;
        p["type"] = json!(kind);
        p["locations"] = json!(["ewr", "ams"]);
        p
    };
    let mut gpu = like("vcg-a100-1c-6g-4vram", 1, 6144, 70, json!(90.5), "vcg");
    gpu["gpu_vram_gb"] = json!(4);
    gpu["gpu_type"] = json!("NVIDIA_A100");
    vec![
        like("vc2-1c-0.5gb", 1, 512, 10, json!(2.5), "vc2"),
        like("vc2-1c-1gb", 1, 1024, 25, json!(5), "vc2"),
        like("vc2-1c-2gb", 1, 2048, 55, json!(10), "vc2"),
        like("vc2-2c-4gb", 2, 4096, 80, json!(20), "vc2"),
        like("vc2-4c-8gb", 4, 8192, 160, json!(40), "vc2"),
        documented.clone(),
        gpu,
    ]
}

fn region_list(documented: &Value) -> Vec<Value> {
    let mut ewr = documented.clone();
    ewr["id"] = json!("ewr");
    ewr["city"] = json!("New Jersey");
    ewr["country"] = json!("US");
    ewr["continent"] = json!("North America");
    vec![documented.clone(), ewr]
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({"error": message, "status": status}))
}

impl Provider for VultrApi {
    type Route = Route;

    fn route(method: &Method, path: &str) -> Option<Route> {
        let parts = segments(path, "/v2")?;
        let id = |i: usize| parts.get(i).map(|s| (*s).to_owned());
        Some(match (method.as_str(), parts.as_slice()) {
            ("GET", ["plans"]) => Route::Plans,
            ("GET", ["regions"]) => Route::Regions,
            ("POST", ["ssh-keys"]) => Route::CreateKey,
            ("DELETE", ["ssh-keys", _]) => Route::DeleteKey(id(1)?),
            ("POST", ["instances"]) => Route::Create,
            ("GET", ["instances", _]) => Route::Get(id(1)?),
            ("PATCH", ["instances", _]) => Route::Update(id(1)?),
            ("DELETE", ["instances", _]) => Route::Delete(id(1)?),
            ("GET", ["instances", _, "upgrades"]) => Route::Upgrades(id(1)?),
            ("POST", ["instances", _, "halt"]) => Route::Halt(id(1)?),
            ("POST", ["instances", _, "start"]) => Route::Start(id(1)?),
            _ => return None,
        })
    }

    fn op(route: &Route) -> Op {
        match route {
            Route::Plans => Op::Plans,
            Route::Regions => Op::Regions,
            Route::CreateKey => Op::CreateKey,
            Route::DeleteKey(_) => Op::DeleteKey,
            Route::Create => Op::Create,
            Route::Get(_) => Op::Get,
            Route::Update(_) => Op::Resize,
            Route::Delete(_) => Op::Delete,
            Route::Upgrades(_) => Op::Upgrades,
            Route::Halt(_) => Op::Halt,
            Route::Start(_) => Op::Start,
        }
    }

    fn serve(shared: &mut Shared<Self>, route: Route, query: &str, body: Option<Value>) -> Reply {
        match route {
            Route::Plans => list(shared, query, "plans", |s| &s.provider.plans),
            Route::Regions => list(shared, query, "regions", |s| &s.provider.regions),
            Route::CreateKey => create_key(shared, body),
            Route::DeleteKey(id) => match shared.provider.keys.remove(&id) {
                Some(_) => Reply::empty(204),
                None => error(404, "SSH key not found."),
            },
            Route::Create => create_instance(shared, body),
            Route::Get(id) => get_instance(shared, &id),
            Route::Update(id) => update_instance(shared, &id, body.as_ref()),
            Route::Delete(id) => match shared.provider.instances.remove(&id) {
                Some(_) => Reply::empty(204),
                None => error(404, "Instance not found."),
            },
            Route::Upgrades(id) => upgrades(shared, &id),
            Route::Halt(id) => power(shared, &id, false),
            Route::Start(id) => power(shared, &id, true),
        }
    }

    fn rate_limited_body() -> Value {
        json!({"error": "Rate limit exceeded.", "status": 429})
    }

    fn unknown_path_body() -> Value {
        json!({"error": "Invalid API path.", "status": 404})
    }
}

/// A cursor-paged list: `cursor` is the index of the first item, `meta.links.next` the next one.
fn list(shared: &Shared<VultrApi>, query: &str, key: &str, items: impl Fn(&Shared<VultrApi>) -> &Vec<Value>) -> Reply {
    let all = items(shared);
    let start = query_param(query, "cursor").and_then(|c| c.strip_prefix("at-")).and_then(|c| c.parse().ok());
    let per_page = query_param(query, "per_page").and_then(|p| p.parse().ok()).unwrap_or(100);
    let (chunk, next) = page(all, start.unwrap_or(0), per_page, shared.common.page_size);
    let next = next.map(|n| format!("at-{n}")).unwrap_or_default();
    Reply::json(200, json!({key: chunk, "meta": {"total": all.len(), "links": {"next": next, "prev": ""}}}))
}

fn create_key(shared: &mut Shared<VultrApi>, body: Option<Value>) -> Reply {
    let Some(body) = body.filter(|b| b["name"].is_string() && b["ssh_key"].is_string()) else {
        return error(400, "Missing name or ssh_key.");
    };
    let id = format!("3b8066a7-b438-455a-9688-{:012x}", shared.common.next_number());
    let mut key = shared.provider.key_template.clone();
    key["ssh_key"]["id"] = json!(id);
    key["ssh_key"]["name"] = body["name"].clone();
    key["ssh_key"]["ssh_key"] = body["ssh_key"].clone();
    shared.provider.keys.insert(id, key["ssh_key"].clone());
    Reply::json(201, key)
}

fn create_instance(shared: &mut Shared<VultrApi>, body: Option<Value>) -> Reply {
    let body = body.unwrap_or(Value::Null);
    let (Some(plan), Some(region)) = (body["plan"].as_str(), body["region"].as_str()) else {
        return error(400, "Missing plan or region.");
    };
    if shared.provider.plan(plan).is_none() {
        return Reply::json(400, shared.provider.invalid_plan.clone());
    }
    if !shared.provider.regions.iter().any(|r| r["id"] == region) {
        return error(400, "Invalid region chosen.");
    }
    let keys: Vec<String> = strings(&body["sshkey_id"]);
    if keys.iter().any(|k| !shared.provider.keys.contains_key(k)) {
        return error(400, "Invalid SSH key.");
    }
    let n = shared.common.next_number();
    let id = format!("4f0f12e5-1f84-404f-aa84-{n:012x}");
    let password = format!("v5{{Fkvb#2ycPGwHs-{n}");
    let machine = Machine {
        id: id.clone(),
        plan: plan.to_owned(),
        region: region.to_owned(),
        label: body["label"].as_str().unwrap_or("").to_owned(),
        hostname: body["hostname"].as_str().unwrap_or("").to_owned(),
        tags: strings(&body["tags"]),
        ssh_keys: keys,
        status: "pending".to_owned(),
        powered_on: true,
        disk_grown: false,
    };
    let instance = Instance { machine, os_id: body["os_id"].clone(), polls: 0, ready: false };
    let mut answer = shared.provider.create_template.clone();
    answer["instance"] = shared.provider.instance_json(&shared.provider.create_template, &instance, "0.0.0.0");
    answer["instance"]["default_password"] = json!(password);
    shared.provider.passwords.insert(id.clone(), password);
    shared.provider.instances.insert(id, instance);
    Reply::json(202, answer)
}

fn get_instance(shared: &mut Shared<VultrApi>, id: &str) -> Reply {
    let ready_after = shared.common.ready_after;
    let Some(instance) = shared.provider.instances.get_mut(id) else { return error(404, "Instance not found.") };
    instance.polls += 1;
    if instance.polls > ready_after {
        instance.ready = true;
        "active".clone_into(&mut instance.machine.status);
    }
    let Some(instance) = shared.provider.instances.get(id) else { return error(404, "Instance not found.") };
    let body = shared.provider.instance_json(&shared.provider.get_template, instance, &shared.common.main_ip);
    Reply::json(200, json!({"instance": body}))
}

fn upgrades(shared: &Shared<VultrApi>, id: &str) -> Reply {
    let Some(instance) = shared.provider.instances.get(id) else { return error(404, "Instance not found.") };
    let mut answer = shared.provider.upgrades_template.clone();
    answer["upgrades"]["plans"] = json!(shared.provider.upgrades_of(&instance.machine.plan));
    Reply::json(200, answer)
}

fn update_instance(shared: &mut Shared<VultrApi>, id: &str, body: Option<&Value>) -> Reply {
    let Some(plan) = body.and_then(|b| b["plan"].as_str()).map(str::to_owned) else {
        return error(400, "Nothing to update.");
    };
    let Some(current) = shared.provider.instances.get(id).map(|i| i.machine.plan.clone()) else {
        return error(404, "Instance not found.");
    };
    if !shared.provider.upgrades_of(&current).contains(&plan) {
        return Reply::json(400, shared.provider.invalid_plan.clone());
    }
    let Some(instance) = shared.provider.instances.get_mut(id) else { return error(404, "Instance not found.") };
    instance.machine.plan = plan;
    let Some(instance) = shared.provider.instances.get(id) else { return error(404, "Instance not found.") };
    let body = shared.provider.instance_json(&shared.provider.get_template, instance, &shared.common.main_ip);
    Reply::json(202, json!({"instance": body}))
}

fn power(shared: &mut Shared<VultrApi>, id: &str, on: bool) -> Reply {
    match shared.provider.instances.get_mut(id) {
        Some(instance) => {
            instance.machine.powered_on = on;
            Reply::empty(204)
        }
        None => error(404, "Instance not found."),
    }
}
