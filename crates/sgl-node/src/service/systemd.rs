//! The systemd `--user` unit: rendering with systemd's quoting rules, and `systemctl show`
//! parsing.
//!
//! Sandbox choices beyond the seed's list (§5.3):
//! - `ProtectHome=tmpfs` instead of `true`, with `BindPaths=` for the config and log directories
//!   and `BindReadOnlyPaths=` for the model and the executable. With `ProtectHome=true` the home
//!   directory is inaccessible and `ReadWritePaths=` under it does not reliably re-open it; a
//!   model or an `sgl` kept under `~` would not even be reachable. `ReadWritePaths=` and
//!   `ReadOnlyPaths=` are kept as well, for paths outside the home directory under
//!   `ProtectSystem=strict`.
//! - No `MemoryDenyWriteExecute=` and no `PrivateDevices=`, as in the seed: CUDA's PTX JIT and
//!   some GPU drivers map writable-executable memory, and GPUs are device nodes. A CPU-only
//!   node would tolerate `MemoryDenyWriteExecute=true`; one profile for all is simpler to
//!   support.
//! - `UMask=0077` (keys and logs stay private) and `LimitCORE=0` (no core dumps of prompts).
//! - `Restart=on-failure` rather than `always`: a clean exit is deliberate (e.g. the grid
//!   retired the node) and must not loop; `StartLimitBurst=10` in `StartLimitIntervalSec=600`
//!   stops a crash loop (a broken model) after ten tries, visible as `failed`.
//!
//! In a `--user` manager these options imply `PrivateUsers=` and need unprivileged user
//! namespaces (S9); where the kernel forbids them the unit fails to start with a namespace
//! error, which `sgl service status` shows.

use std::path::{Path, PathBuf};

use super::{LABEL, ServiceError, ServiceSpec, ServiceStatus};

/// Hardening directives written into every unit, in order (tests check each is present).
pub const HARDENING: &[&str] = &[
    "NoNewPrivileges=true",
    "PrivateTmp=true",
    "ProtectSystem=strict",
    "ProtectHome=tmpfs",
    "ProtectKernelTunables=true",
    "ProtectKernelModules=true",
    "ProtectKernelLogs=true",
    "ProtectControlGroups=true",
    "ProtectClock=true",
    "ProtectHostname=true",
    "RestrictRealtime=true",
    "RestrictSUIDSGID=true",
    "RestrictNamespaces=true",
    "LockPersonality=true",
    "RemoveIPC=true",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "SystemCallArchitectures=native",
    "SystemCallErrorNumber=EPERM",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @obsolete @mount @reboot @swap @raw-io @cpu-emulation",
    "UMask=0077",
    "LimitCORE=0",
];

/// The unit file for `spec`.
pub fn render_systemd_unit(spec: &ServiceSpec) -> Result<String, ServiceError> {
    let exec_start = std::iter::once(spec.executable().display().to_string())
        .chain(spec.arguments().iter().cloned())
        .map(|arg| quote_exec_arg(&arg))
        .collect::<Vec<_>>()
        .join(" ");
    let mut unit = format!(
        "# Written by `sgl service install`; re-run it to change this file, `sgl service uninstall` to remove it.\n\
         [Unit]\n\
         Description=SGL compute grid node ({LABEL})\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         StartLimitIntervalSec=600\n\
         StartLimitBurst=10\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={exec_start}\n"
    );
    for (name, value) in spec.environment() {
        unit.push_str(&format!("Environment={}\n", quote_environment(name, value)));
    }
    unit.push_str(
        "Restart=on-failure\n\
         RestartSec=15\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=30\n\
         StandardOutput=journal\n\
         StandardError=journal\n\
         SyslogIdentifier=sgl\n",
    );
    for directive in HARDENING {
        unit.push_str(directive);
        unit.push('\n');
    }
    let writable = [spec.config_dir(), spec.log_dir()];
    let extra = spec.read_only_paths().iter().map(PathBuf::as_path);
    let readable: Vec<&Path> = spec.model_path().into_iter().chain([spec.executable()]).chain(extra.clone()).collect();
    unit.push_str(&format!("BindPaths={}\n", path_list("-", &writable)?));
    unit.push_str(&format!("ReadWritePaths={}\n", path_list("-", &writable)?));
    unit.push_str(&format!("BindReadOnlyPaths={}\n", path_list("-", &readable)?));
    let read_only: Vec<&Path> = spec.model_path().into_iter().chain(extra).collect();
    if !read_only.is_empty() {
        unit.push_str(&format!("ReadOnlyPaths={}\n", path_list("-", &read_only)?));
    }
    unit.push_str("\n[Install]\nWantedBy=default.target\n");
    Ok(unit)
}

/// One `ExecStart=` word: `%` and `$` doubled (specifiers, variable expansion), and double-quoted
/// with `\\` and `\"` escapes when it holds anything but plainly safe characters.
pub fn quote_exec_arg(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let is_plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%$~".contains(c));
    if is_plain { escaped } else { format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\"")) }
}

/// `"NAME=value"` for `Environment=`: quoted, `\\` and `\"` escaped, `%` doubled (`$` is literal
/// in `Environment=`).
pub fn quote_environment(name: &str, value: &str) -> String {
    let assignment = format!("{name}={value}").replace('%', "%%");
    format!("\"{}\"", assignment.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A space-separated path list with a prefix such as `-` (ignore if missing). Paths with spaces
/// are quoted; `"`, `\` and `:` (the `BindPaths=` separator) are refused rather than escaped.
fn path_list(prefix: &str, paths: &[&Path]) -> Result<String, ServiceError> {
    let mut words = Vec::new();
    for path in paths {
        let text = path.display().to_string();
        if !path.is_absolute() || text.contains(['"', '\\', ':']) || text.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(format!(
                "{text}: systemd needs an absolute path without quotes, backslashes or colons here"
            )));
        }
        let word = format!("{prefix}{}", text.replace('%', "%%"));
        words.push(if word.contains(char::is_whitespace) { format!("\"{word}\"") } else { word });
    }
    Ok(words.join(" "))
}

/// `systemctl --user show -p LoadState,ActiveState,SubState,MainPID,NRestarts,ExecMainStatus`
/// output (`Key=value` lines) as a status. `installed` says whether the unit file exists.
pub fn parse_systemctl_show(text: &str, installed: bool) -> ServiceStatus {
    let value = |key: &str| {
        text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('=')).map(str::trim).filter(|v| !v.is_empty())
    };
    let loaded = value("LoadState").is_some_and(|s| s == "loaded");
    let pid = value("MainPID").and_then(|p| p.parse().ok()).filter(|p| *p != 0);
    ServiceStatus {
        platform: super::Platform::Systemd,
        installed,
        loaded,
        state: value("ActiveState").unwrap_or("unknown").to_owned(),
        sub_state: value("SubState").map(str::to_owned),
        pid,
        restarts: value("NRestarts").and_then(|n| n.parse().ok()),
        last_exit_code: value("ExecMainStatus").and_then(|n| n.parse().ok()),
    }
}
