//! Weighted random choice.

use rand::Rng;

use super::Candidate;

/// Picks a candidate with probability `weight / total weight`.
pub(super) fn choose<R: Rng + ?Sized>(candidates: &[Candidate], rng: &mut R) -> Option<usize> {
    choose_excluding(candidates, None, rng)
}

/// Like [`choose`], as if the candidate at `excluded` were not there.
pub(super) fn choose_excluding<R: Rng + ?Sized>(
    candidates: &[Candidate],
    excluded: Option<usize>,
    rng: &mut R,
) -> Option<usize> {
    let weight_of = |index: usize, candidate: &Candidate| {
        if Some(index) == excluded {
            0
        } else {
            u64::from(candidate.weight)
        }
    };
    let total: u64 = candidates
        .iter()
        .enumerate()
        .map(|(index, candidate)| weight_of(index, candidate))
        .sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.gen_range(0..total);
    for (index, candidate) in candidates.iter().enumerate() {
        let weight = weight_of(index, candidate);
        if ticket < weight {
            return Some(index);
        }
        ticket -= weight;
    }
    // The tickets cover exactly `total`, so the loop always returns.
    None
}
