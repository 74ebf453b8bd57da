//! The quorum rule, case by case.

use super::*;

fn votes(digests: &[&str]) -> Vec<Vote> {
    digests.iter().zip(1..).map(|(d, id)| Vote { attempt_id: id, digest: (*d).to_owned() }).collect()
}

fn accept(digest: &str, agreeing: &[i64], dissenting: &[i64]) -> Decision {
    Decision::Accept { digest: digest.to_owned(), agreeing: agreeing.to_vec(), dissenting: dissenting.to_vec() }
}

#[test]
fn one_receipt_decides_a_slice_of_redundancy_one() {
    assert_eq!(decide(1, 1, 2, &[]), Decision::Wait);
    assert_eq!(decide(1, 1, 2, &votes(&["a"])), accept("a", &[1], &[]));
}

#[test]
fn redundancy_two_needs_both_to_agree_and_breaks_ties_with_a_third() {
    assert_eq!(decide(2, 2, 3, &votes(&["a"])), Decision::Wait);
    assert_eq!(decide(2, 2, 3, &votes(&["a", "a"])), accept("a", &[1, 2], &[]));
    assert_eq!(decide(2, 2, 3, &votes(&["a", "b"])), Decision::Widen);
    assert_eq!(decide(2, 3, 2, &votes(&["a", "b"])), Decision::Wait);
    assert_eq!(decide(2, 3, 2, &votes(&["b", "a", "a"])), accept("a", &[2, 3], &[1]));
    assert_eq!(decide(2, 3, 2, &votes(&["a", "b", "c"])), Decision::Widen);
    assert_eq!(decide(2, 3, 0, &votes(&["a", "b", "c"])), Decision::Fail);
}

#[test]
fn a_majority_of_all_receipts_is_needed_not_only_the_quorum() {
    // Two of four agree: the quorum of redundancy 3 is met but it is not a majority.
    assert_eq!(decide(3, 4, 1, &votes(&["a", "a", "b", "c"])), Decision::Widen);
    assert_eq!(decide(3, 5, 0, &votes(&["a", "a", "b", "c", "a"])), accept("a", &[1, 2, 5], &[3, 4]));
    assert_eq!(decide(3, 3, 2, &votes(&["a", "b", "a"])), accept("a", &[1, 3], &[2]));
}

#[test]
fn quorum_is_a_majority_of_the_redundancy() {
    assert_eq!([1, 2, 3, 4, 5].map(quorum), [1, 2, 2, 3, 3]);
}
