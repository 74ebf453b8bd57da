//! `sgl-cloud bundle …` and `sgl-cloud jobs …` against a real grid without nodes (so a job stays
//! queued until it is cancelled), with no canaries: a bundle made, signed, verified, submitted,
//! inspected and cancelled with its escrow back; a re-signed redundancy; `--wait` on a job that
//! ends cancelled; and a bundle tampered with after signing, refused before any upload.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use sgl_protocol::compute::Digest;

use crate::{Grid, api_key, cloud_with_env, one_json, stderr};

/// The module the bundles carry (the grid never runs it: no node leases it).
const MODULE: &str = "\0asm not really a module";

/// A grid with no canaries and its blobs in its own temporary directory, a funded key, and a
/// config directory for the requester key, so the real `~/.config` is never touched.
pub(crate) struct Session {
    pub(crate) grid: Grid,
    pub(crate) key: String,
    base: tempfile::TempDir,
    _grid_data: tempfile::TempDir,
}

impl Session {
    pub(crate) async fn start() -> Self {
        let grid_data = tempfile::tempdir().unwrap();
        let data_dir = grid_data.path().to_str().unwrap().to_owned();
        let grid = Grid::start_with_env(&[("SGL_COMPUTE_CANARY_RATE", "0"), ("SGL_DATA_DIR", &data_dir)]).await;
        let key = api_key(&grid, 1.0).await;
        Self { grid, key, base: tempfile::tempdir().unwrap(), _grid_data: grid_data }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.base.path().join(name)
    }

    pub(crate) fn key_file(&self) -> PathBuf {
        self.path("config/sgl-cloud/requester.json")
    }

    /// `sgl-cloud ARGS` with the API key and `XDG_CONFIG_HOME` under the session's directory.
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        let config = self.path("config");
        let env = [("XDG_CONFIG_HOME", config.to_str().unwrap())];
        cloud_with_env(&self.grid.url, Some(&self.key), args, None, &env).await
    }

    /// `run` that must succeed and print one JSON object.
    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        let output = self.run(&[args, &["--json"]].concat()).await;
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        one_json(&output)
    }

    pub(crate) async fn balance(&self) -> i64 {
        self.json(&["credits", "balance"]).await["balance_micros"].as_i64().unwrap()
    }

    /// `bundle init` of two slices in `name`, its module and an input written, then signed.
    async fn signed_bundle(&self, name: &str) -> (PathBuf, Value) {
        let dir = self.path(name);
        let dir_arg = dir.to_str().unwrap();
        let init = self.json(&["bundle", "init", dir_arg, "--entry", "main.wasm", "--slices", "2"]).await;
        assert_eq!((&init["slices"], &init["redundancy"]), (&2.into(), &1.into()), "{init}");
        std::fs::write(dir.join("main.wasm"), MODULE).unwrap();
        std::fs::write(dir.join("in/numbers.txt"), "1 2 3\n").unwrap();
        let signed = self.json(&["bundle", "sign", dir_arg]).await;
        (dir, signed)
    }
}

pub(crate) fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn a_bundle_is_made_signed_submitted_inspected_and_cancelled_with_its_escrow_back() {
    let session = Session::start().await;
    let (dir, signed) = session.signed_bundle("primes").await;
    assert_eq!(signed["key_created"], true, "{signed}");
    assert_eq!((&signed["files"], &signed["inputs"]), (&1.into(), &1.into()), "{signed}");
    assert_eq!(std::fs::metadata(session.key_file()).unwrap().permissions().mode() & 0o777, 0o600);
    let again = session.run(&["bundle", "init", arg(&dir)]).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    let verified = session.json(&["bundle", "verify", arg(&dir)]).await;
    assert_eq!((&verified["verified"], &verified["bundle_hash"]), (&true.into(), &signed["bundle_hash"]));

    let job = session.json(&["jobs", "submit", arg(&dir)]).await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&job["state"], &job["slice_count"], &job["bundle_hash"]),
        (&"queued".into(), &2.into(), &signed["bundle_hash"])
    );
    assert_eq!(job["escrow_micros"], 4000, "2 slices × 10^10 fuel at 200 micro-USD per 10^9");
    assert_eq!(session.balance().await, 1_000_000 - 4000);

    let status = session.json(&["jobs", "status", &id]).await;
    assert_eq!((&status["id"], &status["state"]), (&id.as_str().into(), &"queued".into()));
    assert_eq!(status["slices"].as_array().unwrap().len(), 2, "{status}");
    let text = session.run(&["jobs", "status", &id]).await;
    assert!(String::from_utf8_lossy(&text.stdout).contains("queued, 0/2 slice(s) done"), "{text:?}");
    let list = session.json(&["jobs", "list"]).await;
    let listed: Vec<&str> = list["data"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [id.as_str()]);
    let logs = session.json(&["jobs", "logs", &id]).await;
    assert_eq!((&logs["job_id"], &logs["logs"]), (&id.as_str().into(), &serde_json::json!([])));
    let early = session.run(&["jobs", "result", &id, "-o", arg(&session.path("out"))]).await;
    assert_eq!(early.status.code(), Some(2));
    assert!(stderr(&early).contains("409") && stderr(&early).contains("not done"), "{}", stderr(&early));

    let cancelled = session.json(&["jobs", "cancel", &id]).await;
    assert_eq!((&cancelled["state"], &cancelled["refunded_micros"]), (&"cancelled".into(), &4000.into()));
    assert_eq!(session.balance().await, 1_000_000, "the whole escrow came back");
    let twice = session.run(&["jobs", "cancel", &id, "--json"]).await;
    assert_eq!(twice.status.code(), Some(2));
    assert!(one_json(&twice)["error"].as_str().unwrap().contains("409"));
    let followed = session.run(&["jobs", "logs", &id, "--follow", "--json"]).await;
    assert!(followed.status.success(), "{}", stderr(&followed));
    let events: Vec<Value> =
        String::from_utf8_lossy(&followed.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["state", "done"]);
    assert_eq!(events[0]["job"]["state"], "cancelled");
}

#[tokio::test]
async fn submit_resigns_another_redundancy_and_wait_fails_unless_the_job_is_done() {
    let session = Session::start().await;
    let (dir, signed) = session.signed_bundle("twice").await;
    let submit = ["jobs", "submit", arg(&dir), "--redundancy", "2", "--wait", "--json"];
    let (waited, cancelled) = tokio::join!(session.run(&submit), async {
        let id = loop {
            let list = session.json(&["jobs", "list"]).await;
            if let Some(id) = list["data"][0]["id"].as_str() {
                break id.to_owned();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        session.json(&["jobs", "cancel", &id]).await
    });
    assert_eq!(cancelled["redundancy"], 2, "{cancelled}");
    assert_eq!(cancelled["escrow_micros"], 8000, "2 slices × 2 nodes × 10^10 fuel at 200 micro-USD per 10^9");
    assert_ne!(cancelled["bundle_hash"], signed["bundle_hash"], "the manifest changed");
    assert_eq!(waited.status.code(), Some(2), "{}", stderr(&waited));
    let printed = one_json(&waited);
    assert_eq!(printed["job"]["state"], "cancelled", "{printed}");
    let id = cancelled["id"].as_str().unwrap();
    assert!(printed["error"].as_str().unwrap().contains(&format!("job {id} ended cancelled")), "{printed}");
    // Whether the follow saw the job queued first depends on when the cancel landed; its end
    // it always sees.
    let progress = stderr(&waited);
    assert!(progress.contains("uploaded 2 blob(s), 2 new"), "{progress}");
    assert!(progress.contains(&format!("job {id} submitted: 2 slice(s) × 2")), "{progress}");
    assert!(progress.contains(&format!("job {id}: cancelled, 0/2 slice(s) done")), "{progress}");
    let verified = session.json(&["bundle", "verify", arg(&dir)]).await;
    assert_eq!(verified["bundle_hash"], cancelled["bundle_hash"], "re-signed on disk too");
    assert_eq!(verified["redundancy"], 2);
    assert_eq!(session.balance().await, 1_000_000);
}

#[tokio::test]
async fn a_bundle_tampered_after_signing_is_refused_before_any_upload() {
    let session = Session::start().await;
    let (dir, _) = session.signed_bundle("tampered").await;
    std::fs::write(dir.join("main.wasm"), "\0asm a different module").unwrap();
    let refused = session.run(&["jobs", "submit", arg(&dir)]).await;
    assert_eq!(refused.status.code(), Some(1), "a verification failure");
    let message = stderr(&refused);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(message.contains("nothing was uploaded"), "{message}");
    assert!(message.contains("main.wasm does not match manifest.json"), "{message}");
    let verify = session.run(&["bundle", "verify", arg(&dir), "--json"]).await;
    assert_eq!(verify.status.code(), Some(1));
    let printed = one_json(&verify);
    assert_eq!(printed["verified"], false);
    assert!(printed["error"].as_str().unwrap().contains("main.wasm does not match"), "{printed}");

    let client = sgl_client::Client::new(&session.grid.url, Some(sgl_client::ApiKey::new(&session.key))).unwrap();
    for blob in [MODULE, "\0asm a different module", "1 2 3\n"] {
        let missing = client.get_blob(&Digest::of(blob)).await.unwrap_err();
        assert_eq!(missing.status(), Some(404), "{blob:?} was uploaded: {missing}");
    }
    assert_eq!(session.json(&["jobs", "list"]).await["data"], serde_json::json!([]));
    assert_eq!(session.balance().await, 1_000_000);

    std::fs::write(dir.join("main.wasm"), MODULE).unwrap();
    std::fs::write(dir.join("notes.txt"), "not signed").unwrap();
    let unlisted = session.run(&["jobs", "submit", arg(&dir)]).await;
    assert_eq!(unlisted.status.code(), Some(1));
    assert!(stderr(&unlisted).contains("notes.txt is in the bundle directory but not in manifest.json"));
}

#[tokio::test]
async fn help_teaches_with_an_example() {
    let session = Session::start().await;
    for command in
        [&["bundle", "--help"][..], &["jobs", "--help"], &["jobs", "submit", "--help"], &["bundle", "sign", "--help"]]
    {
        let output = session.run(command).await;
        assert!(output.status.success(), "{command:?}");
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(help.contains("Example:\n  sgl-cloud "), "{command:?}: {help}");
    }
    let bundle_help = String::from_utf8_lossy(&session.run(&["bundle", "--help"]).await.stdout).into_owned();
    assert!(bundle_help.contains("manifest.sig") && bundle_help.contains("in/"), "{bundle_help}");
}
