//! The dashboard table (built here: only the release `sgl-grid`): a release `sgl-grid serve` (empty database, one API key, an admin
//! token) on loopback; per page, its weight (the HTML, the stylesheet and every module its
//! script reaches, as served: the grid does not compress) and the server time of the page and of
//! each JSON route it calls (time to first byte through `curl`, over `ROUNDS` requests each).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{target_dir, update_section};
use crate::command::{cargo, output, run as exec};

/// Requests per measured URL.
const ROUNDS: usize = 50;

/// Each page and the API routes it reads, `{wallet}` standing for an operator wallet.
const PAGES: &[(&str, &[&str])] = &[
    ("index.html", &[]),
    ("account.html", &["/compute/credits/balance", "/v1/keys", "/v1/usage?days=30"]),
    ("chat.html", &["/v1/models"]),
    ("jobs.html", &["/v1/jobs"]),
    ("machines.html", &["/compute/plans", "/compute/instances"]),
    (
        "operator.html",
        &["/grid/operators/{wallet}/stake", "/grid/operators/{wallet}/nodes", "/grid/operators/{wallet}/earnings"],
    ),
    ("admin.html", &["/grid/admin/overview"]),
];

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const WALLET: &str = "0x00000000000000000000000000000000000000b1";

/// The grid, stopped when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the dashboard benchmark and updates its section of BENCHMARKS.md.
pub(crate) fn run() -> anyhow::Result<()> {
    exec(cargo().args(["build", "--release", "--locked", "-p", "sgl-grid", "--bin", "sgl-grid"]))?;
    let grid = format!("{}/release/sgl-grid", target_dir()?);
    let dir = std::env::temp_dir().join(format!("sgl-bench-dashboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let key_json = output(Command::new(&grid).arg("--data-dir").arg(&dir).args([
        "admin",
        "--json",
        "api-key",
        "create",
        "--credits-usd",
        "1",
    ]))?;
    let key: serde_json::Value = serde_json::from_str(&key_json).context("the new API key")?;
    let key = key["api_key"].as_str().context("api_key")?.to_owned();
    let child = Command::new(&grid)
        .arg("--data-dir")
        .arg(&dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("SGL_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sgl-grid serve")?;
    let _serving = Serving(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fetch(&base, "/healthz", &[]).is_err() {
        if Instant::now() > deadline {
            bail!("sgl-grid serve did not answer /healthz within 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut table = String::from(
        "| page | page weight (bytes, files) | page p50 / p95 (ms) | API route | route p50 / p95 (ms) |\n|---|---:|---:|---|---:|\n",
    );
    for (page, routes) in PAGES {
        let (bytes, files) = weight(&base, page)?;
        let (p50, p95) = timing(&base, &format!("/dashboard/{page}"), &[])?;
        let mut first = true;
        for route in routes.iter().copied().chain(routes.is_empty().then_some("—")) {
            let cells = if route == "—" {
                "— | —".to_owned()
            } else {
                let route = route.replace("{wallet}", WALLET);
                let auth = if route.starts_with("/grid/admin") {
                    format!("X-Admin-Token: {ADMIN_TOKEN}")
                } else {
                    format!("Authorization: Bearer {key}")
                };
                let (r50, r95) = timing(&base, &route, &[auth.as_str()])?;
                format!("`GET {route}` | {r50:.2} / {r95:.2}")
            };
            if first {
                table.push_str(&format!("| `{page}` | {bytes} ({files}) | {p50:.2} / {p95:.2} | {cells} |\n"));
                first = false;
            } else {
                table.push_str(&format!("| | | | {cells} |\n"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprint!("{table}");
    let section = format!(
        "Command: `cargo xtask bench dashboard`. A release `sgl-grid serve` on an empty SQLite database with one API \
         key, on loopback; {ROUNDS} sequential `curl` requests per URL, each timed to its first byte (so a connection's \
         setup on loopback is included). Page weight is what a first visit downloads: the HTML, the stylesheet and \
         every ES module the page's script reaches, uncompressed (the grid serves no compression); later visits \
         revalidate each file by `ETag` (304, no body).\n{}\n\n{table}",
        super::machine()?,
    );
    update_section("dashboard", &section)
}

/// `curl` of one URL: (status, seconds to the first byte, body).
fn fetch(base: &str, path: &str, headers: &[&str]) -> anyhow::Result<(u16, f64, String)> {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--max-time", "10", "-w", "\n%{http_code} %{time_starttransfer}"]);
    for header in headers {
        curl.args(["-H", header]);
    }
    let text = output(curl.arg(format!("{base}{path}")))?;
    let (body, tail) = text.rsplit_once('\n').context("curl's status line")?;
    let (status, seconds) = tail.split_once(' ').context("curl's status line")?;
    Ok((status.parse()?, seconds.parse()?, body.to_owned()))
}

/// The median and 95th percentile of the time to first byte, ms.
fn timing(base: &str, path: &str, headers: &[&str]) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let (status, seconds, body) = fetch(base, path, headers)?;
        if status != 200 {
            bail!("GET {path}: {status}: {body}");
        }
        times.push(seconds * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[ROUNDS / 2], times[ROUNDS * 95 / 100]))
}

/// A page's weight: its bytes and the stylesheet's and every module's its script reaches, and
/// how many files that is.
fn weight(base: &str, page: &str) -> anyhow::Result<(usize, usize)> {
    let (_, _, html) = fetch(base, &format!("/dashboard/{page}"), &[])?;
    let mut total = html.len();
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = ["href=\"", "src=\""]
        .iter()
        .flat_map(|marker| html.match_indices(marker).map(|(at, _)| &html[at + marker.len()..]))
        .filter_map(|rest| rest.split('"').next())
        .filter(|url| url.ends_with(".js") || url.ends_with(".css"))
        .map(str::to_owned)
        .collect();
    while let Some(url) = todo.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let (_, _, body) = fetch(base, &url, &[])?;
        total += body.len();
        if url.ends_with(".js") {
            let folder = &url[..url.rfind('/').unwrap_or(0)];
            for specifier in crate::dashboard::imports(&body) {
                todo.push(resolve(folder, &specifier));
            }
        }
    }
    Ok((total, seen.len() + 1))
}

/// `specifier` relative to the folder `folder` (a URL path).
fn resolve(folder: &str, specifier: &str) -> String {
    let mut parts: Vec<&str> = folder.split('/').collect();
    for part in specifier.split('/') {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}
