//! Two replicas in one process, each with its own pool on one PostgreSQL database and joined
//! through its bus, as two `sgl-grid serve` processes would be: a heartbeat taken by one makes
//! the node schedulable on the other; a price set on one reaches the other and is not undone
//! by a heartbeat the other takes; a replica that joins later knows the node at once; a sealed request reserved on one and sent to the other is
//! dispatched there, and the node's result, posted to the first, is forwarded to the second,
//! which answers its caller and bills it once.

use std::time::Duration;

use axum::http::StatusCode;
use rand_core::OsRng;
use serde_json::json;
use sgl_protocol::api::caller::ReserveResponse;
use sgl_protocol::api::inference::{InferenceRequest, Usage};
use sgl_protocol::api::openai::ChatMessage;
use sgl_protocol::identity::EncryptionPublicKey;
use sgl_protocol::seal::{SealVersion, seal_request};

use crate::harness::{Grid, drop_database};

/// The value of an unlabelled metric in `grid`'s `/metrics`.
async fn metric(grid: &Grid, name: &str) -> u64 {
    let (status, body) = grid.call("GET", "/metrics", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().expect("the exposition is text");
    let line =
        text.lines().find(|line| line.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Waits (up to 10 s) until `check` holds: the bus is asynchronous.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..1_000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_replica_schedules_quotes_and_answers_for_a_node_another_replica_heard() {
    let Some((grids, database)) = Grid::replicas(2).await else { return };
    let (a, b) = (&grids[0], &grids[1]);
    let node = a.node("0xop", 9).await;
    node.beat(a, &["m"]).await;
    eventually("replica B learning the node", || {
        b.state().registry().get(&node.node_id).is_some_and(|live| live.models == ["m"] && live.attested())
    })
    .await;

    // A price set through A reaches B; a heartbeat B takes keeps it on A.
    let path = format!("/grid/nodes/{}/prices", node.node_id);
    let price = json!({"model": "m", "input_per_m": 0.2, "output_per_m": 0.6});
    assert_eq!(node.call(a, "POST", &path, Some(price)).await.0, StatusCode::OK);
    let priced = |grid: &Grid| {
        grid.state().registry().get(&node.node_id).is_some_and(|live| {
            live.custom_prices.get("m").is_some_and(|p| p.input_per_m == 0.2 && p.output_per_m == 0.6)
        })
    };
    eventually("replica B learning the price", || priced(b)).await;
    node.beat(b, &["m"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(priced(a), "a heartbeat taken by B did not carry an old price back to A");

    // A replica that joins now knows the node before any heartbeat, from its row (the replicas
    // write what they heard once a second).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let url = format!("{}/{}", database.0.rsplit_once('/').unwrap().0, database.1);
    let c = a.another_replica(&url).await;
    assert!(priced(&c), "the joining replica read the node and its price");
    assert!(c.state().registry().get(&node.node_id).is_some_and(|live| live.attested() && live.models == ["m"]));

    // Reserved on A, sent to B: B dispatches (the reservation is shared), the node hears of
    // the job from B's heartbeat, posts its result to A, and A forwards it to B.
    let (key_id, api_key) = a.api_key(1.0).await;
    let (status, reservation) =
        a.call("POST", "/v1/reserve", &[("X-API-Key", &api_key)], Some(json!({"model": "m"}))).await;
    assert_eq!(status, StatusCode::OK, "{reservation}");
    let reservation: ReserveResponse = serde_json::from_value(reservation).unwrap();
    let node_key = EncryptionPublicKey::from_b58(reservation.node_x25519_pubkey.as_deref().unwrap()).unwrap();
    let prompt = InferenceRequest {
        messages: Some(vec![ChatMessage::text("user", "across replicas")]),
        max_tokens: Some(8),
        ..InferenceRequest::default()
    };
    let (enc, _opener) =
        seal_request(&node_key, SealVersion::V2, &serde_json::to_vec(&prompt).unwrap(), &mut OsRng).unwrap();
    let body = json!({"reservation_token": reservation.reservation_token, "max_tokens": 8, "enc": enc});
    let caller = b.spawn_call("/v1/chat/completions", &api_key, body.clone());
    let job = node.open(&node.wait_job(b, "m").await);
    let row = a.store.job_home(job.id.as_str()).await.unwrap().unwrap();
    assert_eq!(row.replica.as_deref(), Some(b.state().cluster().unwrap().id()), "B dispatched it");
    assert_eq!(node.complete(a, &job, "forwarded", Usage::new(5, 3)).await.0, StatusCode::OK);
    let (status, answer) = caller.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    let billed = 1_000_000 - a.credits(key_id).await;
    assert!(billed > 0, "billed once for the answer");
    // Posted again (to A, forwarded again): the job is over, nothing more is billed.
    assert_eq!(node.complete(a, &job, "again", Usage::new(5, 3)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(1_000_000 - a.credits(key_id).await, billed);
    // The reservation was used once, wherever it is presented.
    let (status, error) = a.call("POST", "/v1/chat/completions", &[("X-API-Key", &api_key)], Some(body)).await;
    assert_eq!((status, &error["error"]["param"]), (StatusCode::BAD_REQUEST, &json!("reservation_token")), "{error}");
    a.assert_ledger_balanced().await;

    // `/metrics` says what crossed and who leads: A forwarded the one post for B's live job,
    // and exactly one replica holds the leader's lock.
    assert_eq!(metric(a, "sgl_replica_posts_forwarded_total").await, 1);
    assert_eq!(metric(b, "sgl_replica_posts_forwarded_total").await, 0);
    let mut leaders = 0;
    for _ in 0..100 {
        leaders = metric(a, "sgl_replica_leader").await
            + metric(b, "sgl_replica_leader").await
            + metric(&c, "sgl_replica_leader").await;
        if leaders == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(leaders, 1, "one leader among the three replicas");
    drop((grids, c));
    drop_database(database).await;
}
