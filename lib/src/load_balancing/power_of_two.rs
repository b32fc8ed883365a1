//! Power of two choices: two weighted random draws, the less loaded wins.

use rand::Rng;

use super::{random, Candidate};

/// Draws two distinct candidates (weighted) and keeps the less loaded; a tie keeps the first,
/// so that equally loaded backends share in proportion to their weights.
pub(super) fn choose<R: Rng + ?Sized>(candidates: &[Candidate], rng: &mut R) -> Option<usize> {
    let first = random::choose(candidates, rng)?;
    let Some(second) = random::choose_excluding(candidates, Some(first), rng) else {
        return Some(first);
    };
    if candidates[second].load < candidates[first].load {
        Some(second)
    } else {
        Some(first)
    }
}
