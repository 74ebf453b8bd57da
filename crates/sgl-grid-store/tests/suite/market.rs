//! The order book: an order's hold, bids refused above its maximum, after its window or from its
//! own operator, the match by price then reputation then time, a lease's deposit streamed by
//! settlements and closes that pay exactly what streamed and refund the rest, unfilled and
//! cancelled orders refunded whole, and a bound job leased only to its lease's node. Every
//! amount is exact to the micro-unit and the ledger audit is sound after each case.

use std::collections::BTreeMap;

use sgl_grid_store::Store;
use sgl_grid_store::compute::{ComputeShares, Funding, LeaseAsk, NewComputeJob};
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, TransactionKind};
use sgl_grid_store::market::{LeaseEnd, MarketStoreError, NewBid, NewOrder, Standing};
use sgl_protocol::api::market::{BidState, LeaseState, LostReason, OrderState, Resources};
use sgl_protocol::compute::JobClass;

const NOW: i64 = 1_700_000_000_000;
const KEY: i64 = 1;
const GRANT: i64 = 10_000_000;

async fn grant(store: &Store) {
    let grant = NewTransaction::from_amounts(
        "grant".into(),
        TransactionKind::CreditsGrant,
        String::new(),
        [
            (Account::External { source: "admin".into(), asset: Asset::Usd }, -GRANT),
            (Account::Credits { api_key_id: KEY }, GRANT),
        ],
    );
    store.post(&grant, NOW).await.unwrap();
}

fn order<'a>(id: &'a str, max: i64, duration_secs: i64) -> NewOrder<'a> {
    NewOrder {
        id,
        api_key_id: KEY,
        account_id: KEY,
        requester_wallet: Some("0xreq"),
        class: JobClass::Wasm,
        resources: Resources { cpu_cores: 2, memory_mb: 1024, gpus: 0 },
        duration_secs,
        max_price_per_hour: max,
        bid_window_secs: 5,
        job_id: None,
    }
}

fn bid<'a>(order_id: &'a str, node: &'a str, price: i64) -> NewBid<'a> {
    NewBid { order_id, node_id: node, operator: node, price_per_hour: price }
}

fn standing(nodes: &[(&str, f64, bool)]) -> BTreeMap<String, Standing> {
    nodes
        .iter()
        .map(|(node, reputation, eligible)| {
            ((*node).to_owned(), Standing { reputation: *reputation, eligible: *eligible })
        })
        .collect()
}

async fn balance(store: &Store, account: Account) -> i64 {
    store.balance(&account).await.unwrap()
}

async fn credits(store: &Store) -> i64 {
    balance(store, Account::Credits { api_key_id: KEY }).await
}

async fn assert_sound(store: &Store) {
    let audit = store.audit_ledger().await.unwrap();
    assert!(audit.is_sound(), "{:?}", audit.problems);
}

/// Places `id` and leases it to the node `0xop` at `price` (the window over at `NOW + 5 s`).
async fn leased(store: &Store, id: &str, price: i64, duration_secs: i64) -> sgl_grid_store::market::LeaseRecord {
    store.place_market_order(&order(id, 1_000_000, duration_secs), NOW).await.unwrap();
    store.place_market_bid(&bid(id, "0xop", price), NOW + 1).await.unwrap();
    let matched =
        store.match_market_order(id, &standing(&[("0xop", 0.5, true)]), &format!("ml_{id}"), NOW + 5_000).await;
    matched.unwrap().lease.unwrap()
}

pub(crate) async fn an_order_is_matched_by_price_then_reputation_and_its_excess_hold_refunded(store: &Store) {
    grant(store).await;
    store.place_market_order(&order("mo_1", 1_000_000, 3_600), NOW).await.unwrap();
    assert_eq!(credits(store).await, GRANT - 1_000_000, "the maximum over the whole hour is held");
    assert_eq!(balance(store, Account::Escrow { job_id: "mo_1".into() }).await, 1_000_000);
    store.place_market_bid(&bid("mo_1", "n_a", 900_000), NOW + 1).await.unwrap();
    store.place_market_bid(&bid("mo_1", "n_b", 600_000), NOW + 2).await.unwrap();
    store.place_market_bid(&bid("mo_1", "n_c", 600_000), NOW + 3).await.unwrap();
    let replaced = store.place_market_bid(&bid("mo_1", "n_a", 950_000), NOW + 4).await.unwrap();
    assert_eq!((replaced.price_per_hour, replaced.placed_at, replaced.state), (950_000, NOW + 4, BidState::Pending));
    let above = store.place_market_bid(&bid("mo_1", "n_d", 1_000_001), NOW + 5).await.unwrap_err();
    assert!(matches!(above, MarketStoreError::AboveMaximum { max: 1_000_000 }), "{above}");
    let own = NewBid { operator: "0xREQ", ..bid("mo_1", "n_own", 1) };
    assert!(matches!(store.place_market_bid(&own, NOW + 6).await.unwrap_err(), MarketStoreError::OwnOrder));
    let late = store.place_market_bid(&bid("mo_1", "n_d", 1), NOW + 5_000).await.unwrap_err();
    assert!(matches!(late, MarketStoreError::Closed(_)), "{late}");
    assert_eq!(store.order_bids("mo_1").await.unwrap().len(), 3, "one bid per node; refused bids leave nothing");

    let nodes = standing(&[("n_a", 0.9, true), ("n_b", 0.5, true), ("n_c", 0.8, true)]);
    let matched = store.match_market_order("mo_1", &nodes, "ml_1", NOW + 5_000).await.unwrap();
    let lease = matched.lease.unwrap();
    assert_eq!((matched.order.state, matched.order.refunded_micros), (OrderState::Leased, 400_000));
    assert_eq!((lease.node_id.as_str(), lease.price_per_hour, lease.deposit_micros), ("n_c", 600_000, 600_000));
    assert_eq!(
        (lease.started_at, lease.ends_at, lease.state),
        (NOW + 5_000, NOW + 5_000 + 3_600_000, LeaseState::Active)
    );
    assert_eq!(credits(store).await, GRANT - 600_000, "the hold's excess over the deposit came back");
    assert_eq!(balance(store, Account::Escrow { job_id: "mo_1".into() }).await, 0);
    assert_eq!(balance(store, Account::Escrow { job_id: "ml_1".into() }).await, 600_000);
    let outcome: BTreeMap<String, (BidState, Option<LostReason>)> = store
        .order_bids("mo_1")
        .await
        .unwrap()
        .into_iter()
        .map(|bid| (bid.node_id, (bid.state, bid.lost_reason)))
        .collect();
    assert_eq!(outcome["n_c"], (BidState::Won, None));
    assert_eq!(outcome["n_b"], (BidState::Lost, Some(LostReason::LowerReputation)));
    assert_eq!(outcome["n_a"], (BidState::Lost, Some(LostReason::Outbid { winning_price_micros: 600_000 })));
    let again = store.match_market_order("mo_1", &nodes, "ml_2", NOW + 6_000).await.unwrap_err();
    assert!(matches!(again, MarketStoreError::Conflict(_)), "a match happens once");
    assert_eq!(store.node_bids("n_c", 10).await.unwrap()[0].lease_id.as_deref(), Some("ml_1"));
    assert_sound(store).await;
}

pub(crate) async fn a_lease_streams_by_settlements_and_a_close_pays_what_streamed(store: &Store) {
    grant(store).await;
    // 0.72 USD an hour is 200 micro-USD a second; 600 s hold 166,666 at the maximum.
    let lease = leased(store, "mo_s", 720_000, 600).await;
    let started = lease.started_at;
    assert_eq!(lease.deposit_micros, 120_000);
    assert_eq!(credits(store).await, GRANT - 120_000);
    let shares = ComputeShares::default();
    assert_eq!(store.settle_market_lease(&lease.id, shares, started + 61_500).await.unwrap(), 12_200);
    assert_eq!(store.settle_market_lease(&lease.id, shares, started + 61_999).await.unwrap(), 0, "never twice");
    assert_eq!(balance(store, Account::Earnings { wallet: "0xop".into() }).await, 12_078, "99 % of 61 s");
    assert_eq!(balance(store, Account::Platform).await, 122);
    let closed = store.close_market_lease(&lease.id, LeaseEnd::Completed, started + 90_700, shares, started + 91_000);
    let closed = closed.await.unwrap();
    assert_eq!((closed.state, closed.ended_at), (LeaseState::Completed, Some(started + 90_700)));
    assert_eq!((closed.paid_micros, closed.refunded_micros, closed.settlements), (18_000, 102_000, 2));
    assert_eq!(balance(store, Account::Earnings { wallet: "0xop".into() }).await, 17_820);
    assert_eq!(balance(store, Account::Platform).await, 180);
    assert_eq!(credits(store).await, GRANT - 18_000, "90 whole seconds paid, the rest refunded");
    assert_eq!(balance(store, Account::Escrow { job_id: lease.id.clone() }).await, 0);
    let twice = store.close_market_lease(&lease.id, LeaseEnd::Cancelled, started + 95_000, shares, started + 95_000);
    assert!(matches!(twice.await.unwrap_err(), MarketStoreError::Conflict("completed")));
    assert_eq!(store.settle_market_lease(&lease.id, shares, started + 99_000).await.unwrap(), 0);
    assert_sound(store).await;
}

pub(crate) async fn an_exhausted_lease_pays_its_whole_deposit_and_never_more(store: &Store) {
    grant(store).await;
    // 1 USD an hour for 100 s: a deposit of 27,777 (27,777.7… rounded down).
    let lease = leased(store, "mo_x", 1_000_000, 100).await;
    let shares = ComputeShares::default();
    assert_eq!(lease.deposit_micros, 27_777);
    assert_eq!(store.settle_market_lease(&lease.id, shares, lease.started_at + 61_000).await.unwrap(), 16_944);
    assert_eq!(balance(store, Account::Earnings { wallet: "0xop".into() }).await, 16_774);
    assert_eq!(balance(store, Account::Platform).await, 169);
    // Long past its end: only what was left of the deposit.
    assert_eq!(store.settle_market_lease(&lease.id, shares, lease.ends_at + 3_600_000).await.unwrap(), 10_833);
    let earned = balance(store, Account::Earnings { wallet: "0xop".into() }).await;
    let platform = balance(store, Account::Platform).await;
    let rounding = balance(store, Account::Rounding).await;
    assert_eq!((earned, platform, rounding), (27_499, 277, 1), "99/1 of 27,777 with the carries' unit");
    let closed = store.close_market_lease(&lease.id, LeaseEnd::Exhausted, lease.ends_at + 3_600_000, shares, NOW);
    let closed = closed.await.unwrap();
    assert_eq!((closed.state, closed.ended_at), (LeaseState::Exhausted, Some(lease.ends_at)));
    assert_eq!((closed.paid_micros, closed.refunded_micros), (27_777, 0));
    assert_eq!(credits(store).await, GRANT - 27_777);
    assert_eq!(balance(store, Account::Escrow { job_id: lease.id.clone() }).await, 0);
    assert_sound(store).await;
}

pub(crate) async fn unfilled_and_cancelled_orders_are_refunded_whole_once(store: &Store) {
    grant(store).await;
    store.place_market_order(&order("mo_u", 100_000, 60), NOW).await.unwrap();
    assert_eq!(credits(store).await, GRANT - 1_666);
    store.place_market_bid(&bid("mo_u", "n_off", 50_000), NOW + 1).await.unwrap();
    let matched = store.match_market_order("mo_u", &standing(&[("n_off", 1.0, false)]), "ml_u", NOW + 5_000).await;
    let matched = matched.unwrap();
    assert_eq!(
        (matched.order.state, matched.order.refunded_micros, matched.lease),
        (OrderState::Unfilled, 1_666, None)
    );
    assert_eq!(credits(store).await, GRANT, "every micro-unit back");
    let lost = &store.order_bids("mo_u").await.unwrap()[0];
    assert_eq!((lost.state, lost.lost_reason), (BidState::Lost, Some(LostReason::NodeIneligible)));

    store.place_market_order(&order("mo_c", 100_000, 60), NOW).await.unwrap();
    store.place_market_bid(&bid("mo_c", "n_1", 50_000), NOW + 1).await.unwrap();
    assert!(matches!(store.cancel_market_order("mo_c", KEY + 1, NOW + 2).await, Err(MarketStoreError::NotFound)));
    let cancelled = store.cancel_market_order("mo_c", KEY, NOW + 2).await.unwrap();
    assert_eq!((cancelled.state, cancelled.refunded_micros), (OrderState::Cancelled, 1_666));
    assert_eq!(credits(store).await, GRANT);
    let lost = &store.order_bids("mo_c").await.unwrap()[0];
    assert_eq!(lost.lost_reason, Some(LostReason::OrderCancelled));
    assert!(matches!(store.cancel_market_order("mo_c", KEY, NOW + 3).await, Err(MarketStoreError::Conflict(_))));
    let late = store.match_market_order("mo_c", &standing(&[("n_1", 1.0, true)]), "ml_c", NOW + 5_000).await;
    assert!(matches!(late, Err(MarketStoreError::Conflict(_))), "a cancelled order is never leased");
    assert!(matches!(store.place_market_bid(&bid("mo_c", "n_2", 1), NOW + 4).await, Err(MarketStoreError::Closed(_))));
    assert_eq!(credits(store).await, GRANT);

    let short = store.place_market_order(&order("mo_big", 1_000_000_000_000, 3_600), NOW).await.unwrap_err();
    assert!(matches!(short, MarketStoreError::InsufficientCredits { needed: 1_000_000_000_000, available: GRANT }));
    assert!(store.market_order("mo_big").await.unwrap().is_none(), "a refused order leaves no row");
    assert_sound(store).await;
}

fn job(id: &str, redundancy: u32) -> NewComputeJob<'_> {
    NewComputeJob {
        id,
        funding: Funding::Credits { api_key_id: KEY, account_id: KEY },
        requester: "requester",
        class: "wasm",
        bundle_hash: "bundle",
        manifest: "{}",
        signature: "{}",
        redundancy,
        slice_count: 1,
        price_micros_per_gfuel: 1_000,
        attempt_hold_micros: 1_000,
        lease_ms: 60_000,
        target_node: None,
        expected: None,
        model_sha256: None,
        engine: None,
    }
}

/// The jobs whose slices `node` leases when it asks now, sorted and joined by commas.
async fn leases_of(store: &Store, node: &str) -> String {
    let ask =
        LeaseAsk { node_id: node, operator: node, classes: &["wasm"], slots: 4, model_sha256: None, engines: &[] };
    let mut jobs: Vec<String> =
        store.lease_compute(&ask, NOW + 10_000).await.unwrap().into_iter().map(|leased| leased.job_id).collect();
    jobs.sort();
    jobs.join(",")
}

pub(crate) async fn a_bound_job_is_leased_only_to_its_lease_node(store: &Store) {
    grant(store).await;
    store.submit_compute_job(&job("cj_m", 1), NOW).await.unwrap();
    store.submit_compute_job(&job("cj_u", 1), NOW).await.unwrap();
    store.submit_compute_job(&job("cj_r2", 2), NOW).await.unwrap();
    let bound = NewOrder { job_id: Some("cj_m"), ..order("mo_j", 100_000, 60) };
    store.place_market_order(&bound, NOW).await.unwrap();
    let before = credits(store).await;
    for (id, job_id) in [("mo_j2", "cj_m"), ("mo_r2", "cj_r2"), ("mo_none", "cj_nope")] {
        let refused = NewOrder { job_id: Some(job_id), ..order(id, 100_000, 60) };
        let refused = store.place_market_order(&refused, NOW).await;
        assert!(matches!(refused, Err(MarketStoreError::JobNotBindable(_))), "{job_id}");
    }
    assert_eq!(credits(store).await, before, "a refused binding holds nothing");
    store.place_market_order(&NewOrder { job_id: Some("cj_u"), ..order("mo_ju", 100_000, 60) }, NOW).await.unwrap();
    // While the orders are open no node leases their jobs; the unbound job of redundancy 2 is free.
    assert_eq!(leases_of(store, "n_other").await, "cj_r2");
    store.place_market_bid(&bid("mo_j", "n_win", 50_000), NOW + 1).await.unwrap();
    store.match_market_order("mo_j", &standing(&[("n_win", 0.5, true)]), "ml_j", NOW + 5_000).await.unwrap();
    store.match_market_order("mo_ju", &standing(&[]), "ml_ju", NOW + 5_000).await.unwrap();
    // The unfilled order's job went back to every node; the leased one only to its node.
    assert_eq!(leases_of(store, "n_third").await, "cj_r2,cj_u", "cj_u is unbound again");
    assert_eq!(leases_of(store, "n_fourth").await, "", "cj_m is n_win's alone");
    assert_eq!(leases_of(store, "n_win").await, "cj_m");
    let lease = store.order_lease("mo_j").await.unwrap().unwrap();
    assert_eq!(lease.job_id.as_deref(), Some("cj_m"));
    assert_sound(store).await;
}

pub(crate) async fn concurrent_settlements_and_closes_pay_each_micro_unit_once(store: &Store) {
    grant(store).await;
    let lease = leased(store, "mo_race", 720_000, 600).await;
    let shares = ComputeShares::default();
    let at = lease.started_at + 100_000;
    let settle = || store.settle_market_lease(&lease.id, shares, at);
    let close = |end| store.close_market_lease(&lease.id, end, at, shares, at);
    let (a, b, c, d) = tokio::join!(settle(), settle(), close(LeaseEnd::Completed), close(LeaseEnd::Cancelled));
    let closes = [c.is_ok(), d.is_ok()];
    assert_eq!(closes.iter().filter(|ok| **ok).count(), 1, "one close wins: {c:?} {d:?}");
    for settled in [a, b] {
        // A settlement racing the close either paid first or found the lease ended.
        assert!(matches!(settled, Ok(_) | Err(MarketStoreError::Conflict(_))), "{settled:?}");
    }
    let ended = store.market_lease(&lease.id).await.unwrap().unwrap();
    assert_eq!((ended.paid_micros, ended.refunded_micros), (20_000, 100_000), "100 s at 200 a second, once");
    assert_eq!(balance(store, Account::Earnings { wallet: "0xop".into() }).await, 19_800);
    assert_eq!(credits(store).await, GRANT - 20_000);
    assert_eq!(balance(store, Account::Escrow { job_id: lease.id.clone() }).await, 0);
    assert_sound(store).await;
}

pub(crate) async fn a_lease_on_the_chain_books_what_its_stream_paid(store: &Store) {
    use sgl_grid_store::market::chain::chain_escrow;
    grant(store).await;
    // 0.72 USD an hour for 600 s: a deposit of 120,000, 61 s of it settled in the ledger first.
    let lease = leased(store, "mo_c", 720_000, 600).await;
    let shares = ComputeShares::default();
    assert_eq!(store.settle_market_lease(&lease.id, shares, lease.started_at + 61_000).await.unwrap(), 12_200);
    let stale = store.fund_market_lease_on_chain(&lease.id, "7", 120_000, NOW + 62_000).await.unwrap_err();
    assert!(matches!(stale, MarketStoreError::Conflict(_)), "sized before the settlement: {stale}");
    let funded = store.fund_market_lease_on_chain(&lease.id, "7", 107_800, NOW + 62_000).await.unwrap();
    assert_eq!((funded.chain_stream.as_deref(), funded.chain_deposit), (Some("7"), 107_800));
    assert_eq!(balance(store, chain_escrow()).await, 107_800);
    assert_eq!(balance(store, Account::Escrow { job_id: lease.id.clone() }).await, 0);
    let twice = store.fund_market_lease_on_chain(&lease.id, "8", 107_800, NOW + 63_000).await.unwrap_err();
    assert!(matches!(twice, MarketStoreError::Conflict(_)), "funded once: {twice}");
    assert_eq!(store.settle_market_lease(&lease.id, shares, lease.started_at + 200_000).await.unwrap(), 0);
    let ledger_close = store.close_market_lease(&lease.id, LeaseEnd::Completed, NOW + 100_000, shares, NOW + 100_000);
    assert!(matches!(ledger_close.await.unwrap_err(), MarketStoreError::Conflict(_)), "the chain closes it");
    let beyond = store.close_chain_market_lease(&lease.id, LeaseEnd::Completed, 107_801, NOW, NOW + 100_000);
    assert!(matches!(beyond.await.unwrap_err(), MarketStoreError::Conflict(_)));

    let closed =
        store.close_chain_market_lease(&lease.id, LeaseEnd::Completed, 8_000, NOW + 100_000, NOW + 100_000).await;
    let closed = closed.unwrap();
    assert_eq!((closed.state, closed.paid_micros, closed.refunded_micros), (LeaseState::Completed, 20_200, 99_800));
    assert_eq!(balance(store, chain_escrow()).await, 8_000, "what the stream paid stays out");
    assert_eq!(credits(store).await, GRANT - 20_200, "61 s in the ledger and 8,000 on the chain paid");
    let again = store.close_chain_market_lease(&lease.id, LeaseEnd::Completed, 0, NOW + 101_000, NOW + 101_000);
    assert!(matches!(again.await.unwrap_err(), MarketStoreError::Conflict("completed")));
    assert_eq!(store.chain_market_leases().await.unwrap().len(), 1);
    assert_sound(store).await;
}
