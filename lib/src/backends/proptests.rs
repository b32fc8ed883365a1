//! Property test: random sequences of operations never break the map's invariants.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use proptest::prelude::*;
use sluice_command::proto::{self, EventKind, LoadBalancingAlgorithm, LoadMetric};

use super::tests::{address, backend_proto, cluster_proto, ms, CLUSTER};
use super::{Backend, BackendMap};

fn kinds(events: &[proto::Event]) -> Vec<EventKind> {
    events
        .iter()
        .filter_map(|e| EventKind::try_from(e.kind).ok())
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    SetCluster {
        algorithm: i32,
        metric: i32,
        health_check: bool,
    },
    RemoveCluster,
    AddBackend {
        port: u16,
        weight: u32,
        backup: bool,
    },
    RemoveBackend {
        port: u16,
    },
    Select {
        sticky: Option<u16>,
    },
    ConnectOk {
        session: usize,
        millis: u64,
    },
    ConnectFail {
        session: usize,
    },
    Close {
        session: usize,
    },
    Request {
        session: usize,
        start: bool,
    },
    Health {
        port: u16,
        success: bool,
    },
    ResetHealth,
    Advance {
        millis: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..5i32, 0..4i32, any::<bool>())
            .prop_map(|(algorithm, metric, health_check)| Op::SetCluster { algorithm, metric, health_check }),
        1 => Just(Op::RemoveCluster),
        4 => (1..6u16, 0..4u32, any::<bool>())
            .prop_map(|(port, weight, backup)| Op::AddBackend { port, weight, backup }),
        2 => (1..7u16).prop_map(|port| Op::RemoveBackend { port }),
        6 => proptest::option::of(1..7u16).prop_map(|sticky| Op::Select { sticky }),
        3 => (0..8usize, 0..200u64).prop_map(|(session, millis)| Op::ConnectOk { session, millis }),
        4 => (0..8usize).prop_map(|session| Op::ConnectFail { session }),
        4 => (0..8usize).prop_map(|session| Op::Close { session }),
        2 => (0..8usize, any::<bool>()).prop_map(|(session, start)| Op::Request { session, start }),
        3 => (1..7u16, any::<bool>()).prop_map(|(port, success)| Op::Health { port, success }),
        1 => Just(Op::ResetHealth),
        2 => (0..20_000u64).prop_map(|millis| Op::Advance { millis }),
    ]
}

/// Replays `ops`; open connections are the sessions that selected a backend and not closed.
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut map = BackendMap::with_seed(3);
    let mut now = Instant::now();
    let mut sessions: Vec<(Rc<RefCell<Backend>>, bool)> = Vec::new();
    let mut latch_events: Vec<EventKind> = Vec::new();
    map.set_cluster(
        &cluster_proto(LoadBalancingAlgorithm::RoundRobin, LoadMetric::Connections),
        now,
    );
    for op in ops {
        apply(&mut map, op, &mut now, &mut sessions);
        if let Err(violation) = map.check_invariants() {
            return Err(TestCaseError::fail(format!("after {op:?}: {violation}")));
        }
        for kind in kinds(&map.take_events()) {
            if matches!(
                kind,
                EventKind::NoAvailableBackends | EventKind::ClusterRecovered
            ) {
                latch_events.push(kind);
            }
        }
        if matches!(op, Op::RemoveCluster) {
            latch_events.clear();
        }
        let alternates = latch_events.windows(2).all(|w| w[0] != w[1]);
        let starts_down = latch_events
            .first()
            .is_none_or(|k| *k == EventKind::NoAvailableBackends);
        prop_assert!(alternates && starts_down, "latch events {latch_events:?}");
    }
    let counters = map.counters();
    prop_assert!(counters.recovered_transitions <= counters.all_down_transitions);
    Ok(())
}

fn apply(
    map: &mut BackendMap,
    op: &Op,
    now: &mut Instant,
    sessions: &mut Vec<(Rc<RefCell<Backend>>, bool)>,
) {
    let session = |index: &usize, sessions: &Vec<(Rc<RefCell<Backend>>, bool)>| {
        sessions.get(*index).map(|(b, _)| b.clone())
    };
    match op {
        Op::SetCluster {
            algorithm,
            metric,
            health_check,
        } => {
            let mut cluster =
                cluster_proto(LoadBalancingAlgorithm::RoundRobin, LoadMetric::Connections);
            cluster.load_balancing = *algorithm;
            cluster.load_metric = *metric;
            cluster.health_check = health_check.then(|| proto::HealthCheckConfig {
                uri: "/".to_owned(),
                interval_ms: 100,
                timeout_ms: 100,
                healthy_threshold: 2,
                unhealthy_threshold: 2,
                expected_status_min: None,
                expected_status_max: None,
                host: None,
            });
            map.set_cluster(&cluster, *now);
        }
        Op::RemoveCluster => map.remove_cluster(CLUSTER),
        Op::AddBackend {
            port,
            weight,
            backup,
        } => {
            let _ = map.add_backend(&backend_proto(*port, *weight, *backup), *now);
        }
        Op::RemoveBackend { port } => {
            let _ = map.remove_backend(CLUSTER, &address(*port), *now);
        }
        Op::Select { sticky } => {
            let sticky = sticky.map(|port| format!("b{port}"));
            if let Ok(backend) = map.select(CLUSTER, sticky.as_deref(), *now) {
                map.connection_opened(&backend);
                sessions.push((backend, false));
            }
        }
        Op::ConnectOk {
            session: index,
            millis,
        } => {
            if let Some(backend) = session(index, sessions) {
                map.connect_succeeded(&backend, ms(*millis), *now);
            }
        }
        Op::ConnectFail { session: index } => {
            if let Some(backend) = session(index, sessions) {
                map.connect_failed(&backend, *now);
            }
        }
        Op::Close { session: index } => {
            if *index < sessions.len() {
                let (backend, in_request) = sessions.remove(*index);
                if in_request {
                    map.request_finished(&backend);
                }
                map.connection_closed(&backend, *now);
            }
        }
        Op::Request {
            session: index,
            start,
        } => {
            if let Some((backend, in_request)) = sessions.get_mut(*index) {
                if *start && !*in_request {
                    map.request_started(backend);
                    *in_request = true;
                } else if !*start && *in_request {
                    map.request_finished(backend);
                    *in_request = false;
                }
            }
        }
        Op::Health { port, success } => {
            map.record_health(CLUSTER, &address(*port), *success, *now);
        }
        Op::ResetHealth => map.reset_health(CLUSTER, *now),
        Op::Advance { millis } => *now += ms(*millis),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_the_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        run(&ops)?;
    }
}
