//! `sgl service install | uninstall | status`: run `sgl start` as a per-user service, a systemd
//! `--user` unit on Linux and a launchd agent on macOS (protocol §5.2, §5.3), with every `start`
//! flag and chosen environment variables persisted (R9: the seed drops threads, GPU layers, batch
//! size, config dir and `SGL_ENGINE`).
//!
//! The node writes its own size-rotating log (`--log-file`, see `crate::logfile`), so the
//! service manager's own output goes to the journal (which rotates) on Linux, and on macOS to a
//! small file that only catches what happens before logging starts.
//!
//! Rendering ([`systemd::render_systemd_unit`], [`launchd::render_launchd_plist`]) and parsing
//! of `systemctl show` / `launchctl print` are pure functions tested on fixed text. Commands run
//! through the [`CommandRunner`] trait; [`plan_install`] is the dry run behind
//! `sgl service install --print`.

pub mod launchd;
pub mod systemd;

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The service's label: the systemd unit is `<LABEL>.service`, the launchd job `<LABEL>`.
pub const LABEL: &str = "cc.x402compute.sglnode";

/// Environment variables worth persisting into the service when set at install time. Secrets
/// never go here: the service file is world-readable (0644).
pub const PERSISTED_ENVIRONMENT: &[&str] =
    &["SGL_ENGINE", "SGL_ENGINE_URL", "RUST_LOG", "SGL_ORCHESTRATOR_URL", "SGL_CONFIG_DIR"];

/// Which service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// systemd `--user` (Linux).
    Systemd,
    /// launchd agent in the `gui/<uid>` domain (macOS).
    Launchd,
}

impl Platform {
    /// The manager for the OS this binary was built for; `None` where there is none we support.
    pub fn current() -> Option<Platform> {
        if cfg!(target_os = "macos") {
            Some(Platform::Launchd)
        } else if cfg!(target_os = "linux") {
            Some(Platform::Systemd)
        } else {
            None
        }
    }
}

/// Every `sgl start` flag a service can persist. `None` leaves a flag out, so `start` applies its
/// own default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOptions {
    /// `--model-path`.
    pub model_path: Option<PathBuf>,
    /// `--model-name`.
    pub model_name: Option<String>,
    /// `--resource-percent`; services default to 50, as the seed's do.
    pub resource_percent: u8,
    /// `--threads`.
    pub threads: Option<u32>,
    /// `--gpu-layers`.
    pub gpu_layers: Option<u32>,
    /// `--context-size`.
    pub context_size: Option<u32>,
    /// `--max-jobs`.
    pub max_jobs: Option<u32>,
    /// `--batch-size`.
    pub batch_size: Option<u32>,
    /// `--inference-port`.
    pub inference_port: Option<u16>,
    /// `--heartbeat-interval`, seconds.
    pub heartbeat_interval: Option<u64>,
    /// `--engine`.
    pub engine: Option<String>,
    /// `--engine-url`.
    pub engine_url: Option<String>,
    /// `--llama-server`: the binary for the llama-server engine.
    pub llama_server: Option<PathBuf>,
    /// `--chat-template`: a llama.cpp built-in template name for the llama-server engine.
    pub chat_template: Option<String>,
    /// `--cluster`.
    pub cluster: Option<String>,
    /// `--workloads`, comma-separated, when not the default (chat).
    pub workloads: Option<String>,
    /// `--compute-slots`.
    pub compute_slots: Option<u32>,
    /// `--orchestrator-url`.
    pub orchestrator_url: Option<String>,
    /// `--no-websocket`: take jobs only from heartbeats.
    pub no_websocket: bool,
    /// `--log-json`: JSON log lines.
    pub log_json: bool,
    /// `--config-dir`; always passed, so the service never depends on `$HOME` guessing.
    pub config_dir: PathBuf,
    /// `--log-file`; always passed (see [`default_log_file`]).
    pub log_file: PathBuf,
}

/// The resource percent a service runs at unless told otherwise.
pub const SERVICE_RESOURCE_PERCENT: u8 = 50;

impl StartOptions {
    /// Only the required paths, and the service default resource percent.
    pub fn new(config_dir: PathBuf, log_file: PathBuf) -> Self {
        Self {
            model_path: None,
            model_name: None,
            resource_percent: SERVICE_RESOURCE_PERCENT,
            threads: None,
            gpu_layers: None,
            context_size: None,
            max_jobs: None,
            batch_size: None,
            inference_port: None,
            heartbeat_interval: None,
            engine: None,
            engine_url: None,
            llama_server: None,
            chat_template: None,
            cluster: None,
            workloads: None,
            compute_slots: None,
            orchestrator_url: None,
            no_websocket: false,
            log_json: false,
            config_dir,
            log_file,
        }
    }

    /// `start` followed by each set flag and its value, one argument per element, unquoted.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["start".to_owned()];
        let mut push = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(flag.to_owned());
                args.push(value);
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        push("--model-path", path(&self.model_path));
        push("--model-name", self.model_name.clone());
        push("--resource-percent", Some(self.resource_percent.to_string()));
        push("--threads", self.threads.map(|n| n.to_string()));
        push("--gpu-layers", self.gpu_layers.map(|n| n.to_string()));
        push("--context-size", self.context_size.map(|n| n.to_string()));
        push("--max-jobs", self.max_jobs.map(|n| n.to_string()));
        push("--batch-size", self.batch_size.map(|n| n.to_string()));
        push("--inference-port", self.inference_port.map(|n| n.to_string()));
        push("--heartbeat-interval", self.heartbeat_interval.map(|n| n.to_string()));
        push("--engine", self.engine.clone());
        push("--engine-url", self.engine_url.clone());
        push("--llama-server", path(&self.llama_server));
        push("--chat-template", self.chat_template.clone());
        push("--cluster", self.cluster.clone());
        push("--workloads", self.workloads.clone());
        push("--compute-slots", self.compute_slots.map(|n| n.to_string()));
        push("--orchestrator-url", self.orchestrator_url.clone());
        push("--config-dir", Some(self.config_dir.display().to_string()));
        push("--log-file", Some(self.log_file.display().to_string()));
        for (flag, on) in [("--no-websocket", self.no_websocket), ("--log-json", self.log_json)] {
            if on {
                args.push(flag.to_owned());
            }
        }
        args
    }
}

/// Everything a service file says: what runs, with which environment, and which paths it needs.
/// Build it with [`ServiceSpec::new`], which validates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    executable: PathBuf,
    arguments: Vec<String>,
    environment: Vec<(String, String)>,
    config_dir: PathBuf,
    log_file: PathBuf,
    model_path: Option<PathBuf>,
    read_only: Vec<PathBuf>,
    early_output: PathBuf,
}

impl ServiceSpec {
    /// A service running `executable` (absolute) with `start`'s flags and `environment`
    /// (`(NAME, value)` pairs, see [`persisted_environment`]). `home` places launchd's early-output
    /// file (`~/Library/Logs/sgl-node/launchd.log`).
    pub fn new(
        executable: &Path,
        start: &StartOptions,
        environment: Vec<(String, String)>,
        home: &Path,
    ) -> Result<Self, ServiceError> {
        if !executable.is_absolute() {
            return Err(ServiceError::Invalid(format!(
                "the executable {} must be an absolute path",
                executable.display()
            )));
        }
        let spec = Self {
            executable: executable.to_owned(),
            arguments: start.to_args(),
            environment,
            config_dir: start.config_dir.clone(),
            log_file: start.log_file.clone(),
            model_path: start.model_path.clone(),
            read_only: Vec::new(),
            early_output: home.join("Library/Logs/sgl-node/launchd.log"),
        };
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), ServiceError> {
        let strings = std::iter::once(self.executable.as_os_str().to_string_lossy())
            .chain(self.arguments.iter().map(|a| a.as_str().into()))
            .chain(self.environment.iter().map(|(_, v)| v.as_str().into()));
        for value in strings {
            if value.chars().any(char::is_control) {
                return Err(ServiceError::Invalid(format!("{value:?} contains a control character")));
            }
        }
        for (name, _) in &self.environment {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ServiceError::Invalid(format!("{name:?} is not an environment variable name")));
            }
        }
        Ok(())
    }

    /// Also make `path` readable inside the systemd sandbox, e.g. a `llama-server` binary or a
    /// multi-file model's directory kept under the home directory.
    pub fn with_read_only_path(mut self, path: PathBuf) -> Self {
        self.read_only.push(path);
        self
    }

    /// Extra read-only paths (see [`ServiceSpec::with_read_only_path`]).
    pub fn read_only_paths(&self) -> &[PathBuf] {
        &self.read_only
    }

    /// The binary the service runs.
    pub fn executable(&self) -> &Path {
        &self.executable
    }

    /// The arguments after the executable (`start --resource-percent 50 …`).
    pub fn arguments(&self) -> &[String] {
        &self.arguments
    }

    /// Persisted environment, `(NAME, value)`.
    pub fn environment(&self) -> &[(String, String)] {
        &self.environment
    }

    /// The node's config directory (read-write for the service).
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The node's own rotating log (its directory is read-write for the service).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The log file's directory.
    pub fn log_dir(&self) -> &Path {
        self.log_file.parent().unwrap_or(Path::new("/"))
    }

    /// The model file, read-only for the service.
    pub fn model_path(&self) -> Option<&Path> {
        self.model_path.as_deref()
    }

    /// launchd's stdout/stderr file: catches only what the node prints before its log is open.
    pub fn early_output(&self) -> &Path {
        &self.early_output
    }
}

/// The values of [`PERSISTED_ENVIRONMENT`] that `lookup` (e.g. `std::env::var(..).ok()` in
/// `main`) has, in that order.
pub fn persisted_environment(lookup: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    PERSISTED_ENVIRONMENT.iter().filter_map(|name| lookup(name).map(|value| ((*name).to_owned(), value))).collect()
}

/// Where a service's `--log-file` goes by default: `~/.local/share/sgl-node/sgl-node.log` on
/// Linux, `~/Library/Logs/sgl-node/sgl-node.log` on macOS.
pub fn default_log_file(platform: Platform, home: &Path) -> PathBuf {
    match platform {
        Platform::Systemd => home.join(".local/share/sgl-node/sgl-node.log"),
        Platform::Launchd => home.join("Library/Logs/sgl-node/sgl-node.log"),
    }
}

/// Where the service file lives and which manager domain it is loaded into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePaths {
    /// The manager.
    pub platform: Platform,
    /// `~/.config/systemd/user/<LABEL>.service` or `~/Library/LaunchAgents/<LABEL>.plist`.
    pub service_file: PathBuf,
    /// The user id (launchd's `gui/<uid>` domain).
    pub uid: u32,
}

impl ServicePaths {
    /// The standard locations under `home`.
    pub fn new(platform: Platform, home: &Path, uid: u32) -> Self {
        let service_file = match platform {
            Platform::Systemd => home.join(format!(".config/systemd/user/{LABEL}.service")),
            Platform::Launchd => home.join(format!("Library/LaunchAgents/{LABEL}.plist")),
        };
        Self { platform, service_file, uid }
    }

    fn launchd_domain(&self) -> String {
        format!("gui/{}", self.uid)
    }

    fn launchd_target(&self) -> String {
        format!("gui/{}/{LABEL}", self.uid)
    }
}

/// Why a service command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The spec cannot be written safely (relative executable, control characters, bad names,
    /// a path systemd cannot express).
    #[error("invalid service setting: {0}")]
    Invalid(String),
    /// Writing or removing a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file was written but the service manager could not be reached (no systemd `--user`
    /// instance, e.g. in a container or an SSH session without lingering).
    #[error(
        "{file} was written, but {manager} is not reachable ({detail}); start it by hand with `{manual}`, \
         or run `sgl start` directly"
    )]
    ManagerUnreachable {
        /// The service file written (or still present).
        file: PathBuf,
        /// `systemd --user` or `launchd`.
        manager: &'static str,
        /// What the manager command said.
        detail: String,
        /// The command to run once the manager is available.
        manual: String,
    },
    /// A manager command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and stderr.
        detail: String,
    },
}

/// What a command printed, and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl CommandOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs manager commands (`systemctl`, `launchctl`). [`SystemCommands`] runs them for real;
/// tests substitute a recorder.
pub trait CommandRunner {
    /// Run `argv[0]` with the rest as arguments and wait for it. `Err` only when it could not be
    /// started (e.g. `NotFound`).
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput>;
}

/// Runs commands with `std::process::Command`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemCommands;

impl CommandRunner for SystemCommands {
    fn run(&self, argv: &[String]) -> io::Result<CommandOutput> {
        let (program, args) = argv.split_first().ok_or_else(|| io::Error::other("empty command"))?;
        let output = std::process::Command::new(program).args(args).stdin(std::process::Stdio::null()).output()?;
        Ok(CommandOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// One manager command of a plan, and whether its failure is expected and ignored (launchd's
/// `bootout` of a job that is not loaded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCommand {
    /// The command line.
    pub argv: Vec<String>,
    /// A failure is not an error.
    pub may_fail: bool,
}

/// What `install` would do: the file, its contents, the directories it creates and the commands
/// it runs. `sgl service install --print` shows this and does nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallPlan {
    /// The service file.
    pub service_file: PathBuf,
    /// Its full contents.
    pub contents: String,
    /// Directories created first (0700): the log directory must exist for the sandbox to bind it.
    pub directories: Vec<PathBuf>,
    /// Manager commands, in order.
    pub commands: Vec<PlannedCommand>,
    /// Advice for the operator once installed.
    pub hints: Vec<String>,
}

/// The install, as a plan; nothing is touched.
pub fn plan_install(spec: &ServiceSpec, paths: &ServicePaths) -> Result<InstallPlan, ServiceError> {
    let file = paths.service_file.display().to_string();
    let (contents, commands, hints, directories) = match paths.platform {
        Platform::Systemd => (
            systemd::render_systemd_unit(spec)?,
            vec![
                must(["systemctl", "--user", "daemon-reload"]),
                must(["systemctl", "--user", "enable", "--now", &format!("{LABEL}.service")]),
            ],
            vec![format!(
                "run `loginctl enable-linger $USER` once so the node keeps running after you log out; \
                 logs: `journalctl --user -u {LABEL}` and {}",
                spec.log_file().display()
            )],
            vec![spec.log_dir().to_owned()],
        ),
        Platform::Launchd => (
            launchd::render_launchd_plist(spec),
            vec![
                PlannedCommand { argv: argv(["launchctl", "bootout", &paths.launchd_target()]), may_fail: true },
                must(["launchctl", "bootstrap", &paths.launchd_domain(), &file]),
                must(["launchctl", "enable", &paths.launchd_target()]),
                must(["launchctl", "kickstart", "-k", &paths.launchd_target()]),
            ],
            vec![format!("logs: {}", spec.log_file().display())],
            vec![spec.log_dir().to_owned(), spec.early_output().parent().unwrap_or(Path::new("/")).to_owned()],
        ),
    };
    Ok(InstallPlan { service_file: paths.service_file.clone(), contents, directories, commands, hints })
}

/// What `install` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Installed {
    /// The service file written.
    pub service_file: PathBuf,
    /// Commands run, in order.
    pub commands: Vec<Vec<String>>,
    /// Advice for the operator.
    pub hints: Vec<String>,
}

/// Write the service file (0644, atomically) and load and start it.
pub fn install(
    spec: &ServiceSpec,
    paths: &ServicePaths,
    runner: &impl CommandRunner,
) -> Result<Installed, ServiceError> {
    let plan = plan_install(spec, paths)?;
    for dir in &plan.directories {
        create_dir(dir, 0o700)?;
    }
    write_atomically(&plan.service_file, plan.contents.as_bytes())?;
    let mut commands = Vec::new();
    for command in &plan.commands {
        run_planned(runner, command, paths)?;
        commands.push(command.argv.clone());
    }
    Ok(Installed { service_file: plan.service_file, commands, hints: plan.hints })
}

/// Stop, disable and remove the service. Returns whether a file was removed. If the manager is
/// unreachable the file is still removed and [`ServiceError::ManagerUnreachable`] says so.
pub fn uninstall(paths: &ServicePaths, runner: &impl CommandRunner) -> Result<bool, ServiceError> {
    let stop = match paths.platform {
        Platform::Systemd => argv(["systemctl", "--user", "disable", "--now", &format!("{LABEL}.service")]),
        Platform::Launchd => argv(["launchctl", "bootout", &paths.launchd_target()]),
    };
    let stopped = run_planned(runner, &PlannedCommand { argv: stop, may_fail: true }, paths);
    let removed = match fs::remove_file(&paths.service_file) {
        Ok(()) => true,
        Err(error) if error.kind() == io::ErrorKind::NotFound => false,
        Err(source) => return Err(ServiceError::Io { path: paths.service_file.clone(), source }),
    };
    stopped?;
    if paths.platform == Platform::Systemd {
        run_planned(runner, &must(["systemctl", "--user", "daemon-reload"]), paths)?;
    }
    Ok(removed)
}

/// The service's state as the manager sees it (`sgl service status [--json]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    /// The manager.
    pub platform: Platform,
    /// The service file exists.
    pub installed: bool,
    /// The manager knows the service.
    pub loaded: bool,
    /// `active`, `inactive`, `failed`, `activating` (systemd) or `running`, `waiting`,
    /// `not running` (launchd); `unknown` when not reported.
    pub state: String,
    /// systemd's sub-state (`running`, `auto-restart`, ...).
    pub sub_state: Option<String>,
    /// The main process, when running.
    pub pid: Option<u32>,
    /// Automatic restarts (systemd `NRestarts`) or runs (launchd `runs`).
    pub restarts: Option<u32>,
    /// The last exit status of the main process.
    pub last_exit_code: Option<i32>,
}

impl ServiceStatus {
    /// Not known to the manager.
    fn unloaded(platform: Platform, installed: bool) -> Self {
        Self {
            platform,
            installed,
            loaded: false,
            state: "not loaded".to_owned(),
            sub_state: None,
            pid: None,
            restarts: None,
            last_exit_code: None,
        }
    }
}

/// Ask the manager for the service's state.
pub fn status(paths: &ServicePaths, runner: &impl CommandRunner) -> Result<ServiceStatus, ServiceError> {
    let installed = paths.service_file.exists();
    let command = match paths.platform {
        Platform::Systemd => argv([
            "systemctl",
            "--user",
            "show",
            &format!("{LABEL}.service"),
            "-p",
            "LoadState,ActiveState,SubState,MainPID,NRestarts,ExecMainStatus",
        ]),
        Platform::Launchd => argv(["launchctl", "print", &paths.launchd_target()]),
    };
    let output = run_command(runner, &command, paths)?;
    match paths.platform {
        Platform::Systemd if output.success() => Ok(systemd::parse_systemctl_show(&output.stdout, installed)),
        // `launchctl print` exits non-zero (113) for a job that is not loaded.
        Platform::Launchd if output.success() => Ok(launchd::parse_launchctl_print(&output.stdout, installed)),
        Platform::Launchd => Ok(ServiceStatus::unloaded(Platform::Launchd, installed)),
        Platform::Systemd => Err(command_failed(&command, &output)),
    }
}

fn argv<const N: usize>(words: [&str; N]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn must<const N: usize>(words: [&str; N]) -> PlannedCommand {
    PlannedCommand { argv: argv(words), may_fail: false }
}

fn run_planned(
    runner: &impl CommandRunner,
    command: &PlannedCommand,
    paths: &ServicePaths,
) -> Result<(), ServiceError> {
    let output = run_command(runner, &command.argv, paths)?;
    if output.success() || command.may_fail { Ok(()) } else { Err(command_failed(&command.argv, &output)) }
}

/// Run `command`, turning "no manager here" into [`ServiceError::ManagerUnreachable`].
fn run_command(
    runner: &impl CommandRunner,
    command: &[String],
    paths: &ServicePaths,
) -> Result<CommandOutput, ServiceError> {
    let unreachable = |detail: String| {
        let (manager, manual) = match paths.platform {
            Platform::Systemd => (
                "systemd --user",
                format!("systemctl --user daemon-reload && systemctl --user enable --now {LABEL}.service"),
            ),
            Platform::Launchd => {
                ("launchd", format!("launchctl bootstrap {} {}", paths.launchd_domain(), paths.service_file.display()))
            }
        };
        ServiceError::ManagerUnreachable { file: paths.service_file.clone(), manager, detail, manual }
    };
    let output = match runner.run(command) {
        Ok(output) => output,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(unreachable(format!("{} not found", command.first().map_or("", String::as_str))));
        }
        Err(error) => return Err(unreachable(error.to_string())),
    };
    if !output.success() && is_manager_unreachable(&output.stderr) {
        return Err(unreachable(output.stderr.trim().to_owned()));
    }
    Ok(output)
}

/// What `systemctl --user` prints when there is no user manager or bus to talk to.
pub fn is_manager_unreachable(stderr: &str) -> bool {
    [
        "Failed to connect to bus",
        "No medium found",
        "$DBUS_SESSION_BUS_ADDRESS",
        "System has not been booted with systemd",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

fn command_failed(command: &[String], output: &CommandOutput) -> ServiceError {
    let code = output.code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit code {c}"));
    ServiceError::Command { command: command.join(" "), detail: format!("{code}: {}", output.stderr.trim()) }
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), ServiceError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode);
    #[cfg(not(unix))]
    let _ = mode;
    builder.create(dir).map_err(|source| ServiceError::Io { path: dir.to_owned(), source })
}

/// Write `path` as 0644 through a temporary file in the same directory and a rename, creating
/// the directory (0755) if missing.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ServiceError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    create_dir(dir, 0o755)?;
    let mut tmp_name = path.file_name().unwrap_or(OsStr::new("service")).to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let io_error = |source| ServiceError::Io { path: tmp.clone(), source };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    let mut file = options.open(&tmp).map_err(io_error)?;
    file.write_all(contents).map_err(io_error)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    drop(file);
    fs::rename(&tmp, path).map_err(|source| ServiceError::Io { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests;
