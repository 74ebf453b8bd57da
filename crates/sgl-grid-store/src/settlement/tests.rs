//! The split pays every recipient the floor of its exact share over any sequence of jobs, in any
//! order and with shares changing between jobs; the rounding account holds the carries; every
//! settlement balances.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// A settlement of `cost` out of `held` for `wallet`'s node.
fn settlement(job_id: &str, wallet: &str, held: i64, cost: i64, shares: Shares) -> Settlement {
    Settlement { job_id: job_id.to_owned(), api_key_id: 7, operator_wallet: wallet.to_owned(), held, cost, shares }
}

/// The ledger as far as settlements move it: balances and carries per account.
#[derive(Debug, Default)]
struct Books {
    balances: BTreeMap<Account, i64>,
    carries: BTreeMap<Account, Carry>,
}

impl Books {
    /// Settles like the store does: the recipients' carries in, the transaction posted, the new
    /// carries kept. Checks what must hold of every single settlement.
    fn settle(&mut self, settlement: &Settlement) -> Result<(), TestCaseError> {
        let accounts = settlement.accounts();
        let carries = PerRecipient::from_fn(|r| self.carries.get(accounts.get(r)).copied().unwrap_or_default());
        let split = settlement.split(carries);
        let transaction = settlement.transaction(&split);
        let amount =
            |account: &Account| transaction.postings.iter().find(|p| &p.account == account).map_or(0, |p| p.amount);
        prop_assert_eq!(transaction.postings.iter().map(|p| i128::from(p.amount)).sum::<i128>(), 0, "balances");
        prop_assert!(transaction.postings.iter().all(|p| p.amount != 0), "no zero posting");
        prop_assert_eq!(amount(&Account::Escrow { job_id: settlement.job_id.clone() }), -settlement.held);
        prop_assert_eq!(amount(&Account::Credits { api_key_id: 7 }), settlement.held - settlement.billed());
        prop_assert_eq!(transaction.idempotency_key, format!("settle:job:{}", settlement.job_id));
        for recipient in Recipient::ALL {
            let exact = i128::from(settlement.billed()) * i128::from(settlement.shares.bps(recipient));
            let paid = i128::from(*split.paid.get(recipient)) * 10_000;
            // Within a micro-unit of this job's exact share either way.
            prop_assert!(paid > exact - 10_000 && paid < exact + 10_000, "{recipient:?} paid {paid} for {exact}");
            self.carries.insert(accounts.get(recipient).clone(), *split.carries.get(recipient));
        }
        for posting in &transaction.postings {
            *self.balances.entry(posting.account.clone()).or_default() += posting.amount;
        }
        let carried: i64 = self.carries.values().map(|c| c.units()).sum();
        prop_assert_eq!(self.balance(&Account::Rounding) * 10_000, carried, "rounding holds the carries");
        prop_assert!(self.balance(&Account::Rounding) >= 0);
        Ok(())
    }

    fn balance(&self, account: &Account) -> i64 {
        self.balances.get(account).copied().unwrap_or(0)
    }
}

/// Each recipient account's exact share of `jobs`, in 1/10,000 micro-units.
fn exact_shares(jobs: &[Settlement]) -> BTreeMap<Account, i128> {
    let mut exact = BTreeMap::new();
    for job in jobs {
        for recipient in Recipient::ALL {
            let share = i128::from(job.billed()) * i128::from(job.shares.bps(recipient));
            *exact.entry(recipient.account(&job.operator_wallet)).or_default() += share;
        }
    }
    exact
}

/// Settles `jobs` in order and checks every recipient got the floor of its exact share.
fn settle_all(jobs: &[Settlement]) -> Result<Books, TestCaseError> {
    let mut books = Books::default();
    for job in jobs {
        books.settle(job)?;
    }
    let mut remainders = 0;
    for (account, exact) in exact_shares(jobs) {
        let paid = i128::from(books.balance(&account));
        prop_assert_eq!(paid, exact / 10_000, "{} is paid the floor of its exact share", account);
        prop_assert_eq!(i128::from(books.carries[&account].units()), exact % 10_000, "carry of {}", account);
        remainders += exact % 10_000;
    }
    prop_assert_eq!(i128::from(books.balance(&Account::Rounding)) * 10_000, remainders);
    Ok(books)
}

/// The split before issue 13: each share rounded down per job, the burn taking the rest.
fn floor_per_job(shares: Shares, cost: i64) -> PerRecipient<i64> {
    let part = |bps: u32| cost * i64::from(bps) / 10_000;
    let (operator, platform, stakers) =
        (part(shares.operator_bps()), part(shares.platform_bps()), part(shares.stakers_bps()));
    PerRecipient { operator, platform, stakers, burn: cost - operator - platform - stakers }
}

#[test]
fn short_chats_pay_every_share_not_the_burn() {
    // Issue 13: 343 short chats of 3 micro-dollars each, 1,029 in all.
    let jobs: Vec<Settlement> =
        (0..343).map(|n| settlement(&format!("chat-{n}"), "0xop", 5, 3, Shares::default())).collect();
    let books = settle_all(&jobs).expect("every share is the floor of its exact share");
    let paid = |account: Account| books.balance(&account);
    assert_eq!(paid(Account::Earnings { wallet: "0xop".into() }), 823, "floor(1029 × 0.8)");
    assert_eq!(paid(Account::Platform), 51, "floor(1029 × 0.05)");
    assert_eq!(paid(Account::Stakers), 102, "floor(1029 × 0.1)");
    assert_eq!(paid(Account::Burn), 51, "floor(1029 × 0.05)");
    assert_eq!(paid(Account::Rounding), 2, "0.2 + 0.45 + 0.9 + 0.45 carried");
    assert_eq!(paid(Account::Credits { api_key_id: 7 }), 343 * 2);

    // What the old split did with the same jobs: 67 % / 0 / 0 / 33 %.
    let old = jobs.iter().fold([0i64; 4], |totals, job| {
        let split = floor_per_job(job.shares, job.billed());
        [totals[0] + split.operator, totals[1] + split.platform, totals[2] + split.stakers, totals[3] + split.burn]
    });
    assert_eq!(old, [686, 0, 0, 343]);
}

#[test]
fn shares_are_validated_and_the_burn_takes_the_rest() {
    assert_eq!(Shares::new(9_000, 1_000, 1), Err(InvalidShares { total: 10_001 }));
    assert_eq!(Shares::new(u32::MAX, u32::MAX, u32::MAX), Err(InvalidShares { total: 3 * u64::from(u32::MAX) }));
    let shares = Shares::new(9_000, 300, 0).unwrap();
    assert_eq!(shares.burn_bps(), 700);
    assert_eq!(Shares::default(), Shares::new(8_000, 500, 1_000).unwrap());
    assert_eq!(Shares::default().burn_bps(), 500);
    assert_eq!(Shares::new(10_000, 0, 0).unwrap().burn_bps(), 0);
}

#[test]
fn whole_costs_split_exactly_with_no_carry() {
    let split = split(Shares::default(), 1_000_000, PerRecipient::default());
    assert_eq!(split.paid, PerRecipient { operator: 800_000, platform: 50_000, stakers: 100_000, burn: 50_000 });
    assert_eq!((split.carries, split.rounding), (PerRecipient::default(), 0));
}

#[test]
fn carries_pay_out_once_they_make_a_micro_unit() {
    // 80 % of 3 is 2.4: two micro-units and a carry of 4,000; the fifth job's carry tips over.
    let mut carries = PerRecipient::default();
    let mut operator = Vec::new();
    for _ in 0..5 {
        let split = split(Shares::default(), 3, carries);
        operator.push(split.paid.operator);
        carries = split.carries;
    }
    assert_eq!(operator, [2, 2, 3, 2, 3], "12 micro-units for 5 × 2.4");
    assert_eq!(carries.operator, Carry::ZERO);
    // A rounding posting can be negative: here the carries shrink by one micro-unit.
    let nearly = PerRecipient::from_fn(|_| Carry::new(9_999).unwrap());
    let split = split(Shares::default(), 1, nearly);
    assert_eq!(split.paid, PerRecipient { operator: 1, platform: 1, stakers: 1, burn: 1 });
    assert_eq!(split.rounding, -3);
}

#[test]
fn carries_are_fractions_of_a_micro_unit() {
    assert_eq!(Carry::new(0), Some(Carry::ZERO));
    assert_eq!(Carry::new(9_999).map(Carry::units), Some(9_999));
    assert_eq!(Carry::new(10_000), None);
    assert_eq!(Carry::new(-1), None);
}

#[test]
fn a_settlement_bills_at_most_the_hold_and_refunds_the_rest() {
    let over = settlement("j", "0xop", 100, 150, Shares::default());
    let transaction = over.transaction(&over.split(PerRecipient::default()));
    assert_eq!(transaction.postings.iter().map(|p| p.amount).sum::<i64>(), 0);
    assert!(!transaction.postings.iter().any(|p| p.account == Account::Credits { api_key_id: 7 }), "all spent");
    let partial = settlement("j", "0xop", 100, 40, Shares::default());
    let transaction = partial.transaction(&partial.split(PerRecipient::default()));
    let refund = transaction.postings.iter().find(|p| p.account == Account::Credits { api_key_id: 7 }).unwrap();
    assert_eq!(refund.amount, 60);
    assert_eq!((transaction.kind.as_str(), transaction.idempotency_key.as_str()), ("settlement", "settle:job:j"));
    let nothing = settlement("j", "0xop", 100, 0, Shares::default());
    assert_eq!(nothing.transaction(&nothing.split(PerRecipient::default())).postings.len(), 2, "zeros left out");
    let negative = settlement("j", "0xop", 100, -5, Shares::default());
    assert_eq!(negative.billed(), 0);
}

#[test]
fn the_largest_costs_do_not_overflow() {
    let carries = PerRecipient::from_fn(|_| Carry::new(9_999).unwrap());
    let most = split(Shares::default(), i64::MAX, carries);
    let paid: i128 = Recipient::ALL.iter().map(|r| i128::from(*most.paid.get(*r))).sum();
    assert_eq!(paid + i128::from(most.rounding), i128::from(i64::MAX));
    let all = split(Shares::new(10_000, 0, 0).unwrap(), i64::MAX, carries);
    assert_eq!(all.paid.operator, i64::MAX);
}

/// Any valid shares, the default a third of the time.
fn shares() -> impl Strategy<Value = Shares> {
    let any_valid = (0u32..=10_000).prop_flat_map(|operator| {
        (0..=10_000 - operator).prop_flat_map(move |platform| {
            (0..=10_000 - operator - platform)
                .prop_map(move |stakers| Shares::new(operator, platform, stakers).expect("valid"))
        })
    });
    prop_oneof![1 => Just(Shares::default()), 2 => any_valid]
}

/// A job as (wallet, cost, held, shares): mostly short chats of a few micro-dollars, sometimes
/// large ones, sometimes a cost over the hold.
fn job() -> impl Strategy<Value = (usize, i64, i64, Shares)> {
    let cost = prop_oneof![4 => 0i64..20, 2 => 0i64..5_000, 1 => 0i64..10_000_000_000];
    let slack = prop_oneof![Just(0i64), 0i64..50, -3i64..0];
    (0usize..3, cost, slack, shares())
        .prop_map(|(wallet, cost, slack, shares)| (wallet, cost, (cost + slack).max(1), shares))
}

proptest! {
    /// Over any sequence of jobs, with the shares changing between them, every recipient is paid
    /// exactly the floor of its exact share (so within a micro-unit of it), the rounding account
    /// holds the carries and never goes negative, and every settlement balances with escrow
    /// −held and credits +(held − billed). Settling the same jobs in another order pays every
    /// account the same.
    #[test]
    fn every_recipient_gets_its_share_in_any_order(
        jobs in prop::collection::vec(job(), 1..200),
        order in any::<u64>(),
    ) {
        let jobs: Vec<Settlement> = jobs
            .into_iter()
            .enumerate()
            .map(|(n, (wallet, cost, held, shares))| {
                settlement(&format!("job-{n}"), &format!("0xop{wallet}"), held, cost, shares)
            })
            .collect();
        let books = settle_all(&jobs)?;
        let mut shuffled = jobs.clone();
        // A deterministic shuffle from the generated seed.
        let mut seed = order;
        for at in (1..shuffled.len()).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            shuffled.swap(at, usize::try_from(seed >> 33).expect("fits") % (at + 1));
        }
        let reordered = settle_all(&shuffled)?;
        prop_assert_eq!(books.balances, reordered.balances);
        prop_assert_eq!(books.carries, reordered.carries);
    }
}
