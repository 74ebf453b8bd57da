//! The generated operations, and planning them into concrete store calls against the model's
//! state before their batch: picking keys, jobs and payments, keeping order-dependent stake
//! operations apart, and each job's end as the grid builds it (a release, or a settlement the
//! store shares out).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use sgl_grid::admin::{self, AdminCommand};
use sgl_grid::service::billing::{self, Shares};
use sgl_grid_store::Store;
use sgl_grid_store::api_keys::NewApiKey;
use sgl_grid_store::jobs::{JobMovement, NewJob};
use sgl_grid_store::ledger::{Asset, TransactionKind};
use sgl_grid_store::stake::NewSlash;

use crate::{
    Act, COOLDOWN, JobModel, JobState, Model, Outcome, Planned, PlannedEnd, REASONS, STEP, T0, WALLETS, credits,
    earnings, external, movement, stake, wallet_address, wallet_name, x402_credit,
};

/// How a generated job ends; amounts are thousandths of its hold.
#[derive(Debug, Clone)]
pub(crate) enum End {
    Complete { permille: i64 },
    Cut { permille: i64 },
    Release,
}

/// Which fault a slash is for.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    New(usize),
    Unnamed,
    Repeat(Index),
}

/// A generated operation; indexes pick keys, jobs and payments that exist when it is planned.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    CreateKey,
    Grant { key: Index, micros: i64 },
    Pay { wallet: usize, micros: i64, echo: bool },
    Replay { payment: Index, tamper: bool },
    Transfer { from: Index, to: Index, micros: i64 },
    Dispatch { key: Index, operator: usize, hold: i64 },
    Finish { job: Index, end: End, twice: Option<End> },
    FinishAgain { job: Index },
    Deposit { wallet: usize, sgl: u64 },
    Unstake { wallet: usize, permille: Option<i64> },
    Withdraw { wallet: usize, late: bool },
    Slash { wallet: usize, basis_points: u32, fault: Fault, echo: bool },
    Payout { wallet: usize, permille: i64 },
}

/// How jobs end: settled at any share of the hold (including none, all and more), cut, released.
pub(crate) fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        3 => (0i64..=1_500).prop_map(|permille| End::Complete { permille }),
        1 => prop_oneof![Just(0i64), Just(1_000), Just(5_000)].prop_map(|permille| End::Complete { permille }),
        2 => (1i64..=1_000).prop_map(|permille| End::Cut { permille }),
        2 => Just(End::Release),
    ]
}

/// One operation, weighted towards jobs.
pub(crate) fn op() -> impl Strategy<Value = Op> {
    let wallet = 0..WALLETS;
    let fault = prop_oneof![
        (0..REASONS.len()).prop_map(Fault::New),
        Just(Fault::Unnamed),
        any::<Index>().prop_map(Fault::Repeat)
    ];
    prop_oneof![
        1 => Just(Op::CreateKey),
        3 => (any::<Index>(), 1i64..3_000_000).prop_map(|(key, micros)| Op::Grant { key, micros }),
        3 => (wallet.clone(), 1i64..2_000_000, prop::bool::weighted(0.2))
            .prop_map(|(wallet, micros, echo)| Op::Pay { wallet, micros, echo }),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(payment, tamper)| Op::Replay { payment, tamper }),
        3 => (any::<Index>(), any::<Index>(), 1i64..2_000_000)
            .prop_map(|(from, to, micros)| Op::Transfer { from, to, micros }),
        // A quarter are short chats of a few micro-dollars, whose shares are mostly carries.
        6 => (any::<Index>(), wallet.clone(), prop_oneof![3 => 1i64..1_500_000, 1 => 1i64..40])
            .prop_map(|(key, operator, hold)| Op::Dispatch { key, operator, hold }),
        6 => (any::<Index>(), end(), prop::option::weighted(0.2, end()))
            .prop_map(|(job, end, twice)| Op::Finish { job, end, twice }),
        1 => any::<Index>().prop_map(|job| Op::FinishAgain { job }),
        2 => (wallet.clone(), 1u64..=20).prop_map(|(wallet, sgl)| Op::Deposit { wallet, sgl }),
        2 => (wallet.clone(), prop::option::of(0i64..=1_500))
            .prop_map(|(wallet, permille)| Op::Unstake { wallet, permille }),
        2 => (wallet.clone(), any::<bool>()).prop_map(|(wallet, late)| Op::Withdraw { wallet, late }),
        2 => (wallet.clone(), prop_oneof![0u32..=10_000, Just(10_000)], fault, prop::bool::weighted(0.25))
            .prop_map(|(wallet, basis_points, fault, echo)| Op::Slash { wallet, basis_points, fault, echo }),
        2 => (wallet, 0i64..=1_500).prop_map(|(wallet, permille)| Op::Payout { wallet, permille }),
    ]
}

/// Settlement shares: the default half the time, otherwise any that leave a burn.
fn shares() -> impl Strategy<Value = Shares> {
    let any_valid = (0u32..=10_000).prop_flat_map(|operator_bps| {
        (0..=10_000 - operator_bps).prop_flat_map(move |platform_bps| {
            (0..=10_000 - operator_bps - platform_bps).prop_map(move |stakers_bps| {
                Shares::new(operator_bps, platform_bps, stakers_bps).expect("leaves a burn")
            })
        })
    });
    prop_oneof![Just(Shares::default()), any_valid]
}

/// A workload: the grid's settlement shares, its operations, and the batch sizes to run them in
/// (cycled).
pub(crate) fn workload(n_ops: std::ops::Range<usize>) -> impl Strategy<Value = (Shares, Vec<Op>, Vec<usize>)> {
    (shares(), prop::collection::vec(op(), n_ops), prop::collection::vec(8usize..=32, 1..12))
}

/// Runs one operation through the real store (and the real admin and payment code).
pub(crate) async fn execute(store: Store, Planned { now, act }: Planned) -> Outcome {
    match act {
        Act::CreateKey { hash } => {
            let key = NewApiKey {
                key_hash: &hash,
                prefix: "sk-work",
                label: "workload",
                wallet: None,
                account_id: None,
                expires_at: None,
            };
            Outcome::Key(store.create_api_key(&key, now).await)
        }
        Act::Grant { key, micros } => {
            let command = AdminCommand::CreditsAdd { key_id: key, usd: micros as f64 / 1e6 };
            Outcome::Admin(Box::new(admin::run(&store, command, now).await))
        }
        Act::Pay { wallet, hash, micros, .. } => {
            let paid = async {
                let key = sgl_grid::payments::wallet_key(&store, wallet_address(wallet), now).await?;
                Ok((key.id, store.post(&x402_credit(key.id, &hash, micros), now).await))
            };
            Outcome::Paid(paid.await)
        }
        Act::Post { transaction, .. } => Outcome::Posted(store.post(&transaction, now).await),
        Act::Dispatch { job, key, operator, hold } => {
            let node = format!("node-{operator}");
            let new_job = NewJob {
                id: &job,
                node_id: &node,
                api_key_id: key,
                model: "gemma-3-270m",
                sealed_by_caller: hold % 2 == 0,
                stream: hold % 3 == 0,
                max_tokens: 256,
                held_micros: hold,
                replica: None,
            };
            Outcome::Dispatched(store.insert_job_with_hold(&new_job, &billing::hold(&job, key, hold), now).await)
        }
        Act::Finish { job, end, movement } => {
            Outcome::Finished(store.finish_job_with(&job, &end.job_end(), &movement, now).await)
        }
        Act::Deposit { wallet, sgl } => {
            let command = AdminCommand::Stake { wallet: wallet_name(wallet), amount_sgl: sgl };
            Outcome::Admin(Box::new(admin::run(&store, command, now).await))
        }
        Act::Unstake { wallet, amount, available_at } => {
            Outcome::Unstaked(store.request_unstake(&wallet_name(wallet), amount, now, available_at).await)
        }
        Act::Withdraw { wallet } => Outcome::Withdrawn(store.withdraw_stake(&wallet_name(wallet), now).await),
        Act::Slash { wallet, job, reason, basis_points } => {
            let (wallet, node) = (wallet_name(wallet), format!("node-{wallet}"));
            let slash = NewSlash {
                wallet: &wallet,
                node_id: Some(&node),
                job_id: job.as_deref(),
                reason,
                evidence: r#"{"kind":"workload"}"#,
                basis_points,
                active_first: false,
            };
            Outcome::Slashed(store.slash(&slash, now).await)
        }
    }
}

/// The operations of one batch, and which wallets' stake they touch.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) planned: Vec<Planned>,
    /// Per wallet: "" for deposits, unstakes and withdrawals, or the one slash's lane.
    lanes: BTreeMap<usize, String>,
    withdrawing: BTreeSet<usize>,
}

impl Batch {
    fn claim(&mut self, wallet: usize, lane: &str) -> bool {
        self.lanes.entry(wallet).or_insert_with(|| lane.to_owned()) == lane
    }

    pub(crate) fn push(&mut self, now: i64, act: Act) {
        self.planned.push(Planned { now, act });
    }
}

/// The item `index` picks, if there is any.
pub(crate) fn pick<T: Clone>(items: &[T], index: &Index) -> Option<T> {
    (!items.is_empty()).then(|| index.get(items).clone())
}

/// The recorded end and the movement the grid passes for finishing `job` as `end`.
pub(crate) fn finishing(job_id: &str, job: &JobModel, shares: Shares, end: &End) -> (PlannedEnd, JobMovement) {
    let wallet = wallet_name(job.operator);
    let (planned, cost) = match *end {
        End::Complete { permille } => {
            let cost = job.held * permille / 1_000;
            (PlannedEnd::Completed { cost: cost.min(job.held) }, cost)
        }
        End::Cut { permille } => {
            let cost = (job.held * permille / 1_000).max(1);
            (PlannedEnd::Cut { tokens: permille, cost: cost.min(job.held) }, cost)
        }
        End::Release => {
            return (PlannedEnd::Failed, JobMovement::Release(billing::release(job_id, job.key, job.held)));
        }
    };
    let settlement = billing::Settlement {
        job_id: job_id.to_owned(),
        api_key_id: job.key,
        operator_wallet: wallet,
        held: job.held,
        cost,
        shares,
    };
    (planned, JobMovement::Settle(settlement))
}

/// Plans `op` into `batch`; false when it must wait for the next batch (its wallet's stake lane
/// is taken). Operations with nothing to act on yet are dropped.
pub(crate) fn plan(model: &mut Model, batch: &mut Batch, op: &Op) -> Result<bool, TestCaseError> {
    model.seq += 1;
    let (seq, now) = (model.seq, T0 + model.seq * STEP);
    let act = match op.clone() {
        Op::CreateKey => Act::CreateKey { hash: format!("{seq:064x}") },
        Op::Grant { key, micros } => match pick(&model.keys, &key) {
            Some(key) => Act::Grant { key, micros },
            None => return Ok(true),
        },
        Op::Pay { wallet, micros, echo } => {
            let pay = Act::Pay { wallet, hash: format!("0x{seq:064x}"), micros, replay_of: None };
            if echo {
                batch.push(now, pay.clone());
            }
            pay
        }
        Op::Replay { payment, tamper } => match pick(&model.payments, &payment) {
            Some(p) => Act::Pay {
                wallet: p.wallet,
                hash: p.hash,
                micros: p.micros + i64::from(tamper),
                replay_of: Some((p.transaction_id, tamper)),
            },
            None => return Ok(true),
        },
        Op::Transfer { from, to, micros } => {
            let (Some(from), Some(mut to)) = (pick(&model.keys, &from), pick(&model.keys, &to)) else {
                return Ok(true);
            };
            if from == to {
                let at = model.keys.iter().position(|k| *k == to).expect("a known key");
                to = model.keys[(at + 1) % model.keys.len()];
            }
            if from == to {
                return Ok(true);
            }
            let pairs = vec![(credits(from), -micros), (credits(to), micros)];
            Act::Post {
                kind: "transfer",
                transaction: movement(format!("transfer:{seq}"), TransactionKind::CreditsTransfer, pairs),
            }
        }
        Op::Dispatch { key, operator, hold } => match pick(&model.keys, &key) {
            Some(key) => Act::Dispatch { job: format!("job-{seq}"), key, operator, hold },
            None => return Ok(true),
        },
        Op::Finish { job, end, twice } => {
            let open: Vec<String> =
                model.jobs.iter().filter(|(_, j)| j.state == JobState::Open).map(|(id, _)| id.clone()).collect();
            let Some(id) = pick(&open, &job) else { return Ok(true) };
            let job = model.jobs[&id].clone();
            if let Some(second) = twice {
                let (end, movement) = finishing(&id, &job, model.shares, &second);
                batch.push(now, Act::Finish { job: id.clone(), end, movement });
            }
            let (end, movement) = finishing(&id, &job, model.shares, &end);
            Act::Finish { job: id, end, movement }
        }
        Op::FinishAgain { job } => {
            let done: Vec<String> = model
                .jobs
                .iter()
                .filter(|(_, j)| matches!(j.state, JobState::Finished { .. }))
                .map(|(id, _)| id.clone())
                .collect();
            let Some(id) = pick(&done, &job) else { return Ok(true) };
            let (end, movement) = finishing(&id, &model.jobs[&id], model.shares, &End::Complete { permille: 500 });
            Act::Finish { job: id, end, movement }
        }
        Op::Deposit { wallet, sgl } => {
            if !batch.claim(wallet, "") {
                return Ok(false);
            }
            Act::Deposit { wallet, sgl }
        }
        Op::Unstake { wallet, permille } => {
            if !batch.claim(wallet, "") {
                return Ok(false);
            }
            let amount = permille.map(|permille| model.balance(&stake(wallet)) * permille / 1_000);
            Act::Unstake { wallet, amount, available_at: now + COOLDOWN }
        }
        Op::Withdraw { wallet, late } => {
            if !batch.claim(wallet, "") || !batch.withdrawing.insert(wallet) {
                return Ok(false);
            }
            let now = match model.unstakes.get(&wallet) {
                Some(open) if late => open.available_at + seq % 7,
                Some(open) => open.available_at - 1 - seq % 7,
                None => now,
            };
            batch.push(now, Act::Withdraw { wallet });
            return Ok(true);
        }
        Op::Slash { wallet, basis_points, fault, echo } => {
            let (job, reason) = match fault {
                Fault::Repeat(index) if !model.faults.is_empty() => {
                    let (job, reason) = index.get(&model.faults).clone();
                    (Some(job), reason)
                }
                Fault::New(reason) => (Some(format!("fault-{seq}")), REASONS[reason]),
                Fault::Repeat(_) => (Some(format!("fault-{seq}")), REASONS[0]),
                Fault::Unnamed => (None, "tampered_attestation"),
            };
            let lane = match &job {
                Some(job) => format!("slash:job:{job}:{reason}"),
                None => format!("slash:unnamed:{seq}"),
            };
            if !batch.claim(wallet, &lane) {
                return Ok(false);
            }
            let slash = Act::Slash { wallet, job, reason, basis_points };
            if echo && matches!(&slash, Act::Slash { job: Some(_), .. }) {
                batch.push(now, slash.clone());
            }
            slash
        }
        Op::Payout { wallet, permille } => {
            let amount = (model.balance(&earnings(wallet)) * permille / 1_000).max(1);
            let pairs = vec![(earnings(wallet), -amount), (external("payout", Asset::Usd), amount)];
            let key = format!("payout:{}:{seq}", wallet_name(wallet));
            Act::Post { kind: "payout", transaction: movement(key, TransactionKind::Payout, pairs) }
        }
    };
    batch.push(now, act);
    Ok(true)
}
