//! Least loaded: the lowest normalised load wins.

use rand::Rng;

use super::Candidate;

/// Picks the candidate of lowest load among those with a weight; ties are broken at random in
/// proportion to the weights (one pass, weighted reservoir sampling).
pub(super) fn choose<R: Rng + ?Sized>(candidates: &[Candidate], rng: &mut R) -> Option<usize> {
    let mut chosen = None;
    let mut lowest = f64::INFINITY;
    let mut tied_weight = 0u64;
    for (index, candidate) in candidates.iter().enumerate() {
        let weight = u64::from(candidate.weight);
        if weight == 0 {
            continue;
        }
        if chosen.is_none() || candidate.load < lowest {
            chosen = Some(index);
            lowest = candidate.load;
            tied_weight = weight;
        } else if candidate.load == lowest {
            tied_weight += weight;
            if rng.gen_range(0..tied_weight) < weight {
                chosen = Some(index);
            }
        }
    }
    chosen
}
