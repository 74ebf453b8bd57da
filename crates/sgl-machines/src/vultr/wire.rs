//! Vultr API v2 bodies, by hand, only the fields the client reads or sends (names as in the API
//! reference and `vultr/govultr`). Unknown fields are ignored, so Vultr may add some.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `meta` of a cursor-paged list.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Meta {
    #[serde(default)]
    pub(crate) links: Links,
}

/// `meta.links`: the next page's cursor, empty on the last page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Links {
    #[serde(default)]
    pub(crate) next: String,
}

/// `GET /plans`.
#[derive(Debug, Deserialize)]
pub(crate) struct PlanList {
    pub(crate) plans: Vec<Plan>,
    #[serde(default)]
    pub(crate) meta: Meta,
}

/// One plan. `monthly_cost` is kept as the JSON number's text, to be read as a decimal.
#[derive(Debug, Deserialize)]
pub(crate) struct Plan {
    pub(crate) id: String,
    pub(crate) vcpu_count: u32,
    pub(crate) ram: u32,
    pub(crate) disk: u32,
    pub(crate) monthly_cost: Box<RawValue>,
    #[serde(default)]
    pub(crate) locations: Vec<String>,
    #[serde(default)]
    pub(crate) gpu_vram_gb: Option<u32>,
    #[serde(default)]
    pub(crate) gpu_type: Option<String>,
}

/// `GET /regions`.
#[derive(Debug, Deserialize)]
pub(crate) struct RegionList {
    pub(crate) regions: Vec<Region>,
    #[serde(default)]
    pub(crate) meta: Meta,
}

/// One region.
#[derive(Debug, Deserialize)]
pub(crate) struct Region {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) city: String,
    #[serde(default)]
    pub(crate) country: String,
}

/// `POST /ssh-keys`.
#[derive(Debug, Serialize)]
pub(crate) struct NewKey<'a> {
    pub(crate) name: &'a str,
    pub(crate) ssh_key: &'a str,
}

/// The answer to `POST /ssh-keys`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyReply {
    pub(crate) ssh_key: Key,
}

/// A registered key.
#[derive(Debug, Deserialize)]
pub(crate) struct Key {
    pub(crate) id: String,
}

/// `POST /instances`.
#[derive(Debug, Serialize)]
pub(crate) struct NewInstance<'a> {
    pub(crate) region: &'a str,
    pub(crate) plan: &'a str,
    pub(crate) os_id: u32,
    pub(crate) label: &'a str,
    pub(crate) hostname: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) sshkey_id: Vec<&'a str>,
    pub(crate) tags: Vec<String>,
    pub(crate) activation_email: bool,
}

/// `{"instance": …}`, the answer to create, read and update.
#[derive(Debug, Deserialize)]
pub(crate) struct InstanceReply {
    pub(crate) instance: Instance,
}

/// An instance; `default_password` is present in the create answer only.
#[derive(Debug, Deserialize)]
pub(crate) struct Instance {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) power_status: String,
    #[serde(default)]
    pub(crate) server_status: String,
    #[serde(default)]
    pub(crate) main_ip: String,
    #[serde(default)]
    pub(crate) default_password: Option<String>,
}

/// `PATCH /instances/{id}` for a plan change.
#[derive(Debug, Serialize)]
pub(crate) struct PlanChange<'a> {
    pub(crate) plan: &'a str,
}

/// `GET /instances/{id}/upgrades`.
#[derive(Debug, Deserialize)]
pub(crate) struct UpgradesReply {
    pub(crate) upgrades: Upgrades,
}

/// The plans an instance may move to (upwards only).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Upgrades {
    #[serde(default)]
    pub(crate) plans: Vec<String>,
}

/// Vultr's error body, `{"error": "Invalid plan chosen.", "status": 400}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Error {
    pub(crate) error: String,
}

/// The message of an error body, if it is Vultr's shape.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Error>(body).ok().map(|e| e.error).filter(|m| !m.is_empty())
}
