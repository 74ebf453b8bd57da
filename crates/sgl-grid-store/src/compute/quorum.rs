//! When a slice's receipts decide it: the pure rule, so it can be read and tested alone.
//!
//! A slice of redundancy `r` first wants `r` receipts from nodes of different operators. Once
//! the receipts it wants are in, a result digest is accepted when at least `r / 2 + 1` receipts
//! carry it and they are more than half of all receipts; its receipts are accepted and paid, the
//! others rejected. Without such a majority the slice wants one receipt more (a tie-break), up
//! to its attempt budget; past that it fails and nothing is charged for it.

use std::collections::BTreeMap;

/// One receipt's vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The attempt's id.
    pub attempt_id: i64,
    /// Its result digest.
    pub digest: String,
}

/// What the receipts so far decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Fewer receipts than wanted: wait for the attempts still out (or still to be leased).
    Wait,
    /// `digest` won: its receipts are `agreeing`, the rest `dissenting`.
    Accept {
        /// The accepted result digest.
        digest: String,
        /// The attempts that carried it, in the order given.
        agreeing: Vec<i64>,
        /// The attempts that did not.
        dissenting: Vec<i64>,
    },
    /// No majority yet: lease one more attempt.
    Widen,
    /// No majority and no attempts left.
    Fail,
}

/// The receipts needed to accept a result at redundancy `redundancy`.
pub fn quorum(redundancy: u32) -> usize {
    usize::try_from(redundancy / 2 + 1).unwrap_or(usize::MAX)
}

/// Decides a slice of redundancy `redundancy` that wants `wanted` receipts and may make
/// `budget_left` more attempts, from the receipts in so far.
pub fn decide(redundancy: u32, wanted: u32, budget_left: u32, votes: &[Vote]) -> Decision {
    if votes.len() < usize::try_from(wanted).unwrap_or(usize::MAX) {
        return Decision::Wait;
    }
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for vote in votes {
        *tally.entry(vote.digest.as_str()).or_default() += 1;
    }
    // The most-voted digest; a tie between two can never be a majority, so which is taken
    // does not matter.
    let (top, count) = tally.iter().max_by_key(|(_, count)| **count).map(|(d, c)| (*d, *c)).unwrap_or(("", 0));
    if count >= quorum(redundancy) && count * 2 > votes.len() {
        let (agreeing, dissenting) = votes.iter().partition::<Vec<_>, _>(|vote| vote.digest == top);
        return Decision::Accept {
            digest: top.to_owned(),
            agreeing: agreeing.iter().map(|vote| vote.attempt_id).collect(),
            dissenting: dissenting.iter().map(|vote| vote.attempt_id).collect(),
        };
    }
    if budget_left > 0 { Decision::Widen } else { Decision::Fail }
}

#[cfg(test)]
mod tests;
