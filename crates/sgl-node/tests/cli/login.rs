//! `sgl login` with no flags: the device flow, approved by the wallet owner (here through the
//! grid's admin command, which records the same approval the signed browser page does).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use sgl_grid::admin::{AdminCommand, run};
use sgl_grid::state::{Clock, SystemClock};

use crate::{args, grid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_prints_a_code_waits_for_approval_and_registers() {
    let grid = grid().await;
    run(&grid.store, AdminCommand::Stake { wallet: "0xdevice".into(), amount_sgl: 50_000 }, 0).await.unwrap();
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().join("node");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sgl"))
        .args(args(&grid, &dir, &["login", "--json"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = tokio::task::block_in_place(|| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap());
    let user_code = first["user_code"].as_str().unwrap().to_owned();
    assert!(first["verify_url"].as_str().unwrap().contains(&user_code), "{first}");
    // Nothing is registered before the wallet owner approves.
    assert!(!dir.join("node.json").exists());
    let approve = AdminCommand::ApproveDevice { user_code, wallet: "0xdevice".into() };
    run(&grid.store, approve, SystemClock.now_ms()).await.unwrap();
    let (second, status) = tokio::task::block_in_place(|| {
        let line = lines.next().unwrap().unwrap();
        (line, child.wait().unwrap())
    });
    assert!(status.success(), "{second}");
    let registered: Value = serde_json::from_str(&second).unwrap();
    let node_id = registered["node_id"].as_str().unwrap();
    let record = grid.store.node(node_id).await.unwrap().expect("registered");
    assert_eq!(record.wallet, "0xdevice");
    assert!(dir.join("node.json").exists() && dir.join("payout.key").exists());
}
