use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use sluice_command::proto::{LoadBalancingAlgorithm, LoadMetric};

use super::{Balancer, Candidate, PeakEwma};

const PICKS: usize = 10_000;

fn address(index: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000 + index as u16))
}

fn candidates(weights: &[u32]) -> Vec<Candidate> {
    weights
        .iter()
        .enumerate()
        .map(|(index, weight)| Candidate {
            address: address(index),
            weight: *weight,
            load: 1.0 / f64::from((*weight).max(1)),
        })
        .collect()
}

fn balancer(algorithm: LoadBalancingAlgorithm) -> Balancer {
    Balancer::new(algorithm, LoadMetric::Connections)
}

/// Picks `PICKS` times without load feedback and returns each candidate's share.
fn static_shares(algorithm: LoadBalancingAlgorithm, weights: &[u32]) -> Vec<f64> {
    let mut balancer = balancer(algorithm);
    let mut rng = StdRng::seed_from_u64(42);
    let candidates = candidates(weights);
    let mut counts = vec![0usize; weights.len()];
    for _ in 0..PICKS {
        let index = balancer.choose(&candidates, &mut rng).expect("a pick");
        counts[index] += 1;
    }
    counts.iter().map(|c| *c as f64 / PICKS as f64).collect()
}

/// Simulates a server holding `window` connections (the oldest closes when a new one opens):
/// the load each algorithm sees is the real count of open connections.
fn loaded_shares(algorithm: LoadBalancingAlgorithm, weights: &[u32], window: usize) -> Vec<f64> {
    let mut balancer = balancer(algorithm);
    let mut rng = StdRng::seed_from_u64(42);
    let mut open = vec![0usize; weights.len()];
    let mut fifo = VecDeque::new();
    let mut counts = vec![0usize; weights.len()];
    for _ in 0..PICKS {
        let candidates: Vec<Candidate> = weights
            .iter()
            .enumerate()
            .map(|(index, weight)| Candidate {
                address: address(index),
                weight: *weight,
                load: (open[index] as f64 + 1.0) / f64::from((*weight).max(1)),
            })
            .collect();
        let index = balancer.choose(&candidates, &mut rng).expect("a pick");
        counts[index] += 1;
        open[index] += 1;
        fifo.push_back(index);
        if fifo.len() > window {
            let oldest = fifo.pop_front().expect("non-empty");
            open[oldest] -= 1;
        }
    }
    counts.iter().map(|c| *c as f64 / PICKS as f64).collect()
}

fn assert_shares(shares: &[f64], expected: &[f64], tolerance: f64) {
    for (share, expected) in shares.iter().zip(expected) {
        assert!(
            (share - expected).abs() <= tolerance,
            "shares {shares:?}, expected {expected:?} ± {tolerance}"
        );
    }
}

const FIVE_ONE_ONE: [f64; 3] = [5.0 / 7.0, 1.0 / 7.0, 1.0 / 7.0];

#[test]
fn smooth_round_robin_exact_sequence() {
    let mut balancer = balancer(LoadBalancingAlgorithm::RoundRobin);
    let mut rng = StdRng::seed_from_u64(1);
    let candidates = candidates(&[5, 1, 1]);
    let sequence: String = (0..14)
        .map(|_| match balancer.choose(&candidates, &mut rng) {
            Some(0) => 'a',
            Some(1) => 'b',
            Some(2) => 'c',
            other => panic!("unexpected pick {other:?}"),
        })
        .collect();
    assert_eq!(sequence, "aabacaaaabacaa");
}

#[test]
fn round_robin_distribution() {
    let shares = static_shares(LoadBalancingAlgorithm::RoundRobin, &[5, 1, 1]);
    assert_shares(&shares, &FIVE_ONE_ONE, 0.001);
}

#[test]
fn random_distribution() {
    let shares = static_shares(LoadBalancingAlgorithm::Random, &[5, 1, 1]);
    assert_shares(&shares, &FIVE_ONE_ONE, 0.02);
}

#[test]
fn least_loaded_distribution_under_load() {
    let shares = loaded_shares(LoadBalancingAlgorithm::LeastLoaded, &[5, 1, 1], 700);
    assert_shares(&shares, &FIVE_ONE_ONE, 0.02);
}

#[test]
fn power_of_two_distribution_under_load() {
    let shares = loaded_shares(LoadBalancingAlgorithm::PowerOfTwo, &[5, 1, 1], 700);
    assert_shares(&shares, &FIVE_ONE_ONE, 0.04);
}

#[test]
fn power_of_two_distribution_without_load_follows_weights() {
    let mut balancer = balancer(LoadBalancingAlgorithm::PowerOfTwo);
    let mut rng = StdRng::seed_from_u64(3);
    let mut candidates = candidates(&[5, 1, 1]);
    for candidate in &mut candidates {
        candidate.load = 0.0;
    }
    let mut counts = [0usize; 3];
    for _ in 0..PICKS {
        counts[balancer.choose(&candidates, &mut rng).expect("a pick")] += 1;
    }
    let shares: Vec<f64> = counts.iter().map(|c| *c as f64 / PICKS as f64).collect();
    assert_shares(&shares, &FIVE_ONE_ONE, 0.02);
}

#[test]
fn least_loaded_picks_the_lowest_load() {
    let mut balancer = balancer(LoadBalancingAlgorithm::LeastLoaded);
    let mut rng = StdRng::seed_from_u64(5);
    let mut candidates = candidates(&[1, 1, 1]);
    candidates[0].load = 3.0;
    candidates[1].load = 0.5;
    candidates[2].load = 2.0;
    for _ in 0..100 {
        assert_eq!(balancer.choose(&candidates, &mut rng), Some(1));
    }
}

#[test]
fn least_loaded_breaks_ties_by_weight() {
    let mut balancer = balancer(LoadBalancingAlgorithm::LeastLoaded);
    let mut rng = StdRng::seed_from_u64(5);
    let mut candidates = candidates(&[3, 1, 1]);
    candidates[0].load = 1.0;
    candidates[1].load = 1.0;
    candidates[2].load = 9.0;
    let mut counts = [0usize; 3];
    for _ in 0..PICKS {
        counts[balancer.choose(&candidates, &mut rng).expect("a pick")] += 1;
    }
    assert_eq!(counts[2], 0);
    let share = counts[0] as f64 / PICKS as f64;
    assert!((share - 0.75).abs() < 0.02, "{counts:?}");
}

#[test]
fn power_of_two_prefers_the_less_loaded_of_two() {
    let mut balancer = balancer(LoadBalancingAlgorithm::PowerOfTwo);
    let mut rng = StdRng::seed_from_u64(9);
    let mut candidates = candidates(&[1, 1]);
    candidates[0].load = 10.0;
    candidates[1].load = 1.0;
    for _ in 0..100 {
        assert_eq!(balancer.choose(&candidates, &mut rng), Some(1));
    }
}

#[test]
fn weight_zero_is_never_picked() {
    for algorithm in [
        LoadBalancingAlgorithm::RoundRobin,
        LoadBalancingAlgorithm::Random,
        LoadBalancingAlgorithm::LeastLoaded,
        LoadBalancingAlgorithm::PowerOfTwo,
    ] {
        let mut balancer = balancer(algorithm);
        let mut rng = StdRng::seed_from_u64(11);
        let mut candidates = candidates(&[0, 2, 0]);
        candidates[0].load = 0.0;
        for _ in 0..200 {
            assert_eq!(
                balancer.choose(&candidates, &mut rng),
                Some(1),
                "{algorithm:?}"
            );
        }
        let none = self::candidates(&[0, 0]);
        assert_eq!(balancer.choose(&none, &mut rng), None, "{algorithm:?}");
        assert_eq!(balancer.choose(&[], &mut rng), None, "{algorithm:?}");
    }
}

#[test]
fn peak_ewma_jumps_to_peaks_and_decays_with_time() {
    let base = Instant::now();
    let mut ewma = PeakEwma::new(Duration::from_secs(10));
    assert!(!ewma.has_samples());
    ewma.observe(Duration::from_millis(10), base);
    assert_eq!(ewma.value(), Duration::from_millis(10));
    ewma.observe(Duration::from_millis(100), base + Duration::from_millis(1));
    assert_eq!(
        ewma.value(),
        Duration::from_millis(100),
        "peaks are taken at once"
    );

    ewma.observe(Duration::from_millis(10), base + Duration::from_millis(2));
    let shortly_after = ewma.value();
    assert!(
        shortly_after > Duration::from_millis(99),
        "{shortly_after:?}"
    );

    ewma.observe(Duration::from_millis(10), base + Duration::from_secs(10));
    let later = ewma.value();
    assert!(later < Duration::from_millis(50), "{later:?}");
    assert!(later > Duration::from_millis(10), "{later:?}");

    ewma.observe(Duration::from_millis(10), base + Duration::from_secs(200));
    assert!(ewma.value() < Duration::from_millis(11));
}
