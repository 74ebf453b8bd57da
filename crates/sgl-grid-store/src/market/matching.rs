//! The match, as a pure rule: among the bids of nodes still eligible when the window ends, the
//! cheapest wins; at one price the node of higher reputation; at one price and reputation the
//! bid placed first. Every other bid loses, with the reason that decided it.

use std::cmp::Ordering;

use sgl_protocol::api::market::LostReason;

/// One bid, with what the match weighs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The bid.
    pub bid_id: i64,
    /// Its price per hour, micro-USD.
    pub price: i64,
    /// Its node's reputation now (0 to 1).
    pub reputation: f64,
    /// When it was placed, in the order's sequence (lower is earlier).
    pub seq: i64,
    /// Whether its node may take work now.
    pub eligible: bool,
}

/// What the match decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranking {
    /// The winning bid, if any bid was eligible.
    pub winner: Option<i64>,
    /// Every other bid and why it lost.
    pub lost: Vec<(i64, LostReason)>,
}

/// How `a` and `b` rank: the better first (lower price, then higher reputation, then earlier).
fn better(a: &Candidate, b: &Candidate) -> Ordering {
    a.price.cmp(&b.price).then_with(|| b.reputation.total_cmp(&a.reputation)).then_with(|| a.seq.cmp(&b.seq))
}

/// Decides a match among `candidates`.
pub fn rank(candidates: &[Candidate]) -> Ranking {
    let winner = candidates.iter().filter(|c| c.eligible).min_by(|a, b| better(a, b)).copied();
    let lost = candidates
        .iter()
        .filter(|c| Some(c.bid_id) != winner.map(|w| w.bid_id))
        .map(|c| {
            let reason = match winner {
                _ if !c.eligible => LostReason::NodeIneligible,
                None => LostReason::NodeIneligible,
                Some(w) if c.price > w.price => LostReason::Outbid { winning_price_micros: w.price },
                Some(w) if c.reputation < w.reputation => LostReason::LowerReputation,
                Some(_) => LostReason::LaterBid,
            };
            (c.bid_id, reason)
        })
        .collect();
    Ranking { winner: winner.map(|w| w.bid_id), lost }
}

#[cfg(test)]
mod tests {
    //! Price, then reputation, then time; ineligible nodes never win.

    use super::*;

    fn bid(bid_id: i64, price: i64, reputation: f64, seq: i64) -> Candidate {
        Candidate { bid_id, price, reputation, seq, eligible: true }
    }

    fn reason(ranking: &Ranking, bid_id: i64) -> LostReason {
        ranking.lost.iter().find(|(id, _)| *id == bid_id).map(|(_, reason)| *reason).unwrap()
    }

    #[test]
    fn the_cheapest_wins_and_the_rest_are_outbid() {
        let ranking = rank(&[bid(1, 120, 0.9, 1), bid(2, 100, 0.1, 2), bid(3, 150, 1.0, 3)]);
        assert_eq!(ranking.winner, Some(2));
        assert_eq!(reason(&ranking, 1), LostReason::Outbid { winning_price_micros: 100 });
        assert_eq!(reason(&ranking, 3), LostReason::Outbid { winning_price_micros: 100 });
    }

    #[test]
    fn ties_go_to_reputation_then_to_the_earlier_bid() {
        let ranking = rank(&[bid(1, 100, 0.5, 1), bid(2, 100, 0.8, 2), bid(3, 100, 0.8, 3)]);
        assert_eq!(ranking.winner, Some(2));
        assert_eq!(reason(&ranking, 1), LostReason::LowerReputation);
        assert_eq!(reason(&ranking, 3), LostReason::LaterBid);
    }

    #[test]
    fn ineligible_nodes_never_win() {
        let offline = Candidate { eligible: false, ..bid(1, 10, 1.0, 1) };
        let ranking = rank(&[offline, bid(2, 100, 0.5, 2)]);
        assert_eq!(ranking.winner, Some(2));
        assert_eq!(reason(&ranking, 1), LostReason::NodeIneligible);
        let none = rank(&[offline]);
        assert_eq!((none.winner, none.lost), (None, vec![(1, LostReason::NodeIneligible)]));
        assert_eq!(rank(&[]), Ranking { winner: None, lost: vec![] });
    }
}
