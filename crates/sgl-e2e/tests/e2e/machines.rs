//! Scenario: machines rented by the hour on a real `sgl-grid up --nodes 0`. A caller provisions
//! a local machine (systemd-nspawn) with credits through `sgl-cloud machines provision --wait`,
//! logs into it with `ssh` and runs a command; extends and resizes it (expires_at exact to the
//! millisecond); another account sees nothing; a wallet pays a second machine with the stock
//! Python `x402` client and an hour more of it with `pympp` (MPP), and removes it with the
//! management key; a provider failure injected into
//! the Vultr test double is refunded in full; then the grid's clock jumps through the first
//! machine's expiry: one 24 h and one 1 h warning, stopped at expiry (disk kept), destroyed after
//! the grace period. Every destroy leaves nothing on the host; the ledger audit is sound.

use std::path::Path;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};
use sgl_provider_doubles::Op;

use crate::support::machines::{MachineGrid, machine_image};
use crate::support::{DEADLINE, exclusive, python_x402, test_env};

const HOUR: i64 = 3_600_000;
/// `local:1c-512mb` and `local:2c-1gb`, micro-USD per hour (the defaults of `[machines.local]`).
const SMALL: i64 = 5_000;
const LARGE: i64 = 10_000;

async fn command(program: &str, args: &[&str]) -> (bool, String) {
    let run = tokio::process::Command::new(program).args(args).output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("in time").expect("it runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// A new ed25519 key pair without a passphrase, `dir/id_ed25519` and its `.pub`.
pub(crate) async fn ssh_key(dir: &Path) -> std::path::PathBuf {
    let key_file = dir.join("id_ed25519");
    let (made, text) =
        command("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", &key_file.to_string_lossy()]).await;
    assert!(made, "{text}");
    key_file
}

/// What of machine `id` is left on this host: processes, mounts, its directory.
pub(crate) fn leftovers(grid: &MachineGrid, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let name = id.replace('_', "-");
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&name) {
            found.push(format!("process {}", entry.file_name().to_string_lossy()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    found.extend(mounts.lines().filter(|line| line.contains(id)).map(|line| format!("mount {line}")));
    let dir = grid.data_dir().join("machines").join(id);
    if dir.exists() {
        found.push(format!("directory {}", dir.display()));
    }
    found
}

/// Network namespaces and links the local backend made (`sglm*`).
pub(crate) async fn network_leftovers() -> Vec<String> {
    let (_, namespaces) = command("ip", &["netns", "list"]).await;
    let (_, links) = command("ip", &["-o", "link"]).await;
    namespaces.lines().chain(links.lines()).filter(|line| line.contains("sglm")).map(str::to_owned).collect()
}

async fn ssh(key: &Path, port: u16, remote: &str) -> (bool, String) {
    let port = port.to_string();
    let key = key.to_string_lossy();
    let options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"];
    let mut args = vec!["-i", &key, "-p", &port];
    args.extend(options);
    args.extend(["-o", "ConnectTimeout=5", "root@127.0.0.1", remote]);
    command("ssh", &args).await
}

/// The machine as its owner sees it, once `done` holds (the leader works once a second).
async fn wait_machine(grid: &MachineGrid, key: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    crate::support::wait_for(&format!("machine {id}"), || async {
        let (status, machine) = grid.get(key, &format!("/compute/instances/{id}")).await;
        (status == 200 && done(&machine)).then_some(machine)
    })
    .await
}

pub(crate) async fn balance(grid: &MachineGrid, key: &str) -> i64 {
    let (_, balance) = grid.get(key, "/compute/credits/balance").await;
    balance["balance_micros"].as_i64().unwrap_or_else(|| panic!("a balance: {balance}"))
}

fn kinds(machine: &Value) -> Vec<String> {
    machine["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machines_are_rented_used_extended_resized_expired_and_removed() {
    let Some(env) = test_env() else { return };
    let Some(image) = machine_image() else { return };
    if !python_x402() {
        return;
    }
    let _turn = exclusive().await;
    let mut grid = MachineGrid::start(&env.grid_binary, &image).await.expect("a grid selling machines");
    let key_file = ssh_key(grid.root.path()).await;
    let api_key = grid.api_key.clone();
    let before = balance(&grid, &api_key).await;
    // What another run that failed half-way may have left; this run must add nothing to it.
    let network_before = network_leftovers().await;

    // Provision with credits; SSH answers and runs a command.
    let key_arg = key_file.to_string_lossy().into_owned();
    let args = ["machines", "provision", "--plan", "local:1c-512mb", "--region", "local", "--hours", "60"];
    let (ok, machine) = grid.cloud(&api_key, &[&args[..], &["--ssh-key-file", &key_arg, "--wait"]].concat()).await;
    assert!(ok, "{machine}\n{}", grid.log());
    let id = machine["id"].as_str().unwrap().to_owned();
    let seconds = machine["provision_seconds"].as_f64().unwrap();
    eprintln!("machines: {id} reachable by SSH {seconds:.2} s after `sgl-cloud machines provision`");
    assert_eq!(machine["state"], "active", "{machine}");
    let port = u16::try_from(machine["ssh"]["port"].as_u64().unwrap()).unwrap();
    assert!(machine["ssh_command"].as_str().unwrap().contains(&format!("-i {key_arg}")), "{machine}");
    let (ok, out) = ssh(&key_file, port, "echo ok; hostname; systemctl is-system-running").await;
    assert!(ok, "ssh: {out}");
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("Warning:")).collect();
    assert_eq!(lines, ["ok", &id.replace('_', "-"), "running"], "{out}");
    assert_eq!(balance(&grid, &api_key).await, before - 60 * SMALL, "exactly 60 h at the plan's rate");

    // Extend by 3 h: expires_at moves by exactly that; resize keeps the value left, to the ms.
    let expires = machine["expires_at_ms"].as_i64().unwrap();
    let (ok, extended) = grid.cloud(&api_key, &["machines", "extend", &id, "--hours", "3"]).await;
    assert!(ok, "{extended}");
    assert_eq!(extended["expires_at_ms"].as_i64(), Some(expires + 3 * HOUR));
    assert_eq!(balance(&grid, &api_key).await, before - 63 * SMALL);
    let (ok, resized) = grid.cloud(&api_key, &["machines", "resize", &id, "--plan", "local:2c-1gb"]).await;
    assert!(ok, "{resized}");
    let (ok, shown) = grid.cloud(&api_key, &["machines", "show", &id]).await;
    assert!(ok);
    let event = shown["events"].as_array().unwrap().iter().find(|e| e["kind"] == "resized").unwrap().clone();
    let (at, was) = (event["at_ms"].as_i64().unwrap(), event["expires_at_before_ms"].as_i64().unwrap());
    assert_eq!(was, expires + 3 * HOUR);
    let after = at + (was - at) * SMALL / LARGE;
    assert_eq!((resized["expires_at_ms"].as_i64(), event["expires_at_ms"].as_i64()), (Some(after), Some(after)));
    assert_eq!(balance(&grid, &api_key).await, before - 63 * SMALL, "a resize is free");
    assert_eq!(resized["state"], "active", "31.5 h left at the new rate");
    let (ok, out) = ssh(&key_file, port, "cat /proc/self/cgroup >/dev/null && echo still-here").await;
    assert!(ok && out.contains("still-here"), "the machine lives through a resize: {out}");

    // Another account finds nothing on any route.
    let stranger = grid.admin(&["api-key", "create", "--credits-usd", "1"]).await;
    let stranger = stranger["api_key"].as_str().unwrap().to_owned();
    let path = format!("/compute/instances/{id}");
    for (method, route, body) in [
        (reqwest::Method::GET, path.clone(), None),
        (reqwest::Method::GET, format!("{path}/password"), None),
        (reqwest::Method::POST, format!("{path}/extend"), Some(json!({"extend_hours": 1}))),
        (reqwest::Method::POST, format!("{path}/resize"), Some(json!({"plan": "local:1c-512mb"}))),
        (reqwest::Method::DELETE, path.clone(), None),
    ] {
        let (status, body) = grid.call(&stranger, method.clone(), &route, body).await;
        assert_eq!(status, 404, "{method} {route}: {body}");
    }
    let (_, list) = grid.get(&stranger, "/compute/instances").await;
    assert_eq!(list["instances"], json!([]));

    x402_machine(&grid, &key_file).await;
    provider_failure_is_refunded(&grid, &api_key, &key_arg).await;
    expiry(&grid, &api_key, &id, port, &key_file).await;

    assert_eq!(network_leftovers().await, network_before, "every namespace and link made was removed");
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");
    grid.stop().await;
}

/// A wallet pays a machine with the stock Python `x402` client, an extension of it with the MPP
/// client `pympp`, and destroys it with its management key.
async fn x402_machine(grid: &MachineGrid, key_file: &Path) {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let payer_key = format!("0x{}", hex::encode(secret));
    let (_, address) = command(
        "python3",
        &[
            "-c",
            "import sys; from eth_account import Account; print(Account.from_key(sys.argv[1]).address.lower())",
            &payer_key,
        ],
    )
    .await;
    grid.admin(&["faucet", "--address", address.trim(), "--usdc", "1"]).await;
    let public_key = std::fs::read_to_string(key_file.with_extension("pub")).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/x402_machine.py");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .env("SGL_E2E_BASE_URL", &grid.base_url)
        .env("SGL_E2E_PAYER_KEY", &payer_key)
        .env("SGL_E2E_SSH_KEY", public_key.trim())
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.expect("in time").expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "x402_machine.py: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("one JSON line");
    assert_eq!((summary["quote_micros"].as_i64(), summary["paid_micros"].as_i64()), (Some(SMALL), Some(SMALL)));
    assert_eq!(summary["extended_paid_micros"].as_i64(), Some(2 * SMALL), "an hour more, paid with MPP");
    let (id, management) = (summary["id"].as_str().unwrap(), summary["management_api_key"].as_str().unwrap());
    wait_machine(grid, management, id, |m| m["state"] == "expiring").await;
    let (ok, gone) = grid.cloud(management, &["machines", "destroy", id]).await;
    assert!(ok, "{gone}");
    assert_eq!((gone["state"].as_str(), gone["end_reason"].as_str()), (Some("destroyed"), Some("destroyed_by_user")));
    assert!(leftovers(grid, id).is_empty(), "{:?}", leftovers(grid, id));
}

/// The Vultr double fails the create: the machine ends `provider_failed`, every micro-unit back.
async fn provider_failure_is_refunded(grid: &MachineGrid, api_key: &str, key_arg: &str) {
    let before = balance(grid, api_key).await;
    grid.vultr.fail_next(Op::Create, 500, json!({"error": "Internal server error.", "status": 500}));
    let args = ["machines", "provision", "--plan", "vc2-1c-1gb", "--region", "ewr", "--hours", "2", "--wait"];
    let (ok, failed) = grid.cloud(api_key, &[&args[..], &["--ssh-key-file", key_arg]].concat()).await;
    assert!(!ok, "{failed}");
    let message = failed["error"].as_str().unwrap();
    assert!(message.contains("provider_failed") && message.contains("refunded"), "{message}");
    assert_eq!(balance(grid, api_key).await, before, "refunded in full");
    let (_, list) = grid.get(api_key, "/compute/instances").await;
    let failed = &list["instances"][0];
    assert_eq!((failed["plan"].as_str(), failed["end_reason"].as_str()), (Some("vc2-1c-1gb"), Some("provider_failed")));
    assert_eq!(failed["refunded_micros"], failed["paid_micros"]);
}

/// The grid's clock jumps to an hour before the end, past the end, past the grace period.
async fn expiry(grid: &MachineGrid, api_key: &str, id: &str, port: u16, key_file: &Path) {
    let (_, machine) = grid.get(api_key, &format!("/compute/instances/{id}")).await;
    let expires = machine["expires_at_ms"].as_i64().unwrap();
    let now = || {
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
    };
    grid.set_clock_offset(expires - HOUR + 1_000 - now());
    let warned = wait_machine(grid, api_key, id, |m| kinds(m).iter().any(|k| k == "warning_1h")).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (_, warned_later) = grid.get(api_key, &format!("/compute/instances/{id}")).await;
    let count = |kind: &str| kinds(&warned_later).iter().filter(|k| *k == kind).count();
    assert_eq!((count("warning_24h"), count("warning_1h")), (1, 1), "{warned}");
    assert_eq!(warned_later["state"], "expiring");

    grid.set_clock_offset(expires + 1_000 - now());
    let stopped = wait_machine(grid, api_key, id, |m| m["state"] == "expired").await;
    let destroy_at = stopped["destroy_at_ms"].as_i64().unwrap();
    assert_eq!(destroy_at, expires + 24 * HOUR, "a day of grace");
    let (ok, _) = ssh(key_file, port, "true").await;
    assert!(!ok, "a stopped machine does not answer SSH");
    assert!(grid.data_dir().join("machines").join(id).exists(), "its disk is kept during the grace period");

    grid.set_clock_offset(destroy_at + 1_000 - now());
    let ended = wait_machine(grid, api_key, id, |m| m["state"] == "destroyed").await;
    assert_eq!(ended["end_reason"], "expired", "{ended}");
    let kinds = kinds(&ended);
    assert!(kinds.ends_with(&["stopped".to_owned(), "destroyed".to_owned()]), "{kinds:?}");
    assert!(leftovers(grid, id).is_empty(), "{:?}", leftovers(grid, id));
}
