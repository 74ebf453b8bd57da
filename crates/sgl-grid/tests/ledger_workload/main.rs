//! A random concurrent workload against the real store, then every ledger invariant.
//!
//! Each proptest case opens a fresh store (SQLite always; PostgreSQL too when
//! `SGL_TEST_DATABASE_URL` is set) and runs a generated list of operations in batches of 8–32
//! that execute concurrently on a two-worker runtime: admin grants, x402 payments and replays of
//! them, key-to-key transfers, jobs held, settled, cut, released and finished twice, stake
//! deposits, unstakes, withdrawals, slashes and earnings payouts. Every operation goes through
//! the real store and the real billing movements. A shadow model checks each result against
//! what the state before its batch allows (an overdraft must be refused, a covered debit must
//! apply, a replay must move nothing) and applies the effect the store reported. After the
//! workload the audit, the per-asset totals, every balance, escrow, job row, settlement,
//! settlement carry, open unstake, slash record and wallet account must match the model to the
//! micro-unit.
//!
//! A settlement's shares depend on the carries the settlements before it left, so on the order
//! of concurrent settlements; what each recipient holds after a batch does not. The model keeps
//! each recipient's exact share in 1/10,000 micro-units and expects the floor of it (the
//! rounding account: the remainders), and checks each recorded settlement on its own: escrow
//! and refund exact, every share within a micro-unit of its exact value.
//!
//! Operations whose effect depends on the order they ran in are kept apart: a slash is the only
//! stake operation of its wallet in its batch (its share depends on the balances it reads), and
//! a wallet withdraws at most once per batch. Concurrent duplicates (the same payment, slash or
//! job finish twice at once) are generated on purpose.

mod fixture;
mod ops;
mod outcomes;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use alloy_primitives::Address;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use sgl_grid::admin::{AdminError, AdminOutput};
use sgl_grid::service::billing::Shares;
use sgl_grid_store::api_keys::ApiKeyRecord;
use sgl_grid_store::jobs::{JobEnd, JobMovement, JobStatus};
use sgl_grid_store::ledger::{Account, Asset, NewTransaction, PostError, Posted, Posting, TransactionKind};
use sgl_grid_store::settlement::{Recipient, Settlement};
use sgl_grid_store::stake::{StakeError, UnstakeRequest};
use sgl_grid_store::{Store, StoreError};

use crate::fixture::TestDb;
use crate::ops::{Batch, Op, execute, plan, workload};
use crate::outcomes::{Pre, check_batch};

const WALLETS: usize = 4;
const T0: i64 = 1_800_000_000_000;
/// Milliseconds between two operations' clocks.
const STEP: i64 = 10;
const COOLDOWN: i64 = 60_000;
const NETWORK: &str = "eip155:84532";
const REASONS: [&str; 2] = ["bad_signature", "bad_result"];

fn wallet_address(wallet: usize) -> Address {
    Address::repeat_byte(u8::try_from(wallet + 1).expect("a handful of wallets"))
}

fn wallet_name(wallet: usize) -> String {
    format!("{:#x}", wallet_address(wallet))
}

fn fail(error: impl Debug) -> TestCaseError {
    TestCaseError::fail(format!("{error:?}"))
}

fn movement(idempotency_key: String, kind: TransactionKind, postings: Vec<(Account, i64)>) -> NewTransaction {
    NewTransaction {
        idempotency_key,
        kind,
        memo: "ledger workload".to_owned(),
        postings: postings
            .into_iter()
            .filter(|(_, amount)| *amount != 0)
            .map(|(account, amount)| Posting { account, amount })
            .collect(),
    }
}

/// The credit the grid posts for an x402 payment (`payments::take`).
fn x402_credit(key_id: i64, hash: &str, micros: i64) -> NewTransaction {
    let source = Account::External { source: "x402".into(), asset: Asset::Usd };
    movement(
        format!("x402:{NETWORK}:{hash}"),
        TransactionKind::Payment,
        vec![(source, -micros), (credits(key_id), micros)],
    )
}

fn credits(api_key_id: i64) -> Account {
    Account::Credits { api_key_id }
}

fn stake(wallet: usize) -> Account {
    Account::Stake { wallet: wallet_name(wallet) }
}

fn unbonding(wallet: usize) -> Account {
    Account::Unbonding { wallet: wallet_name(wallet) }
}

fn earnings(wallet: usize) -> Account {
    Account::Earnings { wallet: wallet_name(wallet) }
}

fn external(source: &str, asset: Asset) -> Account {
    Account::External { source: source.into(), asset }
}

/// The share of `balance` a slash of `basis_points` takes.
fn share(balance: i64, basis_points: u32) -> i64 {
    i64::try_from(i128::from(balance.max(0)) * i128::from(basis_points.min(10_000)) / 10_000).expect("fits")
}

/// Where a job is, as far as the model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Refused,
    Open,
    Finished { status: JobStatus, billed: Option<i64> },
}

/// A dispatched (or refused) job: who pays, who earns, what was held.
#[derive(Debug, Clone)]
struct JobModel {
    key: i64,
    operator: usize,
    held: i64,
    state: JobState,
}

/// An applied x402 payment, for replays.
#[derive(Debug, Clone)]
struct Payment {
    wallet: usize,
    hash: String,
    micros: i64,
    transaction_id: i64,
}

/// What the store must hold, built from the outcomes it reported.
#[derive(Debug, Default)]
struct Model {
    /// Every posting but the recipients' shares of settlements.
    balances: BTreeMap<Account, i64>,
    /// Per recipient account, the exact sum of its settled shares in 1/10,000 micro-units.
    exact: BTreeMap<Account, i128>,
    /// Accounts posted to, not counting settlements (their postings are read back).
    touched: BTreeSet<Account>,
    transactions: i64,
    /// Postings, not counting settlements.
    postings: i64,
    keys: Vec<i64>,
    roots: BTreeMap<usize, i64>,
    payments: Vec<Payment>,
    jobs: BTreeMap<String, JobModel>,
    unstakes: BTreeMap<usize, UnstakeRequest>,
    faults: Vec<(String, &'static str)>,
    /// Per wallet, per slash time: the amount recorded, and how many extra records of 0 may be.
    slashes: BTreeMap<usize, BTreeMap<i64, (i64, usize)>>,
    /// The grid's settlement shares in this case.
    shares: Shares,
    /// Store calls made.
    operations: usize,
    seq: i64,
    stats: BTreeMap<String, u32>,
}

impl Model {
    fn balance(&self, account: &Account) -> i64 {
        let direct = self.balances.get(account).copied().unwrap_or(0);
        let shares = match account {
            Account::Rounding => self.exact.values().map(|exact| exact % 10_000).sum::<i128>() / 10_000,
            _ => self.exact.get(account).map_or(0, |exact| exact / 10_000),
        };
        direct + i64::try_from(shares).expect("fits")
    }

    /// Every balance: the postings applied directly, plus each recipient's whole micro-units of
    /// its exact shares, and the rounding account holding the fractions.
    fn derived_balances(&self) -> BTreeMap<Account, i64> {
        let mut balances = self.balances.clone();
        let mut fractions = 0;
        for (account, exact) in &self.exact {
            *balances.entry(account.clone()).or_default() += i64::try_from(exact / 10_000).expect("fits");
            fractions += exact % 10_000;
        }
        assert_eq!(fractions % 10_000, 0, "the shares of each settlement sum to its cost");
        *balances.entry(Account::Rounding).or_default() += i64::try_from(fractions / 10_000).expect("fits");
        balances
    }

    /// A settlement: escrow and refund as they are, each recipient's exact share accumulated.
    fn settle(&mut self, settlement: &Settlement) {
        self.transactions += 1;
        let billed = settlement.billed();
        *self.balances.entry(Account::Escrow { job_id: settlement.job_id.clone() }).or_default() -= settlement.held;
        *self.balances.entry(credits(settlement.api_key_id)).or_default() += settlement.held - billed;
        for recipient in Recipient::ALL {
            let share = i128::from(billed) * i128::from(settlement.shares.bps(recipient));
            *self.exact.entry(recipient.account(&settlement.operator_wallet)).or_default() += share;
        }
    }

    fn apply(&mut self, transaction: &NewTransaction) {
        self.transactions += 1;
        for posting in &transaction.postings {
            self.postings += 1;
            *self.balances.entry(posting.account.clone()).or_default() += posting.amount;
            self.touched.insert(posting.account.clone());
        }
    }

    fn count(&mut self, what: &str) {
        *self.stats.entry(what.to_owned()).or_default() += 1;
    }
}

/// A job's end as the grid records it.
#[derive(Debug, Clone, Copy)]
enum PlannedEnd {
    Completed { cost: i64 },
    Cut { tokens: i64, cost: i64 },
    Failed,
}

impl PlannedEnd {
    fn job_end(self) -> JobEnd<'static> {
        match self {
            Self::Completed { cost } => {
                JobEnd::Completed { prompt_tokens: 11, completion_tokens: 22, billed_micros: cost }
            }
            Self::Cut { tokens, cost } => {
                JobEnd::Cut { error: "stream cut", completion_tokens: tokens, billed_micros: cost }
            }
            Self::Failed => JobEnd::Failed { error: "node failed" },
        }
    }

    fn state(self) -> JobState {
        match self {
            Self::Completed { cost } => JobState::Finished { status: JobStatus::Completed, billed: Some(cost) },
            Self::Cut { cost, .. } => JobState::Finished { status: JobStatus::Failed, billed: Some(cost) },
            Self::Failed => JobState::Finished { status: JobStatus::Failed, billed: None },
        }
    }
}

/// One concrete operation, with everything it needs to run on its own task.
#[derive(Debug, Clone)]
enum Act {
    CreateKey {
        hash: String,
    },
    Grant {
        key: i64,
        micros: i64,
    },
    Pay {
        wallet: usize,
        hash: String,
        micros: i64,
        replay_of: Option<(i64, bool)>,
    },
    /// A transfer or a payout: its first posting is the checked debit.
    Post {
        kind: &'static str,
        transaction: NewTransaction,
    },
    Dispatch {
        job: String,
        key: i64,
        operator: usize,
        hold: i64,
    },
    Finish {
        job: String,
        end: PlannedEnd,
        movement: JobMovement,
    },
    Deposit {
        wallet: usize,
        sgl: u64,
    },
    Unstake {
        wallet: usize,
        amount: Option<i64>,
        available_at: i64,
    },
    Withdraw {
        wallet: usize,
    },
    Slash {
        wallet: usize,
        job: Option<String>,
        reason: &'static str,
        basis_points: u32,
    },
}

/// An operation and the clock it runs at.
#[derive(Debug, Clone)]
struct Planned {
    now: i64,
    act: Act,
}

/// What the store answered to one operation.
#[derive(Debug)]
enum Outcome {
    Key(Result<ApiKeyRecord, StoreError>),
    Admin(Box<Result<AdminOutput, AdminError>>),
    Paid(Result<(i64, Result<Posted, PostError>), StoreError>),
    Posted(Result<Posted, PostError>),
    Dispatched(Result<(), PostError>),
    Finished(Result<bool, PostError>),
    Unstaked(Result<UnstakeRequest, StakeError>),
    Withdrawn(Result<i64, StakeError>),
    Slashed(Result<i64, StakeError>),
}

/// Runs a batch's operations concurrently, one task each, then checks and applies their outcomes.
async fn run_batch(store: &Store, model: &mut Model, batch: Batch) -> Result<(), TestCaseError> {
    let pre = Pre::new(model, &batch.planned);
    model.operations += batch.planned.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (at, planned) in batch.planned.iter().cloned().enumerate() {
        let store = store.clone();
        tasks.spawn(async move { (at, execute(store, planned).await) });
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..batch.planned.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (at, outcome) = joined.map_err(fail)?;
        outcomes[at] = Some(outcome);
    }
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|o| o.expect("every task reports")).collect();
    check_batch(model, &pre, &batch.planned, &outcomes)
}

/// Four keys with credits and four staked wallets, so the first batches have work to do.
async fn bootstrap(store: &Store, model: &mut Model) -> Result<(), TestCaseError> {
    let mut batch = Batch::default();
    for n in 0..WALLETS {
        plan(model, &mut batch, &Op::CreateKey)?;
        plan(model, &mut batch, &Op::Deposit { wallet: n, sgl: 5 })?;
    }
    run_batch(store, model, batch).await?;
    let mut batch = Batch::default();
    for key in model.keys.clone() {
        batch.push(T0, Act::Grant { key, micros: 2_000_000 });
    }
    run_batch(store, model, batch).await
}

/// Plans the generated operations into batches of the generated sizes and runs them in turn.
async fn run_workload(store: &Store, shares: Shares, ops: Vec<Op>, sizes: &[usize]) -> Result<Model, TestCaseError> {
    let mut model = Model { shares, ..Model::default() };
    bootstrap(store, &mut model).await?;
    let mut queue: std::collections::VecDeque<Op> = ops.into();
    for size in sizes.iter().cycle() {
        if queue.is_empty() {
            break;
        }
        let (mut batch, mut deferred) = (Batch::default(), Vec::new());
        for _ in 0..*size {
            let Some(op) = queue.pop_front() else { break };
            if !plan(&mut model, &mut batch, &op)? {
                deferred.push(op);
            }
        }
        deferred.into_iter().rev().for_each(|op| queue.push_front(op));
        run_batch(store, &mut model, batch).await?;
    }
    Ok(model)
}

/// The postings of every settled job's one `settle:job:<id>` transaction, each checked on its
/// own: a release exactly as the grid built it; a settlement with its escrow and its refund
/// exact and nothing else but its recipients, each within a micro-unit of its exact share (which
/// of the two it got depends on the settlements before it), and the rounding account taking the
/// difference. Jobs that never finished have none.
async fn recorded_settlements(store: &Store, model: &Model) -> Result<Vec<(String, i64)>, TestCaseError> {
    let mut settled = Vec::new();
    for (id, job) in &model.jobs {
        let recorded = store.recorded_transaction(&format!("settle:job:{id}")).await.map_err(fail)?;
        let (billed, postings) = match (job.state, recorded) {
            (JobState::Refused | JobState::Open, None) => continue,
            (JobState::Finished { billed: None, .. }, Some(recorded)) => {
                let release = sgl_grid::service::billing::release(id, job.key, job.held);
                let mut expected: Vec<(String, i64)> =
                    release.postings.iter().map(|p| (p.account.to_string(), p.amount)).collect();
                expected.sort();
                prop_assert_eq!((recorded.kind.as_str(), &recorded.postings), ("release", &expected), "job {}", id);
                continue;
            }
            (JobState::Finished { billed: Some(billed), .. }, Some(recorded)) => {
                prop_assert_eq!(recorded.kind.as_str(), "settlement", "job {}", id);
                (billed, recorded.postings)
            }
            (state, recorded) => return Err(fail(format!("job {id} is {state:?} but recorded {recorded:?}"))),
        };
        let posted = |account: &Account| {
            let name = account.to_string();
            postings.iter().find(|(posted, _)| *posted == name).map_or(0, |(_, amount)| *amount)
        };
        let (escrow, refund) = (Account::Escrow { job_id: id.clone() }, credits(job.key));
        prop_assert_eq!((posted(&escrow), posted(&refund)), (-job.held, job.held - billed), "settlement of {}", id);
        let mut allowed: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        allowed.insert(escrow.to_string(), (-job.held, -job.held));
        allowed.insert(refund.to_string(), (job.held - billed, job.held - billed));
        for recipient in Recipient::ALL {
            let exact = billed * i64::from(model.shares.bps(recipient));
            let within_one = (exact / 10_000, (exact + 9_999) / 10_000);
            allowed.insert(recipient.account(&wallet_name(job.operator)).to_string(), within_one);
        }
        allowed.insert(Account::Rounding.to_string(), (-3, 3));
        for (account, amount) in &postings {
            let range = allowed.get(account).copied();
            prop_assert!(
                *amount != 0 && range.is_some_and(|(low, high)| (low..=high).contains(amount)),
                "settlement of {id} billing {billed} of {} posts {amount} to {account}, allowed {range:?}",
                job.held
            );
        }
        prop_assert_eq!(postings.iter().map(|(_, amount)| amount).sum::<i64>(), 0, "settlement of {} balances", id);
        settled.extend(postings);
    }
    Ok(settled)
}

/// Everything the store holds must be what the model says, and the ledger must be sound.
async fn check_store(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let audit = store.audit_ledger().await.map_err(fail)?;
    prop_assert!(audit.is_sound(), "{:?}", audit.problems);
    let settled = recorded_settlements(store, model).await?;
    let mut touched: BTreeSet<String> = model.touched.iter().map(Account::to_string).collect();
    touched.extend(settled.iter().map(|(account, _)| account.clone()));
    prop_assert_eq!(
        (audit.transactions, audit.postings, audit.accounts),
        (model.transactions, model.postings + settled.len() as i64, touched.len() as i64),
        "transactions, postings and accounts"
    );
    for (asset, total) in store.ledger_totals().await.map_err(fail)? {
        prop_assert_eq!(total, 0, "the ledger sums to zero in {}", asset);
    }
    for (account, exact) in &model.exact {
        let carry = store.carry(account).await.map_err(fail)?;
        prop_assert_eq!(i128::from(carry.units()), exact % 10_000, "carry of {}", account);
    }
    let mut expected = model.derived_balances();
    let fixed = [Account::Platform, Account::Stakers, Account::Burn, Account::Rounding, Account::Slashed];
    let per_wallet = (0..WALLETS).flat_map(|w| [stake(w), unbonding(w), earnings(w)]);
    for account in fixed.into_iter().chain(per_wallet).chain(model.keys.iter().map(|k| credits(*k))) {
        expected.entry(account).or_insert(0);
    }
    for (id, job) in &model.jobs {
        let escrow = if job.state == JobState::Open { job.held } else { 0 };
        prop_assert_eq!(
            *expected.entry(Account::Escrow { job_id: id.clone() }).or_insert(0),
            escrow,
            "escrow of {}",
            id
        );
    }
    for (account, balance) in &expected {
        let actual = store.balance(account).await.map_err(fail)?;
        prop_assert_eq!(actual, *balance, "balance of {}", account);
        prop_assert!(account.may_go_negative() || actual >= 0, "{account} is negative");
    }
    for (id, model_job) in &model.jobs {
        let job = store.job(id).await.map_err(fail)?;
        match model_job.state {
            JobState::Refused => prop_assert!(job.is_none(), "a refused hold left job {} behind", id),
            state => {
                let job = job.ok_or_else(|| fail(format!("job {id} is missing")))?;
                let (status, billed) = match state {
                    JobState::Finished { status, billed } => (status, billed),
                    _ => (JobStatus::Dispatched, None),
                };
                prop_assert_eq!(
                    (job.status, job.billed_micros, job.held_micros),
                    (status, billed, model_job.held),
                    "job {}",
                    id
                );
                prop_assert_eq!(job.api_key_id, model_job.key);
            }
        }
    }
    for wallet in 0..WALLETS {
        let name = wallet_name(wallet);
        let unstake = store.unstake_request(&name).await.map_err(fail)?;
        prop_assert_eq!(unstake.as_ref(), model.unstakes.get(&wallet), "open unstake of {}", name);
        let mut recorded: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for slash in store.slashes(&name).await.map_err(fail)? {
            recorded.entry(slash.created_at).or_default().push(slash.amount);
        }
        let expected = model.slashes.get(&wallet).cloned().unwrap_or_default();
        prop_assert_eq!(
            recorded.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "slashes of {}",
            name
        );
        for (at, amounts) in &mut recorded {
            let (amount, extra_zeros) = expected[at];
            amounts.sort_unstable();
            let mut want = vec![0; amounts.len() - 1];
            want.push(amount);
            prop_assert!(*amounts == want && want.len() <= 1 + extra_zeros, "slashes of {name} at {at}: {amounts:?}");
        }
        prop_assert_eq!(store.wallet_account_id(&name).await.map_err(fail)?, model.roots.get(&wallet).copied());
    }
    for key in store.list_api_keys().await.map_err(fail)? {
        if !model.keys.contains(&key.id) {
            prop_assert!(key.revoked_at.is_some(), "key {} is neither known nor revoked", key.id);
            prop_assert_eq!(store.balance(&credits(key.id)).await.map_err(fail)?, 0);
        }
    }
    Ok(())
}

/// Runs one case on its own two-worker runtime and a fresh database.
fn run_case(postgres: Option<&str>, (shares, ops, sizes): (Shares, Vec<Op>, Vec<usize>)) -> Result<(), TestCaseError> {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let db = match postgres {
            Some(url) => TestDb::postgres(url).await,
            None => TestDb::sqlite().await,
        };
        let result = async {
            let model = run_workload(&db.store, shares, ops, &sizes).await?;
            check_store(&db.store, &model).await?;
            prop_assert!(model.transactions > 0);
            eprintln!(
                "ledger workload: {} calls, {} transactions, {:?}; {:?}",
                model.operations, model.transactions, model.shares, model.stats
            );
            Ok(())
        }
        .await;
        db.finish().await;
        result
    })
}

/// `cases` cases; shrinking re-runs whole workloads, so it is bounded.
fn config(cases: u32, max_shrink_iters: u32) -> ProptestConfig {
    // Seeds of failures are kept next to this test (paths are relative to the crate).
    let regressions = FileFailurePersistence::Direct("tests/ledger_workload/proptest-regressions.txt");
    ProptestConfig {
        cases,
        max_shrink_iters,
        failure_persistence: Some(Box::new(regressions)),
        ..ProptestConfig::default()
    }
}

#[test]
fn sqlite_random_concurrent_workload_keeps_every_ledger_invariant() {
    proptest!(config(48, 256), |(case in workload(150..250))| {
        run_case(None, case)?;
    });
}

#[test]
fn postgres_random_concurrent_workload_keeps_every_ledger_invariant() {
    let Ok(url) = std::env::var("SGL_TEST_DATABASE_URL") else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true needs SGL_TEST_DATABASE_URL");
        eprintln!("note: SGL_TEST_DATABASE_URL is not set; skipping the PostgreSQL workload");
        return;
    };
    proptest!(config(16, 32), |(case in workload(150..250))| {
        run_case(Some(&url), case)?;
    });
}
