//! DigitalOcean API v2 bodies, by hand, only the fields the client reads or sends (names as in
//! `digitalocean/openapi`). Unknown fields are ignored, so DigitalOcean may add some.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `links` of a page-numbered list; `pages.next` is absent on the last page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Links {
    #[serde(default)]
    pub(crate) pages: Pages,
}

/// `links.pages`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Pages {
    #[serde(default)]
    pub(crate) next: Option<String>,
}

/// `GET /v2/sizes`.
#[derive(Debug, Deserialize)]
pub(crate) struct SizeList {
    pub(crate) sizes: Vec<Size>,
    #[serde(default)]
    pub(crate) links: Links,
}

/// One size. `price_monthly` is kept as the JSON number's text, to be read as a decimal.
#[derive(Debug, Deserialize)]
pub(crate) struct Size {
    pub(crate) slug: String,
    pub(crate) memory: u32,
    pub(crate) vcpus: u32,
    pub(crate) disk: u32,
    pub(crate) price_monthly: Box<RawValue>,
    #[serde(default)]
    pub(crate) regions: Vec<String>,
    #[serde(default)]
    pub(crate) available: bool,
    #[serde(default)]
    pub(crate) gpu_info: Option<GpuInfo>,
}

/// A size's GPUs.
#[derive(Debug, Deserialize)]
pub(crate) struct GpuInfo {
    #[serde(default)]
    pub(crate) count: u32,
    #[serde(default)]
    pub(crate) vram: Option<Vram>,
    #[serde(default)]
    pub(crate) model: String,
}

/// Video memory of one GPU.
#[derive(Debug, Deserialize)]
pub(crate) struct Vram {
    pub(crate) amount: u32,
}

/// `GET /v2/regions`.
#[derive(Debug, Deserialize)]
pub(crate) struct RegionList {
    pub(crate) regions: Vec<Region>,
    #[serde(default)]
    pub(crate) links: Links,
}

/// One region.
#[derive(Debug, Deserialize)]
pub(crate) struct Region {
    pub(crate) slug: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) available: bool,
}

/// `POST /v2/account/keys`.
#[derive(Debug, Serialize)]
pub(crate) struct NewKey<'a> {
    pub(crate) name: &'a str,
    pub(crate) public_key: &'a str,
}

/// The answer to `POST /v2/account/keys`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyReply {
    pub(crate) ssh_key: Key,
}

/// A registered key.
#[derive(Debug, Deserialize)]
pub(crate) struct Key {
    pub(crate) id: u64,
}

/// The image of a new droplet: a public image's slug or an image id.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Image<'a> {
    /// `debian-12-x64`.
    Slug(&'a str),
    /// A numeric image id.
    Id(u32),
}

/// `POST /v2/droplets`.
#[derive(Debug, Serialize)]
pub(crate) struct NewDroplet<'a> {
    pub(crate) name: &'a str,
    pub(crate) region: &'a str,
    pub(crate) size: &'a str,
    pub(crate) image: Image<'a>,
    pub(crate) ssh_keys: Vec<u64>,
    pub(crate) tags: Vec<String>,
}

/// `{"droplet": …}`, the answer to create (202) and read.
#[derive(Debug, Deserialize)]
pub(crate) struct DropletReply {
    pub(crate) droplet: Droplet,
}

/// A droplet: `new`, `active`, `off` or `archive`.
#[derive(Debug, Deserialize)]
pub(crate) struct Droplet {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) networks: Networks,
}

/// A droplet's addresses.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Networks {
    #[serde(default)]
    pub(crate) v4: Vec<Address>,
}

/// One address; `type` is `public` or `private`.
#[derive(Debug, Deserialize)]
pub(crate) struct Address {
    pub(crate) ip_address: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

/// `POST /v2/droplets/{id}/actions`: `power_off`, `power_on`, or `resize` with its size and
/// whether the disk grows too (which cannot be undone).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ActionRequest<'a> {
    /// Hard power-off.
    PowerOff,
    /// Power on.
    PowerOn,
    /// Resize to `size`; `disk: true` grows the disk for good.
    Resize {
        /// The size slug.
        size: &'a str,
        /// Grow the disk too.
        disk: bool,
    },
}

/// `{"action": …}`, the answer to starting and reading an action.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionReply {
    pub(crate) action: Action,
}

/// An action: `in-progress`, `completed` or `errored`.
#[derive(Debug, Deserialize)]
pub(crate) struct Action {
    pub(crate) id: u64,
    pub(crate) status: String,
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
}

/// DigitalOcean's error body, `{"id": "not_found", "message": "…", "request_id": "…"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Error {
    #[serde(default)]
    pub(crate) id: String,
    pub(crate) message: String,
}

/// The message of an error body, if it is DigitalOcean's shape: `message (id)`.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let error = serde_json::from_slice::<Error>(body).ok()?;
    Some(if error.id.is_empty() { error.message } else { format!("{} ({})", error.message, error.id) })
}
