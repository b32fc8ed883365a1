//! Load-balancing algorithms: given the backends a cluster may use right now, pick one.
//!
//! Every algorithm is weighted. A candidate of weight 0 is never picked by an algorithm: weight
//! 0 drains a backend (as in HAProxy), which then only receives the traffic that a sticky
//! session pins to it (see `BackendList::next_available_sticky`). A list of candidates that all
//! weigh 0 gives no pick.
//!
//! - **Round robin** is the smooth weighted round robin of nginx: weights 5, 1, 1 give
//!   `a a b a c a a`, never a burst of five `a`s.
//! - **Random** picks with probability proportional to the weight.
//! - **Least loaded** picks the lowest load (see [`Candidate::load`]), ties broken at random in
//!   proportion to the weights.
//! - **Power of two choices** draws two distinct candidates at random (weighted) and keeps the
//!   less loaded; a tie keeps the first draw.
//!
//! The choice is made over plain [`Candidate`] values so that the algorithms are independent of
//! `Backend` and its `RefCell`.

mod least_loaded;
mod peak_ewma;
mod power_of_two;
mod random;
mod round_robin;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use rand::Rng;
use sluice_command::proto::{LoadBalancingAlgorithm, LoadMetric};

pub use peak_ewma::PeakEwma;
pub use round_robin::SmoothRoundRobin;

/// What an algorithm knows of a backend it may pick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Identifies the backend across picks (the round robin keeps per-address state).
    pub address: SocketAddr,
    /// Relative share of the traffic; 0 is never picked.
    pub weight: u32,
    /// Load already normalised by the weight: lower is better. For the connection and request
    /// metrics it is `(count + 1) / weight`, so that idle backends still share in proportion to
    /// their weights; for the connect-time metric `peak_ewma · (connections + 1) / weight`.
    pub load: f64,
}

/// A cluster's algorithm, its metric and the state the algorithm keeps between picks.
#[derive(Debug, Clone)]
pub struct Balancer {
    algorithm: LoadBalancingAlgorithm,
    metric: LoadMetric,
    round_robin: SmoothRoundRobin,
}

impl Balancer {
    /// A balancer with no history.
    pub fn new(algorithm: LoadBalancingAlgorithm, metric: LoadMetric) -> Self {
        Balancer {
            algorithm,
            metric,
            round_robin: SmoothRoundRobin::default(),
        }
    }

    /// The algorithm in use.
    pub fn algorithm(&self) -> LoadBalancingAlgorithm {
        self.algorithm
    }

    /// The load metric used by least loaded and power of two choices.
    pub fn metric(&self) -> LoadMetric {
        self.metric
    }

    /// Switches algorithm or metric; the round-robin history restarts only when the algorithm
    /// changes.
    pub fn configure(&mut self, algorithm: LoadBalancingAlgorithm, metric: LoadMetric) {
        if algorithm != self.algorithm {
            self.round_robin = SmoothRoundRobin::default();
        }
        self.algorithm = algorithm;
        self.metric = metric;
    }

    /// Picks the index of one candidate, or `None` when no candidate has a weight.
    pub fn choose<R: Rng + ?Sized>(
        &mut self,
        candidates: &[Candidate],
        rng: &mut R,
    ) -> Option<usize> {
        match self.algorithm {
            LoadBalancingAlgorithm::RoundRobin => self.round_robin.choose(candidates),
            LoadBalancingAlgorithm::Random => random::choose(candidates, rng),
            LoadBalancingAlgorithm::LeastLoaded => least_loaded::choose(candidates, rng),
            LoadBalancingAlgorithm::PowerOfTwo => power_of_two::choose(candidates, rng),
        }
    }

    /// Drops the state kept for a backend that left the cluster.
    pub fn forget(&mut self, address: &SocketAddr) {
        self.round_robin.forget(address);
    }
}
