//! Machines rented by the hour (issue 18; `docs/protocol.md` §16): the routes' bodies under
//! `/compute/...`, the states a machine goes through and why one ended, and the exact text a
//! wallet signs to manage its machines without an API key.
//!
//! Money is integer micro-USD (`*_micros`) with a display `*_usd` beside it; times are RFC 3339
//! with a millisecond twin (`*_ms`), because extensions and resizes are exact to the millisecond.

use serde::{Deserialize, Serialize};

use crate::ids::ApiKey;

/// Where a rented machine stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    /// Paid for and being made; nothing is charged until it answers SSH.
    Pending,
    /// Reachable by SSH, more than a day of prepaid time left.
    Active,
    /// Reachable, at most a day left (the 24 h and 1 h warnings fall here).
    Expiring,
    /// Its time ran out: stopped, its disk kept until the grace period ends.
    Expired,
    /// Gone, with nothing left of it on the provider.
    Destroyed,
}

impl MachineState {
    /// The state's name on the wire and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::Destroyed => "destroyed",
        }
    }

    /// The state a name stands for, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Expiring, Self::Expired, Self::Destroyed]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

/// Why a machine ended, recorded once, when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Its renter destroyed it.
    DestroyedByUser,
    /// Its prepaid time and the grace period after it ran out.
    Expired,
    /// The provider refused to make it (refunded in full).
    ProviderRejected,
    /// The provider failed while making it (refunded in full).
    ProviderFailed,
    /// It did not answer SSH before the deadline (destroyed and refunded in full).
    NotReachable,
}

impl EndReason {
    /// The reason's name on the wire and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DestroyedByUser => "destroyed_by_user",
            Self::Expired => "expired",
            Self::ProviderRejected => "provider_rejected",
            Self::ProviderFailed => "provider_failed",
            Self::NotReachable => "not_reachable",
        }
    }

    /// The reason a name stands for, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::DestroyedByUser, Self::Expired, Self::ProviderRejected, Self::ProviderFailed, Self::NotReachable]
            .into_iter()
            .find(|reason| reason.as_str() == name)
    }

    /// Whether the renter gets all of its payment back: the machine never served.
    pub const fn refunds_in_full(self) -> bool {
        matches!(self, Self::ProviderRejected | Self::ProviderFailed | Self::NotReachable)
    }
}

/// What happened to a machine, one row of its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MachineEventKind {
    /// Paid for (held) and asked of the provider.
    Requested,
    /// The provider made it.
    Created,
    /// It answered SSH: its time runs from here and the payment is taken.
    Active,
    /// Prepaid time added.
    Extended,
    /// Moved to another plan, its prepaid value kept.
    Resized,
    /// A day of prepaid time left.
    #[serde(rename = "warning_24h")]
    Warning24h,
    /// An hour of prepaid time left.
    #[serde(rename = "warning_1h")]
    Warning1h,
    /// Stopped at expiry; its disk is kept until the grace period ends.
    Stopped,
    /// Started again after an extension in the grace period.
    Restarted,
    /// The provider could not make it, or it was not reachable in time.
    ProvisionFailed,
    /// Its payment went back in full.
    Refunded,
    /// Gone, nothing of it left.
    Destroyed,
}

impl MachineEventKind {
    const ALL: [Self; 12] = [
        Self::Requested,
        Self::Created,
        Self::Active,
        Self::Extended,
        Self::Resized,
        Self::Warning24h,
        Self::Warning1h,
        Self::Stopped,
        Self::Restarted,
        Self::ProvisionFailed,
        Self::Refunded,
        Self::Destroyed,
    ];

    /// The kind's name on the wire and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Created => "created",
            Self::Active => "active",
            Self::Extended => "extended",
            Self::Resized => "resized",
            Self::Warning24h => "warning_24h",
            Self::Warning1h => "warning_1h",
            Self::Stopped => "stopped",
            Self::Restarted => "restarted",
            Self::ProvisionFailed => "provision_failed",
            Self::Refunded => "refunded",
            Self::Destroyed => "destroyed",
        }
    }

    /// The kind a name stands for, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// What kind of machine a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// A shared-CPU VPS (`vc2-*`, most `do:*`).
    Vps,
    /// High-performance CPUs (`vhp-*`).
    HighPerformance,
    /// Dedicated CPUs (`vdc-*`).
    Dedicated,
    /// A GPU machine (`vcg-*`).
    Gpu,
    /// A container on the grid's own host (`local:*`).
    Local,
}

/// A plan's GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GpuInfo {
    /// The GPU model.
    pub model: String,
    /// How many.
    pub count: u32,
    /// Video memory in GB.
    pub vram_gb: u32,
}

/// `GET /compute/plans`: one plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    /// Its id (`local:1c-512mb`, `vc2-1c-1gb`, `vcg-…`, `do:s-1vcpu-1gb`).
    pub id: String,
    /// What kind of machine.
    pub kind: PlanKind,
    /// Where it runs: `local`, `vultr` or `digitalocean`.
    pub backend: String,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// Disk in GB.
    pub disk_gb: u32,
    /// The GPU, if any.
    pub gpu: Option<GpuInfo>,
    /// Price per hour, micro-USD.
    pub hourly_micros: i64,
    /// Price per hour, USD (display).
    pub hourly_usd: f64,
    /// Price per 720-hour month, micro-USD.
    pub monthly_micros: i64,
    /// Price per 720-hour month, USD (display).
    pub monthly_usd: f64,
    /// Regions it can be made in.
    pub regions: Vec<String>,
    /// Whether a machine on it can move to a smaller plan.
    pub can_downgrade: bool,
    /// Whether growing its disk in a resize is permanent (`confirm_disk_resize` needed).
    pub disk_growth_permanent: bool,
    /// Whether a machine made without an SSH key gets a one-time root password.
    pub password_login: bool,
}

/// `GET /compute/plans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanList {
    /// Every plan on sale, cheapest first.
    pub plans: Vec<Plan>,
}

/// `GET /compute/regions`: one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Region {
    /// Its id (`local`, `ewr`, `do:nyc3`).
    pub id: String,
    /// `local`, `vultr` or `digitalocean`.
    pub backend: String,
    /// City.
    pub city: String,
    /// Country code.
    pub country: String,
}

/// `GET /compute/regions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegionList {
    /// Every region.
    pub regions: Vec<Region>,
}

/// `POST /compute/provision`. Exactly one of `prepaid_hours`, `prepaid_days`, `prepaid_months`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    /// The plan's id.
    pub plan: String,
    /// The region's id.
    pub region: String,
    /// The provider's operating system id (ignored by the local backend: Debian 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_id: Option<u32>,
    /// A label for the renter (at most 100 characters, no control characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Prepaid hours (1 to 8,760).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepaid_hours: Option<u32>,
    /// Prepaid days of 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepaid_days: Option<u32>,
    /// Prepaid months of 720 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepaid_months: Option<u32>,
    /// An OpenSSH public key line for root; without one the machine gets a one-time password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_public_key: Option<String>,
    /// Pay from the API key's credits (the default with a key); without a key the grid answers
    /// 402 with its x402 and MPP price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_credits: Option<bool>,
    /// An `https` URL the grid POSTs the machine's warnings and its end to (a [`MachineNotice`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

/// What the grid POSTs to a machine's `webhook_url` at its 24 h and 1 h warnings, when it is
/// stopped at expiry, when it is destroyed, and when it failed to be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MachineNotice {
    /// The machine.
    pub machine_id: String,
    /// Its label.
    pub label: Option<String>,
    /// What happened.
    pub kind: MachineEventKind,
    /// In words.
    pub message: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// Its state after it.
    pub state: MachineState,
    /// When its prepaid time ends, Unix milliseconds.
    pub expires_at_ms: Option<i64>,
}

/// `POST /compute/instances/{id}/extend`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// Hours to add (1 to 8,760).
    pub extend_hours: u32,
    /// Pay from credits (the default with a key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_credits: Option<bool>,
}

/// `POST /compute/instances/{id}/resize`. Charges nothing: the prepaid value left is kept by
/// moving `expires_at` to the new plan's rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeRequest {
    /// The new plan, on the same backend.
    pub plan: String,
    /// Confirms a disk growth that cannot be undone (DigitalOcean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_disk_resize: Option<bool>,
}

/// Where to SSH to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SshAccess {
    /// Host or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
}

/// One entry of a machine's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MachineEvent {
    /// When, RFC 3339.
    pub at: String,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// What happened.
    pub kind: MachineEventKind,
    /// In words.
    pub message: String,
    /// `expires_at_ms` before an extension or resize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_before_ms: Option<i64>,
    /// `expires_at_ms` after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// The plan before a resize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_before: Option<String>,
}

/// A machine as its renter sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MachineView {
    /// `vm_` and 32 hex digits.
    pub id: String,
    /// Always `machine`.
    pub object: String,
    /// The renter's label.
    pub label: Option<String>,
    /// The plan now.
    pub plan: String,
    /// The region.
    pub region: String,
    /// `local`, `vultr` or `digitalocean`.
    pub backend: String,
    /// The operating system id asked for.
    pub os_id: Option<u32>,
    /// Where it stands.
    pub state: MachineState,
    /// Why it ended, once it has.
    pub end_reason: Option<EndReason>,
    /// When it was asked for.
    pub created_at: String,
    /// The same, Unix milliseconds.
    pub created_at_ms: i64,
    /// When it answered SSH (its time runs from here).
    pub active_at: Option<String>,
    /// The same, Unix milliseconds.
    pub active_at_ms: Option<i64>,
    /// When its prepaid time ends.
    pub expires_at: Option<String>,
    /// The same, Unix milliseconds.
    pub expires_at_ms: Option<i64>,
    /// Prepaid hours left, for display.
    pub hours_left: Option<f64>,
    /// When an expired machine is destroyed unless extended.
    pub destroy_at: Option<String>,
    /// The same, Unix milliseconds.
    pub destroy_at_ms: Option<i64>,
    /// When it ended.
    pub ended_at: Option<String>,
    /// The same, Unix milliseconds.
    pub ended_at_ms: Option<i64>,
    /// Where to SSH to, while it runs.
    pub ssh: Option<SshAccess>,
    /// The command to log in with, while it runs.
    pub ssh_command: Option<String>,
    /// Whether a one-time root password waits at `…/password`.
    pub password_available: bool,
    /// The plan's rate, micro-USD per hour.
    pub hourly_micros: i64,
    /// Everything paid for it, micro-USD.
    pub paid_micros: i64,
    /// Everything given back, micro-USD.
    pub refunded_micros: i64,
    /// Where its warnings and end are POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Its log (only in `GET /compute/instances/{id}`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<MachineEvent>,
    /// Shown once, in the answer to a provision paid by x402 or MPP without an API key: a key
    /// of the paying wallet's account, to manage the machine with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_api_key: Option<ApiKey>,
}

/// `GET /compute/instances`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MachineList {
    /// The account's machines, newest first (at most 100).
    pub instances: Vec<MachineView>,
}

/// `GET /compute/instances/{id}/password`: shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MachinePassword {
    /// The machine.
    pub id: String,
    /// Its root password.
    pub password: String,
}

/// Headers of a wallet-signed machine request (no API key).
pub mod wallet_headers {
    /// The wallet (`0x…` EVM address or a base58 ed25519 key).
    pub const WALLET: &str = "x-wallet";
    /// A single-use nonce.
    pub const NONCE: &str = "x-wallet-nonce";
    /// Unix seconds when signed; accepted within five minutes of the grid's clock.
    pub const SIGNED_AT: &str = "x-wallet-signed-at";
    /// The signature over [`super::machine_message`].
    pub const SIGNATURE: &str = "x-wallet-signature";
}

/// The exact text a wallet signs to manage machines:
/// `sgl-machine:v1\n{wallet}\n{action}\n{nonce}\n{signed_at}`, where `action` is
/// `{METHOD} {path}` of the request (`GET /compute/instances`,
/// `POST /compute/instances/vm_…/extend`) followed, for a request with a body, by a space and the
/// body's SHA-256 in hex, so a signature fits one request only.
pub fn machine_message(wallet: &str, action: &str, nonce: &str, signed_at: u64) -> String {
    format!("sgl-machine:v1\n{wallet}\n{action}\n{nonce}\n{signed_at}")
}

/// The action part of [`machine_message`] for a request.
pub fn machine_action(method: &str, path: &str, body: &[u8]) -> String {
    if body.is_empty() {
        format!("{method} {path}")
    } else {
        format!("{method} {path} {}", crate::encoding::sha256_hex(body))
    }
}

/// Why an SSH public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ssh_public_key {0}")]
pub struct BadSshKey(&'static str);

/// Key types a machine accepts.
const SSH_KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
];

/// Checks an OpenSSH public key line (`type base64 [comment]`): one line, a known type, and a
/// base64 blob whose first field repeats the type, at most 16 KiB. Returns the line trimmed.
pub fn check_ssh_public_key(line: &str) -> Result<&str, BadSshKey> {
    use base64::Engine as _;
    let line = line.trim();
    if line.len() > 16 * 1024 {
        return Err(BadSshKey("is longer than 16 KiB"));
    }
    if line.contains(['\n', '\r', '\0']) {
        return Err(BadSshKey("must be one line"));
    }
    let mut fields = line.split_ascii_whitespace();
    let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
        return Err(BadSshKey("must be `type base64 [comment]`, as in an OpenSSH .pub file"));
    };
    if !SSH_KEY_TYPES.contains(&kind) {
        return Err(BadSshKey("has a key type that is not ssh-ed25519, ecdsa-sha2-nistp* or ssh-rsa"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| BadSshKey("has a key that is not base64"))?;
    let named = bytes
        .get(..4)
        .map(|len| u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize)
        .and_then(|len| bytes.get(4..4 + len));
    if named != Some(kind.as_bytes()) {
        return Err(BadSshKey("has a key blob that does not match its type"));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    //! The names of states and end reasons.

    use super::*;

    #[test]
    fn states_and_reasons_are_their_wire_names() {
        for state in [
            MachineState::Pending,
            MachineState::Active,
            MachineState::Expiring,
            MachineState::Expired,
            MachineState::Destroyed,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            assert_eq!(MachineState::from_name(state.as_str()), Some(state));
        }
        assert_eq!(MachineState::from_name("running"), None);
        assert_eq!(serde_json::to_value(EndReason::NotReachable).unwrap(), "not_reachable");
        assert!(EndReason::ProviderRejected.refunds_in_full() && !EndReason::DestroyedByUser.refunds_in_full());
        for kind in MachineEventKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(MachineEventKind::from_name(kind.as_str()), Some(kind));
        }
    }

    /// A real key from `ssh-keygen -t ed25519`.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILR/5UCoZ0aNkeJKDc08SPQUBSrG1DSl+AyBgYx2GcLN test@sgl";

    #[test]
    fn ssh_keys_are_checked() {
        assert_eq!(check_ssh_public_key(&format!("  {ED25519}\n")), Ok(ED25519));
        let refused = |line: &str| check_ssh_public_key(line).unwrap_err().to_string();
        assert!(refused("ssh-ed25519").contains("type base64"));
        assert!(refused("ssh-dss AAAA").contains("key type"));
        assert!(refused("ssh-ed25519 !!!!").contains("not base64"));
        let swapped = ED25519.replace("ssh-ed25519", "ssh-rsa");
        assert!(refused(&swapped).contains("does not match"));
        assert!(refused(&format!("{ED25519}\nssh-ed25519 AAAA")).contains("one line"));
    }

    #[test]
    fn a_signature_fits_one_request() {
        assert_eq!(machine_action("GET", "/compute/instances", b""), "GET /compute/instances");
        let extend = machine_action("POST", "/compute/instances/vm_1/extend", br#"{"extend_hours":2}"#);
        assert!(
            extend.starts_with("POST /compute/instances/vm_1/extend ")
                && extend.len() == "POST /compute/instances/vm_1/extend ".len() + 64
        );
        assert_eq!(
            machine_message("0xw", "DELETE /compute/instances/vm_1", "n", 7),
            "sgl-machine:v1\n0xw\nDELETE /compute/instances/vm_1\nn\n7"
        );
    }

    #[test]
    fn a_provision_request_refuses_unknown_fields() {
        let json = serde_json::json!({"plan": "local:1c-512mb", "region": "local", "prepaid_hours": 2});
        let request: ProvisionRequest = serde_json::from_value(json).unwrap();
        assert_eq!(request.prepaid_hours, Some(2));
        let typo = serde_json::json!({"plan": "p", "region": "r", "prepaid_hour": 2});
        assert!(serde_json::from_value::<ProvisionRequest>(typo).is_err());
    }
}
