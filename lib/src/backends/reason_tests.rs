//! Why a backend is down, as its `BackendDown` event says.

use std::time::Instant;

use sluice_command::proto::{self, EventKind, LoadBalancingAlgorithm, LoadMetric};

use super::tests::{address, backend_proto, cluster_proto, CLUSTER};
use super::*;

fn map_with_one_backend() -> (BackendMap, Rc<RefCell<Backend>>, Instant) {
    let now = Instant::now();
    let mut map = BackendMap::with_seed(3);
    map.set_cluster(
        &cluster_proto(LoadBalancingAlgorithm::RoundRobin, LoadMetric::Connections),
        now,
    );
    map.add_backend(&backend_proto(9001, 100, false), now)
        .expect("valid backend");
    map.take_events();
    let backend = map.backend(CLUSTER, &address(9001)).expect("added").clone();
    (map, backend, now)
}

fn down_event(map: &mut BackendMap) -> proto::Event {
    map.take_events()
        .into_iter()
        .find(|event| event.kind == EventKind::BackendDown as i32)
        .expect("a BackendDown event")
}

#[test]
fn a_backend_down_by_health_checks_names_the_failed_check() {
    let (mut map, backend, now) = map_with_one_backend();
    for _ in 0..3 {
        map.note_check_failure(CLUSTER, &address(9001), "HTTP 503 on /health");
        map.record_health(CLUSTER, &address(9001), false, now);
    }
    let event = down_event(&mut map);
    assert_eq!(event.reason.as_deref(), Some("HTTP 503 on /health"));
    assert!(event.timestamp_ms.is_some_and(|ms| ms > 0));
    assert_eq!(
        backend.borrow().down_reason().as_deref(),
        Some("HTTP 503 on /health")
    );
    // A passing check forgets the failure.
    map.record_health(CLUSTER, &address(9001), true, now);
    assert_eq!(backend.borrow().check_failure, None);
}

#[test]
fn a_backend_down_by_failed_connects_counts_them() {
    let (mut map, backend, now) = map_with_one_backend();
    assert_eq!(backend.borrow().down_reason(), None);
    for _ in 0..6 {
        map.connect_failed(&backend, now);
    }
    assert_eq!(
        down_event(&mut map).reason.as_deref(),
        Some("6 failed connects")
    );
}

#[test]
fn a_backend_down_by_broken_exchanges_says_so() {
    let (mut map, backend, now) = map_with_one_backend();
    for _ in 0..6 {
        map.record_passive_failure(&backend, now);
    }
    let reason = down_event(&mut map).reason.expect("a reason");
    assert!(reason.starts_with("6 failures in a row"), "{reason}");
    assert!(reason.contains("broken before its response"), "{reason}");
}
