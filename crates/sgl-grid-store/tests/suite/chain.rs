//! The chain's stake and bond events as the grid books them: each once, with the ledger
//! movement it causes; the grid's own slashes (by evidence hash) not booked a second time.

use sgl_grid_store::Store;
use sgl_grid_store::chain::{ChainBond, ChainEventRecord, SentSlash, StakeEvent};
use sgl_grid_store::ledger::Account;

const NOW: i64 = 1_700_000_000_000;
const WALLET: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

fn event(n: u32, event: StakeEvent, amount: i64) -> ChainEventRecord {
    ChainEventRecord { key: format!("chain:0x{n:064x}:0"), block: i64::from(n), wallet: WALLET.into(), event, amount }
}

async fn stake(store: &Store) -> (i64, i64, i64) {
    (
        store.balance(&Account::Stake { wallet: WALLET.into() }).await.unwrap(),
        store.balance(&Account::Unbonding { wallet: WALLET.into() }).await.unwrap(),
        store.balance(&Account::Slashed).await.unwrap(),
    )
}

pub(crate) async fn chain_events_are_booked_once_and_follow_the_contracts(store: &Store) {
    assert_eq!(store.chain_cursor("0xstaking").await.unwrap(), None);
    let staked = event(1, StakeEvent::Staked, 100_000_000);
    assert!(store.apply_chain_event(&staked, NOW).await.unwrap());
    assert!(!store.apply_chain_event(&staked, NOW).await.unwrap(), "an event is booked once");
    assert_eq!(stake(store).await, (100_000_000, 0, 0));

    let unlock = NOW + 7 * 86_400_000;
    let unstake = StakeEvent::UnstakeRequested { pending: 40_000_000, available_at_ms: unlock };
    store.apply_chain_event(&event(2, unstake, 40_000_000), NOW).await.unwrap();
    assert_eq!(stake(store).await, (60_000_000, 40_000_000, 0));
    let open = store.unstake_request(WALLET).await.unwrap().expect("an open unstake");
    assert_eq!((open.amount, open.available_at), (40_000_000, unlock));

    // A slash by another slasher takes the active stake first, then the unstaking.
    store.apply_chain_event(&event(3, StakeEvent::Slashed { evidence: [7; 32] }, 70_000_000), NOW).await.unwrap();
    assert_eq!(stake(store).await, (0, 30_000_000, 70_000_000));
    // The grid's own slash was booked when it was sent: its event moves nothing again.
    let sent = SentSlash {
        evidence_hash: format!("0x{}", "09".repeat(32)),
        wallet: WALLET.into(),
        stake_amount: 0,
        bond_amount: 1,
    };
    assert!(store.record_sent_slash(&sent, NOW).await.unwrap());
    assert!(!store.record_sent_slash(&sent, NOW).await.unwrap(), "recorded once");
    store.apply_chain_event(&event(4, StakeEvent::Slashed { evidence: [9; 32] }, 5), NOW).await.unwrap();
    assert_eq!(stake(store).await, (0, 30_000_000, 70_000_000));

    store.apply_chain_event(&event(5, StakeEvent::Withdrawn, 30_000_000), NOW).await.unwrap();
    assert_eq!(stake(store).await, (0, 0, 70_000_000));
    assert_eq!(store.unstake_request(WALLET).await.unwrap(), None);

    // Bonds live beside the ledger.
    assert_eq!(store.chain_bond(WALLET).await.unwrap(), None);
    store.apply_chain_event(&event(6, StakeEvent::Registered, 1_000), NOW).await.unwrap();
    store.apply_chain_event(&event(7, StakeEvent::BondToppedUp, 500), NOW).await.unwrap();
    store.apply_chain_event(&event(8, StakeEvent::BondSlashed { evidence: [9; 32] }, 75), NOW).await.unwrap();
    let bond = store.chain_bond(WALLET).await.unwrap();
    assert_eq!(bond, Some(ChainBond { bond: 1_425, registered: true, unlock_at_ms: 0 }));
    store
        .apply_chain_event(&event(9, StakeEvent::DeregisterRequested { available_at_ms: unlock }, 0), NOW)
        .await
        .unwrap();
    assert_eq!(store.chain_bond(WALLET).await.unwrap().map(|b| b.unlock_at_ms), Some(unlock));
    store.apply_chain_event(&event(10, StakeEvent::Deregistered, 1_425), NOW).await.unwrap();
    assert_eq!(store.chain_bond(WALLET).await.unwrap(), Some(ChainBond::default()));

    store.set_chain_cursor("0xstaking", 11).await.unwrap();
    store.set_chain_cursor("0xstaking", 12).await.unwrap();
    assert_eq!(store.chain_cursor("0xstaking").await.unwrap(), Some(12));
    assert_eq!(store.chain_wallets().await.unwrap(), vec![WALLET.to_owned()]);
    assert!(store.audit_ledger().await.unwrap().is_sound());
}

/// The ledger transaction a payout of `amount` from `WALLET`'s earnings is.
fn payout_out(nonce: &str, amount: i64) -> sgl_grid_store::ledger::NewTransaction {
    sgl_grid_store::ledger::NewTransaction::from_amounts(
        format!("payout:{WALLET}:{nonce}"),
        sgl_grid_store::ledger::TransactionKind::Payout,
        "payout".into(),
        [
            (Account::Earnings { wallet: WALLET.into() }, -amount),
            (Account::External { source: "chain:payout".into(), asset: sgl_grid_store::ledger::Asset::Usd }, amount),
        ],
    )
}

pub(crate) async fn payouts_leave_the_ledger_once_and_are_batched_once(store: &Store) {
    use sgl_grid_store::chain::payouts::NewChainPayout;
    use sgl_grid_store::ledger::{Asset, NewTransaction, PostError, TransactionKind};
    let earned = NewTransaction::from_amounts(
        "earned".into(),
        TransactionKind::Settlement,
        String::new(),
        [
            (Account::External { source: "test".into(), asset: Asset::Usd }, -1_000),
            (Account::Earnings { wallet: WALLET.into() }, 1_000),
        ],
    );
    store.post(&earned, NOW).await.unwrap();
    let payout = |nonce: &str, amount: i64| NewChainPayout {
        id: format!("payout:{WALLET}:{nonce}"),
        wallet: WALLET.into(),
        to: "0x000000000000000000000000000000000000bEEF".into(),
        amount,
    };
    store.queue_chain_payout(&payout_out("a", 600), &payout("a", 600), NOW).await.unwrap();
    store.queue_chain_payout(&payout_out("a", 600), &payout("a", 600), NOW).await.unwrap();
    let short = store.queue_chain_payout(&payout_out("b", 500), &payout("b", 500), NOW + 1).await.unwrap_err();
    assert!(matches!(short, PostError::InsufficientFunds { balance: 400, .. }), "{short}");
    store.queue_chain_payout(&payout_out("c", 400), &payout("c", 400), NOW + 2).await.unwrap();
    assert_eq!(store.balance(&Account::Earnings { wallet: WALLET.into() }).await.unwrap(), 0);
    assert_eq!(store.queued_payouts_total().await.unwrap(), 1_000, "a repeated request queued nothing again");

    let batch = store.next_payout_batch("0xb1", 1, NOW + 3).await.unwrap().unwrap();
    assert_eq!((batch.batch_id.as_str(), batch.payouts.len()), ("0xb1", 1), "at most the limit");
    let again = store.next_payout_batch("0xb2", 10, NOW + 4).await.unwrap().unwrap();
    assert_eq!(again, batch, "a batch named and not recorded paid comes back before a new one");
    assert!(store.record_payout_batch_paid("0xb1", "0xt1", NOW + 5).await.unwrap());
    assert!(!store.record_payout_batch_paid("0xb1", "0xt1", NOW + 5).await.unwrap(), "recorded once");
    let next = store.next_payout_batch("0xb2", 10, NOW + 6).await.unwrap().unwrap();
    assert_eq!(next.payouts, vec![("0x000000000000000000000000000000000000bEEF".to_owned(), 400)]);
    assert!(store.record_payout_batch_paid("0xb2", "0xt2", NOW + 7).await.unwrap());
    assert_eq!(store.next_payout_batch("0xb3", 10, NOW + 8).await.unwrap(), None, "nothing waits");

    let listed = store.chain_payouts(WALLET, 10).await.unwrap();
    let seen: Vec<_> = listed.iter().map(|p| (p.amount, p.tx_hash.as_deref())).collect();
    assert_eq!(seen, vec![(400, Some("0xt2")), (600, Some("0xt1"))], "newest first, each with its batch's tx");
    let batches = store.payout_batches().await.unwrap();
    assert_eq!(batches.iter().map(|b| (b.payouts, b.total)).collect::<Vec<_>>(), vec![(1, 600), (1, 400)]);
    assert!(store.audit_ledger().await.unwrap().is_sound());
}
