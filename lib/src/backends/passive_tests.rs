//! Passive checks: established connections that break count against a backend.

use std::time::{Duration, Instant};

use sluice_command::proto::{self, EventKind, LoadBalancingAlgorithm, LoadMetric};

use super::tests::{cluster_proto, CLUSTER};
use super::*;

fn address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

fn map() -> (BackendMap, Rc<RefCell<Backend>>, Instant) {
    let now = Instant::now();
    let mut map = BackendMap::with_seed(7);
    map.set_cluster(
        &cluster_proto(LoadBalancingAlgorithm::RoundRobin, LoadMetric::Connections),
        now,
    );
    map.add_backend(
        &proto::Backend {
            cluster_id: CLUSTER.to_owned(),
            backend_id: "b".to_owned(),
            address: address().to_string(),
            sticky_id: None,
            weight: 100,
            backup: false,
            state: None,
            resolve_later: None,
            resolved_from: None,
        },
        now,
    )
    .expect("valid backend");
    assert!(map.take_events().is_empty());
    let backend = map.backend(CLUSTER, &address()).expect("backend").clone();
    (map, backend, now)
}

fn kinds(map: &mut BackendMap) -> Vec<EventKind> {
    map.take_events()
        .iter()
        .map(|event| EventKind::try_from(event.kind).expect("known kind"))
        .collect()
}

/// One connection that connects, then breaks before its response.
fn broken_exchange(map: &mut BackendMap, backend: &Rc<RefCell<Backend>>, now: Instant) {
    map.connection_opened(backend);
    map.connect_succeeded(backend, Duration::from_micros(50), now);
    map.record_passive_failure(backend, now);
    map.connection_closed(backend, now);
}

#[test]
fn broken_exchanges_take_a_backend_down_although_connects_succeed() {
    let (mut map, backend, start) = map();
    let max = RetryConfig::default().max_failures;
    for round in 1..max {
        broken_exchange(
            &mut map,
            &backend,
            start + Duration::from_secs(u64::from(round)),
        );
        assert!(backend.borrow().is_up(), "down after {round} failures");
        assert!(kinds(&mut map).is_empty());
    }
    broken_exchange(&mut map, &backend, start + Duration::from_secs(60));
    assert!(!backend.borrow().is_up());
    assert_eq!(
        kinds(&mut map),
        [EventKind::BackendDown, EventKind::NoAvailableBackends]
    );
    assert_eq!(backend.borrow().failures(), u64::from(max));
}

#[test]
fn a_response_ends_the_streak_and_brings_the_backend_back() {
    let (mut map, backend, start) = map();
    let max = RetryConfig::default().max_failures;
    for round in 0..max {
        broken_exchange(
            &mut map,
            &backend,
            start + Duration::from_secs(u64::from(round)),
        );
    }
    assert!(!backend.borrow().is_up());
    map.take_events();
    let later = start + Duration::from_secs(120);
    assert!(
        !backend.borrow().can_open_ignoring_health(later),
        "exhausted: left to the recovery probe"
    );
    map.record_passive_success(&backend, later);
    assert!(backend.borrow().is_up());
    assert!(backend.borrow().can_open(later));
    assert_eq!(
        kinds(&mut map),
        [EventKind::BackendUp, EventKind::ClusterRecovered]
    );
}

#[test]
fn a_connect_clears_connect_failures_but_not_broken_exchanges() {
    let (mut map, backend, start) = map();
    map.connection_opened(&backend);
    map.connect_failed(&backend, start);
    map.connection_closed(&backend, start);
    let later = start + Duration::from_secs(30);
    map.connection_opened(&backend);
    map.connect_succeeded(&backend, Duration::from_micros(50), later);
    assert_eq!(backend.borrow().retry_policy().failures(), 0);
    map.record_passive_failure(&backend, later);
    map.connect_succeeded(&backend, Duration::from_micros(50), later);
    assert_eq!(backend.borrow().retry_policy().failures(), 1);
    map.connection_closed(&backend, later);
}

#[test]
fn a_response_without_a_streak_changes_nothing() {
    let (mut map, backend, start) = map();
    map.record_passive_success(&backend, start);
    assert!(backend.borrow().is_up());
    assert!(kinds(&mut map).is_empty());
}

#[test]
fn exchanges_broken_together_count_as_one_step() {
    let (mut map, backend, start) = map();
    let started = start - Duration::from_millis(10);
    for n in 0..50 {
        map.connection_opened(&backend);
        map.connect_succeeded(&backend, Duration::from_millis(1), started);
        let now = start + Duration::from_millis(n);
        map.record_passive_failure_since(&backend, started, now);
        map.connection_closed(&backend, now);
    }
    assert_eq!(backend.borrow().retry_policy().failures(), 1);
    assert!(backend.borrow().is_up(), "one blip does not take it out");
}
