//! Unit and plist rendering, quoting, status parsing on fixed text, install and uninstall
//! against a recording command runner, and `systemd-analyze verify` where it exists.

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;

use super::*;

fn full_options(home: &Path) -> StartOptions {
    StartOptions {
        model_path: Some(home.join("models/gemma 3.gguf")),
        model_name: Some("gemma-3-270m".to_owned()),
        resource_percent: 50,
        threads: Some(6),
        gpu_layers: Some(99),
        context_size: Some(8192),
        max_jobs: Some(2),
        batch_size: Some(512),
        inference_port: Some(8081),
        heartbeat_interval: Some(30),
        engine: Some("inprocess".to_owned()),
        engine_url: Some("http://127.0.0.1:8080/v1".to_owned()),
        llama_server: Some(home.join("bin/llama-server")),
        chat_template: Some("gemma".to_owned()),
        cluster: Some("gpu-eu".to_owned()),
        workloads: Some("chat,wasm".to_owned()),
        compute_slots: Some(2),
        orchestrator_url: Some("https://grid.example".to_owned()),
        no_websocket: true,
        log_json: false,
        config_dir: home.join(".config/sgl-node"),
        log_file: home.join(".local/share/sgl-node/sgl-node.log"),
    }
}

fn spec(home: &Path, executable: &Path) -> ServiceSpec {
    let environment =
        vec![("SGL_ENGINE".to_owned(), "inprocess".to_owned()), ("RUST_LOG".to_owned(), "info".to_owned())];
    ServiceSpec::new(executable, &full_options(home), environment, home).expect("valid spec")
}

#[test]
fn start_options_pass_every_flag_and_services_default_to_fifty_percent() {
    let home = Path::new("/home/op");
    let args = full_options(home).to_args();
    assert_eq!(args[0], "start");
    for flag in [
        "--model-path",
        "--model-name",
        "--resource-percent",
        "--threads",
        "--gpu-layers",
        "--context-size",
        "--max-jobs",
        "--batch-size",
        "--inference-port",
        "--heartbeat-interval",
        "--engine",
        "--engine-url",
        "--llama-server",
        "--chat-template",
        "--cluster",
        "--workloads",
        "--compute-slots",
        "--orchestrator-url",
        "--config-dir",
        "--log-file",
    ] {
        let at = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{flag} missing"));
        assert!(!args[at + 1].starts_with("--"), "{flag} has a value");
    }
    assert!(args.contains(&"--no-websocket".to_owned()) && !args.contains(&"--log-json".to_owned()));
    let minimal = StartOptions::new(home.join("cfg"), home.join("log/sgl.log")).to_args();
    assert_eq!(
        minimal,
        ["start", "--resource-percent", "50", "--config-dir", "/home/op/cfg", "--log-file", "/home/op/log/sgl.log"]
    );
    let env = persisted_environment(|name| (name == "SGL_ENGINE").then(|| "server".to_owned()));
    assert_eq!(env, [("SGL_ENGINE".to_owned(), "server".to_owned())]);
}

#[test]
fn spec_refuses_relative_executables_control_characters_and_bad_names() {
    let home = Path::new("/home/op");
    let options = full_options(home);
    let invalid = |r: Result<ServiceSpec, ServiceError>| matches!(r, Err(ServiceError::Invalid(_)));
    assert!(invalid(ServiceSpec::new(Path::new("sgl"), &options, vec![], home)));
    let mut newline = options.clone();
    newline.model_name = Some("a\nExecStartPre=/bin/evil".to_owned());
    assert!(invalid(ServiceSpec::new(Path::new("/usr/bin/sgl"), &newline, vec![], home)));
    let bad_env = vec![("BAD NAME".to_owned(), "x".to_owned())];
    assert!(invalid(ServiceSpec::new(Path::new("/usr/bin/sgl"), &options, bad_env, home)));
    let newline_env = vec![("RUST_LOG".to_owned(), "info\nUser=root".to_owned())];
    assert!(invalid(ServiceSpec::new(Path::new("/usr/bin/sgl"), &options, newline_env, home)));
}

#[test]
fn exec_arguments_are_quoted_the_way_systemd_reads_them() {
    assert_eq!(systemd::quote_exec_arg("--threads"), "--threads");
    assert_eq!(systemd::quote_exec_arg("https://grid.example:443/x"), "https://grid.example:443/x");
    assert_eq!(systemd::quote_exec_arg("/home/op/my models/a.gguf"), "\"/home/op/my models/a.gguf\"");
    assert_eq!(systemd::quote_exec_arg("100%"), "100%%");
    assert_eq!(systemd::quote_exec_arg("$HOME"), "$$HOME");
    assert_eq!(systemd::quote_exec_arg("say \"hi\""), "\"say \\\"hi\\\"\"");
    assert_eq!(systemd::quote_exec_arg("C:\\x"), "\"C:\\\\x\"");
    assert_eq!(systemd::quote_exec_arg("it's"), "\"it's\"");
    assert_eq!(systemd::quote_exec_arg(""), "\"\"");
    assert_eq!(systemd::quote_exec_arg(";"), "\";\"");
    assert_eq!(systemd::quote_exec_arg("a%$ b"), "\"a%%$$ b\"");
    assert_eq!(
        systemd::quote_environment("RUST_LOG", "sgl=debug,%h \"x\" $y"),
        "\"RUST_LOG=sgl=debug,%%h \\\"x\\\" $y\""
    );
}

#[test]
fn systemd_unit_has_every_hardening_directive_restart_policy_env_and_paths() {
    let home = Path::new("/home/op");
    let unit = systemd::render_systemd_unit(&spec(home, Path::new("/usr/local/bin/sgl"))).expect("renders");
    let lines: Vec<&str> = unit.lines().collect();
    for directive in systemd::HARDENING {
        assert!(lines.contains(directive), "{directive} missing:\n{unit}");
    }
    for directive in [
        "[Unit]",
        "After=network-online.target",
        "Wants=network-online.target",
        "StartLimitIntervalSec=600",
        "StartLimitBurst=10",
        "[Service]",
        "Restart=on-failure",
        "RestartSec=15",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
        "StandardOutput=journal",
        "StandardError=journal",
        "Environment=\"SGL_ENGINE=inprocess\"",
        "Environment=\"RUST_LOG=info\"",
        "BindPaths=-/home/op/.config/sgl-node -/home/op/.local/share/sgl-node",
        "ReadWritePaths=-/home/op/.config/sgl-node -/home/op/.local/share/sgl-node",
        "BindReadOnlyPaths=\"-/home/op/models/gemma 3.gguf\" -/usr/local/bin/sgl",
        "ReadOnlyPaths=\"-/home/op/models/gemma 3.gguf\"",
        "[Install]",
        "WantedBy=default.target",
    ] {
        assert!(lines.contains(&directive), "{directive} missing:\n{unit}");
    }
    for absent in ["MemoryDenyWriteExecute", "PrivateDevices", "StandardOutput=append"] {
        assert!(!unit.contains(absent), "{absent} present:\n{unit}");
    }
    let exec = lines.iter().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    assert!(exec.starts_with("/usr/local/bin/sgl start --model-path \"/home/op/models/gemma 3.gguf\" "), "{exec}");
    assert!(exec.contains(" --gpu-layers 99 ") && exec.contains(" --engine-url http://127.0.0.1:8080/v1 "));
    assert!(exec.ends_with(" --log-file /home/op/.local/share/sgl-node/sgl-node.log --no-websocket"), "{exec}");
    // StartLimit* belong to [Unit]; systemd ignores them in [Service].
    let service_at = unit.find("[Service]").expect("section");
    assert!(unit.find("StartLimitBurst").expect("present") < service_at);
}

#[test]
fn systemd_unit_without_a_model_and_with_a_path_systemd_cannot_express() {
    let home = Path::new("/home/op");
    let mut options = full_options(home);
    options.model_path = None;
    let unit = systemd::render_systemd_unit(
        &ServiceSpec::new(Path::new("/usr/bin/sgl"), &options, vec![], home).expect("spec"),
    )
    .expect("renders");
    assert!(!unit.lines().any(|l| l.starts_with("ReadOnlyPaths=")), "{unit}");
    assert!(unit.lines().any(|l| l == "BindReadOnlyPaths=-/usr/bin/sgl"), "{unit}");
    let with_server = ServiceSpec::new(Path::new("/usr/bin/sgl"), &options, vec![], home)
        .expect("spec")
        .with_read_only_path(home.join(".local/bin/llama-server"));
    let unit = systemd::render_systemd_unit(&with_server).expect("renders");
    assert!(unit.contains("\nBindReadOnlyPaths=-/usr/bin/sgl -/home/op/.local/bin/llama-server\n"), "{unit}");
    assert!(unit.contains("\nReadOnlyPaths=-/home/op/.local/bin/llama-server\n"), "{unit}");
    assert!(!unit.contains("Environment="));
    options.model_path = Some(home.join("models/a:b.gguf"));
    let spec = ServiceSpec::new(Path::new("/usr/bin/sgl"), &options, vec![], home).expect("spec");
    assert!(matches!(systemd::render_systemd_unit(&spec), Err(ServiceError::Invalid(_))));
}

/// Checks that every element is closed in order, the way a plist parser would need, and returns
/// the text of each `<string>` in order, unescaped.
fn check_xml(xml: &str) -> Vec<String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut strings = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>'), "stray '>' in {text:?}");
        if stack.last() == Some(&"string") {
            strings.push(
                text.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            );
        }
        for entity in text.split('&').skip(1) {
            assert!(
                ["amp;", "lt;", "gt;", "quot;", "apos;"].iter().any(|e| entity.starts_with(e)),
                "bad entity in {text:?}"
            );
        }
        let close = open + rest[open..].find('>').expect("tag closed");
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let name = tag.trim_start_matches('/').trim_end_matches('/').split_whitespace().next().expect("tag name");
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(closing), "mismatched </{closing}>");
        } else if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
    assert!(rest.trim().is_empty());
    strings
}

#[test]
fn launchd_plist_is_well_formed_escaped_and_complete() {
    let home = Path::new("/Users/op");
    let mut options = full_options(home);
    options.model_name = Some("<a & b> \"c\" 'd'".to_owned());
    let environment = vec![("SGL_ENGINE".to_owned(), "in&process".to_owned())];
    let spec = ServiceSpec::new(Path::new("/usr/local/bin/sgl"), &options, environment, home).expect("spec");
    let plist = launchd::render_launchd_plist(&spec);
    let strings = check_xml(&plist);
    assert!(plist.contains("&lt;a &amp; b&gt; &quot;c&quot; &apos;d&apos;"));
    let mut expected_program = vec!["/usr/bin/caffeinate".to_owned(), "-i".to_owned(), "/usr/local/bin/sgl".to_owned()];
    expected_program.extend(options.to_args());
    let at = strings.iter().position(|s| s == "/usr/bin/caffeinate").expect("ProgramArguments");
    assert_eq!(strings[at..at + expected_program.len()], expected_program[..]);
    assert_eq!(strings[0], LABEL);
    assert!(strings.contains(&"in&process".to_owned()));
    for fragment in [
        "<key>RunAtLoad</key>\n\t<true/>",
        "<key>KeepAlive</key>\n\t<true/>",
        "<key>ThrottleInterval</key>\n\t<integer>15</integer>",
        "<key>ProcessType</key>\n\t<string>Interactive</string>",
        "<key>EnvironmentVariables</key>",
        "<key>StandardOutPath</key>\n\t<string>/Users/op/Library/Logs/sgl-node/launchd.log</string>",
        "<key>StandardErrorPath</key>\n\t<string>/Users/op/Library/Logs/sgl-node/launchd.log</string>",
    ] {
        assert!(plist.contains(fragment), "{fragment} missing:\n{plist}");
    }
}

#[test]
fn systemctl_show_parses_running_failed_and_missing_units() {
    let running =
        "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nNRestarts=3\nExecMainStatus=0\n";
    let status = systemd::parse_systemctl_show(running, true);
    assert_eq!(
        status,
        ServiceStatus {
            platform: Platform::Systemd,
            installed: true,
            loaded: true,
            state: "active".to_owned(),
            sub_state: Some("running".to_owned()),
            pid: Some(4242),
            restarts: Some(3),
            last_exit_code: Some(0),
        }
    );
    let failed = "MainPID=0\nNRestarts=10\nExecMainStatus=1\nLoadState=loaded\nActiveState=failed\nSubState=failed\n";
    let status = systemd::parse_systemctl_show(failed, true);
    assert_eq!((status.state.as_str(), status.pid, status.last_exit_code), ("failed", None, Some(1)));
    let missing =
        "LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nNRestarts=0\nExecMainStatus=0\n";
    let status = systemd::parse_systemctl_show(missing, false);
    assert!(!status.loaded && !status.installed && status.state == "inactive");
    let json = serde_json::to_value(&status).expect("serialises");
    assert_eq!(json["platform"], "systemd");
    assert_eq!(json["pid"], serde_json::Value::Null);
}

#[test]
fn launchctl_print_parses_top_level_lines_only() {
    let text = "gui/501/cc.x402compute.sglnode = {\n\tactive count = 1\n\tpath = /Users/op/Library/LaunchAgents/cc.x402compute.sglnode.plist\n\tstate = running\n\n\tprogram = /usr/bin/caffeinate\n\targuments = {\n\t\t/usr/bin/caffeinate\n\t\t-i\n\t}\n\n\tendpoints = {\n\t\tstate = active\n\t}\n\truns = 4\n\tpid = 812\n\timmediate reason = speculative\n\tlast exit code = 1\n}\n";
    let status = launchd::parse_launchctl_print(text, true);
    assert_eq!(
        (status.state.as_str(), status.pid, status.restarts, status.last_exit_code),
        ("running", Some(812), Some(4), Some(1))
    );
    let fresh = "x = {\n\tstate = not running\n\truns = 0\n\tlast exit code = (never exited)\n}\n";
    let status = launchd::parse_launchctl_print(fresh, true);
    assert_eq!((status.state.as_str(), status.pid, status.last_exit_code), ("not running", None, None));
}

/// Records every command and answers from a fixed function.
struct Recorder<F: Fn(&[String]) -> io::Result<CommandOutput>> {
    calls: RefCell<Vec<String>>,
    answer: F,
}

impl<F: Fn(&[String]) -> io::Result<CommandOutput>> CommandRunner for Recorder<F> {
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput> {
        self.calls.borrow_mut().push(argv.join(" "));
        (self.answer)(argv)
    }
}

fn recorder<F: Fn(&[String]) -> io::Result<CommandOutput>>(answer: F) -> Recorder<F> {
    Recorder { calls: RefCell::new(Vec::new()), answer }
}

fn exit(code: i32, stdout: &str, stderr: &str) -> io::Result<CommandOutput> {
    Ok(CommandOutput { code: Some(code), stdout: stdout.to_owned(), stderr: stderr.to_owned() })
}

#[test]
fn systemd_install_writes_the_unit_0644_then_reloads_and_enables() {
    let home = tempfile::tempdir().expect("tempdir");
    let paths = ServicePaths::new(Platform::Systemd, home.path(), 1000);
    let spec = spec(home.path(), Path::new("/usr/local/bin/sgl"));
    let runner = recorder(|_| exit(0, "", ""));
    let installed = install(&spec, &paths, &runner).expect("installs");
    let file = home.path().join(".config/systemd/user/cc.x402compute.sglnode.service");
    assert_eq!(installed.service_file, file);
    assert_eq!(fs::read_to_string(&file).expect("written"), systemd::render_systemd_unit(&spec).expect("renders"));
    assert_eq!(fs::metadata(&file).expect("exists").permissions().mode() & 0o777, 0o644);
    assert_eq!(fs::metadata(spec.log_dir()).expect("log dir").permissions().mode() & 0o777, 0o700);
    assert!(!file.with_extension("service.tmp").exists());
    assert_eq!(
        *runner.calls.borrow(),
        ["systemctl --user daemon-reload", "systemctl --user enable --now cc.x402compute.sglnode.service"]
    );
    assert!(installed.hints[0].contains("loginctl enable-linger"));

    let removed = uninstall(&paths, &runner).expect("uninstalls");
    assert!(removed && !file.exists());
    assert_eq!(
        runner.calls.borrow()[2..],
        ["systemctl --user disable --now cc.x402compute.sglnode.service", "systemctl --user daemon-reload"]
    );
}

#[test]
fn no_user_manager_is_a_typed_error_after_the_file_is_written() {
    let home = tempfile::tempdir().expect("tempdir");
    let paths = ServicePaths::new(Platform::Systemd, home.path(), 1000);
    let spec = spec(home.path(), Path::new("/usr/local/bin/sgl"));
    // What `systemctl --user` says in a container.
    let no_bus = recorder(|_| exit(1, "", "Failed to connect to bus: No medium found\n"));
    let error = install(&spec, &paths, &no_bus).expect_err("unreachable");
    let ServiceError::ManagerUnreachable { file, manual, detail, .. } = &error else { panic!("{error:?}") };
    assert!(file.exists() && detail.contains("No medium found") && manual.contains("systemctl --user enable --now"));
    assert!(error.to_string().contains("was written"), "{error}");
    // No systemctl at all.
    let missing = recorder(|_| Err(io::Error::from(io::ErrorKind::NotFound)));
    assert!(matches!(install(&spec, &paths, &missing), Err(ServiceError::ManagerUnreachable { .. })));
    assert!(matches!(status(&paths, &missing), Err(ServiceError::ManagerUnreachable { .. })));
    // Any other failure is a command error naming the command.
    let refused =
        recorder(
            |argv| if argv.contains(&"enable".to_owned()) { exit(1, "", "Access denied") } else { exit(0, "", "") },
        );
    let error = install(&spec, &paths, &refused).expect_err("fails");
    assert!(matches!(&error, ServiceError::Command { command, .. } if command.contains("enable --now")), "{error:?}");
}

#[test]
fn launchd_install_boots_out_ignoring_failure_then_bootstraps_enables_and_kickstarts() {
    let home = tempfile::tempdir().expect("tempdir");
    let paths = ServicePaths::new(Platform::Launchd, home.path(), 501);
    let spec = spec(home.path(), Path::new("/usr/local/bin/sgl"));
    let runner = recorder(|argv| if argv[1] == "bootout" { exit(3, "", "No such process") } else { exit(0, "", "") });
    let plan = plan_install(&spec, &paths).expect("plan");
    assert!(!paths.service_file.exists(), "a plan touches nothing");
    install(&spec, &paths, &runner).expect("installs");
    let plist = home.path().join("Library/LaunchAgents/cc.x402compute.sglnode.plist");
    assert_eq!(fs::read_to_string(&plist).expect("written"), plan.contents);
    assert!(home.path().join("Library/Logs/sgl-node").is_dir());
    let bootstrap = format!("launchctl bootstrap gui/501 {}", plist.display());
    assert_eq!(
        *runner.calls.borrow(),
        [
            "launchctl bootout gui/501/cc.x402compute.sglnode",
            bootstrap.as_str(),
            "launchctl enable gui/501/cc.x402compute.sglnode",
            "launchctl kickstart -k gui/501/cc.x402compute.sglnode",
        ]
    );
}

#[test]
fn status_asks_the_manager_and_reports_unloaded_launchd_jobs() {
    let home = tempfile::tempdir().expect("tempdir");
    let paths = ServicePaths::new(Platform::Systemd, home.path(), 1000);
    let runner =
        recorder(|_| exit(0, "LoadState=loaded\nActiveState=activating\nSubState=auto-restart\nNRestarts=2\n", ""));
    let status = status(&paths, &runner).expect("status");
    assert_eq!(
        (status.state.as_str(), status.sub_state.as_deref(), status.restarts),
        ("activating", Some("auto-restart"), Some(2))
    );
    assert!(!status.installed);
    assert!(runner.calls.borrow()[0].starts_with("systemctl --user show cc.x402compute.sglnode.service -p "));

    let paths = ServicePaths::new(Platform::Launchd, home.path(), 501);
    let runner = recorder(|_| exit(113, "", "Could not find service"));
    let status = super::status(&paths, &runner).expect("status");
    assert!(!status.loaded && status.state == "not loaded");
}

#[test]
fn rendered_unit_passes_systemd_analyze_verify() {
    let version = std::process::Command::new("systemd-analyze").arg("--version").output();
    if version.as_ref().map_or(true, |o| !o.status.success()) {
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            && std::env::var("SGL_REQUIRE_SYSTEMD_ANALYZE").is_ok_and(|v| v == "1");
        assert!(!required, "systemd-analyze is required here but not runnable: {version:?}");
        eprintln!("skipped: systemd-analyze is not installed ({version:?})");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home op");
    fs::create_dir_all(home.join("models")).expect("models");
    fs::write(home.join("models/gemma 3.gguf"), b"GGUF").expect("model");
    let mut spec_with_nasty_args = full_options(&home);
    spec_with_nasty_args.model_name = Some("50% \"quoted\" $HOME back\\slash it's".to_owned());
    let environment = vec![("RUST_LOG".to_owned(), "sgl=debug,%h \"x\" $y".to_owned())];
    let spec = ServiceSpec::new(Path::new("/bin/true"), &spec_with_nasty_args, environment, &home).expect("spec");
    let unit = dir.path().join(format!("{LABEL}.service"));
    fs::write(&unit, systemd::render_systemd_unit(&spec).expect("renders")).expect("unit");
    let runtime = dir.path().join("runtime");
    fs::create_dir(&runtime).expect("runtime dir");
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).expect("chmod");
    let output = std::process::Command::new("systemd-analyze")
        .args(["verify", "--user", "--man=no"])
        .arg(&unit)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("systemd-analyze runs");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "verify failed:\n{said}");
    if std::env::var_os("SGL_SHOW_UNIT").is_some() {
        eprintln!("{}", fs::read_to_string(&unit).expect("unit"));
    }
    // verify exits 0 on unknown keys and ignored lines, but names the file when it complains.
    assert!(!said.contains(LABEL), "verify complained:\n{said}");
}
