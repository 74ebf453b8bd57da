//! What replicas share on PostgreSQL: the bus (in order, large payloads through the table), the
//! leader's lock (one holder; the next takes it when the first's connection goes), who is
//! alive and which replica holds which job, and reservations taken once by their owner.

use sgl_grid_store::Store;
use sgl_grid_store::jobs::{JobEnd, NewJob};
use sgl_grid_store::replicas::{JobHome, MAX_INLINE_BYTES};
use sgl_grid_store::reservations::{OpenCounts, ReservationRow};

const NOW: i64 = 1_700_000_000_000;

pub(crate) async fn the_bus_delivers_in_order_and_large_messages_through_the_table(store: &Store) {
    let bus = store.bus().await.unwrap().expect("a bus on PostgreSQL");
    let mut listener = bus.listen().await.unwrap();
    let large = "x".repeat(MAX_INLINE_BYTES * 3);
    let sent = vec!["first".to_owned(), large.clone(), "third".to_owned()];
    bus.publish(&sent, NOW).await.unwrap();
    bus.publish(&["fourth".to_owned()], NOW).await.unwrap();
    for expected in sent.iter().chain([&"fourth".to_owned()]) {
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv()).await.unwrap().unwrap();
        assert_eq!(got.len(), expected.len());
        assert_eq!(&got, expected);
    }
    // Only the large one went through the table; it is purged once old.
    assert_eq!(bus.purge(NOW).await.unwrap(), 0);
    assert_eq!(bus.purge(NOW + 1).await.unwrap(), 1);
}

pub(crate) async fn nodes_live_state_is_replaced_only_by_a_later_one(store: &Store) {
    let bus = store.bus().await.unwrap().expect("a bus on PostgreSQL");
    let row = |state: &str, seen: i64| ("n1".to_owned(), state.to_owned(), seen);
    bus.write_live_nodes(&[row("first", NOW), ("n2".to_owned(), "other".to_owned(), NOW - 50_000)]).await.unwrap();
    bus.write_live_nodes(&[row("later", NOW + 10)]).await.unwrap();
    bus.write_live_nodes(&[row("stale", NOW + 5)]).await.unwrap();
    bus.write_live_nodes(&[]).await.unwrap();
    assert_eq!(bus.live_nodes(NOW - 1_000).await.unwrap(), vec![("later".to_owned(), NOW + 10)]);
    assert_eq!(bus.live_nodes(i64::MIN).await.unwrap().len(), 2);
    assert_eq!(bus.purge_live_nodes(NOW).await.unwrap(), 1, "the node not seen since is forgotten");
}

pub(crate) async fn one_replica_at_a_time_holds_the_leaders_lock(store: &Store) {
    let mut first = store.leadership().expect("contention on PostgreSQL");
    let mut second = store.leadership().expect("contention on PostgreSQL");
    assert!(first.check().await);
    assert!(!second.check().await, "the lock has one holder");
    assert!(first.check().await, "the holder keeps it");
    drop(first);
    // The first holder's connection closes in the background; the lock goes with it.
    let mut taken = false;
    for _ in 0..50 {
        if second.check().await {
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(taken, "the next replica takes the lock when the holder is gone");
}

fn job<'a>(id: &'a str, replica: &'a str) -> NewJob<'a> {
    NewJob { held_micros: 0, replica: Some(replica), ..crate::jobs::job(id) }
}

pub(crate) async fn silent_replicas_and_the_jobs_they_hold_are_found(store: &Store) {
    store.register_replica("rpl_a", NOW).await.unwrap();
    store.register_replica("rpl_b", NOW).await.unwrap();
    assert!(store.touch_replica("rpl_a", NOW + 20_000).await.unwrap());
    assert!(!store.touch_replica("rpl_gone", NOW).await.unwrap(), "an unknown replica is not alive");
    assert_eq!(store.silent_replicas(NOW + 10_000).await.unwrap(), vec!["rpl_b".to_owned()]);
    assert_eq!(store.live_replicas(NOW + 10_000).await.unwrap(), vec!["rpl_a".to_owned()]);

    store.insert_job(&job("j1", "rpl_b"), NOW).await.unwrap();
    store.insert_job(&job("j2", "rpl_a"), NOW).await.unwrap();
    let home = store.job_home("j1").await.unwrap();
    assert_eq!(home, Some(JobHome { replica: Some("rpl_b".into()), live: true, replica_seen_at: Some(NOW) }));
    assert_eq!(store.job_home("nope").await.unwrap(), None);
    let held: Vec<String> = store.jobs_of_replica("rpl_b").await.unwrap().into_iter().map(|job| job.id).collect();
    assert_eq!(held, vec!["j1".to_owned()]);
    // Jobs a replica holds are not anybody's orphans at start.
    assert!(store.stale_jobs(i64::MAX).await.unwrap().is_empty());

    assert!(store.finish_job("j1", &JobEnd::Failed { error: "gone" }, NOW).await.unwrap());
    assert!(!store.job_home("j1").await.unwrap().unwrap().live);
    assert!(store.jobs_of_replica("rpl_b").await.unwrap().is_empty());
    store.remove_replica("rpl_b").await.unwrap();
    let home = store.job_home("j2").await.unwrap().unwrap();
    assert_eq!(home.replica_seen_at, Some(NOW + 20_000));
    store.remove_replica("rpl_a").await.unwrap();
    assert_eq!(store.job_home("j2").await.unwrap().unwrap().replica_seen_at, None, "no such replica any more");
}

fn reservation(token: &str, api_key_id: Option<i64>, address: Option<&str>) -> ReservationRow {
    ReservationRow {
        token: token.to_owned(),
        node_id: "8c1f0a52-45c2-4b6c-9d0e-7f2a1b3c4d5e".to_owned(),
        model: "m".to_owned(),
        input_per_m: 0.25,
        output_per_m: 1.5,
        api_key_id,
        address: address.map(str::to_owned),
        expires_at: NOW + 60_000,
    }
}

pub(crate) async fn reservations_are_taken_once_by_their_owner(store: &Store) {
    store.insert_reservation(&reservation("rsv_a", Some(7), None)).await.unwrap();
    store.insert_reservation(&reservation("rsv_b", None, Some("10.0.0.1"))).await.unwrap();
    store.insert_reservation(&reservation("rsv_c", None, Some("10.0.0.2"))).await.unwrap();
    let counts = store.open_reservations(Some(7), Some("10.0.0.1"), NOW).await.unwrap();
    assert_eq!(counts, OpenCounts { same_key: 1, same_address: 1, anonymous: 2 });
    assert_eq!(store.open_reservations(Some(7), None, NOW + 60_000).await.unwrap(), OpenCounts::default());

    assert_eq!(store.peek_reservation("rsv_a", Some(8), NOW).await.unwrap(), None, "another key's");
    assert_eq!(store.peek_reservation("rsv_a", None, NOW).await.unwrap(), None, "a keyed one, asked without a key");
    assert_eq!(store.peek_reservation("rsv_a", Some(7), NOW).await.unwrap(), Some(reservation("rsv_a", Some(7), None)));
    assert_eq!(store.take_reservation("rsv_a", Some(7), NOW).await.unwrap(), Some(reservation("rsv_a", Some(7), None)));
    assert_eq!(store.take_reservation("rsv_a", Some(7), NOW).await.unwrap(), None, "single use");
    assert_eq!(store.take_reservation("rsv_b", Some(7), NOW).await.unwrap(), None, "a keyless one needs no key");
    assert_eq!(store.take_reservation("rsv_b", None, NOW + 60_000).await.unwrap(), None, "expired");
    assert!(store.take_reservation("rsv_b", None, NOW).await.unwrap().is_some());
    assert_eq!(store.purge_reservations(NOW + 60_000).await.unwrap(), 1, "rsv_c expired and went");
}

pub(crate) async fn sqlite_has_no_bus_and_no_lock(store: &Store) {
    assert!(store.bus().await.unwrap().is_none());
    assert!(store.leadership().is_none());
}
