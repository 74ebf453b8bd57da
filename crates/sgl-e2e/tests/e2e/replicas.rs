//! Three coordinator replicas on one PostgreSQL behind HAProxy, two real nodes reaching the grid
//! only through the balancer. Any replica serves any request whatever replica holds the chosen
//! node's socket (sealed and streamed through `sgl-client`, every signature verified; plain
//! through the official `openai` Python package); then a replica holding a node's socket is
//! killed with SIGKILL under load: every caller is answered, cut off mid-stream, or refused
//! with a retryable status; the node reconnects to another replica within seconds; the dead
//! replica's jobs are ended by the leader; nothing is billed twice and the ledger is sound; the
//! replica restarts and serves again.

use serde_json::{Value, json};
use sgl_client::ChatRequest;
use sgl_protocol::api::openai::ChatMessage;

use crate::support::replicas::{ReplicaGrid, haproxy, postgres_url};
use crate::support::{DEADLINE, exclusive, openai_compat_script, python_openai, test_env, wait_for};

/// How one caller under load fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A whole answer (a completion, or a stream to `[DONE]`).
    Answered,
    /// A retryable refusal: 502 or 503 (the SDKs retry both).
    Refused(u16),
    /// The connection dropped, or a stream stopped before `[DONE]`.
    Dropped,
}

async fn call(http: reqwest::Client, url: String, key: String, body: Value) -> Outcome {
    let stream = body["stream"] == true;
    let Ok(response) = http.post(url).bearer_auth(key).json(&body).send().await else { return Outcome::Dropped };
    let status = response.status().as_u16();
    let Ok(text) = response.text().await else { return Outcome::Dropped };
    match status {
        200 if !stream
            && serde_json::from_str::<Value>(&text).is_ok_and(|v| v["choices"][0]["message"].is_object()) =>
        {
            Outcome::Answered
        }
        200 if stream && text.contains("data: [DONE]") => Outcome::Answered,
        200 => Outcome::Dropped,
        502 | 503 => Outcome::Refused(status),
        _ => panic!("a caller got {status}, neither an answer nor a retryable refusal: {text}"),
    }
}

fn chat(model: &str, stream: bool, max_tokens: u32) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Count from one to fifty."}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    })
}

async fn sealed_chat_and_stream(grid: &ReplicaGrid, base_url: &str) {
    let client = grid.client_at(base_url);
    let mut request = ChatRequest::new(&grid.model, vec![ChatMessage::text("user", "Count from one to ten.")]);
    request.max_tokens = Some(8);
    let chat = client.chat(&request).await.unwrap_or_else(|e| panic!("a sealed chat at {base_url}: {e}"));
    assert!(chat.verification.verified && grid.node_ids.contains(&chat.verification.node_id.to_string()));
    let mut stream = client.chat_stream(&request).await.expect("a sealed stream");
    let mut text = String::new();
    while let Some(delta) = stream.next_delta().await.expect("every chunk verifies") {
        text.push_str(&delta);
    }
    assert!(stream.end().expect("the signed end").verification.verified && !text.is_empty());
}

/// Any replica serves, whoever holds the chosen node's socket: each one directly, then the
/// balancer (where a reservation and its request may land on different replicas), then the
/// openai Python package through the balancer; every replica dispatched some of the jobs.
async fn any_replica_serves(grid: &ReplicaGrid) {
    for index in 0..3 {
        sealed_chat_and_stream(grid, &grid.replica_url(index)).await;
    }
    for _ in 0..2 {
        sealed_chat_and_stream(grid, &grid.base_url).await;
    }
    let summary = openai_compat_script(&grid.base_url, &grid.api_key, &grid.model).await;
    assert!(summary["completion_tokens"].as_u64().is_some_and(|n| n > 0), "{summary}");
    let jobs = grid.wait_jobs_finished().await;
    let dispatchers: std::collections::HashSet<_> = jobs.iter().filter_map(|(_, replica)| replica.clone()).collect();
    assert_eq!(dispatchers.len(), 3, "every replica dispatched jobs: {jobs:?}");
}

/// Eight callers (streams and whole answers) through the balancer, and replica `victim`
/// SIGKILLed as soon as a job is running: how each caller fared (none may hang).
async fn kill_under_load(grid: &mut ReplicaGrid, victim: usize) -> Vec<Outcome> {
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", grid.base_url);
    let callers: Vec<_> = (0..8)
        .map(|i| tokio::spawn(call(http.clone(), url.clone(), grid.api_key.clone(), chat(&grid.model, i % 2 == 0, 48))))
        .collect();
    wait_for("jobs in flight", || async {
        grid.jobs().await.iter().any(|(job, _)| job.status == "dispatched").then_some(())
    })
    .await;
    grid.kill(victim).await;
    let mut outcomes = Vec::new();
    for caller in callers {
        outcomes.push(tokio::time::timeout(DEADLINE, caller).await.expect("no caller hangs").expect("the caller"));
    }
    eprintln!("replicas: callers under the kill: {outcomes:?}");
    outcomes
}

/// Replica `victim` restarts and serves at once (it reads the nodes' live state), directly and
/// behind the balancer.
async fn restarted_replica_serves(grid: &mut ReplicaGrid, victim: usize) {
    grid.start_replica(victim).expect("the replica restarts");
    let restarted = grid.replica_url(victim);
    wait_for("the restarted replica to listen", || async {
        reqwest::get(format!("{restarted}/healthz")).await.ok().filter(|r| r.status().is_success()).map(|_| ())
    })
    .await;
    let models: Value = reqwest::get(format!("{restarted}/v1/models")).await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], grid.model.as_str(), "it knows the nodes before their next heartbeats");
    sealed_chat_and_stream(grid, &restarted).await;
    let (http, url) = (reqwest::Client::new(), format!("{}/v1/chat/completions", grid.base_url));
    for i in 0..4 {
        let outcome = call(http.clone(), url.clone(), grid.api_key.clone(), chat(&grid.model, i % 2 == 0, 8)).await;
        assert_eq!(outcome, Outcome::Answered, "after the restart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_haproxy_serve_any_request_and_survive_one_killed_under_load() {
    let Some(env) = test_env() else { return };
    let (Some(haproxy), Some(server)) = (haproxy(), postgres_url()) else { return };
    if !python_openai() {
        return;
    }
    let _turn = exclusive().await;
    let mut grid = ReplicaGrid::start(&env, &haproxy, &server).await.expect("three replicas, a balancer, two nodes");
    let before = grid.balance_micros().await;

    // Each node holds one socket, through the balancer, and not on the same replica.
    let holders = wait_for("both nodes' sockets", || async {
        let held: Option<Vec<usize>> = grid.node_ids.iter().map(|id| grid.socket_holder(id)).collect();
        held
    })
    .await;
    assert_ne!(holders[0], holders[1], "the sockets landed on different replicas:\n{}", grid.logs());
    any_replica_serves(&grid).await;

    // SIGKILL under load to a `serve` replica holding a node's socket.
    let victim = holders.iter().copied().find(|index| *index != 0).unwrap_or(1);
    let victim_node = grid.node_ids[holders.iter().position(|index| *index == victim).unwrap_or(0)].clone();
    let outcomes = kill_under_load(&mut grid, victim).await;
    assert!(outcomes.contains(&Outcome::Answered), "{outcomes:?}");

    // The node whose socket died reconnects to another replica within seconds.
    let moved = wait_for("the node to reconnect elsewhere", || async {
        grid.socket_holder(&victim_node).filter(|holder| *holder != victim)
    })
    .await;
    assert_ne!(moved, victim);

    // Every job ends (the dead replica's by the leader), none billed twice, the ledger sound.
    let jobs = grid.wait_jobs_finished().await;
    let billed: i64 = jobs.iter().filter_map(|(job, _)| job.billed_micros).sum();
    assert_eq!(before - grid.balance_micros().await, billed, "credits moved by exactly the bills: {jobs:?}");
    let audit = grid.admin(&["ledger", "check"]).await;
    assert_eq!(audit["sound"], true, "{audit}");

    restarted_replica_serves(&mut grid, victim).await;
    grid.stop().await;
}
