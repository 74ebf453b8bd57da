//! The DigitalOcean API v2 double: sizes and regions (page paging), account keys, droplets
//! (202 on create, `new` until ready), droplet actions (`power_off`, `power_on`, `resize`) that
//! take effect only when they complete, read through `GET /v2/actions/{id}`. Answers are the
//! documented examples of `fixtures/digitalocean/` with the stateful fields replaced.

use std::collections::BTreeMap;
use std::io;

use axum::http::Method;
use serde_json::{Value, json};

use crate::double::{
    Double, Machine, Op, Provider, Reply, Shared, fixture, page, query_param, segments, serve, strings,
};

/// The DigitalOcean double's handle: [`Double`]'s controls plus what it holds.
pub type DigitalOceanDouble = Double<DigitalOceanApi>;

/// The state of the DigitalOcean double (its catalogue, keys, droplets and actions).
#[derive(Debug)]
pub struct DigitalOceanApi {
    sizes: Vec<Value>,
    regions: Vec<Value>,
    key_template: Value,
    create_template: Value,
    get_template: Value,
    action_template: Value,
    not_found: Value,
    keys: BTreeMap<u64, Value>,
    droplets: BTreeMap<u64, Droplet>,
    actions: BTreeMap<u64, Action>,
}

#[derive(Debug)]
struct Droplet {
    machine: Machine,
    image: Value,
    polls: u32,
    ready: bool,
}

#[derive(Debug)]
struct Action {
    droplet: u64,
    kind: String,
    size: Option<String>,
    disk: bool,
    polls: u32,
    errored: bool,
    status: &'static str,
}

#[derive(Debug)]
pub(crate) enum Route {
    Sizes,
    Regions,
    CreateKey,
    DeleteKey(u64),
    Create,
    Get(u64),
    Delete(u64),
    Act(u64),
    GetAction(u64),
}

impl Double<DigitalOceanApi> {
    /// Starts a DigitalOcean double on `127.0.0.1:0`; [`Double::base_url`] has no path, as
    /// `https://api.digitalocean.com` has none.
    pub async fn start() -> io::Result<Self> {
        serve(DigitalOceanApi::load()?, "").await
    }

    /// The droplets it holds now (deleted ones are gone).
    pub fn instances(&self) -> Vec<Machine> {
        self.with(|s| s.provider.droplets.values().map(|d| d.machine.clone()).collect())
    }

    /// The ids of the SSH keys registered now.
    pub fn ssh_keys(&self) -> Vec<String> {
        self.with(|s| s.provider.keys.keys().map(ToString::to_string).collect())
    }

    /// The type of every action started, in order (`power_off`, `resize`, …), with the size and
    /// `disk` flag of resizes.
    pub fn actions(&self) -> Vec<(String, Option<String>, bool)> {
        self.with(|s| s.provider.actions.values().map(|a| (a.kind.clone(), a.size.clone(), a.disk)).collect())
    }
}

impl DigitalOceanApi {
    fn load() -> io::Result<Self> {
        let sizes = fixture(include_str!("../fixtures/digitalocean/list-sizes.documented.json"))?;
        let regions = fixture(include_str!("../fixtures/digitalocean/list-regions.documented.json"))?;
        Ok(Self {
            sizes: catalogue(&sizes["sizes"][0]),
            regions: region_list(&regions["regions"][0]),
            key_template: fixture(include_str!("../fixtures/digitalocean/create-key-201.documented.json"))?,
            create_template: fixture(include_str!("../fixtures/digitalocean/droplet-create-202.documented.json"))?,
            get_template: fixture(include_str!("../fixtures/digitalocean/get-droplet.documented.json"))?,
            action_template: fixture(include_str!("../fixtures/digitalocean/action.documented.json"))?,
            not_found: fixture(include_str!("../fixtures/digitalocean/error-not-found.documented.json"))?,
            keys: BTreeMap::new(),
            droplets: BTreeMap::new(),
            actions: BTreeMap::new(),
        })
    }

    fn size(&self, slug: &str) -> Option<&Value> {
        self.sizes.iter().find(|s| s["slug"] == slug)
    }

    fn droplet_json(&self, template: &Value, droplet: &Droplet, id: u64, main_ip: &str) -> Value {
        let m = &droplet.machine;
        let mut v = template["droplet"].clone();
        let size = self.size(&m.plan).cloned().unwrap_or(Value::Null);
        v["id"] = json!(id);
        v["name"] = json!(m.label);
        v["status"] = json!(m.status);
        v["tags"] = json!(m.tags);
        v["size"] = size.clone();
        v["size_slug"] = json!(m.plan);
        v["memory"] = size["memory"].clone();
        v["vcpus"] = size["vcpus"].clone();
        v["disk"] = size["disk"].clone();
        v["region"]["slug"] = json!(m.region);
        if !droplet.image.is_null() {
            v["image"]["slug"] = droplet.image.clone();
        }
        v["networks"] = if droplet.ready {
            json!({"v4": [
                {"ip_address": format!("10.128.192.{}", id % 250), "netmask": "255.255.0.0", "gateway": "nil", "type": "private"},
                {"ip_address": main_ip, "netmask": "255.255.255.0", "gateway": "192.241.165.1", "type": "public"}
            ], "v6": []})
        } else {
            json!({"v4": [], "v6": []})
        };
        v
    }

    fn action_json(&self, id: u64, action: &Action) -> Value {
        let mut v = self.action_template.clone();
        v["action"]["id"] = json!(id);
        v["action"]["status"] = json!(action.status);
        v["action"]["type"] = json!(action.kind);
        v["action"]["resource_id"] = json!(action.droplet);
        if action.status == "in-progress" {
            v["action"]["completed_at"] = Value::Null;
        }
        v
    }
}

/// The documented size and a few more made like it: bigger ones, a GPU one, an unavailable one.
fn catalogue(documented: &Value) -> Vec<Value> {
    let like = |slug: &str, vcpus: u32, memory: u32, disk: u32, monthly: Value, hourly: Value| {
        let mut s = documented.clone();
        s["slug"] = json!(slug);
        s["vcpus"] = json!(vcpus);
        s["memory"] = json!(memory);
        s["disk"] = json!(disk);
        s["price_monthly"] = monthly;
        s["price_hourly"] = hourly;
        s
    };
    let mut gpu = like("gpu-h100x1-80gb", 20, 245_760, 720, json!(2522.16), json!(3.753));
    gpu["gpu_info"] = json!({"count": 1, "vram": {"amount": 80, "unit": "gib"}, "model": "nvidia_h100"});
    let mut gone = like("s-8vcpu-16gb", 8, 16384, 320, json!(96.0), json!(0.14286));
    gone["available"] = json!(false);
    vec![
        documented.clone(),
        like("s-1vcpu-2gb", 1, 2048, 50, json!(12.0), json!(0.01786)),
        like("s-2vcpu-4gb", 2, 4096, 80, json!(24.0), json!(0.03571)),
        like("s-4vcpu-8gb", 4, 8192, 160, json!(48.0), json!(0.07143)),
        gpu,
        gone,
    ]
}

fn region_list(documented: &Value) -> Vec<Value> {
    let mut ams3 = documented.clone();
    ams3["name"] = json!("Amsterdam 3");
    ams3["slug"] = json!("ams3");
    vec![documented.clone(), ams3]
}

fn error(status: u16, id: &str, message: &str) -> Reply {
    Reply::json(status, json!({"id": id, "message": message, "request_id": "515850a0-a812-50bf-aa3c-d0d21d287e40"}))
}

impl Provider for DigitalOceanApi {
    type Route = Route;

    fn route(method: &Method, path: &str) -> Option<Route> {
        let parts = segments(path, "/v2")?;
        let id = |i: usize| parts.get(i).and_then(|s| s.parse::<u64>().ok());
        Some(match (method.as_str(), parts.as_slice()) {
            ("GET", ["sizes"]) => Route::Sizes,
            ("GET", ["regions"]) => Route::Regions,
            ("POST", ["account", "keys"]) => Route::CreateKey,
            ("DELETE", ["account", "keys", _]) => Route::DeleteKey(id(2)?),
            ("POST", ["droplets"]) => Route::Create,
            ("GET", ["droplets", _]) => Route::Get(id(1)?),
            ("DELETE", ["droplets", _]) => Route::Delete(id(1)?),
            ("POST", ["droplets", _, "actions"]) => Route::Act(id(1)?),
            ("GET", ["actions", _]) => Route::GetAction(id(1)?),
            _ => return None,
        })
    }

    fn op(route: &Route) -> Op {
        match route {
            Route::Sizes => Op::Plans,
            Route::Regions => Op::Regions,
            Route::CreateKey => Op::CreateKey,
            Route::DeleteKey(_) => Op::DeleteKey,
            Route::Create => Op::Create,
            Route::Get(_) => Op::Get,
            Route::Delete(_) => Op::Delete,
            Route::Act(_) => Op::Action,
            Route::GetAction(_) => Op::GetAction,
        }
    }

    fn serve(shared: &mut Shared<Self>, route: Route, query: &str, body: Option<Value>) -> Reply {
        match route {
            Route::Sizes => list(shared, query, "sizes", |s| &s.provider.sizes),
            Route::Regions => list(shared, query, "regions", |s| &s.provider.regions),
            Route::CreateKey => create_key(shared, body),
            Route::DeleteKey(id) => match shared.provider.keys.remove(&id) {
                Some(_) => Reply::empty(204),
                None => Reply::json(404, shared.provider.not_found.clone()),
            },
            Route::Create => create_droplet(shared, body),
            Route::Get(id) => get_droplet(shared, id),
            Route::Delete(id) => match shared.provider.droplets.remove(&id) {
                Some(_) => Reply::empty(204),
                None => Reply::json(404, shared.provider.not_found.clone()),
            },
            Route::Act(id) => start_action(shared, id, body),
            Route::GetAction(id) => get_action(shared, id),
        }
    }

    fn rate_limited_body() -> Value {
        json!({"id": "too_many_requests", "message": "API Rate limit exceeded."})
    }

    fn unknown_path_body() -> Value {
        json!({"id": "not_found", "message": "The resource you were accessing could not be found."})
    }
}

/// A page-numbered list: `page` from 1, `links.pages.next` an absolute URL on the double.
fn list(
    shared: &Shared<DigitalOceanApi>,
    query: &str,
    key: &str,
    items: impl Fn(&Shared<DigitalOceanApi>) -> &Vec<Value>,
) -> Reply {
    let all = items(shared);
    let per_page = query_param(query, "per_page").and_then(|p| p.parse().ok()).unwrap_or(20_usize);
    let per_page = per_page.clamp(1, shared.common.page_size.max(1));
    let number = query_param(query, "page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let (chunk, next) = page(all, (number - 1) * per_page, per_page, per_page);
    let mut pages = json!({});
    if next.is_some() {
        pages["next"] = json!(format!("{}/v2/{key}?page={}&per_page={per_page}", shared.common.base_url, number + 1));
    }
    Reply::json(200, json!({key: chunk, "links": {"pages": pages}, "meta": {"total": all.len()}}))
}

fn create_key(shared: &mut Shared<DigitalOceanApi>, body: Option<Value>) -> Reply {
    let Some(body) = body.filter(|b| b["name"].is_string() && b["public_key"].is_string()) else {
        return error(422, "unprocessable_entity", "name and public_key are required");
    };
    let id = 512_189 + shared.common.next_number();
    let mut key = shared.provider.key_template.clone();
    key["ssh_key"]["id"] = json!(id);
    key["ssh_key"]["name"] = body["name"].clone();
    key["ssh_key"]["public_key"] = body["public_key"].clone();
    shared.provider.keys.insert(id, key["ssh_key"].clone());
    Reply::json(201, key)
}

fn create_droplet(shared: &mut Shared<DigitalOceanApi>, body: Option<Value>) -> Reply {
    let body = body.unwrap_or(Value::Null);
    let (Some(name), Some(region), Some(size)) =
        (body["name"].as_str(), body["region"].as_str(), body["size"].as_str())
    else {
        return error(422, "unprocessable_entity", "name, region and size are required");
    };
    if !shared.provider.size(size).is_some_and(|s| s["available"] == true) {
        return error(422, "unprocessable_entity", "You specified an invalid size for Droplet creation.");
    }
    if !shared.provider.regions.iter().any(|r| r["slug"] == region) {
        return error(422, "unprocessable_entity", "You specified an invalid region for Droplet creation.");
    }
    let keys: Vec<String> = body["ssh_keys"].as_array().into_iter().flatten().map(ToString::to_string).collect();
    if keys.iter().any(|k| !k.parse().is_ok_and(|k: u64| shared.provider.keys.contains_key(&k))) {
        return error(422, "unprocessable_entity", "You specified an invalid SSH key for Droplet creation.");
    }
    let id = 3_164_444 + shared.common.next_number();
    let machine = Machine {
        id: id.to_string(),
        plan: size.to_owned(),
        region: region.to_owned(),
        label: name.to_owned(),
        hostname: name.to_owned(),
        tags: strings(&body["tags"]),
        ssh_keys: keys,
        status: "new".to_owned(),
        powered_on: true,
        disk_grown: false,
    };
    let droplet = Droplet { machine, image: body["image"].clone(), polls: 0, ready: false };
    let mut answer = shared.provider.create_template.clone();
    answer["droplet"] = shared.provider.droplet_json(&shared.provider.create_template, &droplet, id, "");
    shared.provider.droplets.insert(id, droplet);
    Reply::json(202, answer)
}

fn get_droplet(shared: &mut Shared<DigitalOceanApi>, id: u64) -> Reply {
    let ready_after = shared.common.ready_after;
    let Some(droplet) = shared.provider.droplets.get_mut(&id) else {
        return Reply::json(404, shared.provider.not_found.clone());
    };
    droplet.polls += 1;
    if !droplet.ready && droplet.polls > ready_after {
        droplet.ready = true;
        "active".clone_into(&mut droplet.machine.status);
    }
    let Some(droplet) = shared.provider.droplets.get(&id) else {
        return Reply::json(404, shared.provider.not_found.clone());
    };
    Reply::json(
        200,
        json!({"droplet": shared.provider.droplet_json(&shared.provider.get_template, droplet, id, &shared.common.main_ip)}),
    )
}

fn start_action(shared: &mut Shared<DigitalOceanApi>, id: u64, body: Option<Value>) -> Reply {
    let body = body.unwrap_or(Value::Null);
    let Some(droplet) = shared.provider.droplets.get(&id) else {
        return Reply::json(404, shared.provider.not_found.clone());
    };
    let kind = body["type"].as_str().unwrap_or("").to_owned();
    let size = body["size"].as_str().map(str::to_owned);
    if let Some(refusal) = refuse_action(&shared.provider, droplet, &kind, size.as_deref()) {
        return refusal;
    }
    let errored = shared.common.error_next_action.as_deref() == Some(kind.as_str());
    if errored {
        shared.common.error_next_action = None;
    }
    let action =
        Action { droplet: id, kind, size, disk: body["disk"] == true, polls: 0, errored, status: "in-progress" };
    let action_id = 36_804_636 + shared.common.next_number();
    let answer = shared.provider.action_json(action_id, &action);
    shared.provider.actions.insert(action_id, action);
    Reply::json(201, answer)
}

/// Why DigitalOcean would refuse an action on this droplet now, if it would.
fn refuse_action(api: &DigitalOceanApi, droplet: &Droplet, kind: &str, size: Option<&str>) -> Option<Reply> {
    let unprocessable = |message: &str| Some(error(422, "unprocessable_entity", message));
    match kind {
        "power_off" | "power_on" => None,
        "resize" => {
            if droplet.machine.powered_on {
                return unprocessable("Droplet must be off prior to resizing");
            }
            let (Some(target), Some(current)) = (size.and_then(|s| api.size(s)), api.size(&droplet.machine.plan))
            else {
                return unprocessable("You specified an invalid size for Droplet resize.");
            };
            let shrinks = target["disk"].as_u64() < current["disk"].as_u64();
            if shrinks && droplet.machine.disk_grown {
                unprocessable("This size is not available because it has a smaller disk.")
            } else {
                None
            }
        }
        _ => unprocessable("The action type is not supported by this double."),
    }
}

fn get_action(shared: &mut Shared<DigitalOceanApi>, id: u64) -> Reply {
    let slow = shared.common.slow_actions;
    let Some(action) = shared.provider.actions.get_mut(&id) else {
        return Reply::json(404, shared.provider.not_found.clone());
    };
    action.polls += 1;
    if action.status == "in-progress" && action.polls > slow {
        action.status = if action.errored { "errored" } else { "completed" };
        if !action.errored {
            let (droplet, kind, size, disk) = (action.droplet, action.kind.clone(), action.size.clone(), action.disk);
            apply(&mut shared.provider, droplet, &kind, size, disk);
        }
    }
    let Some(action) = shared.provider.actions.get(&id) else {
        return Reply::json(404, shared.provider.not_found.clone());
    };
    Reply::json(200, shared.provider.action_json(id, action))
}

/// What a completed action does to its droplet.
fn apply(api: &mut DigitalOceanApi, droplet: u64, kind: &str, size: Option<String>, disk: bool) {
    let Some(d) = api.droplets.get_mut(&droplet) else { return };
    match kind {
        "power_off" => {
            d.machine.powered_on = false;
            "off".clone_into(&mut d.machine.status);
        }
        "power_on" => {
            d.machine.powered_on = true;
            "active".clone_into(&mut d.machine.status);
        }
        "resize" => {
            if let Some(size) = size {
                d.machine.plan = size;
            }
            d.machine.disk_grown |= disk;
        }
        _ => {}
    }
}
