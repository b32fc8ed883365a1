//! Smooth weighted round robin.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::Candidate;

/// Smooth weighted round robin (the algorithm nginx uses): at each pick every candidate's
/// current weight grows by its weight, the largest wins (the first one on a tie) and loses the
/// total. Over `total` picks each candidate is picked `weight` times, spread out.
///
/// State is kept per address, so a backend leaving the candidates for a while (backing off)
/// keeps its place; [`SmoothRoundRobin::forget`] drops it when it leaves the cluster.
#[derive(Debug, Clone, Default)]
pub struct SmoothRoundRobin {
    current: HashMap<SocketAddr, i64>,
}

impl SmoothRoundRobin {
    /// Picks the index of the next candidate, `None` when none has a weight.
    pub fn choose(&mut self, candidates: &[Candidate]) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (index, candidate) in candidates.iter().enumerate() {
            if candidate.weight == 0 {
                continue;
            }
            let weight = i64::from(candidate.weight);
            let current = self.current.entry(candidate.address).or_insert(0);
            *current += weight;
            total += weight;
            if best.is_none_or(|(_, best_current)| *current > best_current) {
                best = Some((index, *current));
            }
        }
        let (index, _) = best?;
        if let Some(current) = self.current.get_mut(&candidates[index].address) {
            *current -= total;
        }
        Some(index)
    }

    /// Drops the state of a backend that left the cluster.
    pub fn forget(&mut self, address: &SocketAddr) {
        self.current.remove(address);
    }
}
