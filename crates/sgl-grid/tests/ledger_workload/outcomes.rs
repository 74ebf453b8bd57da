//! Checking one batch's outcomes against what the state before it allows, then applying each
//! effect the store reported to the model: debits refused exactly when they could not be
//! covered, duplicates applied once, unstakes, withdrawals and slashes as the stake allowed.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sgl_grid::service::billing;
use sgl_grid_store::jobs::JobMovement;
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posted, TransactionKind};
use sgl_grid_store::settlement::Recipient;
use sgl_grid_store::stake::{StakeError, UnstakeRequest};

use crate::{
    Act, JobModel, JobState, Model, NETWORK, Outcome, Payment, Planned, PlannedEnd, WALLETS, credits, external, fail,
    movement, share, stake, unbonding, x402_credit,
};

/// The balances before a batch and, per account, the most its operations could add and take.
#[derive(Debug)]
pub(crate) struct Pre {
    balances: BTreeMap<Account, i64>,
    flows: BTreeMap<Account, (i64, i64)>,
}

impl Pre {
    pub(crate) fn new(model: &Model, planned: &[Planned]) -> Self {
        let mut flows: BTreeMap<Account, (i64, i64)> = BTreeMap::new();
        let mut flow = |account: Account, amount: i64| {
            let entry = flows.entry(account).or_default();
            if amount > 0 { entry.0 += amount } else { entry.1 -= amount }
        };
        for (account, (most_in, most_out)) in finish_flows(model, planned) {
            flow(account.clone(), most_in);
            flow(account, -most_out);
        }
        for Planned { act, .. } in planned {
            match act {
                Act::Grant { key, micros } => flow(credits(*key), *micros),
                Act::Pay { wallet, micros, replay_of: None, .. } => {
                    if let Some(root) = model.roots.get(wallet) {
                        flow(credits(*root), *micros);
                    }
                }
                Act::Post { transaction, .. } => {
                    transaction.postings.iter().for_each(|p| flow(p.account.clone(), p.amount));
                }
                Act::Dispatch { key, hold, .. } => flow(credits(*key), -hold),
                Act::Deposit { wallet, sgl } => flow(stake(*wallet), i64::try_from(*sgl).expect("small") * 1_000_000),
                _ => {}
            }
        }
        Self { balances: model.derived_balances(), flows }
    }

    fn balance(&self, account: &Account) -> i64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    fn inflow(&self, account: &Account) -> i64 {
        self.flows.get(account).map_or(0, |f| f.0)
    }

    /// A debit more than the account could hold must be refused; one covered even if every
    /// other debit of the batch ran first must apply.
    fn check_debit(&self, account: &Account, amount: i64, applied: bool) -> Result<(), TestCaseError> {
        let (pre, (inflow, outflow)) = (self.balance(account), self.flows.get(account).copied().unwrap_or_default());
        if amount > pre + inflow {
            prop_assert!(!applied, "{} was debited {} but held at most {}", account, amount, pre + inflow);
        }
        if pre >= outflow {
            prop_assert!(
                applied,
                "{} refused {} though it held {} and its batch took at most {}",
                account,
                amount,
                pre,
                outflow
            );
        }
        Ok(())
    }
}

/// The most the batch's job finishes could add to and take from each account. Only one finish
/// of a job can win, and only while it is open, so each job counts its largest attempt. A
/// recipient's shares add up across jobs before rounding: whatever order the settlements run
/// in, it gains at most the whole micro-units between its exact share before the batch and
/// that plus every share the batch could settle.
fn finish_flows(model: &Model, planned: &[Planned]) -> BTreeMap<Account, (i64, i64)> {
    let mut attempts: BTreeMap<&str, Vec<&JobMovement>> = BTreeMap::new();
    for Planned { act, .. } in planned {
        if let Act::Finish { job, movement, .. } = act
            && model.jobs[job].state == JobState::Open
        {
            attempts.entry(job).or_default().push(movement);
        }
    }
    let mut flows: BTreeMap<Account, (i64, i64)> = BTreeMap::new();
    let mut shares: BTreeMap<Account, i128> = BTreeMap::new();
    for movements in attempts.values() {
        let (mut most, mut most_shares) = (BTreeMap::<Account, (i64, i64)>::new(), BTreeMap::<Account, i128>::new());
        for movement in movements {
            let postings: Vec<(Account, i64)> = match movement {
                JobMovement::Release(release) => {
                    release.postings.iter().map(|p| (p.account.clone(), p.amount)).collect()
                }
                JobMovement::Settle(settlement) => {
                    for recipient in Recipient::ALL {
                        let share = i128::from(settlement.billed()) * i128::from(settlement.shares.bps(recipient));
                        let entry = most_shares.entry(recipient.account(&settlement.operator_wallet)).or_default();
                        *entry = (*entry).max(share);
                    }
                    let escrow = Account::Escrow { job_id: settlement.job_id.clone() };
                    vec![
                        (escrow, -settlement.held),
                        (credits(settlement.api_key_id), settlement.held - settlement.billed()),
                    ]
                }
            };
            for (account, amount) in postings {
                let entry = most.entry(account).or_default();
                *entry = if amount > 0 { (entry.0.max(amount), entry.1) } else { (entry.0, entry.1.max(-amount)) };
            }
        }
        for (account, (most_in, most_out)) in most {
            let entry = flows.entry(account).or_default();
            (entry.0, entry.1) = (entry.0 + most_in, entry.1 + most_out);
        }
        for (account, share) in most_shares {
            *shares.entry(account).or_default() += share;
        }
    }
    for (account, share) in shares {
        let before = model.exact.get(&account).copied().unwrap_or(0);
        let gain = (before + share) / 10_000 - before / 10_000;
        flows.entry(account).or_default().0 += i64::try_from(gain).expect("fits");
    }
    flows
}

/// Applies a debit's outcome: applied, or refused for insufficient funds in that account.
pub(crate) fn debit_outcome(
    model: &mut Model,
    pre: &Pre,
    transaction: &NewTransaction,
    result: Result<bool, &PostError>,
    kind: &str,
) -> Result<bool, TestCaseError> {
    let debit = &transaction.postings[0];
    let applied = match result {
        Ok(applied) => applied,
        Err(PostError::InsufficientFunds { account, .. }) if *account == debit.account.to_string() => false,
        Err(other) => return Err(fail(format!("{kind} failed: {other:?}"))),
    };
    pre.check_debit(&debit.account, -debit.amount, applied)?;
    model.count(&format!("{kind} {}", if applied { "applied" } else { "refused" }));
    Ok(applied)
}

/// An unstake's result.
type Unstaked = Result<UnstakeRequest, StakeError>;

/// A slash's result: the micro-SGL taken.
type Slashed = Result<i64, StakeError>;

/// Slashes of one wallet for one fault at one share: concurrent duplicates.
type SlashGroup<'a> = (usize, Option<&'a str>, &'static str, u32);

/// Outcomes that are only checkable together: duplicates, and each wallet's stake operations.
#[derive(Debug, Default)]
pub(crate) struct Groups<'a> {
    pays: BTreeMap<&'a str, Vec<(usize, i64, &'a Posted)>>,
    finishes: BTreeMap<&'a str, Vec<(bool, PlannedEnd, &'a JobMovement)>>,
    unstakes: BTreeMap<usize, Vec<(&'a Planned, &'a Unstaked)>>,
    withdrawals: BTreeMap<usize, (i64, &'a Result<i64, StakeError>)>,
    /// Per (wallet, job, reason, basis points): when, and each attempt's result.
    slashes: BTreeMap<SlashGroup<'a>, (i64, Vec<&'a Slashed>)>,
}

/// Checks every outcome of a batch and applies it to the model.
pub(crate) fn check_batch(
    model: &mut Model,
    pre: &Pre,
    planned: &[Planned],
    outcomes: &[Outcome],
) -> Result<(), TestCaseError> {
    let mut groups = Groups::default();
    for (step, outcome) in planned.iter().zip(outcomes) {
        match (&step.act, outcome) {
            (Act::CreateKey { .. }, Outcome::Key(Ok(record))) => model.keys.push(record.id),
            (Act::Grant { key, micros }, Outcome::Admin(result)) if result.is_ok() => {
                model.apply(&movement(
                    String::new(),
                    TransactionKind::CreditsGrant,
                    vec![(external("admin", Asset::Usd), -micros), (credits(*key), *micros)],
                ));
            }
            (Act::Deposit { wallet, sgl }, Outcome::Admin(result)) if result.is_ok() => {
                let micros = i64::try_from(*sgl).expect("small") * 1_000_000;
                model.apply(&movement(
                    String::new(),
                    TransactionKind::StakeDeposit,
                    vec![(external("admin", Asset::Sgl), -micros), (stake(*wallet), micros)],
                ));
            }
            (Act::Pay { wallet, hash, micros, replay_of }, Outcome::Paid(Ok((key_id, posted)))) => {
                let root = *model.roots.entry(*wallet).or_insert_with(|| {
                    model.keys.push(*key_id);
                    *key_id
                });
                prop_assert_eq!(*key_id, root, "a wallet's payments all credit its one root key");
                match (replay_of, posted) {
                    (Some((id, false)), Ok(Posted::AlreadyApplied(again))) => prop_assert_eq!(id, again),
                    (Some((_, true)), Err(PostError::IdempotencyConflict(key))) => {
                        prop_assert_eq!(key, &format!("x402:{NETWORK}:{hash}"));
                    }
                    (None, Ok(posted)) => groups.pays.entry(hash).or_default().push((*wallet, *micros, posted)),
                    (_, other) => return Err(fail(format!("payment {hash} (replay {replay_of:?}): {other:?}"))),
                }
            }
            (Act::Post { kind, transaction }, Outcome::Posted(result)) => {
                let result = result.as_ref().map(|posted| matches!(posted, Posted::Applied(_)));
                if debit_outcome(model, pre, transaction, result, kind)? {
                    model.apply(transaction);
                }
            }
            (Act::Dispatch { job, key, operator, hold }, Outcome::Dispatched(result)) => {
                let hold_movement = billing::hold(job, *key, *hold);
                let applied = debit_outcome(model, pre, &hold_movement, result.as_ref().map(|()| true), "hold")?;
                let state = if applied { JobState::Open } else { JobState::Refused };
                if applied {
                    model.apply(&hold_movement);
                }
                model.jobs.insert(job.clone(), JobModel { key: *key, operator: *operator, held: *hold, state });
            }
            (Act::Finish { job, end, movement }, Outcome::Finished(Ok(finished))) => {
                groups.finishes.entry(job).or_default().push((*finished, *end, movement));
            }
            (Act::Unstake { wallet, .. }, Outcome::Unstaked(result)) => {
                groups.unstakes.entry(*wallet).or_default().push((step, result));
            }
            (Act::Withdraw { wallet }, Outcome::Withdrawn(result)) => {
                groups.withdrawals.insert(*wallet, (step.now, result));
            }
            (Act::Slash { wallet, job, reason, basis_points }, Outcome::Slashed(result)) => {
                let group = groups.slashes.entry((*wallet, job.as_deref(), reason, *basis_points));
                group.or_insert_with(|| (step.now, Vec::new())).1.push(result);
            }
            (act, outcome) => return Err(fail(format!("{act:?} failed: {outcome:?}"))),
        }
    }
    check_payments(model, &groups)?;
    check_finishes(model, &groups)?;
    for wallet in 0..WALLETS {
        check_stake(model, pre, &groups, wallet)?;
    }
    check_slashes(model, pre, &groups)
}

/// Concurrent posts of one payment apply once; the rest are `AlreadyApplied` with its id.
pub(crate) fn check_payments(model: &mut Model, groups: &Groups<'_>) -> Result<(), TestCaseError> {
    for (hash, posts) in &groups.pays {
        let applied: Vec<i64> = posts
            .iter()
            .filter(|(_, _, p)| matches!(p, Posted::Applied(_)))
            .map(|(_, _, p)| p.transaction_id())
            .collect();
        prop_assert_eq!(applied.len(), 1, "payment {} applied once among {:?}", hash, posts);
        prop_assert!(posts.iter().all(|(_, _, p)| p.transaction_id() == applied[0]), "{posts:?}");
        let (wallet, micros, _) = posts[0];
        model.apply(&x402_credit(model.roots[&wallet], hash, micros));
        let hash = (*hash).to_owned();
        model.payments.push(Payment { wallet, hash, micros, transaction_id: applied[0] });
        model.count("x402 payment applied");
        *model.stats.entry("x402 payment echoed".into()).or_default() += u32::try_from(posts.len() - 1).expect("few");
    }
    Ok(())
}

/// A job finishes once however many finishes race; a finished job never finishes again.
pub(crate) fn check_finishes(model: &mut Model, groups: &Groups<'_>) -> Result<(), TestCaseError> {
    for (job_id, attempts) in &groups.finishes {
        let won: Vec<_> = attempts.iter().filter(|(finished, _, _)| *finished).collect();
        let job = model.jobs.get_mut(*job_id).expect("a planned job");
        if job.state != JobState::Open {
            prop_assert!(won.is_empty(), "job {} finished again", job_id);
            model.count("job finish repeated");
            continue;
        }
        prop_assert_eq!(won.len(), 1, "job {} finishes exactly once among {} attempts", job_id, attempts.len());
        let (_, end, movement) = won[0];
        job.state = end.state();
        match movement {
            JobMovement::Release(release) => {
                model.apply(release);
                model.count("job finished release");
            }
            JobMovement::Settle(settlement) => {
                model.settle(settlement);
                model.count("job finished settlement");
            }
        }
        if attempts.len() > 1 {
            model.count("job finish raced");
        }
    }
    Ok(())
}

/// Unstakes and the withdrawal of one wallet in one batch (no slash runs beside them).
pub(crate) fn check_stake(
    model: &mut Model,
    pre: &Pre,
    groups: &Groups<'_>,
    wallet: usize,
) -> Result<(), TestCaseError> {
    let (staked, unbonding_pre, deposits) =
        (pre.balance(&stake(wallet)), pre.balance(&unbonding(wallet)), pre.inflow(&stake(wallet)));
    let open = model.unstakes.get(&wallet).cloned();
    let unstakes = groups.unstakes.get(&wallet).cloned().unwrap_or_default();
    let opened: Vec<&UnstakeRequest> = unstakes.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    prop_assert!(opened.len() <= 1, "two unstakes of wallet {} opened at once: {:?}", wallet, opened);
    let opened = opened.first().map(|r| (*r).clone());
    let mut withdrew = false;
    if let Some((now, result)) = groups.withdrawals.get(&wallet) {
        match (&open, result) {
            (Some(open), Ok(amount)) if *now >= open.available_at => {
                prop_assert_eq!(*amount, unbonding_pre, "the whole unbonding balance is withdrawn");
                let pairs = vec![(unbonding(wallet), -amount), (external("stake", Asset::Sgl), *amount)];
                if *amount > 0 {
                    model.apply(&movement(String::new(), TransactionKind::Settlement, pairs));
                }
                model.unstakes.remove(&wallet);
                withdrew = true;
                model.count("stake withdrawn");
            }
            (Some(open), Err(StakeError::CoolingDown { available_at })) if *now < open.available_at => {
                prop_assert_eq!(*available_at, open.available_at);
                model.count("withdrawal cooling down");
            }
            (None, Err(StakeError::NoUnstake)) => model.count("withdrawal without unstake"),
            (None, Err(StakeError::CoolingDown { available_at })) => {
                prop_assert_eq!(Some(*available_at), opened.as_ref().map(|r| r.available_at));
                model.count("withdrawal cooling down");
            }
            (open, other) => return Err(fail(format!("withdrawal at {now} of {wallet} ({open:?}): {other:?}"))),
        }
    }
    let taken = opened.as_ref().map_or(0, |r| r.amount);
    for (step, result) in &unstakes {
        let Act::Unstake { amount, available_at, .. } = &step.act else { unreachable!("grouped unstakes") };
        match result {
            Ok(request) => {
                prop_assert!(open.is_none() || withdrew, "an unstake opened beside an open one");
                match amount {
                    Some(amount) => prop_assert_eq!(request.amount, *amount),
                    None => prop_assert!((staked..=staked + deposits).contains(&request.amount), "{request:?}"),
                }
                prop_assert_eq!((request.requested_at, request.available_at), (step.now, *available_at));
            }
            Err(StakeError::NotEnoughStake { staked: seen, asked }) => {
                prop_assert!((staked - taken..=staked + deposits).contains(seen), "saw {seen} of {staked}");
                prop_assert_eq!(*asked, amount.unwrap_or(*seen));
                prop_assert!(*asked <= 0 || asked > seen, "{asked} of {seen} was enough");
                model.count("unstake refused: not enough stake");
            }
            Err(StakeError::AlreadyUnstaking) => {
                prop_assert!(open.is_some() || opened.is_some(), "refused as already unstaking with none open");
                model.count("unstake refused: already unstaking");
            }
            Err(other) => return Err(fail(format!("unstake of {wallet}: {other:?}"))),
        }
    }
    let sure = unstakes.iter().any(|(step, _)| {
        matches!(step.act, Act::Unstake { amount: Some(a), .. } if a > 0 && a <= staked)
            || matches!(step.act, Act::Unstake { amount: None, .. } if staked > 0)
    });
    if open.is_none() && sure {
        prop_assert!(opened.is_some(), "no unstake of wallet {} opened though one could: {:?}", wallet, unstakes);
    }
    if let Some(request) = opened {
        let pairs = vec![(stake(wallet), -request.amount), (unbonding(wallet), request.amount)];
        model.apply(&movement(String::new(), TransactionKind::Settlement, pairs));
        model.unstakes.insert(wallet, request);
        model.count("unstake opened");
    }
    Ok(())
}

/// Each fault is slashed once, by its share of the stake and the unbonding stake before it.
pub(crate) fn check_slashes(model: &mut Model, pre: &Pre, groups: &Groups<'_>) -> Result<(), TestCaseError> {
    for ((wallet, job, reason, basis_points), (now, results)) in &groups.slashes {
        let fault = job.map(|job| (job.to_owned(), *reason));
        let raced = results.len() > 1;
        let mut takes = Vec::new();
        for result in results {
            match result {
                Ok(taken) => takes.push(*taken),
                Err(error) => return Err(fail(format!("slash of {wallet} for {fault:?}: {error:?}"))),
            }
        }
        if fault.as_ref().is_some_and(|fault| model.faults.contains(fault)) {
            prop_assert!(takes.iter().all(|t| *t == 0), "fault {:?} slashed again: {:?}", fault, takes);
            model.count("slash repeated");
            continue;
        }
        let (from_stake, from_unbonding) = (
            share(pre.balance(&stake(*wallet)), *basis_points),
            share(pre.balance(&unbonding(*wallet)), *basis_points),
        );
        let expected = from_stake + from_unbonding;
        takes.sort_unstable();
        let mut want = vec![0; takes.len().max(1) - 1];
        want.push(expected);
        prop_assert_eq!(&takes, &want, "slash of wallet {} for {:?} at {} bp", wallet, fault, basis_points);
        if expected > 0 {
            let pairs = vec![
                (stake(*wallet), -from_stake),
                (unbonding(*wallet), -from_unbonding),
                (Account::Slashed, expected),
            ];
            model.apply(&movement(String::new(), TransactionKind::Settlement, pairs));
        }
        // Racing repeats take nothing and record nothing: one record per fault.
        model.slashes.entry(*wallet).or_default().insert(*now, (expected, 0));
        model.faults.extend(fault);
        model.count(if raced { "slash raced" } else { "slash applied" });
    }
    Ok(())
}
