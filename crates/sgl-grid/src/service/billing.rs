//! The ledger movements of a job: hold the quote in escrow at dispatch, then either settle the
//! delivered cost or release everything on failure. Each movement's idempotency key names the
//! job, so a retried settlement never bills twice.
//!
//! A settlement is a [`Settlement`] the store posts with the recipients' carries in the same
//! transaction that finishes the job (`sgl_grid_store::settlement`): by default operator 80 %,
//! platform 5 %, stakers 10 %, burn 5 % (configurable as [`Shares`]), each paid the floor of its
//! exact share over all jobs, and the rest of the hold back to the caller.

use sgl_grid_store::ledger::{Account, NewTransaction, TransactionKind};
pub use sgl_grid_store::settlement::{Settlement, Shares};

fn transaction(key: String, kind: TransactionKind, postings: Vec<(Account, i64)>) -> NewTransaction {
    NewTransaction::from_amounts(key, kind, String::new(), postings)
}

/// Moves the quote from the caller's credits into the job's escrow.
pub fn hold(job_id: &str, api_key_id: i64, micros: i64) -> NewTransaction {
    transaction(
        format!("hold:job:{job_id}"),
        TransactionKind::EscrowHold,
        vec![(Account::Credits { api_key_id }, -micros), (Account::Escrow { job_id: job_id.to_owned() }, micros)],
    )
}

/// Returns the whole escrow to the caller, under the key a settlement of the job would use.
pub fn release(job_id: &str, api_key_id: i64, held: i64) -> NewTransaction {
    transaction(
        format!("settle:job:{job_id}"),
        TransactionKind::Release,
        vec![(Account::Escrow { job_id: job_id.to_owned() }, -held), (Account::Credits { api_key_id }, held)],
    )
}

#[cfg(test)]
mod tests {
    //! Holds and releases balance; a release shares its key with the job's settlement.

    use super::*;

    #[test]
    fn holds_and_releases_balance_and_a_job_settles_or_releases_once() {
        let held = hold("j", 1, 100);
        assert_eq!(held.postings.iter().map(|p| p.amount).sum::<i64>(), 0);
        assert_eq!(held.idempotency_key, "hold:job:j");
        let released = release("j", 1, 100);
        assert_eq!(released.postings.iter().map(|p| p.amount).sum::<i64>(), 0);
        let refund = released.postings.iter().find(|p| p.account == Account::Credits { api_key_id: 1 }).unwrap();
        assert_eq!(refund.amount, 100);
        let settlement = Settlement {
            job_id: "j".into(),
            api_key_id: 1,
            operator_wallet: "0xop".into(),
            held: 100,
            cost: 40,
            shares: Shares::default(),
        };
        assert_eq!(released.idempotency_key, settlement.idempotency_key(), "a job settles or releases, once");
    }
}
