//! The ledger movements of a job: hold the quote in escrow at dispatch, then either settle the
//! delivered cost (by default operator 80 %, platform 5 %, stakers 10 %, burn 5 %; configurable
//! as [`Shares`]; the rest of the hold back to the caller) or release everything on failure. Each movement's idempotency key names the job, so
//! a retried settlement never bills twice.

use sgl_grid_store::ledger::{Account, NewTransaction, Posting};

/// The shares of a settled cost, in micro-dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// 80 %, to the operator's wallet.
    pub operator: i64,
    /// 5 %.
    pub platform: i64,
    /// 10 %, to stakers.
    pub stakers: i64,
    /// 5 %, set aside for buy-and-burn; takes the rounding remainder.
    pub burn: i64,
}

/// How a settled cost is shared, in basis points; the burn takes what is left (and every
/// rounding remainder), so the parts always sum exactly to the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shares {
    /// The operator's share (8000 = 80 %).
    pub operator_bps: u32,
    /// The platform's share (500 = 5 %).
    pub platform_bps: u32,
    /// The stakers' share (1000 = 10 %).
    pub stakers_bps: u32,
}

impl Default for Shares {
    fn default() -> Self {
        Self { operator_bps: 8_000, platform_bps: 500, stakers_bps: 1_000 }
    }
}

impl Shares {
    /// Whether the named shares leave a non-negative burn.
    pub fn is_valid(self) -> bool {
        u64::from(self.operator_bps) + u64::from(self.platform_bps) + u64::from(self.stakers_bps) <= 10_000
    }
}

/// Splits `cost` with the default shares.
pub fn split(cost: i64) -> Split {
    split_with(Shares::default(), cost)
}

/// Splits `cost` by `shares` so the parts sum exactly to it.
pub fn split_with(shares: Shares, cost: i64) -> Split {
    let part = |bps: u32| i64::try_from(i128::from(cost) * i128::from(bps) / 10_000).unwrap_or(0);
    let (operator, platform, stakers) =
        (part(shares.operator_bps), part(shares.platform_bps), part(shares.stakers_bps));
    Split { operator, platform, stakers, burn: cost - operator - platform - stakers }
}

fn transaction(key: String, kind: &str, postings: Vec<(Account, i64)>) -> NewTransaction {
    NewTransaction {
        idempotency_key: key,
        kind: kind.to_owned(),
        memo: String::new(),
        postings: postings
            .into_iter()
            .filter(|(_, amount)| *amount != 0)
            .map(|(account, amount)| Posting { account, amount })
            .collect(),
    }
}

/// Moves the quote from the caller's credits into the job's escrow.
pub fn hold(job_id: &str, api_key_id: i64, micros: i64) -> NewTransaction {
    transaction(
        format!("hold:job:{job_id}"),
        "escrow_hold",
        vec![(Account::Credits { api_key_id }, -micros), (Account::Escrow { job_id: job_id.to_owned() }, micros)],
    )
}

/// Empties the escrow: `cost` (at most the hold) is split by the default shares, the rest
/// returns to the caller.
pub fn settle(job_id: &str, api_key_id: i64, operator_wallet: &str, held: i64, cost: i64) -> NewTransaction {
    settle_with(Shares::default(), job_id, api_key_id, operator_wallet, held, cost)
}

/// [`settle`] with these shares.
pub fn settle_with(
    shares: Shares,
    job_id: &str,
    api_key_id: i64,
    operator_wallet: &str,
    held: i64,
    cost: i64,
) -> NewTransaction {
    let cost = cost.clamp(0, held);
    let shares = split_with(shares, cost);
    transaction(
        format!("settle:job:{job_id}"),
        "settlement",
        vec![
            (Account::Escrow { job_id: job_id.to_owned() }, -held),
            (Account::Earnings { wallet: operator_wallet.to_owned() }, shares.operator),
            (Account::Platform, shares.platform),
            (Account::Stakers, shares.stakers),
            (Account::Burn, shares.burn),
            (Account::Credits { api_key_id }, held - cost),
        ],
    )
}

/// Returns the whole escrow to the caller.
pub fn release(job_id: &str, api_key_id: i64, held: i64) -> NewTransaction {
    transaction(
        format!("settle:job:{job_id}"),
        "release",
        vec![(Account::Escrow { job_id: job_id.to_owned() }, -held), (Account::Credits { api_key_id }, held)],
    )
}

#[cfg(test)]
mod tests {
    //! Splits add up; settlements and releases balance and share one idempotency key.

    use super::*;

    #[test]
    fn splits_sum_to_the_cost() {
        assert_eq!(split(1_000_000), Split { operator: 800_000, platform: 50_000, stakers: 100_000, burn: 50_000 });
        for cost in [0, 1, 7, 19, 99, 101, 123_457] {
            let s = split(cost);
            assert_eq!(s.operator + s.platform + s.stakers + s.burn, cost);
            assert!(s.burn >= 0);
        }
    }

    #[test]
    fn settlement_never_exceeds_the_hold_and_balances() {
        let over = settle("j", 1, "0xop", 100, 150);
        assert_eq!(over.postings.iter().map(|p| p.amount).sum::<i64>(), 0);
        assert!(!over.postings.iter().any(|p| p.account == Account::Credits { api_key_id: 1 }), "all of it was spent");
        let partial = settle("j", 1, "0xop", 100, 40);
        let refund = partial.postings.iter().find(|p| p.account == Account::Credits { api_key_id: 1 }).unwrap();
        assert_eq!(refund.amount, 60);
        assert_eq!(release("j", 1, 100).idempotency_key, partial.idempotency_key, "a job settles or releases, once");
        assert!(settle("j", 1, "0xop", 100, 0).postings.len() == 2, "zero shares are left out");
    }

    #[test]
    fn configured_shares_split_exactly_and_burn_the_rest() {
        let shares = Shares { operator_bps: 9_000, platform_bps: 300, stakers_bps: 0 };
        assert_eq!(
            split_with(shares, 1_000_000),
            Split { operator: 900_000, platform: 30_000, stakers: 0, burn: 70_000 }
        );
        let odd = split_with(shares, 7);
        assert_eq!(odd.operator + odd.platform + odd.stakers + odd.burn, 7);
        assert!(!Shares { operator_bps: 9_000, platform_bps: 1_000, stakers_bps: 1 }.is_valid());
        assert!(Shares::default().is_valid());
    }

    proptest::proptest! {
        /// For any hold and any claimed cost, a settlement balances to the micro-unit, never
        /// bills more than was held, pays each party its exact share (rounding only ever goes
        /// to the burn, which stays within a micro-unit or three of 5 %), and refunds the rest.
        #[test]
        fn settlements_never_leak_a_micro_unit(held in 1i64..10_000_000_000, cost in -1_000i64..20_000_000_000) {
            let movement = settle("job", 7, "0xop", held, cost);
            let sum: i64 = movement.postings.iter().map(|p| p.amount).sum();
            proptest::prop_assert_eq!(sum, 0);
            let billed = cost.clamp(0, held);
            let amount = |account: &Account| movement.postings.iter().find(|p| &p.account == account).map_or(0, |p| p.amount);
            let shares = split(billed);
            proptest::prop_assert_eq!(amount(&Account::Earnings { wallet: "0xop".into() }), billed * 80 / 100);
            proptest::prop_assert_eq!(amount(&Account::Platform), billed * 5 / 100);
            proptest::prop_assert_eq!(amount(&Account::Stakers), billed * 10 / 100);
            proptest::prop_assert!(shares.burn >= billed * 5 / 100 && shares.burn <= billed * 5 / 100 + 3);
            proptest::prop_assert_eq!(amount(&Account::Credits { api_key_id: 7 }), held - billed);
            proptest::prop_assert_eq!(amount(&Account::Escrow { job_id: "job".into() }), -held);
            proptest::prop_assert!(movement.postings.iter().all(|p| p.amount != 0));
        }
    }
}
