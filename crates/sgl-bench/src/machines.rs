//! `sgl-bench machines`: how long a rented machine takes to become usable on the local backend.
//! A release `sgl-grid up --nodes 0` sells systemd-nspawn machines from the image
//! `.ci/install-machine-image` built; each run provisions one with credits and an SSH key and
//! measures, from the moment the provision is sent: the grid seeing the SSH banner (`active`,
//! when the rental's time starts), a real `ssh … true` login succeeding, and then the destroy
//! (the answer arrives once nothing of the machine is left). Runs one at a time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::stats::Summary;
use crate::up::LocalGrid;

/// Arguments of `sgl-bench machines`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The `sgl-grid` binary.
    #[arg(long)]
    grid_bin: PathBuf,
    /// Machines to provision, one after another.
    #[arg(long, default_value_t = 10)]
    runs: u32,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Value> {
    tokio::runtime::Runtime::new()?.block_on(measure(args))
}

async fn measure(args: &Args) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("id_ed25519");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", ""]).arg("-f").arg(&key).status().await?;
    anyhow::ensure!(made.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub"))?.trim().to_owned();
    let up: Vec<std::ffi::OsString> = vec!["--nodes".into(), "0".into(), "--credits-usd".into(), "100".into()];
    let local = LocalGrid::start(&args.grid_bin, &up, &[("SGL_MACHINES_BACKENDS", "local")]).await?;
    let grid =
        Grid { base_url: local.field("base_url")?, api_key: local.field("api_key")?, http: reqwest::Client::new() };
    let (mut active, mut login, mut destroy) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.runs {
        let (a, l, d) = grid.one(&public, &key).await.with_context(|| format!("run {run}"))?;
        eprintln!("machine {run}: SSH banner {a:.0} ms, login {l:.0} ms, destroy {d:.0} ms");
        active.push(a);
        login.push(l);
        destroy.push(d);
    }
    local.stop().await;
    Ok(json!({
        "runs": args.runs,
        "plan": "local:1c-512mb",
        "provision_to_ssh_ms": Summary::of(&active),
        "provision_to_login_ms": Summary::of(&login),
        "destroy_ms": Summary::of(&destroy),
    }))
}

struct Grid {
    base_url: String,
    api_key: String,
    http: reqwest::Client,
}

impl Grid {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url)).bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    /// One machine: milliseconds to `active`, to a successful login, and to destroyed.
    async fn one(&self, public_key: &str, key: &std::path::Path) -> anyhow::Result<(f64, f64, f64)> {
        let started = Instant::now();
        let body =
            json!({"plan": "local:1c-512mb", "region": "local", "prepaid_hours": 1, "ssh_public_key": public_key});
        let machine = self.call(reqwest::Method::POST, "/compute/provision", Some(body)).await?;
        let id = machine["id"].as_str().context("the machine's id")?.to_owned();
        let path = format!("/compute/instances/{id}");
        let port = loop {
            let machine = self.call(reqwest::Method::GET, &path, None).await?;
            if let Some(port) = machine["ssh"]["port"].as_u64() {
                break port;
            }
            if !machine["end_reason"].is_null() || started.elapsed() > Duration::from_secs(120) {
                bail!("the machine never ran: {machine}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let active = started.elapsed().as_secs_f64() * 1e3;
        let login = Command::new("ssh")
            .arg("-i")
            .arg(key)
            .args(["-p", &port.to_string(), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1", "true"])
            .status()
            .await?;
        anyhow::ensure!(login.success(), "ssh into {id} failed");
        let logged_in = started.elapsed().as_secs_f64() * 1e3;
        let destroying = Instant::now();
        self.call(reqwest::Method::DELETE, &path, None).await?;
        Ok((active, logged_in, destroying.elapsed().as_secs_f64() * 1e3))
    }
}
