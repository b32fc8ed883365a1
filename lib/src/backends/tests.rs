use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Once;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use sluice_command::proto::{self, EventKind, LoadBalancingAlgorithm, LoadMetric};

use super::*;
use crate::retry::RetryPolicy;

// ------------------------------------------------------------------ helpers

pub(super) const CLUSTER: &str = "app";

pub(super) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

pub(super) fn address(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub(super) fn cluster_proto(
    algorithm: LoadBalancingAlgorithm,
    metric: LoadMetric,
) -> proto::Cluster {
    proto::Cluster {
        cluster_id: CLUSTER.to_owned(),
        protocol: proto::ListenerProtocol::Http as i32,
        load_balancing: algorithm as i32,
        load_metric: metric as i32,
        sticky_session: false,
        sticky_cookie_name: None,
        health_check: None,
        answers: Vec::new(),
        max_connect_retries: None,
        prefer_last_backend: None,
    }
}

pub(super) fn backend_proto(port: u16, weight: u32, backup: bool) -> proto::Backend {
    proto::Backend {
        cluster_id: CLUSTER.to_owned(),
        backend_id: format!("b{port}"),
        address: address(port).to_string(),
        sticky_id: None,
        weight,
        backup,
        state: None,
        resolve_later: None,
        resolved_from: None,
    }
}

/// A round-robin cluster with one backend per `(weight, backup)`, on ports 1, 2, 3…
fn map_with(backends: &[(u32, bool)]) -> (BackendMap, Instant) {
    map_with_algorithm(
        backends,
        LoadBalancingAlgorithm::RoundRobin,
        LoadMetric::Connections,
    )
}

fn map_with_algorithm(
    backends: &[(u32, bool)],
    algorithm: LoadBalancingAlgorithm,
    metric: LoadMetric,
) -> (BackendMap, Instant) {
    let base = Instant::now();
    let mut map = BackendMap::with_seed(1);
    map.set_cluster(&cluster_proto(algorithm, metric), base);
    for (index, (weight, backup)) in backends.iter().enumerate() {
        let port = index as u16 + 1;
        map.add_backend(&backend_proto(port, *weight, *backup), base)
            .expect("valid backend");
    }
    assert!(map.take_events().is_empty());
    (map, base)
}

fn backend(map: &BackendMap, port: u16) -> Rc<RefCell<Backend>> {
    map.backend(CLUSTER, &address(port))
        .expect("backend")
        .clone()
}

fn port_of(backend: &Rc<RefCell<Backend>>) -> u16 {
    backend.borrow().address().port()
}

fn select_port(map: &mut BackendMap, now: Instant) -> Option<u16> {
    map.select(CLUSTER, None, now).ok().map(|b| port_of(&b))
}

fn kinds(events: &[proto::Event]) -> Vec<EventKind> {
    events
        .iter()
        .map(|e| EventKind::try_from(e.kind).expect("known kind"))
        .collect()
}

fn exhaust(map: &mut BackendMap, port: u16, now: Instant) {
    let target = backend(map, port);
    for _ in 0..6 {
        map.connect_failed(&target, now);
    }
}

fn make_unhealthy(map: &mut BackendMap, port: u16, now: Instant) {
    for _ in 0..DEFAULT_UNHEALTHY_THRESHOLD {
        map.record_health(CLUSTER, &address(port), false, now);
    }
}

fn make_healthy(map: &mut BackendMap, port: u16, now: Instant) {
    for _ in 0..DEFAULT_HEALTHY_THRESHOLD {
        map.record_health(CLUSTER, &address(port), true, now);
    }
}

// A logger that keeps each test thread's lines, to count warnings.
struct CaptureLogger;

thread_local! {
    static LINES: RefCell<Vec<(log::Level, String)>> = const { RefCell::new(Vec::new()) };
}

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LINES.with(|l| {
            l.borrow_mut()
                .push((record.level(), record.args().to_string()))
        });
    }
    fn flush(&self) {}
}

static LOGGER: CaptureLogger = CaptureLogger;

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&LOGGER).expect("no other logger in the unit tests");
        log::set_max_level(log::LevelFilter::Info);
    });
    LINES.with(|l| l.borrow_mut().clear());
}

fn logged(level: log::Level, needle: &str) -> usize {
    LINES.with(|l| {
        l.borrow()
            .iter()
            .filter(|(lvl, line)| *lvl == level && line.contains(needle))
            .count()
    })
}

// ------------------------------------------------------------ backend state

#[test]
fn can_open_and_is_available_truth_table() {
    #[derive(Debug, Clone, Copy)]
    enum Retry {
        Fresh,
        BackingOff,
        ExhaustedWaiting,
        ExhaustedTrialDue,
    }
    let base = Instant::now();
    let now = base + Duration::from_secs(20);
    let retry_in = |state: Retry| {
        let mut policy = RetryPolicy::new(crate::retry::RetryConfig::default());
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        match state {
            Retry::Fresh => {}
            Retry::BackingOff => {
                policy.fail(now, &mut rng);
            }
            Retry::ExhaustedWaiting | Retry::ExhaustedTrialDue => {
                let at = match state {
                    Retry::ExhaustedWaiting => now,
                    _ => base,
                };
                for _ in 0..6 {
                    policy.fail(at, &mut rng);
                }
            }
        }
        policy
    };
    use BackendStatus::{Closed, Closing, Normal};
    use Retry::*;
    // (healthy, status, retry) → (can_open, is_available)
    let table = [
        (true, Normal, Fresh, true, true),
        (true, Normal, BackingOff, false, true),
        (true, Normal, ExhaustedWaiting, false, false),
        // Only a recovery probe brings an exhausted backend back: no client is sent there.
        (true, Normal, ExhaustedTrialDue, false, false),
        (false, Normal, Fresh, false, false),
        (false, Normal, BackingOff, false, false),
        (false, Normal, ExhaustedTrialDue, false, false),
        (true, Closing, Fresh, false, false),
        (true, Closing, BackingOff, false, false),
        (true, Closed, Fresh, false, false),
        (false, Closing, Fresh, false, false),
    ];
    for (healthy, status, retry, can_open, available) in table {
        let spec = parse_backend(&backend_proto(1, 1, false)).expect("valid");
        let mut b = Backend::new(spec, crate::retry::RetryConfig::default());
        if !healthy {
            b.health.record_failure(1);
        }
        b.status = status;
        b.retry_policy = retry_in(retry);
        let case = format!("healthy={healthy} {status:?} {retry:?}");
        assert_eq!(b.can_open(now), can_open, "can_open {case}");
        assert_eq!(b.is_available(), available, "is_available {case}");
    }
}

// ---------------------------------------------------------------- selection

#[test]
fn selection_prefers_non_backup_then_backup_then_fails_open() {
    capture_logs();
    let (mut map, now) = map_with(&[(1, false), (1, true)]);
    for _ in 0..20 {
        assert_eq!(select_port(&mut map, now), Some(1));
    }
    make_unhealthy(&mut map, 1, now);
    for _ in 0..20 {
        assert_eq!(
            select_port(&mut map, now),
            Some(2),
            "backup when primary is down"
        );
    }
    make_unhealthy(&mut map, 2, now);
    assert_eq!(logged(log::Level::Warn, "failing open"), 0);
    let picks: Vec<Option<u16>> = (0..10).map(|_| select_port(&mut map, now)).collect();
    assert!(
        picks.iter().all(|p| p.is_some()),
        "fail-open picks: {picks:?}"
    );
    assert!(
        picks.contains(&Some(1)) && picks.contains(&Some(2)),
        "{picks:?}"
    );
    assert_eq!(map.counters().fail_open_decisions, 10);
    assert_eq!(
        map.cluster(CLUSTER)
            .expect("cluster")
            .counters()
            .fail_open_decisions,
        10
    );
    assert!(map.cluster(CLUSTER).expect("cluster").is_failing_open());
    assert_eq!(
        logged(log::Level::Warn, "failing open"),
        1,
        "one warning per regime"
    );

    make_healthy(&mut map, 1, now);
    for _ in 0..5 {
        assert_eq!(select_port(&mut map, now), Some(1));
    }
    assert_eq!(logged(log::Level::Info, "no longer failing open"), 1);
    assert_eq!(map.counters().fail_open_decisions, 10);
    assert!(!map.cluster(CLUSTER).expect("cluster").is_failing_open());

    make_unhealthy(&mut map, 1, now);
    select_port(&mut map, now);
    assert_eq!(
        logged(log::Level::Warn, "failing open"),
        2,
        "a new regime warns again"
    );
}

#[test]
fn fail_open_skips_backing_off_and_closing_backends_and_can_find_nothing() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    make_unhealthy(&mut map, 1, now);
    make_unhealthy(&mut map, 2, now);
    let second = backend(&map, 2);
    map.connect_failed(&second, now);
    for _ in 0..20 {
        assert_eq!(select_port(&mut map, now), Some(1));
    }
    let first = backend(&map, 1);
    map.connection_opened(&first);
    map.remove_backend(CLUSTER, &address(1), now)
        .expect("known");
    assert_eq!(
        map.select(CLUSTER, None, now).err(),
        Some(SelectError::NoBackendAvailable(CLUSTER.to_owned()))
    );
    assert_eq!(map.counters().no_backend_available, 1);
}

#[test]
fn unhealthy_closing_and_backing_off_backends_are_never_chosen() {
    let (mut map, now) = map_with(&[(1, false), (1, false), (1, false), (1, false)]);
    make_unhealthy(&mut map, 1, now);
    let closing = backend(&map, 2);
    map.connection_opened(&closing);
    map.remove_backend(CLUSTER, &address(2), now)
        .expect("known");
    assert_eq!(closing.borrow().status(), BackendStatus::Closing);
    let backing_off = backend(&map, 3);
    map.connect_failed(&backing_off, now);
    for _ in 0..100 {
        assert_eq!(select_port(&mut map, now + ms(1)), Some(4));
    }
    assert_eq!(map.counters().fail_open_decisions, 0);
}

#[test]
fn a_backend_that_backed_off_gets_one_trial_then_waits_for_its_outcome() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    let first = backend(&map, 1);
    map.connect_failed(&first, now);
    let later = now + Duration::from_secs(1);
    let picks: Vec<u16> = (0..10)
        .filter_map(|_| select_port(&mut map, later))
        .collect();
    assert_eq!(picks.iter().filter(|p| **p == 1).count(), 1, "{picks:?}");
    map.connect_succeeded(&first, ms(3), later);
    let picks: Vec<u16> = (0..10)
        .filter_map(|_| select_port(&mut map, later))
        .collect();
    assert_eq!(picks.iter().filter(|p| **p == 1).count(), 5, "{picks:?}");
}

#[test]
fn sticky_selection_prefers_the_named_backend_while_it_can_be_opened() {
    let (mut map, now) = map_with(&[(1, false), (0, false)]);
    let sticky = |map: &mut BackendMap| {
        map.select(CLUSTER, Some("b2"), now)
            .map(|b| port_of(&b))
            .ok()
    };
    assert_eq!(
        sticky(&mut map),
        Some(2),
        "weight 0 keeps its sticky sessions"
    );
    for _ in 0..20 {
        assert_eq!(
            select_port(&mut map, now),
            Some(1),
            "weight 0 gets no new sessions"
        );
    }
    make_unhealthy(&mut map, 2, now);
    assert_eq!(sticky(&mut map), Some(1));
    assert_eq!(
        map.select(CLUSTER, Some("nobody"), now)
            .map(|b| port_of(&b))
            .ok(),
        Some(1)
    );
}

#[test]
fn round_robin_through_the_map_follows_the_smooth_sequence() {
    let (mut map, now) = map_with(&[(5, false), (1, false), (1, false)]);
    let sequence: Vec<u16> = (0..7).filter_map(|_| select_port(&mut map, now)).collect();
    assert_eq!(sequence, [1, 1, 2, 1, 3, 1, 1]);
}

#[test]
fn random_through_the_map_follows_the_weights() {
    let (mut map, now) = map_with_algorithm(
        &[(5, false), (1, false), (1, false)],
        LoadBalancingAlgorithm::Random,
        LoadMetric::Connections,
    );
    let mut counts = HashMap::new();
    for _ in 0..10_000 {
        *counts.entry(select_port(&mut map, now)).or_insert(0) += 1;
    }
    let share = |port| f64::from(counts[&Some(port)]) / 10_000.0;
    assert!((share(1) - 5.0 / 7.0).abs() < 0.02, "{counts:?}");
    assert!((share(2) - 1.0 / 7.0).abs() < 0.02, "{counts:?}");
    assert!((share(3) - 1.0 / 7.0).abs() < 0.02, "{counts:?}");
}

#[test]
fn least_loaded_follows_connections_requests_and_connect_time() {
    let (mut map, now) = map_with_algorithm(
        &[(1, false), (2, false)],
        LoadBalancingAlgorithm::LeastLoaded,
        LoadMetric::Connections,
    );
    let heavy = backend(&map, 2);
    for _ in 0..4 {
        map.connection_opened(&heavy);
    }
    // (0 + 1) / 1 < (4 + 1) / 2
    assert_eq!(select_port(&mut map, now), Some(1));

    let (mut map, now) = map_with_algorithm(
        &[(1, false), (1, false)],
        LoadBalancingAlgorithm::LeastLoaded,
        LoadMetric::Requests,
    );
    let busy = backend(&map, 1);
    map.request_started(&busy);
    assert_eq!(select_port(&mut map, now), Some(2));
    map.request_finished(&busy);
    let other = backend(&map, 2);
    map.request_started(&other);
    assert_eq!(select_port(&mut map, now), Some(1));

    let (mut map, now) = map_with_algorithm(
        &[(1, false), (1, false)],
        LoadBalancingAlgorithm::LeastLoaded,
        LoadMetric::ConnectTime,
    );
    let slow = backend(&map, 1);
    let fast = backend(&map, 2);
    map.connect_succeeded(&slow, ms(80), now);
    map.connect_succeeded(&fast, ms(5), now);
    for _ in 0..10 {
        assert_eq!(select_port(&mut map, now), Some(2));
    }
}

// ------------------------------------------------------------------ latches

#[test]
fn cluster_goes_all_down_once_and_recovers_once() {
    capture_logs();
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    exhaust(&mut map, 1, now);
    assert_eq!(kinds(&map.take_events()), [EventKind::BackendDown]);
    exhaust(&mut map, 2, now);
    assert_eq!(
        kinds(&map.take_events()),
        [EventKind::BackendDown, EventKind::NoAvailableBackends]
    );
    let first = backend(&map, 1);
    for _ in 0..100 {
        map.connect_failed(&first, now);
    }
    assert!(map.take_events().is_empty());
    assert_eq!(
        map.cluster(CLUSTER)
            .expect("cluster")
            .availability()
            .state(),
        Availability::AllDown
    );
    assert_eq!(logged(log::Level::Warn, "no backend available"), 1);

    let later = now + Duration::from_secs(11);
    map.connect_succeeded(&first, ms(2), later);
    map.connect_succeeded(&first, ms(2), later);
    let events = map.take_events();
    assert_eq!(
        kinds(&events),
        [EventKind::BackendUp, EventKind::ClusterRecovered]
    );
    assert_eq!(events[1].cluster_id.as_deref(), Some(CLUSTER));
    assert_eq!(events[0].address.as_deref(), Some("127.0.0.1:1"));
    assert_eq!(events[0].backend_id.as_deref(), Some("b1"));
    assert_eq!(events[0].worker_id, None);
    assert_eq!(logged(log::Level::Info, "available again"), 1);
    let counters = map.counters();
    assert_eq!(
        (
            counters.all_down_transitions,
            counters.recovered_transitions
        ),
        (1, 1)
    );
    assert_eq!((counters.backends_down, counters.backends_up), (2, 1));
}

#[test]
fn exhausted_backends_get_no_client_and_come_back_by_a_recovery_probe() {
    let (mut map, now) = map_with(&[(1, false)]);
    exhaust(&mut map, 1, now);
    map.take_events();
    let version = map.exhaustion_version();
    assert_eq!(map.needing_recovery(), [(CLUSTER.to_owned(), address(1))]);
    for later in [1, 10, 100].map(|s| now + Duration::from_secs(s)) {
        assert_eq!(
            select_port(&mut map, later),
            None,
            "no client request spent"
        );
    }
    assert_eq!(map.counters().fail_open_decisions, 0);
    let later = now + Duration::from_secs(100);
    map.recovered(CLUSTER, &address(1), later);
    assert_eq!(
        kinds(&map.take_events()),
        [EventKind::BackendUp, EventKind::ClusterRecovered]
    );
    assert!(map.needing_recovery().is_empty());
    assert_eq!(select_port(&mut map, later), Some(1));
    assert_eq!(
        map.exhaustion_version(),
        version,
        "recovering exhausts nothing"
    );
}

#[test]
fn drained_and_maintained_backends_take_no_new_client_but_sticky_ones_in_drain() {
    let (mut map, now) = map_with(&[(1, false), (2, false)]);
    let mut drained = backend_proto(1, 1, false);
    drained.state = Some(proto::BackendState::Drain as i32);
    map.add_backend(&drained, now).expect("update");
    assert_eq!(kinds(&map.take_events()), [EventKind::BackendDraining]);
    for _ in 0..20 {
        assert_eq!(select_port(&mut map, now), Some(2));
    }
    let sticky = backend(&map, 1).borrow().sticky_name().to_owned();
    let pinned = map.select(CLUSTER, Some(&sticky), now).expect("a backend");
    assert_eq!(pinned.borrow().address(), address(1), "sticky clients stay");

    let mut maint = backend_proto(1, 1, false);
    maint.state = Some(proto::BackendState::Maint as i32);
    map.add_backend(&maint, now).expect("update");
    assert_eq!(kinds(&map.take_events()), [EventKind::BackendMaintenance]);
    let pinned = map.select(CLUSTER, Some(&sticky), now).expect("a backend");
    assert_eq!(
        pinned.borrow().address(),
        address(2),
        "maint: not even sticky ones"
    );

    let mut both = backend_proto(2, 1, false);
    both.state = Some(proto::BackendState::Maint as i32);
    map.add_backend(&both, now).expect("update");
    assert_eq!(select_port(&mut map, now), None, "no fail-open to maint");
    map.add_backend(&backend_proto(1, 1, false), now)
        .expect("ready");
    assert_eq!(select_port(&mut map, now), Some(1));
    let events = kinds(&map.take_events());
    assert!(events.contains(&EventKind::BackendReady), "{events:?}");
}

#[test]
fn an_empty_cluster_is_never_all_down() {
    let (mut map, now) = map_with(&[]);
    let state = |map: &BackendMap| {
        map.cluster(CLUSTER)
            .expect("cluster")
            .availability()
            .state()
    };
    assert_eq!(state(&map), Availability::Available);
    map.add_backend(&backend_proto(1, 1, false), now)
        .expect("valid");
    exhaust(&mut map, 1, now);
    assert_eq!(state(&map), Availability::AllDown);
    map.remove_backend(CLUSTER, &address(1), now)
        .expect("known");
    assert_eq!(state(&map), Availability::Available);
    assert_eq!(
        kinds(&map.take_events()),
        [
            EventKind::BackendDown,
            EventKind::NoAvailableBackends,
            EventKind::ClusterRecovered,
            EventKind::RemovedBackendHasNoConnections
        ]
    );
}

#[test]
fn backend_down_and_up_once_per_transition_whatever_the_cause() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    make_unhealthy(&mut map, 1, now);
    make_unhealthy(&mut map, 1, now);
    exhaust(&mut map, 1, now);
    assert_eq!(kinds(&map.take_events()), [EventKind::BackendDown]);
    make_healthy(&mut map, 1, now);
    assert!(map.take_events().is_empty(), "still exhausted: not up");
    map.connect_succeeded(&backend(&map, 1), ms(1), now);
    assert_eq!(kinds(&map.take_events()), [EventKind::BackendUp]);
    make_healthy(&mut map, 1, now);
    assert!(map.take_events().is_empty());
}

#[test]
fn reset_health_brings_every_backend_back() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    make_unhealthy(&mut map, 1, now);
    make_unhealthy(&mut map, 2, now);
    map.take_events();
    map.reset_health(CLUSTER, now);
    assert_eq!(
        kinds(&map.take_events()),
        [
            EventKind::BackendUp,
            EventKind::BackendUp,
            EventKind::ClusterRecovered
        ]
    );
    assert!(backend(&map, 1).borrow().health().is_healthy());
}

#[test]
fn removing_a_health_check_through_set_cluster_resets_health() {
    let (mut map, now) = map_with(&[(1, false)]);
    let mut cluster = cluster_proto(LoadBalancingAlgorithm::RoundRobin, LoadMetric::Connections);
    cluster.health_check = Some(proto::HealthCheckConfig {
        uri: "/health".to_owned(),
        interval_ms: 1000,
        timeout_ms: 500,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        expected_status_min: None,
        expected_status_max: None,
        host: None,
    });
    map.set_cluster(&cluster, now);
    map.record_health(CLUSTER, &address(1), false, now);
    assert!(
        !backend(&map, 1).borrow().health().is_healthy(),
        "threshold 1"
    );
    cluster.health_check = None;
    map.set_cluster(&cluster, now);
    assert!(backend(&map, 1).borrow().health().is_healthy());
}

// ------------------------------------------------------- adding and removing

#[test]
fn removing_a_backend_with_connections_waits_for_the_last_one() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    let first = backend(&map, 1);
    map.connection_opened(&first);
    map.connection_opened(&first);
    map.remove_backend(CLUSTER, &address(1), now)
        .expect("known");
    assert_eq!(first.borrow().status(), BackendStatus::Closing);
    assert!(map.take_events().is_empty());
    for _ in 0..10 {
        assert_eq!(select_port(&mut map, now), Some(2));
    }
    map.connection_closed(&first, now);
    assert!(map.take_events().is_empty());
    map.connection_closed(&first, now);
    assert_eq!(first.borrow().status(), BackendStatus::Closed);
    assert!(map.backend(CLUSTER, &address(1)).is_none());
    let events = map.take_events();
    assert_eq!(kinds(&events), [EventKind::RemovedBackendHasNoConnections]);
    assert_eq!(events[0].address.as_deref(), Some("127.0.0.1:1"));
    map.connection_closed(&first, now);
    assert!(map.take_events().is_empty(), "exactly once");
}

#[test]
fn removing_a_backend_without_connections_is_immediate() {
    let (mut map, now) = map_with(&[(1, false)]);
    let first = backend(&map, 1);
    map.remove_backend(CLUSTER, &address(1), now)
        .expect("known");
    assert_eq!(first.borrow().status(), BackendStatus::Closed);
    assert_eq!(
        kinds(&map.take_events()),
        [EventKind::RemovedBackendHasNoConnections]
    );
    assert!(matches!(
        map.remove_backend(CLUSTER, &address(1), now),
        Err(BackendError::UnknownBackend { .. })
    ));
}

#[test]
fn re_adding_a_backend_keeps_its_state() {
    let (mut map, now) = map_with(&[(1, false)]);
    let first = backend(&map, 1);
    map.connection_opened(&first);
    map.connect_failed(&first, now);
    map.connect_failed(&first, now);
    map.remove_backend(CLUSTER, &address(1), now)
        .expect("known");
    map.add_backend(&backend_proto(1, 7, false), now)
        .expect("valid");
    let again = backend(&map, 1);
    assert!(Rc::ptr_eq(&first, &again));
    let b = again.borrow();
    assert_eq!(b.status(), BackendStatus::Normal);
    assert_eq!(b.weight(), 7);
    assert_eq!(b.active_connections(), 1);
    assert_eq!(b.retry_policy().failures(), 2);
    assert_eq!(b.failures(), 2);
}

#[test]
fn update_backends_keeps_unchanged_addresses() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    let first = backend(&map, 1);
    map.connect_failed(&first, now);
    map.update_backends(
        CLUSTER,
        &[backend_proto(1, 3, false), backend_proto(3, 1, false)],
        now,
    )
    .expect("valid");
    assert!(Rc::ptr_eq(&first, &backend(&map, 1)));
    assert_eq!(first.borrow().retry_policy().failures(), 1);
    assert_eq!(first.borrow().weight(), 3);
    assert!(map.backend(CLUSTER, &address(2)).is_none());
    assert!(map.backend(CLUSTER, &address(3)).is_some());

    let mut stray = backend_proto(4, 1, false);
    stray.cluster_id = "other".to_owned();
    let err = map.update_backends(CLUSTER, &[stray], now);
    assert!(matches!(err, Err(BackendError::WrongCluster { .. })));
    assert!(
        map.backend(CLUSTER, &address(3)).is_some(),
        "nothing changed"
    );
}

#[test]
fn removing_a_cluster_retires_its_backends() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    let first = backend(&map, 1);
    map.connection_opened(&first);
    map.remove_cluster(CLUSTER);
    assert_eq!(
        kinds(&map.take_events()),
        [EventKind::RemovedBackendHasNoConnections]
    );
    assert_eq!(first.borrow().status(), BackendStatus::Closing);
    map.connect_failed(&first, now);
    map.connection_closed(&first, now);
    assert_eq!(
        kinds(&map.take_events()),
        [EventKind::RemovedBackendHasNoConnections]
    );
    assert_eq!(
        map.select(CLUSTER, None, now).err(),
        Some(SelectError::UnknownCluster(CLUSTER.to_owned()))
    );
}

#[test]
fn invalid_input_is_an_error() {
    let (mut map, now) = map_with(&[]);
    let mut bad = backend_proto(1, 1, false);
    bad.address = "not an address".to_owned();
    assert!(matches!(
        map.add_backend(&bad, now),
        Err(BackendError::InvalidAddress { .. })
    ));
    let mut elsewhere = backend_proto(1, 1, false);
    elsewhere.cluster_id = "nowhere".to_owned();
    assert!(matches!(
        map.add_backend(&elsewhere, now),
        Err(BackendError::UnknownCluster(_))
    ));
    assert!(matches!(
        map.remove_backend("nowhere", &address(1), now),
        Err(BackendError::UnknownCluster(_))
    ));
    assert_eq!(
        map.select(CLUSTER, None, now).err(),
        Some(SelectError::NoBackendAvailable(CLUSTER.to_owned()))
    );
    assert_eq!(map.record_health("nowhere", &address(1), false, now), None);
}

#[test]
fn max_connect_retries_defaults_to_three() {
    let (mut map, now) = map_with(&[]);
    assert_eq!(map.max_connect_retries(CLUSTER), 3);
    assert_eq!(map.max_connect_retries("unknown"), 3);
    let mut cluster = cluster_proto(LoadBalancingAlgorithm::RoundRobin, LoadMetric::Connections);
    cluster.max_connect_retries = Some(5);
    map.set_cluster(&cluster, now);
    assert_eq!(map.max_connect_retries(CLUSTER), 5);
}

// ------------------------------------------------------------------ per-request selection

#[test]
fn each_request_is_balanced_whatever_the_last_backend() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    let mut last = map.select(CLUSTER, None, now).expect("a backend");
    let mut ports = Vec::new();
    for _ in 0..4 {
        last = map
            .select_for_request(CLUSTER, None, &last, now)
            .expect("a backend");
        ports.push(port_of(&last));
    }
    assert_eq!(ports, [2, 1, 2, 1]);
}

#[test]
fn prefer_last_backend_keeps_an_available_one() {
    let (mut map, now) = map_with(&[(1, false), (1, false)]);
    let mut cluster = cluster_proto(LoadBalancingAlgorithm::RoundRobin, LoadMetric::Connections);
    cluster.prefer_last_backend = Some(true);
    map.set_cluster(&cluster, now);
    let first = map.select(CLUSTER, None, now).expect("a backend");
    for _ in 0..3 {
        let next = map
            .select_for_request(CLUSTER, None, &first, now)
            .expect("a backend");
        assert!(Rc::ptr_eq(&next, &first));
    }
    // A sticky cookie still wins.
    let other = if port_of(&first) == 1 { "b2" } else { "b1" };
    let stuck = map
        .select_for_request(CLUSTER, Some(other), &first, now)
        .expect("a backend");
    assert_eq!(stuck.borrow().backend_id(), other);
    // A backend being removed is left.
    map.connection_opened(&first);
    let address = first.borrow().address();
    map.remove_backend(CLUSTER, &address, now).expect("removed");
    let next = map
        .select_for_request(CLUSTER, None, &first, now)
        .expect("a backend");
    assert!(!Rc::ptr_eq(&next, &first));
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "the invariant checks of debug builds allocate; runs in release"
)]
fn choosing_a_backend_for_each_request_allocates_nothing_once_warm() {
    let (mut map, now) = map_with(&[(1, false), (2, false), (1, true)]);
    let mut last = map.select(CLUSTER, None, now).expect("a backend");
    let ((), made) = crate::tls::allocation_tests::sys::allocations_of(|| {
        for _ in 0..1000 {
            last = map
                .select_for_request(CLUSTER, None, &last, now)
                .expect("a backend");
        }
    });
    assert_eq!(made, 0, "allocations over 1000 selections");
}
