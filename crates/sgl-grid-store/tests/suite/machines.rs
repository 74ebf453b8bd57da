//! Machines: the hold at provision, the capture when reachable or the full refund when not
//! (never both), extensions paid and resizes free under an `expires_at` guard, state moves
//! that apply once, warnings once, and a password taken once.

use sgl_grid_store::Store;
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, TransactionKind};
use sgl_grid_store::machines::{EventIn, MachineStoreError, NewMachine, TimeChange};
use sgl_protocol::api::machines::{EndReason, MachineEventKind, MachineState};

const NOW: i64 = 1_700_000_000_000;
const KEY: i64 = 1;
const HOUR: i64 = 3_600_000;

async fn grant(store: &Store, micros: i64) {
    let grant = NewTransaction::from_amounts(
        format!("grant:{micros}"),
        TransactionKind::CreditsGrant,
        String::new(),
        [
            (Account::External { source: "admin".into(), asset: Asset::Usd }, -micros),
            (Account::Credits { api_key_id: KEY }, micros),
        ],
    );
    store.post(&grant, NOW).await.unwrap();
}

fn machine(id: &str, hours: u32) -> NewMachine<'_> {
    NewMachine {
        id,
        api_key_id: KEY,
        account_id: KEY,
        label: Some("box"),
        plan: "local:1c-512mb",
        region: "local",
        backend: "local",
        os_id: None,
        hourly_micros: 10_000,
        prepaid_hours: hours,
        paid_micros: 10_000 * i64::from(hours),
        ssh_key: None,
        ready_deadline: NOW + 120_000,
        webhook_url: Some("https://example.com/hook"),
    }
}

async fn credits(store: &Store) -> i64 {
    store.balance(&Account::Credits { api_key_id: KEY }).await.unwrap()
}

pub(crate) async fn a_reachable_machine_is_paid_for_once(store: &Store) {
    grant(store, 100_000).await;
    store.provision_machine(&machine("vm_a", 3), NOW).await.unwrap();
    assert_eq!(credits(store).await, 70_000, "the prepaid price is held at once");
    let short = store.provision_machine(&machine("vm_b", 8), NOW).await.unwrap_err();
    assert!(matches!(short, MachineStoreError::InsufficientCredits { needed: 80_000, available: 70_000 }));
    assert!(store.machine("vm_b").await.unwrap().is_none(), "a refused provision leaves no row");
    store.machine_created("vm_a", "prov-1", Some("sealed"), NOW + 1).await.unwrap();
    let active = store.activate_machine("vm_a", ("127.0.0.1", 22001), MachineState::Active, NOW + 900).await.unwrap();
    assert_eq!(
        (active.state, active.active_at, active.expires_at),
        (MachineState::Active, Some(NOW + 900), Some(NOW + 900 + 3 * HOUR))
    );
    assert_eq!(active.ssh, Some(("127.0.0.1".into(), 22001)));
    assert_eq!(active.webhook_url.as_deref(), Some("https://example.com/hook"));
    assert_eq!(store.balance(&Account::Platform).await.unwrap(), 30_000);
    assert_eq!(store.balance(&Account::Escrow { job_id: "vm_a".into() }).await.unwrap(), 0);
    // A late failure (the deadline racing the probe) can no longer refund it.
    let late = store.fail_machine("vm_a", EndReason::NotReachable, "deadline", NOW + 1_000).await.unwrap_err();
    assert!(matches!(late, MachineStoreError::Conflict(_)));
    assert_eq!(credits(store).await, 70_000);
    let kinds: Vec<_> = store.machine_events("vm_a").await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [MachineEventKind::Requested, MachineEventKind::Created, MachineEventKind::Active]);
}

pub(crate) async fn a_machine_that_never_serves_is_refunded_in_full(store: &Store) {
    grant(store, 50_000).await;
    store.provision_machine(&machine("vm_f", 2), NOW).await.unwrap();
    store.fail_machine("vm_f", EndReason::ProviderFailed, "HTTP 500 from the provider", NOW + 5).await.unwrap();
    assert_eq!(credits(store).await, 50_000, "every micro-unit back");
    let failed = store.machine("vm_f").await.unwrap().unwrap();
    assert_eq!((failed.end_reason, failed.refunded_micros), (Some(EndReason::ProviderFailed), 20_000));
    let again = store.activate_machine("vm_f", ("127.0.0.1", 22), MachineState::Active, NOW + 6).await.unwrap_err();
    assert!(matches!(again, MachineStoreError::Conflict(_)), "a refunded machine is never charged");
    assert!(store.fail_machine("vm_f", EndReason::NotReachable, "x", NOW + 7).await.is_err());
    assert_eq!(store.balance(&Account::Platform).await.unwrap(), 0);
    let moved = store.move_machine("vm_f", &[MachineState::Pending], MachineState::Destroyed, None, None, NOW + 8);
    assert!(moved.await.unwrap());
    let gone = store.machine("vm_f").await.unwrap().unwrap();
    assert_eq!((gone.state, gone.ended_at), (MachineState::Destroyed, Some(NOW + 5)));
}

pub(crate) async fn extensions_are_paid_and_resizes_are_free_under_a_guard(store: &Store) {
    grant(store, 100_000).await;
    store.provision_machine(&machine("vm_e", 2), NOW).await.unwrap();
    let active = store.activate_machine("vm_e", ("h", 1), MachineState::Expiring, NOW).await.unwrap();
    let expires = active.expires_at.unwrap();
    let extend = TimeChange {
        expires_before: expires,
        expires_after: expires + 3 * HOUR,
        cost_micros: 30_000,
        hours: 3,
        plan: None,
        state_after: MachineState::Expiring,
    };
    store.change_machine_time("vm_e", KEY, extend, NOW + 10).await.unwrap();
    assert_eq!(credits(store).await, 100_000 - 20_000 - 30_000);
    let stale = store.change_machine_time("vm_e", KEY, extend, NOW + 11).await.unwrap_err();
    assert!(matches!(stale, MachineStoreError::Conflict(_)), "priced from an old expires_at: refused, not paid twice");
    assert_eq!(credits(store).await, 50_000);
    let resize = TimeChange {
        expires_before: expires + 3 * HOUR,
        expires_after: expires + HOUR,
        cost_micros: 0,
        hours: 0,
        plan: Some(("local:2c-1gb", 20_000)),
        state_after: MachineState::Expiring,
    };
    store.change_machine_time("vm_e", KEY, resize, NOW + 20).await.unwrap();
    let resized = store.machine("vm_e").await.unwrap().unwrap();
    assert_eq!(
        (resized.plan.as_str(), resized.hourly_micros, resized.expires_at),
        ("local:2c-1gb", 20_000, Some(expires + HOUR))
    );
    assert_eq!((resized.paid_micros, resized.prepaid_hours, resized.extensions), (50_000, 5, 1));
    let too_much = TimeChange {
        expires_before: expires + HOUR,
        expires_after: expires + 99 * HOUR,
        cost_micros: 990_000,
        hours: 99,
        plan: None,
        state_after: MachineState::Active,
    };
    let short = store.change_machine_time("vm_e", KEY, too_much, NOW + 30).await.unwrap_err();
    assert!(matches!(short, MachineStoreError::InsufficientCredits { .. }));
    assert_eq!(store.machine("vm_e").await.unwrap().unwrap().expires_at, Some(expires + HOUR), "nothing moved");
    let events = store.machine_events("vm_e").await.unwrap();
    let resized = events.iter().find(|e| e.kind == MachineEventKind::Resized).unwrap();
    assert_eq!(
        (resized.plan_before.as_deref(), resized.expires_before, resized.expires_after),
        (Some("local:1c-512mb"), Some(expires + 3 * HOUR), Some(expires + HOUR))
    );
}

pub(crate) async fn states_move_once_and_warnings_happen_once(store: &Store) {
    grant(store, 100_000).await;
    store.provision_machine(&machine("vm_s", 1), NOW).await.unwrap();
    store.activate_machine("vm_s", ("h", 1), MachineState::Expiring, NOW).await.unwrap();
    let warn =
        EventIn { once_key: Some("vm_s:warning_1h:1"), ..EventIn::new(MachineEventKind::Warning1h, "an hour left") };
    assert!(store.machine_event("vm_s", warn, NOW + 1).await.unwrap());
    assert!(!store.machine_event("vm_s", warn, NOW + 2).await.unwrap(), "once per expiry");
    let live = [MachineState::Active, MachineState::Expiring];
    let stop = Some(EventIn::new(MachineEventKind::Stopped, "stopped at expiry"));
    assert!(
        store.move_machine("vm_s", &live, MachineState::Expired, Some(NOW + 5 * HOUR), stop, NOW + HOUR).await.unwrap()
    );
    assert!(!store.move_machine("vm_s", &live, MachineState::Expired, Some(NOW), stop, NOW + HOUR).await.unwrap());
    assert_eq!(store.machine("vm_s").await.unwrap().unwrap().destroy_at, Some(NOW + 5 * HOUR));
    assert!(store.end_machine("vm_s", EndReason::Expired, NOW + 5 * HOUR).await.unwrap());
    assert!(!store.end_machine("vm_s", EndReason::DestroyedByUser, NOW + 5 * HOUR).await.unwrap(), "one reason");
    assert_eq!(store.live_machines(10).await.unwrap().len(), 1);
    store
        .move_machine("vm_s", &[MachineState::Expired], MachineState::Destroyed, None, None, NOW + 6 * HOUR)
        .await
        .unwrap();
    assert!(store.live_machines(10).await.unwrap().is_empty());
    let kinds: Vec<_> = store.machine_events("vm_s").await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == MachineEventKind::Warning1h).count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == MachineEventKind::Stopped).count(), 1);
    assert_eq!(store.machines_of(KEY, 10).await.unwrap().len(), 1);
    assert!(store.machine_of(KEY + 1, "vm_s").await.unwrap().is_none(), "another account sees nothing");
}

pub(crate) async fn a_password_is_taken_once(store: &Store) {
    grant(store, 100_000).await;
    store.provision_machine(&machine("vm_p", 1), NOW).await.unwrap();
    store.machine_created("vm_p", "prov", Some("sealed-bytes"), NOW).await.unwrap();
    assert!(store.machine("vm_p").await.unwrap().unwrap().password_waiting);
    assert_eq!(store.take_machine_password("vm_p", NOW + 1).await.unwrap().as_deref(), Some("sealed-bytes"));
    assert_eq!(store.take_machine_password("vm_p", NOW + 2).await.unwrap(), None);
    assert!(!store.machine("vm_p").await.unwrap().unwrap().password_waiting, "the sealed password is gone");
}
